"""The device-fleet simulator: determinism, the payload contract, fault shapes, real broker."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from forewarn.domain import Reading, StatusEvent
from forewarn.errors import ServiceError
from forewarn.settings import Settings
from ingest.router import adapters_from, route
from simulators.catalog import COHORT_FIRMWARE, COHORT_MODEL, Kind, model_named
from simulators.engine import DeviceRecord, FleetEngine, MessageKind, Outgoing
from simulators.fleet import AccountType, FaultKind, Fleet, Segment, generate_fleet
from simulators.flows import SimProgress, SimSummary, build_fleet, run_simulation
from simulators.publisher import MqttPublisher
from simulators.repository import register_fleet
from tests.conftest import count

START = datetime(2026, 11, 20, tzinfo=UTC)
TS_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@dataclass(frozen=True, slots=True)
class Run:
    """The messages and records of one engine run."""

    fleet: Fleet
    messages: list[Outgoing]
    records: dict[str, DeviceRecord]
    end: datetime

    def readings(self, device_id: str) -> list[tuple[datetime, dict[str, Any]]]:
        """Parsed telemetry of one device, in order."""
        return [
            (m.sim_ts, json.loads(m.payload))
            for m in self.messages
            if m.device_id == device_id and m.kind is MessageKind.TELEMETRY
        ]


def _run(fleet: Fleet, span: timedelta, *, device_ids: frozenset[str] | None = None) -> Run:
    engine = FleetEngine(fleet, device_ids=device_ids)
    messages = engine.step_until(fleet.start + span)
    return Run(fleet, messages, engine.records(), fleet.start + span)


@pytest.fixture(scope="module")
def fleet200() -> Fleet:
    return generate_fleet(devices=200, seed=11, start=START, span=timedelta(days=3))


@pytest.fixture(scope="module")
def faulty(fleet200: Fleet) -> Run:
    # Devices are independent, so running only the faulty ones gives their exact messages.
    ids = frozenset(e.device_id for e in fleet200.episodes)
    return _run(fleet200, timedelta(days=3), device_ids=ids)


@pytest.fixture(scope="module")
def small() -> Run:
    fleet = generate_fleet(devices=50, seed=5, start=START, span=timedelta(days=2))
    return _run(fleet, timedelta(days=2))


def test_same_seed_gives_same_fleet_and_faults() -> None:
    a = generate_fleet(devices=120, seed=42, start=START)
    b = generate_fleet(devices=120, seed=42, start=START)
    assert a == b
    assert a.episodes == b.episodes


def test_different_seeds_differ() -> None:
    a = generate_fleet(devices=120, seed=1, start=START)
    b = generate_fleet(devices=120, seed=2, start=START)
    assert a.devices != b.devices
    assert a.episodes != b.episodes
    first_a = FleetEngine(a).step_until(START + timedelta(hours=1))
    first_b = FleetEngine(b).step_until(START + timedelta(hours=1))
    assert [m.payload for m in first_a] != [m.payload for m in first_b]


def test_same_seed_gives_byte_identical_payloads_whatever_the_stepping(small: Run) -> None:
    again = generate_fleet(devices=50, seed=5, start=START, span=timedelta(days=2))
    engine = FleetEngine(again)
    stepped: list[Outgoing] = []
    at = START
    while at < small.end:
        # Uneven slices, as a real-time loop would take them.
        at = min(at + timedelta(minutes=7, seconds=13), small.end)
        stepped.extend(engine.step_until(at))
    assert [(m.topic_suffix, m.payload, m.retain) for m in stepped] == [
        (m.topic_suffix, m.payload, m.retain) for m in small.messages
    ]


def test_every_payload_follows_the_contract(small: Run) -> None:
    # The contract is what the ingester accepts: run every payload through its adapters,
    # with "now" at the end of the simulated span so the time window is the live one.
    settings = Settings(_env_file=None, topic_prefix="sim/v1")  # type: ignore[call-arg]
    adapters = adapters_from(settings)
    seen_ts: dict[str, set[str]] = defaultdict(set)
    first: dict[str, list[Outgoing]] = defaultdict(list)
    for m in small.messages:
        _, device_id, leaf = m.topic_suffix.split("/")
        assert m.device_id == device_id
        if len(first[device_id]) < 2:
            first[device_id].append(m)
        parsed = route(adapters, f"sim/v1/{m.topic_suffix}", m.payload, received_at=small.end)
        if leaf == "status":
            assert m.retain
            assert isinstance(parsed, StatusEvent), parsed
            continue
        assert leaf == "telemetry" and not m.retain
        assert isinstance(parsed, Reading), parsed
        assert parsed.device_id == device_id
        ts = json.loads(m.payload)["ts"]
        assert re.fullmatch(TS_PATTERN, ts), "RFC 3339 UTC with milliseconds"
        assert ts not in seen_ts[device_id], "one reading per millisecond per device"
        seen_ts[device_id].add(ts)
    for device in small.fleet.devices:
        status, telemetry = first[device.device_id]
        assert json.loads(status.payload)["status"] == "online"
        body = json.loads(telemetry.payload)
        assert body["model"] == device.model
        assert body["firmware"] in (device.firmware, device.previous_firmware)


def test_fleet_covers_segments_kinds_and_locales(fleet200: Fleet) -> None:
    segments = {fleet200.segment(o, START) for o in fleet200.owners}
    assert segments == set(Segment)
    assert {d.kind for d in fleet200.devices} == set(Kind)
    assert {o.locale for o in fleet200.owners} == {"zh-CN", "en-US"}
    assert {e.fault for e in fleet200.episodes} == set(FaultKind)
    enterprises = [o for o in fleet200.owners if o.account_type is AccountType.ENTERPRISE]
    owned = Counter(d.owner_id for d in fleet200.devices)
    assert all(o.enterprise_account and owned[o.owner_id] >= 2 for o in enterprises)
    individual = [e for e in fleet200.episodes if e.cohort is None]
    assert 0.1 * 200 * 0.8 <= len(individual) <= 0.2 * 200
    assert len({e.device_id for e in fleet200.episodes}) == len(fleet200.episodes)


@pytest.mark.parametrize("devices", [pytest.param(200, id="200"), pytest.param(12, id="12")])
def test_cohort_is_one_firmware_on_many_devices_at_nearly_the_same_time(devices: int) -> None:
    fleet = generate_fleet(devices=devices, seed=3, start=START)
    cohort = [e for e in fleet.episodes if e.cohort is not None]
    assert {e.cohort for e in cohort} == {f"{COHORT_MODEL}@{COHORT_FIRMWARE}"}
    assert len(cohort) >= max(5, round(0.15 * devices) if devices >= 100 else 5)
    assert all(e.fault is FaultKind.REBOOT_LOOP for e in cohort)
    onsets = [e.onset_at for e in cohort]
    assert max(onsets) - min(onsets) <= timedelta(hours=1)
    on_build = {
        d.device_id
        for d in fleet.devices
        if d.model == COHORT_MODEL and d.firmware == COHORT_FIRMWARE
    }
    assert on_build == {e.device_id for e in cohort}


def _mean(rows: list[tuple[datetime, dict[str, Any]]], key: str) -> float:
    return statistics.fmean(body[key] for _, body in rows)


def _within(
    rows: list[tuple[datetime, dict[str, Any]]], low: datetime, high: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    return [(ts, body) for ts, body in rows if low <= ts < high]


def _completed(run: Run, fault: FaultKind) -> list[Any]:
    done = [e for e in run.fleet.episodes if e.fault is fault and e.failure_at < run.end]
    assert done, f"seed should give a completed {fault} episode"
    return done


def test_connectivity_loss_develops_gradually(faulty: Run) -> None:
    hour = timedelta(hours=1)
    for episode in _completed(faulty, FaultKind.CONNECTIVITY_LOSS):
        rows = faulty.readings(episode.device_id)
        before = _mean(_within(rows, START, min(episode.onset_at, START + 24 * hour)), "signal_dbm")
        first = _mean(_within(rows, episode.onset_at, episode.onset_at + hour), "signal_dbm")
        last = _mean(_within(rows, episode.failure_at - hour, episode.failure_at), "signal_dbm")
        assert last < before - 8.0
        assert first > before - 6.0, "the link must not collapse at onset"
        reconnects = [body["reconnects"] for _, body in rows]
        assert reconnects[-1] > reconnects[0]


def test_battery_failure_and_overheating_develop_gradually(faulty: Run) -> None:
    hour = timedelta(hours=1)
    for episode in _completed(faulty, FaultKind.BATTERY_FAILURE):
        rows = faulty.readings(episode.device_id)
        first = _mean(_within(rows, episode.onset_at, episode.onset_at + hour), "battery_pct")
        last = _mean(_within(rows, episode.failure_at - hour, episode.failure_at), "battery_pct")
        assert first > 15.0 and last < 8.0
    for episode in _completed(faulty, FaultKind.OVERHEATING):
        critical = model_named(faulty.fleet.device(episode.device_id).model).temp_critical_c
        rows = faulty.readings(episode.device_id)
        first = _mean(_within(rows, episode.onset_at, episode.onset_at + hour), "temperature_c")
        last = _mean(_within(rows, episode.failure_at - hour, episode.failure_at), "temperature_c")
        assert first < critical - 10.0 and last > max(first + 10.0, critical - 12.0)
        assert _within(rows, START, episode.failure_at)[-1][1]["temperature_c"] > critical - 4.0


def test_stuck_sensor_flat_lines_and_reboot_loop_accelerates(faulty: Run) -> None:
    for episode in _completed(faulty, FaultKind.STUCK_SENSOR):
        after = _within(faulty.readings(episode.device_id), episode.onset_at, faulty.end)
        assert len({body["temperature_c"] for _, body in after}) == 1
    for episode in _completed(faulty, FaultKind.REBOOT_LOOP):
        rows = faulty.readings(episode.device_id)
        middle = episode.onset_at + (episode.failure_at - episode.onset_at) / 2
        resets = [
            ts for (_, a), (ts, b) in itertools.pairwise(rows) if b["uptime_s"] < a["uptime_s"]
        ]
        early = sum(episode.onset_at <= ts < middle for ts in resets)
        late = sum(middle <= ts < episode.failure_at for ts in resets)
        assert late > early
        assert any(body["error_codes"] for ts, body in rows if ts >= episode.onset_at)


def test_failed_devices_go_offline_and_fall_silent(faulty: Run) -> None:
    for fault in (FaultKind.CONNECTIVITY_LOSS, FaultKind.BATTERY_FAILURE):
        for episode in _completed(faulty, fault):
            record = faulty.records[episode.device_id]
            assert record.went_offline and record.offline_at == episode.failure_at
            assert record.last_reading_ts is not None
            assert record.last_reading_ts < episode.failure_at
            last = [m for m in faulty.messages if m.device_id == episode.device_id][-1]
            assert json.loads(last.payload)["status"] == "offline"


def test_healthy_devices_have_bad_days_but_never_go_offline(small: Run) -> None:
    healthy = [d for d in small.fleet.devices if small.fleet.episode_for(d.device_id) is None]
    assert healthy
    assert not any(small.records[d.device_id].went_offline for d in healthy)
    reconnected = 0
    for device in healthy:
        rows = small.readings(device.device_id)
        assert small.records[device.device_id].readings == len(rows)
        reconnected += rows[-1][1]["reconnects"] > 0
        assert not any(body["error_codes"] for _, body in rows)
    assert reconnected > 0, "an occasional reconnect is part of a normal life"


@pytest.fixture
def subscriber(
    settings: Settings,
) -> Iterator[tuple[Settings, list[tuple[str, bytes]], threading.Event]]:
    """A QoS 1 subscriber to everything under this test's topic prefix."""
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    v5 = settings.mqtt_protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with lock:
            received.append((message.topic, bytes(message.payload)))

    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    client.on_connect = lambda c, *_args: c.subscribe(f"{settings.topic_prefix}/#", qos=1)
    if v5:
        # A wide Receive Maximum keeps the whole burst in flight: Mosquitto drops QoS 1
        # messages beyond its per-client queue (1000 by default) when the window is small.
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = 65535
        client.connect(settings.mqtt_host, settings.mqtt_port, properties=properties)
    else:
        client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    assert subscribed.wait(10), "subscriber never got SUBACK"
    try:
        yield settings, received, subscribed
    finally:
        client.disconnect()
        client.loop_stop()


