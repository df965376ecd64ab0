"""Other firmware through the real broker and database: Zigbee2MQTT's retained bridge topics,
readings stamped in the same second, and mapping files reloaded while messages flow.

The payloads are synthetic, built from the documented formats (the real ones are checked in
tests/test_payload_fixtures.py, without a broker)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from forewarn.settings import Settings
from ingest.service import Ingester
from tests.conftest import Publisher, count, env_for, wait_for

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def started() -> Iterator[list[Ingester]]:
    """Ingesters a test starts, stopped (and checked) at the end."""
    running: list[Ingester] = []
    yield running
    for ing in running:
        ing.stop()
        assert ing.failure is None


def start(settings: Settings, running: list[Ingester]) -> Ingester:
    """Start an ingester and keep it for the teardown."""
    ing = Ingester(settings)
    ing.start()
    running.append(ing)
    return ing


def _expose(name: str, unit: str) -> dict[str, Any]:
    return {"type": "numeric", "name": name, "property": name, "access": 1, "unit": unit}


def devices_list(n: int) -> list[dict[str, Any]]:
    """A bridge/devices list of `n` mains plugs with long exposes, as bridge.ts publishes it,
    and one battery device ("door") whose voltage expose is in mV."""
    exposes = [_expose(f"property_{i}", "W") | {"description": "x" * 200} for i in range(20)]
    devices: list[dict[str, Any]] = [{"friendly_name": "Coordinator", "type": "Coordinator"}]
    for i in range(n):
        devices.append(
            {
                "friendly_name": f"plug {i}",
                "type": "Router",
                "power_source": "Mains (single phase)",
                "definition": {"model": "PLUG-1", "exposes": exposes},
            }
        )
    door = {"model": "DOOR-2", "exposes": [_expose("voltage", "mV")]}
    devices.append(
        {
            "friendly_name": "door",
            "type": "EndDevice",
            "power_source": "Battery",
            "software_build_id": "1.2.3",
            "definition": door,
        }
    )
    return devices


def test_zigbee2mqtt_retained_bridge_topics_are_read_not_dead_lettered(
    settings: Settings, publisher: Publisher, db: Conn, started: list[Ingester]
) -> None:
    base = settings.zigbee2mqtt_base
    devices = json.dumps(devices_list(25)).encode()
    definitions = json.dumps({"clusters": {f"c{i}": "y" * 200 for i in range(1500)}}).encode()
    assert len(devices) > 64 * 1024 and len(definitions) > 256 * 1024
    groups = [{"id": 1, "friendly_name": "living room", "members": [], "scenes": []}]
    retained = {
        f"{base}/bridge/devices": devices,
        f"{base}/bridge/groups": json.dumps(groups).encode(),
        f"{base}/bridge/definitions": definitions,
    }
    for topic, payload in retained.items():
        publisher.raw(topic, payload, retain=True)
    publisher.flush()
    try:
        ingester = start(settings, started)
        wait_for(lambda: ingester.watcher.observed >= 2, what="the watcher to read the lists")
        # A battery nearly empty: 900 would read as volts by magnitude, the definition says mV.
        publisher.raw(f"{base}/door", json.dumps({"voltage": 900, "linkquality": 40}))
        publisher.raw(f"{base}/living room", json.dumps({"state": "ON", "brightness": 80}))
        publisher.raw(f"{base}/living room/availability", json.dumps({"state": "online"}))
        publisher.raw(f"{base}/bridge/devices", devices)  # republished live after a join
        publisher.flush()
        # Some brokers (Mosquitto) also send the retained lists to each shared connection.
        wait_for(lambda: ingester.stats().received >= 4, what="the live messages")
        wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 1, what="the reading")
        row = db.execute(
            "SELECT device_id, battery_v, link_quality, extra FROM telemetry"
        ).fetchone()
        assert row == ("z2m:door", pytest.approx(0.9), 40.0, {})
        model = db.execute("SELECT model, firmware FROM devices").fetchone()
        assert model == ("DOOR-2", "1.2.3")
        stats = ingester.stats()
        assert stats.ignored == stats.received - 1  # everything but the door's state
        assert count(db, "SELECT count(*) FROM dead_letters") == 0
        assert count(db, "SELECT count(*) FROM device_status_events") == 0
    finally:
        for topic in retained:
            publisher.raw(topic, b"", retain=True)  # leave the shared broker as it was
        publisher.flush()


def test_readings_in_one_second_are_all_kept_and_a_redelivery_is_not(
    settings: Settings, publisher: Publisher, db: Conn, started: list[Ingester]
) -> None:
    ingester = start(settings, started)
    base = settings.zigbee2mqtt_base
    second = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
    stamp = second.astimezone().isoformat()  # ISO_8601_local: a second's resolution, an offset
    closed = {"battery": 60, "contact": True, "linkquality": 23, "last_seen": stamp}
    opened = {"battery": 60, "contact": False, "linkquality": 5, "last_seen": stamp}
    for n, body in enumerate((closed, opened, opened), 1):  # the last: a QoS 1 redelivery
        publisher.raw(f"{base}/backgate", json.dumps(body))
        publisher.flush()
        # One at a time, so they arrive in the order the bridge published them.
        wait_for(lambda n=n: ingester.stats().received == n, what=f"message {n}")  # type: ignore[misc]
    wait_for(lambda: ingester.stats().duplicates == 1, what="the redelivery counted")
    rows = db.execute(
        "SELECT ts, extra->>'contact', link_quality FROM telemetry ORDER BY ts, received_at"
    ).fetchall()
    assert rows == [(second, "true", 23.0), (second, "false", 5.0)]  # the door ends open
    assert ingester.stats().written == 2


MAPPING = """\
version: 1
mappings:
  - name: plug-state
    topic: {prefix}/tele/{{topic}}/STATE
    device: plug:{{topic}}
    signals:
      uptime_s: UptimeSec
