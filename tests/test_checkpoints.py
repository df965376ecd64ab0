"""Slice checkpoints (``models.checkpoints``): a scorer that takes slices over from their
checkpoints holds the same window state and detectors as one that rebuilt them from every
reading, and a checkpoint it cannot use is rebuilt from the readings instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from forewarn.settings import Settings
from ingest.direct import DirectWriter
from models.buckets import Sample
from models.checkpoints import CheckpointError, SliceState, pack, unpack
from models.detect import WIDTH, Fleet, observations, profiles
from models.sliced import SlicedScorer
from models.state import FleetState
from simulators.flows import run_simulation
from tests.conftest import count, wait_for

Conn = psycopg.Connection[tuple[Any, ...]]
# Slices whose checkpoint (cursor) has passed every reading stored.
_SAVED = (
    "SELECT count(*) FROM scorer_checkpoints "
    "WHERE ingested_after >= (SELECT max(ingested_at) FROM telemetry)"
)
_SCORED = (
    "SELECT count(*) FROM scorer_cursors "
    "WHERE ingested_after >= (SELECT max(ingested_at) FROM telemetry)"
)
_HEARD = WIDTH - 1  # the wall time a device was last heard: each process's own clock


def _readings(i: int, t0: float, n: int) -> list[Sample]:
    """Device i's readings, one a minute: a battery falling, a temperature with a cycle, a
    restart now and then, a lock (odd i) or a mains device (even i)."""
    return [
        Sample(
            t0 + 60 * k,
            -60.0 - (k + i) % 9,
            90.0 - 0.01 * k if i % 2 else None,
            3.0 if i % 2 else None,
            22.0 + (k % 50) * 0.1 + i,
            float(60 * (k % 400)),
            float(k // 200),
        )
        for k in range(n)
    ]


def _fold(state: FleetState, fleet: Fleet, device_id: str, samples: list[Sample]) -> list[Any]:
    alerts: list[Any] = []
    for s, x in zip(samples, observations(samples), strict=True):
        state.add(device_id, s)
        alerts += fleet.observe(device_id, x)
    return alerts


def test_a_slice_packed_and_restored_goes_on_exactly_as_it_would_have() -> None:
    t0 = 1_790_000_000.0
    readings = {f"d-{i}": _readings(i, t0, 900) for i in range(6)}
    state, fleet = FleetState(), Fleet({}, profiles({}, {}))
    for d, samples in readings.items():
        _fold(state, fleet, d, samples[:600])
    ids = ["d-1", "d-2", "d-5"]
    data = pack(SliceState(tuple(ids), tuple(state.export(ids)), *fleet.export(ids)))
    back = unpack(data)
    assert back.device_ids == tuple(ids)
    # The taker already holds other devices (its own slices): rows are made as needed.
    taker, taker_fleet = FleetState(), Fleet({}, profiles({}, {}))
    _fold(taker, taker_fleet, "d-0", readings["d-0"][:600])
    taker.restore(back.device_ids, back.window)
    taker_fleet.restore(back.device_ids, back.detectors, back.silent)
    np.testing.assert_array_equal(taker.features(ids), state.features(ids))
    for d in ids:
        # The rest of the readings give the same alerts and the same state in both.
        assert _fold(taker, taker_fleet, d, readings[d][600:]) == _fold(
            state, fleet, d, readings[d][600:]
        )
    np.testing.assert_array_equal(taker.features(ids), state.features(ids))
    np.testing.assert_array_equal(taker_fleet.export(ids)[0], fleet.export(ids)[0])
    # The battery rings came back with the lock ("d-1", "d-5") and not with the mains device.
    assert list(back.window[-2]) == [True, False, True]
    # Each restarted 200 minutes before: their event rings came back too.
    assert list(back.window[-1]) == [True, True, True]


def test_bytes_that_are_no_checkpoint_are_refused_with_the_reason() -> None:
    with pytest.raises(CheckpointError, match="not a scorer checkpoint"):
        unpack(b"not an npz")
    state, fleet = FleetState(), Fleet({}, profiles({}, {}))
    _fold(state, fleet, "d-0", _readings(0, 1_790_000_000.0, 10))
    good = SliceState(("d-0",), tuple(state.export(["d-0"])), *fleet.export(["d-0"]))
    short = SliceState(("d-0",), good.window, good.detectors[:, :-1], good.silent)
    with pytest.raises(CheckpointError, match="detector rows"):
        unpack(pack(short))


def _store_fleet(
    settings: Settings, devices: int, *, seed: int, start: datetime, hours: int
) -> None:
    """A simulated fleet (60 % with a fault) from `start`, stored without a broker."""
    run_simulation(
        settings,
        devices=devices,
        seed=seed,
        speedup=0,
        duration=None,
        start=start,
        sim_span=timedelta(hours=hours),
        fault_rate=0.6,
        sink=DirectWriter(settings),
    )


def _run_until(scorer: SlicedScorer, done: Any, what: str) -> None:
    scorer.start()
    try:
        wait_for(done, timeout=60, what=what)
    finally:
        scorer.stop()
    assert scorer.failure is None


def _save_every_slice(settings: Settings, db: Conn, *, slices: int) -> None:
    """Run a scorer until it has saved a checkpoint of every slice past every reading."""
    saver = SlicedScorer(settings, slices=slices, lag_seconds=0.5, checkpoint_seconds=0.01)
    _run_until(saver, lambda: count(db, _SAVED) == slices, "a checkpoint of every slice")


def test_a_scorer_taking_slices_over_from_checkpoints_holds_what_a_rebuild_holds(
    settings: Settings, db: Conn
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=8)
    _store_fleet(settings, 12, seed=5, start=start, hours=3)
    _save_every_slice(settings, db, slices=4)
    before = count(db, "SELECT sum(devices) FROM scorer_checkpoints")
    assert before == 12
    # Readings written after the checkpoints: the taker folds them on top.
    _store_fleet(settings, 12, seed=5, start=start + timedelta(hours=4), hours=3)
    taker = SlicedScorer(settings, slices=4, lag_seconds=0.5, checkpoint_seconds=0)
    _run_until(taker, lambda: count(db, _SCORED) == 4, "the taker to score every reading")
    assert taker.counts().get("restored") == 4
    # The same slices rebuilt from every reading, without checkpoints.
    db.execute("DELETE FROM scorer_checkpoints")
    rebuilt = SlicedScorer(settings, slices=4, lag_seconds=0.5, checkpoint_seconds=0)
    _run_until(rebuilt, lambda: len(rebuilt.held) == 4, "the rebuild of every slice")
    assert "restored" not in rebuilt.counts()
    ids = sorted(str(r[0]) for r in db.execute("SELECT DISTINCT device_id FROM telemetry"))
    assert len(ids) == 12
    np.testing.assert_array_equal(taker._devices.features(ids), rebuilt._devices.features(ids))
    took, made = taker._detect.export(ids)[0], rebuilt._detect.export(ids)[0]
    np.testing.assert_array_equal(np.delete(took, _HEARD, axis=1), np.delete(made, _HEARD, axis=1))


def test_a_checkpoint_of_another_layout_is_rebuilt_from_the_readings(
    settings: Settings, db: Conn
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    _store_fleet(settings, 6, seed=7, start=start, hours=2)
    _save_every_slice(settings, db, slices=2)
    db.execute("UPDATE scorer_checkpoints SET layout = 'another'")
    taker = SlicedScorer(settings, slices=2, lag_seconds=0.5, checkpoint_seconds=0)
    # Its cursors are past every reading: the warm-up folds them all, from the database.
    _run_until(taker, lambda: len(taker.held) == 2, "the taker to hold every slice")
    assert "restored" not in taker.counts()
    stored = count(db, "SELECT count(*) FROM telemetry")
    assert taker.counts()["readings"] == stored  # every reading folded from the database


def test_slices_taken_over_warm_up_between_passes_while_held_ones_are_scored(
    settings: Settings, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forewarn.db import connect
    from models import sliced

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    _store_fleet(settings, 12, seed=9, start=start, hours=2)
    _save_every_slice(settings, db, slices=4)
    _store_fleet(settings, 12, seed=9, start=start + timedelta(hours=2), hours=1)
    monkeypatch.setattr(sliced, "WARM_SECONDS", 0.0)  # one slice a step
    taker = SlicedScorer(settings, slices=4, lag_seconds=0.0, checkpoint_seconds=0)
    cursors_before = dict(db.execute("SELECT slice, ingested_after FROM scorer_cursors").fetchall())
    try:
        with connect(settings) as conn:
            taker._rebalance(conn)
            assert taker.held == frozenset() and len(taker._warming) == 4
            taker._warm(conn)
            (first,) = taker.held
            taker._pass(conn)
            # The warm slice was scored up to now; the three still warming were not touched.
            moved = dict(db.execute("SELECT slice, ingested_after FROM scorer_cursors").fetchall())
            db.commit()
            assert moved[first] > cursors_before[first]
            assert all(moved[s] == cursors_before[s] for s in taker._warming)
            assert len(taker._warming) == 3 and taker.counts().get("restored") == 1
            for _ in range(3):
                taker._warm(conn)
            taker._pass(conn)
            assert taker.held == frozenset(range(4)) and not taker._warming
            assert taker.counts().get("restored") == 4
    finally:
        taker.leases.leave()
    moved = dict(db.execute("SELECT slice, ingested_after FROM scorer_cursors").fetchall())
    assert all(moved[s] > cursors_before[s] for s in range(4))
