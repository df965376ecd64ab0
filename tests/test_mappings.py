"""Declarative payload mappings: the file format (errors at file:line) and the conversions.
What a mapping makes of a message is in tests/test_mappings_apply.py."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from forewarn.errors import ConfigError, MappingError
from ingest.mappings.adapter import MappingAdapter
from ingest.mappings.loader import load_mappings, parse_mappings
from ingest.mappings.types import NAMED_CONVERSIONS, Conversion
from ingest.payloads import PayloadAdapter
from ingest.router import route
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


def parse(adapter: PayloadAdapter, topic: str, body: Any) -> Any:
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
