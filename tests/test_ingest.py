"""The ingester against the real broker and database: rows, dead letters, dedup, status."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cli.embedded import free_port
from forewarn.settings import Settings
from ingest.service import Ingester
from tests.conftest import Publisher, count, wait_for

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def ingester(settings: Settings) -> Iterator[Ingester]:
    """A running ingester for this test's schema and topics."""
    ing = Ingester(settings)
    ing.start()
    yield ing
    ing.stop()
    assert ing.failure is None


def stamp(minutes_ago: float = 0.0) -> str:
    """An RFC 3339 timestamp some minutes before now."""
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def test_published_readings_arrive_as_rows(
    ingester: Ingester, publisher: Publisher, db: Conn
) -> None:
    base = datetime.now(UTC) - timedelta(hours=1)
    for i in range(60):
        device = f"lock-{i % 3}"
        ts = base + timedelta(minutes=i)
        publisher.reading(
            device,
            {
                "ts": ts.isoformat(),
                "model": "lock-s2",
                "firmware": "2.4.1" if i < 57 else "2.5.0",
                "signal_dbm": -60.5,
                "battery_pct": 80,
                "battery_v": 5.6,
                "temperature_c": 21.25,
                "uptime_s": 3600 + i,
                "reconnects": 1,
                "error_codes": ["E1", 'quote"d', "back\\slash"] if i == 0 else [],
                "door": "locked",
            },
        )
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 60, what="60 rows")
    row = db.execute(
        "SELECT signal_dbm, battery_pct, battery_v, temperature_c, uptime_s, reconnects,"
        " error_codes, extra, source FROM telemetry WHERE device_id = 'lock-0' ORDER BY ts LIMIT 1"
    ).fetchone()
    assert row == (
        -60.5,
        80.0,
        pytest.approx(5.6),
        21.25,
        3600,
        1,
        ["E1", 'quote"d', "back\\slash"],  # quotes and backslashes survive COPY
        {"door": "locked"},
        "forewarn/v1",
    )
    devices = db.execute(
        "SELECT device_id, model, firmware, online, first_seen, last_seen FROM devices"
        " ORDER BY device_id"
    ).fetchall()
    assert [d[0] for d in devices] == ["lock-0", "lock-1", "lock-2"]
    assert all(d[1] == "lock-s2" and d[3] is True for d in devices)
    assert {d[2] for d in devices} == {"2.5.0"}  # the newest reading's firmware wins
    # Seen when the ingester received the readings, not when the device says it took them.
    before_publish = base + timedelta(hours=1)
    assert before_publish <= devices[0][4] <= devices[0][5] <= datetime.now(UTC)
    assert ingester.stats().written == 60


BAD = [
    pytest.param("telemetry", b"{not json", "invalid JSON", id="malformed-json"),
    pytest.param("telemetry", b"[1, 2]", "expected a JSON object", id="not-an-object"),
    pytest.param("telemetry", b'{"battery_pct": 50}', "ts: Field required", id="missing-ts"),
    pytest.param("telemetry", b'{"ts": "2026-01-01T00:00:00"}', "timezone", id="naive-ts"),
    pytest.param("telemetry", b'{"ts": "yesterday"}', "ts:", id="unparseable-ts"),
    pytest.param("telemetry", None, "does not match topic device", id="device-mismatch"),
    pytest.param("telemetry", None, "older than telemetry is kept", id="too-old"),
    pytest.param("telemetry", None, "ahead of its arrival", id="too-far-ahead"),
    pytest.param("telemetry", b"\xff\xfe\x00", "invalid JSON", id="binary"),
    pytest.param("bad id!", b"{}", "invalid device id", id="invalid-device-id"),
    pytest.param("status", b'{"status": "sleeping"}', "status:", id="bad-status"),
]


def _bad_body(case: str) -> bytes:
    bodies: dict[str, dict[str, Any] | str] = {
        "device-mismatch": {"ts": stamp(), "device_id": "somebody-else"},
        "too-old": {"ts": stamp(minutes_ago=200 * 24 * 60)},
        "too-far-ahead": {"ts": stamp(minutes_ago=-400 * 24 * 60)},
    }
    body = bodies[case]
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


