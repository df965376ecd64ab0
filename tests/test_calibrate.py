"""``forewarn calibrate``: detector thresholds from a fleet's own stored telemetry, no labels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from typer.testing import CliRunner

from cli.main import app
from forewarn.settings import Settings
from ingest.direct import DirectWriter
from models import detector_repository as detector_repo
from models.calibrate import CANDIDATES, DeviceScores, calibrate, choose
from models.detect import DEFAULT_THRESHOLD, FAULTS
from simulators.flows import run_simulation
from tests.conftest import env_for


def flat(days: float, alerts_at: list[float], score: float) -> DeviceScores:
    """A device reporting every 5 minutes for `days`, with one-reading alerts at the hours
    given, of `score`, for every fault."""
    times = np.arange(0.0, days * 86400.0, 300.0)
    s = np.zeros(len(times))
    for h in alerts_at:
        s[int(h * 12)] = score
    return DeviceScores(times, dict.fromkeys(FAULTS, s), days)


def test_the_threshold_is_the_lowest_within_the_budget() -> None:
    # 100 devices x 10 days = 1,000 device-days; 3 alerts of 0.6 and 1 of 0.95.
    quiet = [flat(10.0, [], 0.0) for _ in range(96)]
    noisy = [flat(10.0, [5.0], 0.6) for _ in range(3)] + [flat(10.0, [5.0], 0.95)]
    found = {c.fault: c for c in choose(quiet + noisy, budget=1.0)}
    c = found["battery_failure"]
    assert c.device_days == 1000.0
    assert 0.6 < c.threshold <= 0.95 and c.alerts_per_1000_device_days == 1.0
    relaxed = {x.fault: x for x in choose(quiet + noisy, budget=5.0)}
    assert relaxed["battery_failure"].threshold == DEFAULT_THRESHOLD  # never below its bar
    strict = {x.fault: x for x in choose(quiet + noisy, budget=0.5)}
    assert strict["battery_failure"].threshold > 0.95 or strict["battery_failure"].threshold == max(
        CANDIDATES
    )


def test_calibrate_stores_thresholds_from_stored_telemetry(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    run_simulation(
        settings,
        devices=40,
        seed=31,
        speedup=0,
        duration=None,
        start=start,
        sim_span=timedelta(days=2),
        fault_rate=0.0,
        sink=DirectWriter(settings),
        number_from=700_001,
    )
    found = calibrate(settings, save=True, say=lambda _m: None)
    assert {c.fault for c in found} == set(FAULTS)
    assert all(DEFAULT_THRESHOLD <= c.threshold <= 1.0 for c in found)
    assert all(c.device_days > 60 for c in found)  # 40 devices over about 2 days
    stored = detector_repo.thresholds(db)
    assert stored == {c.fault: c.threshold for c in found}
    # The command shows them; --dry-run leaves the stored ones alone.
    db.execute("UPDATE detector_thresholds SET threshold = 0.99")
    db.commit()
    result = CliRunner().invoke(
        app, ["calibrate", "--dry-run"], env=env_for(settings) | {"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "detector thresholds" in result.output and "not stored" in result.output
    assert set(detector_repo.thresholds(db).values()) == {0.99}


def test_evaluate_reports_the_detectors_with_no_model(settings: Settings) -> None:
    result = CliRunner().invoke(
        app,
        ["evaluate", "--seed", "41", "--devices", "30", "--days", "1", "--json"],
        env=env_for(settings),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model_version"] is None and report["faults"] == {}
    assert set(report["detectors"]) == set(FAULTS)
    assert report["fleet"]["outages_per_day"] == 0.5
    assert all(0.0 <= q["precision"] <= 1.0 for q in report["detectors"].values())
