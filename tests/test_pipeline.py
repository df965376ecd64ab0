"""Simulator → broker → ingester → database: what is stored matches the ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from forewarn.settings import Settings
from ingest.service import Ingester
from simulators.fleet import FaultKind
from simulators.flows import run_simulation
from tests.conftest import count, wait_for

DROP_OFF = (FaultKind.CONNECTIVITY_LOSS, FaultKind.BATTERY_FAILURE)


def test_stored_fleet_matches_the_simulators_ground_truth(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    # The simulator floods in fast mode. The machine's Mosquitto keeps its default queue of
    # 1,000 messages per client and drops QoS 1 messages past it (docs/operations.md), so
    # let the backlog wait in flight instead: the MQTT maximum Receive Maximum.
    settings = settings.with_overrides(ingest_receive_maximum=65535)
    ingester = Ingester(settings)
    ingester.start()
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        summary = run_simulation(
            settings,
            devices=40,
            seed=11,
            speedup=0,
            duration=None,
            start=start,
            sim_span=timedelta(hours=20),
            fault_rate=0.3,
        )
        wait_for(
            lambda: ingester.stats().received >= summary.messages,
            timeout=60,
            what="every published message to be ingested",
        )
        wait_for(lambda: ingester.stats().backlog == 0, what="the last batch to commit")
    finally:
        ingester.stop()

    # Every reading the simulator published is a row; nothing was dead-lettered.
    assert count(db, "SELECT count(*) FROM telemetry") == summary.readings
    assert count(db, "SELECT count(*) FROM dead_letters") == 0
    # The registered truth is the truth that was simulated.
    labels = {
        (str(r[0]), str(r[1]), r[2])
        for r in db.execute("SELECT device_id, fault, onset_at FROM fault_labels")
    }
    assert labels == {(e.device_id, e.fault.value, e.onset_at) for e in summary.episodes}

    end = summary.sim_end
    failed = {
        e.device_id: e.failure_at
        for e in summary.episodes
        if e.fault in DROP_OFF and e.failure_at <= end
    }
    assert failed, "the seed should make some devices drop off within the span"
    # last_reading_at: the newest reading's own stamp (last_seen is when it arrived, now).
    devices = {
        str(r[0]): (r[1], r[2])
        for r in db.execute("SELECT device_id, online, last_reading_at FROM devices")
    }
    assert len(devices) == summary.devices
    for device_id, (online, last_seen) in devices.items():
        if device_id in failed:
            # Dropped off at failure: offline, and nothing stored after the failure.
            assert online is False, device_id
            assert last_seen <= failed[device_id], device_id
        else:
            assert online is True, device_id