@pytest.mark.parametrize(("kind", "payload", "reason"), BAD)
def test_bad_payloads_become_dead_letters_with_reasons(
    ingester: Ingester,
    publisher: Publisher,
    db: Conn,
    request: pytest.FixtureRequest,
    kind: str,
    payload: bytes | None,
    reason: str,
) -> None:
    body = payload if payload is not None else _bad_body(request.node.callspec.id)
    topic = (
        f"{publisher.prefix}/devices/{kind}/telemetry"
        if kind == "bad id!"
        else f"{publisher.prefix}/devices/cam-1/{kind}"
    )
    publisher.raw(topic, body)
    publisher.reading("cam-1", {"ts": stamp(), "battery_pct": 50})  # still ingesting after it
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, what="a dead letter")
    wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 1, what="the good reading")
    stored = db.execute("SELECT topic, payload, reason FROM dead_letters").fetchone()
    assert stored is not None
    assert stored[0] == topic
    assert bytes(stored[1]) == body  # kept byte for byte
    assert reason in stored[2]
    assert ingester.failure is None


def test_an_implausible_value_is_dropped_alone_and_the_rest_kept(
    ingester: Ingester, publisher: Publisher, db: Conn
) -> None:
    body = (
        '{"ts": "' + stamp() + '", "battery_pct": 150, "signal_dbm": NaN, "battery_v": 3.1,'
        ' "temperature_c": 21.5, "uptime_s": -5, "door": "locked"}'
    )
    publisher.raw(f"{publisher.prefix}/devices/lock-9/telemetry", body)
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 1, what="the reading")
    row = db.execute(
        "SELECT battery_pct, signal_dbm, uptime_s, battery_v, temperature_c, extra, dropped"
        " FROM telemetry"
    ).fetchone()
    assert row is not None
    assert row[:5] == (None, None, None, pytest.approx(3.1), 21.5)
    assert row[5] == {"door": "locked"}
    assert set(row[6]) == {"battery_pct", "signal_dbm", "uptime_s"}
    assert "150" in row[6]["battery_pct"] and "less than or equal to 100" in row[6]["battery_pct"]
    assert count(db, "SELECT count(*) FROM dead_letters") == 0


def test_unknown_topic_and_oversized_payload_are_dead_lettered(
    ingester: Ingester, publisher: Publisher, db: Conn
) -> None:
    big = json.dumps({"ts": stamp(), "blob": "x" * 70_000}).encode()
    publisher.raw(f"{publisher.prefix}/devices/cam-2/telemetry", big)
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, what="a dead letter")
    row = db.execute(
        "SELECT reason, payload, payload_bytes, payload_sha256 FROM dead_letters"
    ).fetchone()
    assert row is not None
    reason, kept, size, digest = row
    assert reason == f"payload of {len(big)} bytes exceeds 65536 bytes"
    # Only the first 4 KiB are kept, with the whole payload's size and SHA-256.
    assert bytes(kept) == big[:4096] and size == len(big)
    assert digest == hashlib.sha256(big).hexdigest()


def test_values_the_database_would_refuse_are_dropped_one_by_one(
    ingester: Ingester, publisher: Publisher, db: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    # JSON allows \u0000 in strings and Python's JSON NaN; PostgreSQL's text and jsonb take
    # neither. Each such value is dropped with a note; the rest of the reading is stored, and
    # the batch is never refused (no slow path of one row at a time).
    publisher.raw(
        f"{publisher.prefix}/devices/ac-1/telemetry",
        json.dumps(
            {
                "ts": stamp(1),
                "firmware": "1.0\u0000evil",
                "battery_pct": 80,
                "note": "a\u0000b",
                "ratio": float("nan"),
                "fine": {"depth": 2},
            }
        ).encode(),
    )
    publisher.reading("ac-1", {"ts": stamp(), "firmware": "1.0"})
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 2, what="both readings")
    row = db.execute(
        "SELECT firmware, battery_pct, extra, dropped FROM telemetry ORDER BY ts LIMIT 1"
    ).fetchone()
    assert row is not None
    firmware, battery, extra, dropped = row
    assert (firmware, battery, extra) == (None, 80.0, {"fine": {"depth": 2}})
    assert set(dropped) == {"firmware", "extra.note", "extra.ratio"}
    assert "NUL" in dropped["extra.note"] and "finite" in dropped["extra.ratio"]
    assert count(db, "SELECT count(*) FROM dead_letters") == 0
    stats = ingester.stats()
    assert (stats.written, stats.dead_letters, stats.duplicates) == (2, 0, 0)
    assert "isolating" not in caplog.text


