"""The Zigbee2MQTT adapter on the cases its users hit, one by one, through the router.

Every payload here is SYNTHETIC, built from Zigbee2MQTT's documented formats (its exposes for
units, lib/util/utils.ts for friendly names, bridge.ts for the bridge topics): the real
messages are in tests/test_payload_fixtures.py. These cover what no collected real message
shows (Chinese, emoji and ideographic-space names, battery 200, 6553.5 °C) and each rule alone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from forewarn.domain import DeadLetter, DeviceStatus, Ignored, Reading, StatusEvent
from ingest.router import MAX_PAYLOAD_BYTES, route
from ingest.signals import signals_of
from ingest.timestamps import TimeWindow
from ingest.z2m_bridge import Bridge
from ingest.zigbee2mqtt import Zigbee2MqttAdapter

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow(max_age=timedelta(days=90), max_skew=timedelta(days=30))


def adapter(**retained: Any) -> Zigbee2MqttAdapter:
    """An adapter that has read these retained bridge topics (devices=..., groups=..., info=...)."""
    z2m = Zigbee2MqttAdapter("zigbee2mqtt", WINDOW, Bridge())
    for name, body in retained.items():
        z2m.observe(f"zigbee2mqtt/bridge/{name}", json.dumps(body).encode())
    return z2m


def parse(z2m: Zigbee2MqttAdapter, rest: str, payload: Any) -> Any:
    """Route one message under the base topic."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return route([z2m], f"zigbee2mqtt/{rest}", raw, received_at=NOW)


def reading(z2m: Zigbee2MqttAdapter, rest: str, payload: Any) -> Reading:
    """A message that must become a reading."""
    parsed = parse(z2m, rest, payload)
    assert isinstance(parsed, Reading), parsed
    return parsed


def device_entry(name: str, *, unit: str | None = None, power: str = "Battery") -> dict[str, Any]:
    """A bridge/devices entry as bridge.ts publishes it (the parts Forewarn reads)."""
    exposes: list[dict[str, Any]] = [{"type": "numeric", "name": "linkquality", "unit": "lqi"}]
    if unit:
        exposes.append({"type": "numeric", "name": "voltage", "property": "voltage", "unit": unit})
    return {
        "friendly_name": name,
        "ieee_address": "0x00158d0001000000",
        "type": "EndDevice",
        "power_source": power,
        "software_build_id": "3000-0001",
        "definition": {"model": "MODEL-1", "vendor": "Acme", "exposes": exposes},
    }


# ---- friendly names: what Zigbee2MQTT accepts, Forewarn accepts ------------------------------

NAMES = [
    pytest.param("客厅 温度计", id="chinese-with-space"),
    pytest.param("卧室\u3000传感器", id="ideographic-space"),
    pytest.param("Living\u00a0room", id="no-break-space"),
    pytest.param("👨\u200d👩\u200d👧 family lamp", id="emoji-zwj-sequence"),
    pytest.param("🛋️ sofa", id="emoji-variation-selector"),
    pytest.param("floor 1/kitchen/sensor", id="slashes"),
    pytest.param("Soil 3", id="digit-after-space"),
    pytest.param("room/3a", id="slash-digit-letter"),
    pytest.param(" padded ", id="leading-trailing-spaces"),
    pytest.param("99", id="all-digits"),
]


@pytest.mark.parametrize("name", NAMES)
def test_names_zigbee2mqtt_accepts_are_devices(name: str) -> None:
    got = reading(adapter(), name, {"linkquality": 120, "temperature": 21.5})
    assert got.device_id == f"z2m:{name}"
    assert signals_of(got) == {"link_quality": 120, "temperature_c": 21.5}
    status = parse(adapter(), f"{name}/availability", {"state": "online"})
    assert isinstance(status, StatusEvent) and status.device_id == f"z2m:{name}"


