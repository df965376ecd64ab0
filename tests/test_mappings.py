"""Declarative payload mappings: the file format (errors at file:line), the conversions, what a
mapping makes of a message, reloading, and ``forewarn mappings``."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from forewarn.domain import DeadLetter, DeviceStatus, Ignored, Reading, StatusEvent
from forewarn.errors import ConfigError, MappingError
from ingest.mappings.adapter import MappingAdapter
from ingest.mappings.loader import load_mappings, parse_mappings
from ingest.mappings.types import NAMED_CONVERSIONS, Conversion
from ingest.router import route
from ingest.signals import signals_of
from ingest.timestamps import TimeWindow

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow(max_age=timedelta(days=90), max_skew=timedelta(days=30))

# A made-up firmware, the worked example of docs/telemetry.md.
ACME = """\
version: 1
mappings:
  - name: acme-lock
    topic: acme/{site}/{lock}/health
    device: acme-{site}-{lock}
    time: {field: t, format: epoch_s}
    signals:
      model: hw.model
      battery_v: {field: vbat, convert: mV}
      battery_pct: {field: vbat, percent_of: [2000, 3000], clamp: true}
      temperature_c: {field: temp, convert_by: {field: unit, F: F}}
      signal_dbm: rssi
      uptime_s: {field: up_ms, convert: ms}
      error_codes: errors
    flags:
      low_bat: E_LOW_BATTERY
    models:
      "L1*":
        battery_v: {field: vbat, convert: tenths}
  - name: acme-status
    topic: acme/{site}/{lock}/status
    device: acme-{site}-{lock}
    payload: text
    status: {online: [up, online], offline: [down]}
ignore:
  - {topic: "acme/{site}/{lock}/health/debug", reason: debug copies}
"""


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def acme(tmp_path: Path, text: str = ACME) -> MappingAdapter:
    """An adapter on a mapping file holding `text`."""
    path = tmp_path / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    return MappingAdapter([path], WINDOW)


def parse(adapter: MappingAdapter, topic: str, body: Any) -> Any:
    """Route one message through the adapter alone."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return route([adapter], topic, raw, received_at=NOW)


# ---- the file format ------------------------------------------------------------------------

BROKEN = [
    pytest.param("version: 2\nmappings: []\n", 1, "version", id="version"),
    pytest.param("version: 1\n", 1, 'missing "mappings"', id="no-mappings"),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topik: x/{id}
            device: "{id}"
        """,
        4,
        'unknown key "topik" in mapping 1; did you mean "topic"?',
        id="key-typo",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: d-{idd}
        """,
        5,
        "no slot {idd} in the topic",
        id="unknown-slot",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            signals:
              batery_pct: b
        """,
        7,
        'did you mean "battery_pct"?',
        id="signal-typo",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            signals:
              battery_v: {field: v, convert: mv}
        """,
        7,
        'did you mean "mV"?',
        id="conversion-typo",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/+/y
            device: d
        """,
        4,
        "not MQTT wildcards",
        id="mqtt-wildcard",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            time: {field: t, format: iso_local}
        """,
        6,
        "needs a zone",
        id="local-time-without-zone",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            time: {field: t, format: iso_local, zone: Mars/Olympus}
        """,
        6,
        'unknown time zone "Mars/Olympus"',
        id="bad-zone",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            signals:
              battery_pct: {field: b, range: [0, 150]}
        """,
        7,
        "range must lie within 0..100",
        id="range-wider-than-signal",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            signals:
              firmware: {field: fw, convert: mV}
        """,
        7,
        "firmware is not a number",
        id="convert-text",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            signals:
              battery_v: {field: v, convert: mV, scale: 2}
        """,
        7,
        "not both",
        id="two-conversions",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
            status: {online: [on], offline: [on]}
        """,
        6,
        "cannot mean both",
        id="status-both",
    ),
    pytest.param(
        """
        version: 1
        mappings:
          - name: a
            topic: x/{id}
            device: "{id}"
          - name: a
            topic: y/{id}
            device: "{id}"
        """,
        6,
        'mapping name "a" is already used (m.yaml:3)',
        id="duplicate-name",
    ),
    pytest.param("version: 1\nmappings:\n\t- name: a\n", 3, "tabs", id="tabs"),
]


@pytest.mark.parametrize(("text", "line", "words"), BROKEN)
def test_broken_files_name_the_line_and_the_problem(text: str, line: int, words: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mappings(_yaml(text), source="m.yaml")
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).startswith(f"m.yaml:{line}: "), str(caught.value)
    assert words in str(caught.value)


def test_files_load_together_and_unreadable_ones_are_named(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(ACME, encoding="utf-8")
    two.write_text(ACME, encoding="utf-8")
    with pytest.raises(MappingError, match=r"two\.yaml:3: .*already used \(.*one\.yaml:3\)"):
        load_mappings([one, two])
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        load_mappings([tmp_path / "missing.yaml"])
    found = load_mappings([one])
    assert found.filters() == ("acme/+/+/health", "acme/+/+/status")


# ---- conversions -------------------------------------------------------------------------


CONVERSIONS = [
    ("mV", 2950, 2.95),
    ("F", 212, 100),
    ("F", -40, -40),
    ("K", 273.15, 0),
    ("tenths", 215, 21.5),
    ("hundredths", 2150, 21.5),
    ("ms", 90_000, 90),
    ("minutes", 2, 120),
    ("hours", 68, 244_800),
    ("days", 1, 86_400),
    ("none", 7, 7),
]


@pytest.mark.parametrize(("name", "raw", "canonical"), CONVERSIONS)
def test_named_conversions(name: str, raw: float, canonical: float) -> None:
    scale, offset = NAMED_CONVERSIONS[name]
    assert Conversion(name, scale, offset).apply(raw) == pytest.approx(canonical)


def test_percent_of_a_raw_range() -> None:
    lqi = Conversion("percent_of", percent_of=(0, 254))
    assert lqi.apply(127) == pytest.approx(50)
    assert lqi.apply(300) > 100  # unclamped: out of range, so dropped by the signal's range
    volts = Conversion("percent_of", percent_of=(2.0, 3.0), clamp=True)
    assert (volts.apply(2.5), volts.apply(3.2), volts.apply(1.0)) == (50, 100, 0)


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
