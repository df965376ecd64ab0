"""What a mapping makes of a message, reloading, ``forewarn mappings``, and the shipped
examples (on SYNTHETIC messages: the real ones are in tests/test_payload_fixtures.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from forewarn.domain import DeadLetter, DeviceStatus, Ignored, Reading, StatusEvent
from forewarn.errors import MappingError
from ingest.mappings.adapter import MappingAdapter
from ingest.mappings.loader import example_path
from ingest.payloads import ForewarnV1Adapter
from ingest.signals import signals_of
from tests.test_mappings import ACME, NOW, WINDOW, _yaml, acme, parse

# ---- what a mapping makes of a message ----------------------------------------------------


def test_a_health_message_becomes_one_reading(tmp_path: Path) -> None:
    body = {
        "t": NOW.timestamp() - 60,
        "hw": {"model": "L2", "rev": 3},
        "vbat": 2750,
        "temp": 71.6,
        "unit": "F",
        "rssi": -67,
        "up_ms": 3_600_500,
        "errors": ["E_JAM"],
        "low_bat": "on",
        "door": "locked",
    }
    got = parse(acme(tmp_path), "acme/hq/7/health", body)
    assert isinstance(got, Reading)
    assert (got.device_id, got.source) == ("acme-hq-7", "mapping:acme-lock")
    assert got.ts == NOW - timedelta(seconds=60)
    assert signals_of(got) == {
        "model": "L2",
        "battery_v": pytest.approx(2.75),
        "battery_pct": pytest.approx(75),
        "temperature_c": pytest.approx(22),
        "signal_dbm": -67,
        "uptime_s": 3600,
        "error_codes": ["E_JAM", "E_LOW_BATTERY"],
    }
    assert got.extra == {"hw": {"rev": 3}, "unit": "F", "door": "locked"}
    assert got.dropped == {}


def test_per_model_overrides(tmp_path: Path) -> None:
    got = parse(acme(tmp_path), "acme/hq/8/health", {"hw": {"model": "L1-b"}, "vbat": 28})
    assert isinstance(got, Reading) and got.battery_v == pytest.approx(2.8)
    assert got.battery_pct == 0  # the clamped percentage still reads vbat as millivolts


def test_implausible_values_are_dropped_one_by_one(tmp_path: Path) -> None:
    body = {"vbat": 72000, "rssi": "strong", "temp": 20, "t": "yesterday"}
    got = parse(acme(tmp_path), "acme/hq/7/health", body)
    assert isinstance(got, Reading)
    assert set(got.dropped) == {"battery_v", "signal_dbm", "ts"}
    assert got.dropped["battery_v"] == "vbat=72000 (72.0 V) is outside 0..60"
    assert "not a number" in got.dropped["signal_dbm"]
    assert got.temperature_c == 20 and got.battery_pct == 100 and got.ts == NOW


def test_status_ignore_and_unreadable_messages(tmp_path: Path) -> None:
    adapter = acme(tmp_path)
    up = parse(adapter, "acme/hq/7/status", b"up")
    assert isinstance(up, StatusEvent) and up.status is DeviceStatus.ONLINE
    odd = parse(adapter, "acme/hq/7/status", b"sleeping")
    assert isinstance(odd, DeadLetter) and "neither online (online, up) nor offline" in odd.reason
    debug = parse(adapter, "acme/hq/7/health/debug", b"anything")
    assert isinstance(debug, Ignored) and debug.why == "debug copies"
    broken = parse(adapter, "acme/hq/7/health", b"{nope")
    assert isinstance(broken, DeadLetter) and "invalid JSON" in broken.reason
    assert isinstance(parse(adapter, "acme/hq/7/health", b""), Ignored)
    assert not adapter.accepts("acme/hq/7/other")


def test_text_payloads_when_root_and_multi_level_slots(tmp_path: Path) -> None:
    text = """\
    version: 1
    mappings:
      - name: node-sensor
        topic: "{node}/sensor/{name}/state"
        device: "node:{node}"
        payload: text
        text_key: "{name}"
        signals:
          signal_dbm: wifi_signal
      - name: bridged
        topic: gw/{gw}/{path#}
        when: data
        root: data.*
        device: "gw:{gw}:{$id}"
        signals:
          link_quality: lqi
    """
    adapter = acme(tmp_path, _yaml(text))
    wifi = parse(adapter, "attic/sensor/wifi_signal/state", b"-71")
    assert isinstance(wifi, Reading) and wifi.signal_dbm == -71
    nan = parse(adapter, "attic/sensor/wifi_signal/state", b"nan")
    assert isinstance(nan, Reading) and "not a finite number" in nan.dropped["signal_dbm"]
    other = parse(adapter, "attic/sensor/mode/state", b"Normal")
    assert isinstance(other, Reading) and other.extra == {"mode": "Normal"}
    deep = parse(adapter, "gw/g1/a/b/c", {"data": {"0x1F": {"id": "0x1F", "lqi": 77}}})
    assert isinstance(deep, Reading) and (deep.device_id, deep.link_quality) == ("gw:g1:0x1F", 77)
    skipped = parse(adapter, "gw/g1/a", {"other": 1})
    assert isinstance(skipped, Ignored) and "when" in skipped.why
    assert adapter.mappings.filters() == ("+/sensor/+/state", "gw/+/#")


def test_local_times_and_fallbacks(tmp_path: Path) -> None:
    text = """\
    version: 1
    mappings:
      - name: t
        topic: t/{id}
        device: "{id}"
        time:
          - {field: epoch, format: epoch_ms}
          - {field: local, format: iso_local, zone: Asia/Shanghai}
    """
    adapter = acme(tmp_path, _yaml(text))
    local = parse(adapter, "t/a", {"local": "2026-11-23T19:30:00"})
    assert isinstance(local, Reading) and local.ts == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    epoch = parse(adapter, "t/a", {"epoch": NOW.timestamp() * 1000 - 5, "local": "x"})
    assert isinstance(epoch, Reading) and epoch.ts == NOW - timedelta(milliseconds=5)


# ---- reloading -----------------------------------------------------------------------------


def test_reload_swaps_a_good_file_in_and_keeps_the_old_set_on_a_broken_one(
    tmp_path: Path,
) -> None:
    adapter = acme(tmp_path)
    path = tmp_path / "acme.yaml"
    assert not adapter.changed()
    path.write_text(ACME.replace("acme-lock", "acme-lock-2"), encoding="utf-8")
    assert adapter.changed()
    adapter.reload()
    assert adapter.mappings.mappings[0].name == "acme-lock-2" and not adapter.changed()
    path.write_text(ACME.replace("signals:", "signalz:"), encoding="utf-8")
    with pytest.raises(MappingError, match=r"acme\.yaml:\d+: .*did you mean \"signals\""):
        adapter.reload()
    assert adapter.mappings.mappings[0].name == "acme-lock-2"  # still the good one
    assert not adapter.changed()  # reported once, not on every check


# ---- the command -------------------------------------------------------------------------


def test_mappings_test_prints_what_a_message_becomes(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(ACME, encoding="utf-8")
    runner = CliRunner()
    topic = ["--topic", "acme/hq/7/health"]
    body = json.dumps({"vbat": 2500, "rssi": 99, "door": "open"})
    shown = runner.invoke(app, ["mappings", "test", str(path), *topic, "--payload", body])
    assert shown.exit_code == 0, shown.output
    assert "reading for acme-hq-7 (mapping:acme-lock)" in shown.output
    assert "battery_v   2.5" in shown.output and "dropped     signal_dbm: rssi=99" in shown.output
    as_json = runner.invoke(
        app, ["mappings", "test", str(path), *topic, "--payload", body, "--json"]
    )
    assert json.loads(as_json.output)["signals"]["battery_pct"] == 50
    dead = runner.invoke(app, ["mappings", "test", str(path), *topic, "--payload", "[1]"])
    assert dead.exit_code == 1 and "dead letter" in dead.output
    checked = runner.invoke(app, ["mappings", "check", str(path)])
    assert checked.exit_code == 0 and "2 mappings, 1 ignore rules: OK" in checked.output
    path.write_text(
        ACME.replace("topic: acme/{site}/{lock}/status", "topic: [x]"), encoding="utf-8"
    )
    bad = runner.invoke(app, ["mappings", "check", str(path)])
    assert bad.exit_code == 1 and "acme.yaml:21:" in bad.output
    unusable = runner.invoke(app, ["mappings", "test", str(path), *topic, "--payload", body])
    assert unusable.exit_code == 2 and "acme.yaml:21:" in unusable.output


V1_BODIES: list[dict[str, Any]] = [
    {
        "ts": "2026-11-23T11:55:00Z",
        "model": "lock-s2",
        "firmware": "2.4.1",
        "signal_dbm": -67.5,
        "battery_pct": 81.0,
        "battery_v": 5.62,
        "temperature_c": 22.4,
        "uptime_s": 86400,
        "reconnects": 0,
        "error_codes": ["E_JAM"],
        "door": "locked",
    },
    {"ts": int(NOW.timestamp() * 1000) - 90, "link_quality": 200, "battery_pct": 150},
]


@pytest.mark.parametrize("body", V1_BODIES)
def test_the_v1_contract_written_as_a_mapping_reads_what_the_built_in_adapter_reads(
    body: dict[str, Any],
) -> None:
    mapping = MappingAdapter([example_path("forewarn-v1")], WINDOW)
    built_in = ForewarnV1Adapter("forewarn/v1", WINDOW)
    topic = "forewarn/v1/devices/lock-7/telemetry"
    mapped, coded = parse(mapping, topic, body), parse(built_in, topic, body)
    assert isinstance(mapped, Reading) and isinstance(coded, Reading)
    assert signals_of(mapped) == signals_of(coded)
    assert (mapped.device_id, mapped.ts, set(mapped.dropped)) == (
        coded.device_id,
        coded.ts,
        set(coded.dropped),
    )
    assert mapped.extra == coded.extra


# ---- the shipped examples, on SYNTHETIC messages (real ones: test_payload_fixtures.py) ------


def test_esphome_example_reads_state_topics_and_the_status_topic() -> None:
    esphome = MappingAdapter([example_path("esphome")], WINDOW)
    # Formats from esphome/components/mqtt (MIT): birth "online", will "offline", and
    # sensor states as "%.*f" text with no unit.
    home_assistant = parse(esphome, "homeassistant/status", b"online")
    assert isinstance(home_assistant, Ignored)
    down = parse(esphome, "garage-door/status", b"offline")
    assert isinstance(down, StatusEvent) and down.status is DeviceStatus.OFFLINE
    assert down.device_id == "esphome:garage-door"
    for sensor, text, signal, value in [
        ("uptime", b"86412", "uptime_s", 86412),
        ("battery_voltage", b"3.71", "battery_v", 3.71),
        ("wifi_signal", b"-58", "signal_dbm", -58),
    ]:
        got = parse(esphome, f"garage-door/sensor/{sensor}/state", text)
        assert isinstance(got, Reading) and signals_of(got) == {signal: value}


def test_tasmota_example_converts_fahrenheit_and_old_uptime() -> None:
    tasmota = MappingAdapter([example_path("tasmota")], WINDOW)
    local = "2026-11-23T11:59:00"  # Tasmota's Time without an offset; the example reads UTC
    sensor = {"Time": local, "SI7021": {"Temperature": 71.6, "Humidity": 40}, "TempUnit": "F"}
    got = parse(tasmota, "tele/attic/SENSOR", sensor)
    assert isinstance(got, Reading) and got.temperature_c == pytest.approx(22.0)
    assert got.ts == NOW - timedelta(minutes=1)
    will = parse(tasmota, "tele/attic/LWT", b"Offline")
    assert isinstance(will, StatusEvent) and will.status is DeviceStatus.OFFLINE