def test_publishes_exactly_what_the_engine_emits_to_the_real_broker(
    subscriber: tuple[Settings, list[tuple[str, bytes]], threading.Event],
) -> None:
    settings, received, _ = subscriber
    prefix = settings.topic_prefix
    span = timedelta(hours=6)
    summary: SimSummary = run_simulation(
        settings,
        devices=20,
        seed=9,
        speedup=0,
        duration=None,
        start=START,
        sim_span=span,
        register=False,
    )
    expected = _run(build_fleet(devices=20, seed=9, start=START, span=span, fault_rate=0.15), span)
    want = sorted((f"{prefix}/{m.topic_suffix}", m.payload) for m in expected.messages)
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while len(set(received)) < len(want) and datetime.now(UTC) < deadline:
        threading.Event().wait(0.05)
    try:
        assert summary.messages == len(want)
        assert summary.readings == sum(r.readings for r in expected.records.values())
        assert len(set(want)) == len(want)
        # QoS 1 is at-least-once: a redelivery may repeat a message, never lose one.
        assert set(received) == set(want)
    finally:
        _clear_retained(settings, {t for t, _ in want if t.endswith("/status")})


def _clear_retained(settings: Settings, topics: set[str]) -> None:
    # Empty retained payloads delete the status messages the test left on the shared broker.
    v5 = settings.mqtt_protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
    for info in infos:
        info.wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_unreachable_broker_raises_a_service_error() -> None:
    settings = Settings(mqtt_url="mqtt://127.0.0.1:1", topic_prefix="x", database_url=None)
    with pytest.raises(ServiceError, match=r"cannot reach MQTT broker 127\.0\.0\.1:1\b"):
        MqttPublisher(settings, connect_timeout=2.0)