def test_a_redelivered_message_gives_one_row(
    ingester: Ingester, publisher: Publisher, db: Conn
) -> None:
    body = {"ts": stamp(), "battery_pct": 42.0}
    for _ in range(3):  # what a QoS 1 redelivery looks like to us: the same reading again
        publisher.reading("watch-1", body)
    publisher.reading("watch-1", {"ts": stamp(-0.01), "battery_pct": 41.0})
    publisher.flush()
    wait_for(lambda: ingester.stats().received == 4, what="4 messages")
    wait_for(lambda: ingester.stats().duplicates == 2, what="2 duplicates counted")
    assert count(db, "SELECT count(*) FROM telemetry") == 2
    assert ingester.stats().written == 2


def test_status_messages_and_last_will_keep_online_status_current(
    ingester: Ingester, publisher: Publisher, settings: Settings, db: Conn
) -> None:
    prefix = settings.topic_prefix
    publisher.reading("cam-9", {"ts": stamp(5), "model": "cam-c2"})
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM devices WHERE online") == 1, what="online")

    # A device whose connection dies: the broker publishes its last will for it.
    device = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{settings.ingest_client_id}-cam-9",
        protocol=mqtt.MQTTv5 if settings.mqtt_protocol == "5" else mqtt.MQTTv311,
    )
    device.will_set(f"{prefix}/devices/cam-9/status", b"offline", qos=1, retain=True)
    device.connect(settings.mqtt_host, settings.mqtt_port, keepalive=5)
    device.loop_start()
    wait_for(device.is_connected, what="the device to connect")
    device.loop_stop()
    device.socket().close()  # dies without DISCONNECT: the will is sent
    wait_for(
        lambda: count(db, "SELECT count(*) FROM devices WHERE NOT online") == 1,
        timeout=30,
        what="the last will to mark the device offline",
    )
    assert count(db, "SELECT count(*) FROM device_status_events WHERE status = 'offline'") == 1

    publisher.raw(f"{prefix}/devices/cam-9/status", json.dumps({"status": "online", "ts": stamp()}))
    publisher.flush()
    wait_for(lambda: count(db, "SELECT count(*) FROM devices WHERE online") == 1, what="online")
    publisher.raw(f"{prefix}/devices/cam-9/status", b"", retain=True)  # clear the retained will


def test_zigbee2mqtt_state_and_availability(
    ingester: Ingester, publisher: Publisher, settings: Settings, db: Conn
) -> None:
    base = settings.zigbee2mqtt_base
    publisher.raw(
        f"{base}/kitchen/sensor",
        json.dumps(
            {
                "linkquality": 96,
                "battery": 87,
                "voltage": 2950,
                "temperature": 22.5,
                "humidity": 41,
                "last_seen": stamp(),
            }
        ),
    )
    publisher.raw(f"{base}/kitchen/sensor/availability", json.dumps({"state": "offline"}))
    publisher.raw(f"{base}/bridge/state", json.dumps({"state": "online"}))
    publisher.raw(f"{base}/kitchen/sensor/set", json.dumps({"state": "ON"}))
    publisher.flush()
    wait_for(lambda: ingester.stats().received == 4, what="4 messages")
    wait_for(lambda: ingester.stats().ignored == 2, what="bridge and command topics ignored")
    row = db.execute(
        "SELECT device_id, link_quality, battery_pct, battery_v, temperature_c, extra, source"
        " FROM telemetry"
    ).fetchone()
    assert row == (
        "z2m:kitchen/sensor",
        96.0,
        87.0,
        pytest.approx(2.95),
        22.5,
        {"humidity": 41},
        "zigbee2mqtt",
    )
    assert count(db, "SELECT count(*) FROM device_status_events WHERE status = 'offline'") == 1
    assert count(db, "SELECT count(*) FROM dead_letters") == 0


def test_metrics_are_served_for_prometheus(ingester: Ingester, publisher: Publisher) -> None:
    publisher.reading("lock-7", {"ts": stamp()})
    publisher.raw(f"{publisher.prefix}/devices/lock-7/telemetry", b"nope")
    publisher.flush()
    wait_for(lambda: ingester.stats().dead_letters == 1, what="the dead letter")
    port = free_port()
    ingester.metrics.serve(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'forewarn_ingest_messages_total{outcome="written"} 1.0' in text
    assert 'forewarn_ingest_messages_total{outcome="dead_letter"} 1.0' in text
    assert "forewarn_ingest_batch_seconds_bucket" in text