BAD_NAMES = [
    pytest.param("lamp\u0007", "control character", id="bell"),
    pytest.param("lamp\u0085x", "control character", id="c1-control"),
    pytest.param("lamp\ufdd0", "control character", id="noncharacter"),
    pytest.param("lamp/12", "ends with /<digits>", id="slash-digits"),
    pytest.param("/lamp", "starts or ends with /", id="leading-slash"),
]


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_names_zigbee2mqtt_refuses_are_dead_letters(name: str, problem: str) -> None:
    got = parse(adapter(), name, {"linkquality": 120})
    assert isinstance(got, DeadLetter)
    assert "invalid Zigbee2MQTT friendly name" in got.reason and problem in got.reason


# ---- one implausible value costs that value only ------------------------------------------

IMPLAUSIBLE = [
    pytest.param({"battery": 200}, "battery_pct", "battery=200", id="battery-200"),
    pytest.param({"battery": 116}, "battery_pct", "battery=116", id="battery-116"),
    pytest.param({"temperature": 6553.5}, "temperature_c", "6553.5", id="temperature-6553.5"),
    pytest.param({"temperature": 655.35}, "temperature_c", "655.35", id="temperature-655.35"),
    pytest.param({"temperature": -327.68}, "temperature_c", "-327.68", id="int16-sentinel"),
    pytest.param({"linkquality": 300}, "link_quality", "300", id="lqi-300"),
    pytest.param({"battery": "n/a"}, "battery_pct", "not a number", id="battery-text"),
]


@pytest.mark.parametrize(("field", "signal", "said"), IMPLAUSIBLE)
def test_one_implausible_value_is_dropped_alone(
    field: dict[str, Any], signal: str, said: str
) -> None:
    body = {"linkquality": 96, "battery": 80, "temperature": 22.5, "humidity": 41} | field
    got = reading(adapter(), "hall/sensor", body)
    assert set(got.dropped) == {signal} and said in got.dropped[signal]
    kept = {"link_quality": 96.0, "battery_pct": 80.0, "temperature_c": 22.5}
    kept.pop(signal)
    assert signals_of(got) == kept
    assert got.extra == {"humidity": 41}


# ---- voltage: battery mV or mains V ------------------------------------------------------

VOLTAGES = [
    pytest.param({}, {"voltage": 2950}, 2.95, id="magnitude-mV"),
    pytest.param({}, {"voltage": 230}, None, id="magnitude-V"),
    pytest.param({}, {"voltage": 232, "power": 12.5, "current": 0.05}, None, id="metering-fields"),
    pytest.param({}, {"voltage": 900, "battery": 5}, 0.9, id="battery-field-low-mV"),
    pytest.param(
        {"devices": [device_entry("x", unit="mV")]}, {"voltage": 900}, 0.9, id="definition-mV"
    ),
    pytest.param(
        {"devices": [device_entry("x", unit="V", power="Mains (single phase)")]},
        {"voltage": 1200},
        None,
        id="definition-V",
    ),
    pytest.param(
        {"devices": [device_entry("x")]}, {"voltage": 600}, 0.6, id="power-source-battery"
    ),
]


@pytest.mark.parametrize(("retained", "body", "battery_v"), VOLTAGES)
def test_voltage_is_battery_millivolts_or_mains_volts(
    retained: dict[str, Any], body: dict[str, Any], battery_v: float | None
) -> None:
    got = reading(adapter(**retained), "x", body)
    if battery_v is None:
        assert got.battery_v is None and got.extra["voltage"] == body["voltage"]
    else:
        assert got.battery_v == pytest.approx(battery_v) and "voltage" not in got.extra


def test_definition_gives_model_and_firmware() -> None:
    got = reading(adapter(devices=[device_entry("x", unit="mV")]), "x", {"linkquality": 5})
    assert (got.model, got.firmware) == ("MODEL-1", "3000-0001")


# ---- fields the issue found unmapped -------------------------------------------------------


