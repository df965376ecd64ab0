"""Scorers (and responders) that share the devices: two real ``forewarn`` processes split the
slices of the device hash; one is killed with SIGKILL mid-stream; the other takes its devices
within seconds, and every reading published through the broker is scored exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

import rules as rules_pkg
from forewarn.domain import ANOMALY
from forewarn.settings import Settings
from ingest.service import Ingester
from models import repository
from models.anomaly import BatteryLife
from models.base import FeatureSet
from models.bundle import ModelBundle
from models.features import FEATURES
from models.reasons import Baseline
from tests.conftest import Publisher, count, env_for, wait_for

DEVICES = 40
SLICES = 8

Conn = psycopg.Connection[tuple[Any, ...]]


def _alert_on_everything(db: Conn) -> int:
    """Activate a real (tiny) model whose anomaly threshold is 0: every device scored gets a
    prediction, so the predictions table counts the scorings."""
    rng = np.random.default_rng(0)
    data = FeatureSet(
        rng.normal(size=(60, len(FEATURES))),
        np.array([f"d-{i}" for i in range(60)]),
        np.array(["lock-s2"] * 60),
        np.arange(60, dtype=np.int64),
    )
    healthy = np.zeros(60, dtype=np.int8)
    bundle = ModelBundle(
        seed=0,
        horizon_h=24.0,
        features=FEATURES,
        predictors={},
        thresholds={ANOMALY: 0.0},
        anomaly={},
        battery=BatteryLife().learn(data, healthy),
        baseline=Baseline.learn(data.x),
    )
    now = datetime.now(UTC)
    version = repository.save_version(
        db, bundle=bundle, trained_from=now, trained_to=now, evaluation={}, note="test"
    )
    repository.activate(db, version=version)
    return version


@contextmanager
def _processes(settings: Settings, *commands: list[str]) -> Iterator[list[subprocess.Popen[str]]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", *command],
            env=env_for(settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            assert p.stderr is not None
            p.stderr.close()


def _members_holding_slices(db: Conn, group: str) -> int:
    """How many processes hold slices of `group` in this test's schema (pg_locks)."""
    return count(
        db,
        "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid::int = hashtext(current_schema() || '.lease.' || %s) AND objid < %s",
        group,
        1 << 20,
    )


def _publish_round(publisher: Publisher, at: datetime) -> None:
    for i in range(DEVICES):
        publisher.reading(
            f"lock-{i:04d}",
            {"ts": at.isoformat(), "battery_pct": 80 - i % 7, "signal_dbm": -60 - i % 11},
        )
    publisher.flush()


def _scored_at(db: Conn, at: datetime) -> int:
    return count(
        db,
        "SELECT count(*) FROM predictions WHERE fault = %s AND last_at = %s",
        ANOMALY,
        at,
    )


def test_two_scorers_share_the_devices_and_a_killed_ones_are_taken_over(
    settings: Settings, db: Conn, publisher: Publisher
) -> None:
    _alert_on_everything(db)
    ingester = Ingester(settings)
    ingester.start()
    # Every reading falls in one hour, so each device has one prediction row whose update
    # count is the number of times it was scored.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rounds = [hour + timedelta(minutes=m) for m in range(1, 9)]
    score = ["score", "--slices", str(SLICES), "--lag", "0.5", "--warmup-hours", "2"]
    try:
        with _processes(settings, score, score) as (a, b):
            # Both join and split the slices between them.
            wait_for(
                lambda: _members_holding_slices(db, "scorers") == 2,
                timeout=30,
                what="two scorers holding slices",
            )
            for i, at in enumerate(rounds):
                _publish_round(publisher, at)
                if i == 4:
                    a.kill()  # SIGKILL while the round may be mid-pass: no goodbye
                    killed = time.monotonic()
                wait_for(
                    lambda at=at: _scored_at(db, at) == DEVICES,  # type: ignore[misc]
                    timeout=30,
                    what=f"round {i} scored on every device ({_scored_at(db, at)})",
                )
                if i == 4:
                    taken_over = time.monotonic() - killed
            assert a.wait(5) == -signal.SIGKILL
            assert b.poll() is None, "the surviving scorer stopped"
    finally:
        ingester.stop()
    assert taken_over < 10, f"the dead scorer's devices waited {taken_over:.1f} s"
    rows = db.execute(
        "SELECT device_id, updates, last_at FROM predictions WHERE fault = %s ORDER BY device_id",
        (ANOMALY,),
    ).fetchall()
    assert len(rows) == DEVICES
    # Scored exactly once per reading: nothing twice across the hand-over, nothing missed.
    assert {r[1] for r in rows} == {len(rounds)}, sorted({r[1] for r in rows})
    assert {r[2] for r in rows} == {rounds[-1]}
    cursors = count(db, "SELECT count(*) FROM scorer_cursors WHERE partitions = %s", SLICES)
    assert cursors == SLICES


def test_two_responders_share_the_devices_and_a_killed_ones_are_taken_over(
    settings: Settings, db: Conn, publisher: Publisher, tmp_path: Path
) -> None:
    rules = (Path(rules_pkg.__file__).parent / "default.yaml").read_text()
    hint = "    faults: [anomaly]\n    action: ignore\n"
    assert hint in rules
    path = tmp_path / "rules.yaml"
    path.write_text(rules.replace(hint, "    faults: [anomaly]\n    action: ticket\n"))
    settings = settings.with_overrides(rules_path=path)
    _alert_on_everything(db)
    ingester = Ingester(settings)
    ingester.start()
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rounds = [hour + timedelta(minutes=m) for m in range(1, 5)]
    respond = ["respond", "--no-dispatch", "--slices", str(SLICES), "--progress-every", "1"]
    score = ["score", "--slices", str(SLICES), "--lag", "0.5", "--warmup-hours", "2"]
    try:
        with _processes(settings, score, respond, respond) as (_, a, b):
            wait_for(
                lambda: _members_holding_slices(db, "responders") == 2,
                timeout=30,
                what="two responders holding slices",
            )
            for i, at in enumerate(rounds):
                _publish_round(publisher, at)
                if i == 1:
                    a.kill()
                    killed = time.monotonic()
                wait_for(
                    lambda at=at: _tracked_at(db, at) == DEVICES,  # type: ignore[misc]
                    timeout=30,
                    what=f"round {i} acted on for every device ({_tracked_at(db, at)})",
                )
                if i == 1:
                    taken_over = time.monotonic() - killed
            assert a.wait(5) == -signal.SIGKILL
            assert b.poll() is None, "the surviving responder stopped"
    finally:
        ingester.stop()
    assert taken_over < 10, f"the dead responder's devices waited {taken_over:.1f} s"
    # One incident and one ticket per device: acting again on a prediction read twice
    # across the hand-over only tracks the open incident.
    assert count(db, "SELECT count(*) FROM incidents WHERE fault = %s", ANOMALY) == DEVICES
    assert count(db, "SELECT count(DISTINCT device_id) FROM incidents") == DEVICES
    assert count(db, "SELECT count(*) FROM tickets WHERE kind = 'device'") == DEVICES
    held = count(db, "SELECT count(*) FROM responder_cursors WHERE name LIKE %s", f"%/{SLICES}.%")
    assert held == SLICES


def _tracked_at(db: Conn, at: datetime) -> int:
    """Devices whose open incident has taken the prediction of the reading at `at`."""
    return count(
        db,
        "SELECT count(*) FROM incidents WHERE closed_at IS NULL AND fault = %s "
        "AND last_predicted_at = %s",
        ANOMALY,
        at,
    )