class FakeSink:
    """A message sink that keeps what it is given (stands in for the MQTT publisher)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []
        self.closed = False

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Keep one message."""
        self.sent.append((topic, payload, retain))

    def flush(self, timeout: float = 30.0) -> None:
        """Nothing is ever pending."""

    def close(self) -> None:
        """Remember that the flow closed us."""
        self.closed = True


def test_real_time_run_publishes_the_same_bytes_and_writes_the_truth(tmp_path: Path) -> None:
    settings = Settings(mqtt_url="mqtt://127.0.0.1:1883", topic_prefix="rt", database_url=None)
    sink = FakeSink()
    progress: list[SimProgress] = []
    truth = tmp_path / "truth.jsonl"
    summary = run_simulation(
        settings,
        devices=15,
        seed=4,
        speedup=36_000,
        duration=0.5,
        start=START,
        register=False,
        truth_path=truth,
        on_progress=progress.append,
        sink=sink,
    )
    span = timedelta(hours=5)
    assert summary.sim_end == START + span
    expected = _run(build_fleet(devices=15, seed=4, start=START, span=span, fault_rate=0.15), span)
    assert sink.sent == [(f"rt/{m.topic_suffix}", m.payload, m.retain) for m in expected.messages]
    assert sink.closed and progress and progress[-1].messages == summary.messages
    records = Counter(json.loads(line)["record"] for line in truth.read_text().splitlines())
    assert records["device"] == records["emitted"] == 15
    assert records["fault"] == len(summary.episodes) == sum(summary.faults_by_kind.values())