def test_battery_low_is_an_error_code_and_temperatures_have_an_order() -> None:
    got = reading(
        adapter(),
        "trv",
        {"battery_low": True, "local_temperature": 19.5, "device_temperature": 31},
    )
    assert got.error_codes == ("E_LOW_BATTERY",)
    assert got.temperature_c == 19.5 and got.extra == {"device_temperature": 31}
    chip_only = reading(adapter(), "plug", {"device_temperature": 31, "battery_low": False})
    assert chip_only.temperature_c == 31 and chip_only.error_codes == ()
    assert "battery_low" not in chip_only.extra


def test_last_seen_formats_and_a_bad_clock() -> None:
    iso = reading(adapter(), "s", {"last_seen": "2026-11-23T13:00:00+01:00"})
    assert iso.ts == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    epoch = reading(adapter(), "s", {"last_seen": int(NOW.timestamp() * 1000) - 1500})
    assert epoch.ts == NOW - timedelta(milliseconds=1500)
    boot = reading(adapter(), "s", {"linkquality": 9, "last_seen": "1970-01-01T00:00:07.000Z"})
    assert boot.ts == NOW and "older than the retention window" in boot.dropped["ts"]
    assert boot.link_quality == 9


# ---- topics that are not device state ------------------------------------------------------


def test_bridge_topics_are_ignored_whatever_their_size() -> None:
    z2m = adapter()
    huge = json.dumps({"clusters": {f"c{i}": "x" * 100 for i in range(3000)}}).encode()
    assert len(huge) > 4 * MAX_PAYLOAD_BYTES
    for rest in ("bridge/definitions", "bridge/devices", "bridge/response/backup", "bridge/info"):
        assert isinstance(parse(z2m, rest, huge), Ignored)
    assert isinstance(parse(z2m, "bridge/state", b"online"), Ignored)


def test_groups_are_not_devices() -> None:
    z2m = adapter(groups=[{"id": 1, "friendly_name": "living room", "members": []}])
    for rest, body in [
        ("living room", {"state": "ON", "brightness": 100}),
        ("living room/availability", {"state": "online"}),
        ("living room/state", b"ON"),
    ]:
        got = parse(z2m, rest, body)
        assert isinstance(got, Ignored) and "group" in got.why
    assert isinstance(parse(z2m, "living room lamp", {"state": "ON"}), Reading)


def test_action_and_attribute_topics_are_not_dead_letters() -> None:
    z2m = adapter()
    for rest, body in [("remote/action", b"single"), ("remote/click", b"single")]:
        got = parse(z2m, rest, body)
        assert isinstance(got, Ignored) and "event" in got.why
    copy = parse(z2m, "plug/voltage", b"231")
    assert isinstance(copy, Ignored) and "same value" in copy.why
    assert isinstance(parse(z2m, "plug/linkquality", b""), Ignored)


def test_attribute_output_folds_signals_into_the_device() -> None:
    z2m = adapter(info={"config": {"advanced": {"output": "attribute"}}})
    lqi = reading(z2m, "kitchen/plug/linkquality", b"87")
    assert (lqi.device_id, signals_of(lqi)) == ("z2m:kitchen/plug", {"link_quality": 87})
    battery = reading(z2m, "door/battery", b"63.5")
    assert battery.battery_pct == 63.5
    state = parse(z2m, "kitchen/plug/state", b"ON")
    assert isinstance(state, Ignored) and "not a health signal" in state.why


def test_a_broken_state_message_is_still_a_dead_letter() -> None:
    broken = parse(adapter(), "kitchen/sensor", b'{"battery": 5')
    assert isinstance(broken, DeadLetter) and "invalid JSON" in broken.reason
    plain = parse(adapter(), "sensor", b"hello")
    assert isinstance(plain, DeadLetter) and "JSON object" in plain.reason


def test_legacy_availability_and_unreadable_bridge_lists() -> None:
    z2m = adapter(groups=[{"friendly_name": "g"}])
    z2m.observe("zigbee2mqtt/bridge/groups", b"{not json")  # keeps what it knew
    assert "g" in z2m.bridge.known.groups
    got = parse(z2m, "lamp/availability", b"offline")
    assert isinstance(got, StatusEvent) and got.status is DeviceStatus.OFFLINE