"""
SENSOR = """\
  - name: plug-sensor
    topic: {prefix}/tele/{{topic}}/SENSOR
    device: plug:{{topic}}
    signals:
      temperature_c: {{field: DS18B20.Temperature, convert_by: {{field: TempUnit, F: F}}}}
"""


def test_mapping_files_reload_while_messages_flow(
    settings: Settings, publisher: Publisher, db: Conn, started: list[Ingester], tmp_path: Path
) -> None:
    prefix = f"{settings.topic_prefix}-tas"
    path = tmp_path / "plugs.yaml"
    path.write_text(MAPPING.format(prefix=prefix), encoding="utf-8")
    ingester = start(settings.with_overrides(mapping_files=str(path)), started)
    sent = 0
    stop = threading.Event()

    def publish_states() -> None:  # a steady stream across both reloads
        nonlocal sent
        while not stop.is_set():
            publisher.raw(f"{prefix}/tele/p{sent % 4}/STATE", json.dumps({"UptimeSec": sent}))
            sent += 1
            stop.wait(0.01)

    def sensor_arrives() -> bool:  # the new pattern's subscription is granted asynchronously
        sensor = {"DS18B20": {"Temperature": 98.6}, "TempUnit": "F"}
        publisher.raw(f"{prefix}/tele/p1/SENSOR", json.dumps(sensor))
        return count(db, "SELECT count(*) FROM telemetry WHERE temperature_c IS NOT NULL") > 0

    streamer = threading.Thread(target=publish_states)
    streamer.start()
    try:
        wait_for(lambda: ingester.stats().written >= 20, what="states before the change")
        path.write_text(path.read_text() + "  - name: broken\n    topik: x\n", encoding="utf-8")
        wait_for(lambda: ingester.stats().mapping_errors == 1, what="the broken file refused")
        good = MAPPING.format(prefix=prefix) + SENSOR.format(prefix=prefix)
        path.write_text(good, encoding="utf-8")
        wait_for(lambda: ingester.stats().mapping_reloads == 1, what="the reload")
        wait_for(sensor_arrives, what="a SENSOR reading through the new mapping")
    finally:
        stop.set()
        streamer.join()
    publisher.flush()
    wait_for(
        lambda: count(db, "SELECT count(*) FROM telemetry WHERE uptime_s IS NOT NULL") == sent,
        what=f"all {sent} states, none lost across the reloads",
    )
    row = db.execute("SELECT min(temperature_c), max(temperature_c) FROM telemetry").fetchone()
    assert row is not None and row[0] == pytest.approx(37.0) and row[1] == pytest.approx(37.0)
    assert count(db, "SELECT count(*) FROM dead_letters") == 0


def test_sighup_reloads_the_mapping_files_of_a_running_ingester(
    settings: Settings, publisher: Publisher, db: Conn, tmp_path: Path
) -> None:
    prefix = f"{settings.topic_prefix}-hup"
    path = tmp_path / "plugs.yaml"
    path.write_text(MAPPING.format(prefix=prefix), encoding="utf-8")
    # Checked on change only once an hour: the reload below can only come from the signal.
    child = settings.with_overrides(mapping_files=str(path), mapping_reload_seconds=3600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "ingest", "--progress-every", "3600"],
        env=env_for(child),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def state_stored() -> bool:  # once subscribed, states are read
            publisher.raw(f"{prefix}/tele/p1/STATE", json.dumps({"UptimeSec": 5}))
            return count(db, "SELECT count(*) FROM telemetry") > 0

        wait_for(state_stored, timeout=60, what="the ingester to read states")
        path.write_text(MAPPING.format(prefix=prefix) + SENSOR.format(prefix=prefix))
        proc.send_signal(signal.SIGHUP)

        def sensor_stored() -> bool:
            sensor = {"DS18B20": {"Temperature": 20.5}}
            publisher.raw(f"{prefix}/tele/p1/SENSOR", json.dumps(sensor))
            return count(db, "SELECT count(*) FROM telemetry WHERE temperature_c = 20.5") > 0

        wait_for(sensor_stored, timeout=30, what="a SENSOR reading after SIGHUP")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "mappings reloaded: 2 mappings" in stderr