def test_registration_keeps_ingest_columns_and_labels_once(db: psycopg.Connection[Any]) -> None:
    fleet = generate_fleet(devices=30, seed=8, start=START)
    with db.transaction():
        first = register_fleet(conn=db, fleet=fleet, run_id="run-1")
    device = fleet.devices[0].device_id
    db.execute(
        "UPDATE devices SET first_seen = now(), online = true WHERE device_id = %s", (device,)
    )
    with db.transaction():
        again = register_fleet(conn=db, fleet=fleet, run_id="run-1")
    row = db.execute(
        "SELECT online, registered_by, first_seen IS NOT NULL FROM devices WHERE device_id = %s",
        (device,),
    ).fetchone()
    cohorts = db.execute("SELECT count(*) FROM fault_labels WHERE cohort IS NOT NULL").fetchone()
    assert first.owners == len(fleet.owners) and first.devices == 30
    assert first.labels == len(fleet.episodes) and again.labels == 0
    assert row == (True, "simulator", True)
    assert cohorts == (sum(e.cohort is not None for e in fleet.episodes),)
    assert count(db, "SELECT count(*) FROM fault_labels WHERE source = 'simulator'") == len(
        fleet.episodes
    )


def test_network_outages_silence_a_zone_and_change_nothing_else() -> None:
    from simulators.engine import FleetEngine
    from simulators.fleet import generate_fleet

    start = datetime(2026, 3, 2, tzinfo=UTC)
    args = {"devices": 60, "seed": 5, "start": start, "span": timedelta(days=1)}
    plain = generate_fleet(**args)  # type: ignore[arg-type]
    cut = generate_fleet(**args, outages_per_day=2.0)  # type: ignore[arg-type]
    assert plain.outages == () and len(cut.outages) == 2
    assert (cut.devices, cut.episodes) == (plain.devices, plain.episodes)
    outage = cut.outages[0]
    zone = {d.time_zone for d in cut.devices if d.device_id in outage.device_ids}
    assert len(zone) == 1 and outage.device_ids
    heard: dict[str, list[datetime]] = {}
    for m in FleetEngine(cut).step_until(start + timedelta(days=1)):
        if m.topic_suffix.endswith("telemetry"):
            heard.setdefault(m.device_id, []).append(m.sim_ts)
    inside = [
        t
        for d in outage.device_ids
        for t in heard.get(d, [])
        if outage.start_at <= t < outage.end_at
    ]
    assert inside == [], "a reading got through the outage"
    others = [d.device_id for d in cut.devices if d.device_id not in outage.device_ids]
    assert any(outage.start_at <= t < outage.end_at for d in others for t in heard.get(d, []))
