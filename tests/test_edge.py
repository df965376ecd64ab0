"""The ingester's edge trusts nothing it cannot check: unknown, suspended and decommissioned
devices, clocks ahead of the arrival, devices sending too fast, and dead letters that expire.
Against the real broker and database, with devices registered only through the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from forewarn.settings import Settings
from ingest import repository as ingest_repo
from ingest.service import Ingester
from registry import flows
from registry.types import DeviceState
from tests.conftest import Publisher, count, wait_for

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def edge_settings(settings: Settings) -> Settings:
    """The compose stack's defaults: no device is created by its first message."""
    return settings.with_overrides(auto_register=False, device_rate_burst=5)


@pytest.fixture
def ingester(edge_settings: Settings, db: Conn) -> Iterator[Ingester]:
    """A running ingester with an owner and two registered devices."""
    flows.create_owner(db, {"owner_id": "o-1", "name": "Ana"})
    for device_id in ("lock-1", "lock-2"):
        flows.create_device(db, {"device_id": device_id, "owner_id": "o-1", "model": "lock-s2"})
    ing = Ingester(edge_settings)
    ing.start()
    yield ing
    ing.stop()
    assert ing.failure is None


def reading(ts: datetime, **values: Any) -> dict[str, Any]:
    """A Forewarn v1 reading stamped `ts`."""
    return {"ts": ts.isoformat(), "battery_pct": 80, **values}


def reasons(db: Conn) -> list[str]:
    """Every dead letter's reason, oldest first."""
    return [str(r[0]) for r in db.execute("SELECT reason FROM dead_letters ORDER BY id")]


def test_only_registered_listened_devices_are_stored(
    ingester: Ingester, publisher: Publisher, db: Conn, edge_settings: Settings
) -> None:
    now = datetime.now(UTC)
    publisher.reading("lock-1", reading(now))
    publisher.reading("intruder-9", reading(now))
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, what="a dead letter")
    wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 1, what="lock-1's row")
    assert reasons(db) == ["unknown device 'intruder-9' (not in the registry)"]
    assert count(db, "SELECT count(*) FROM devices WHERE device_id = 'intruder-9'") == 0
    assert ingester.metrics.refused_count("unknown_device") == 1

    # Registered a moment before its first message: taken (the writer looks again).
    flows.create_device(db, {"device_id": "lock-3", "owner_id": "o-1"})
    publisher.reading("lock-3", reading(now))
    # Suspended: refused until resumed. Decommissioned: refused for good.
    flows.move(db, edge_settings, "lock-2", DeviceState.SUSPENDED)
    wait_for(lambda: ingester_knows(ingester, db, "lock-2", "suspended"), what="the suspension")
    publisher.reading("lock-2", reading(now))
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM dead_letters") == 2, what="2 dead letters")
    assert reasons(db)[1] == "device 'lock-2' is suspended"
    assert count(db, "SELECT count(*) FROM telemetry WHERE device_id = 'lock-3'") == 1
    flows.move(db, edge_settings, "lock-2", DeviceState.ACTIVE)
    wait_for(lambda: ingester_knows(ingester, db, "lock-2", "active"), what="the resumption")
    publisher.reading("lock-2", reading(now + timedelta(seconds=1)))
    publisher.flush()
    wait_for(
        lambda: count(db, "SELECT count(*) FROM telemetry WHERE device_id = 'lock-2'") == 1,
        what="lock-2 listened to again",
    )


def ingester_knows(ingester: Ingester, db: Conn, device_id: str, state: str) -> bool:
    """Whether the registry says so and a second has passed for the edge to hear of it."""
    row = db.execute(
        "SELECT state, clock_timestamp() - updated_at > interval '1.2 s' FROM devices "
        "WHERE device_id = %s",
        (device_id,),
    ).fetchone()
    return row is not None and row[0] == state and bool(row[1])


def test_a_device_clock_cannot_claim_the_future(
    ingester: Ingester, publisher: Publisher, db: Conn
) -> None:
    now = datetime.now(UTC)
    publisher.reading("lock-1", reading(now + timedelta(days=20)))
    status = f"{publisher.prefix}/devices/lock-1/status"
    publisher.raw(status, json.dumps({"status": "offline", "ts": "9999-12-31T00:00:00Z"}))
    publisher.reading("lock-1", reading(now - timedelta(days=400)))
    # Within the allowed skew (5 minutes): taken, but last_seen is when it arrived.
    publisher.reading("lock-1", reading(now + timedelta(minutes=3)))
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM dead_letters") == 3, what="3 dead letters")
    got = reasons(db)
    assert any("reading stamped" in r and "ahead of its arrival" in r for r in got)
    assert any("status stamped 9999-12-31" in r and "ahead of its arrival" in r for r in got)
    assert any("older than telemetry is kept (90 days)" in r for r in got)
    wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 1, what="one row")
    row = db.execute(
        "SELECT last_seen, status_at, last_reading_at, online FROM devices WHERE device_id = 'lock-1'"
    ).fetchone()
    assert row is not None
    last_seen, status_at, last_reading_at, online = row
    assert last_seen <= datetime.now(UTC) and online is True
    assert status_at <= last_seen and last_reading_at <= last_seen
    assert ingester.metrics.refused_count("clock_skew") == 2


def test_a_device_over_its_rate_is_refused_past_its_burst(
    ingester: Ingester, publisher: Publisher, db: Conn
) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(8):  # a burst of 5 is allowed, then 2 a second
        publisher.reading("lock-1", reading(start + timedelta(minutes=i)))
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM dead_letters") >= 2, what="over the rate")
    limited = [r for r in reasons(db) if "sent more than 120 messages a minute (burst 5)" in r]
    assert 2 <= len(limited) <= 3  # a token may refill while the eight arrive
    assert count(db, "SELECT count(*) FROM telemetry") == 8 - len(limited)


def test_dead_letters_expire(db: Conn) -> None:
    db.execute(
        "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES "
        "('t', 'x', 'old', now() - interval '20 days'), ('t', 'y', 'new', now())"
    )
    purged = ingest_repo.purge_dead_letters(db, before=datetime.now(UTC) - timedelta(days=14))
    assert purged == 1 and reasons(db) == ["new"]
