"""Real messages from Zigbee2MQTT, ESPHome and Tasmota installations, through the ingester's
parser, against the outcome each source's context says they should have.

The messages and their sources and licences are in tests/fixtures/payloads/ (README.md there
says what was left out and why); the expected outcomes (expected.yaml) were written from the
sources, not from Forewarn's output. A quarter of the messages (by a hash of their id) was
held out of every decision while the adapters were built; its share is reported apart.

    .venv/bin/python -m tests.test_payload_fixtures      # prints the figures and the misses
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from paho.mqtt.client import topic_matches_sub

from forewarn.domain import DeadLetter, Ignored, Reading, StatusEvent
from forewarn.settings import Settings
from ingest.mappings.loader import example_path
from ingest.router import adapters_from, route
from ingest.signals import signals_of

FIXTURES = Path(__file__).parent / "fixtures" / "payloads"
NOW = datetime(2026, 12, 6, tzinfo=UTC)  # the receive time of messages that carry none
REQUIRED_SHARE = 0.98
# Synthetic retained bridge/info messages, from the documented format (bridge.ts publishes the
# configuration under config; advanced.output selects json, attribute or attribute_and_json).
SETUPS = {
    "output_attribute": {"config": {"advanced": {"output": "attribute"}}},
    "output_attribute_and_json": {"config": {"advanced": {"output": "attribute_and_json"}}},
}


@dataclass(frozen=True, slots=True)
class Fixture:
    """One real message and what it should become."""

    id: str
    topic: str
    payload: str
    source: str
    licence: str
    expected: dict[str, Any]

    @property
    def held_out(self) -> bool:
        """Kept out of every decision while the adapters were written (a quarter, by id)."""
        return int(hashlib.sha256(self.id.encode()).hexdigest(), 16) % 4 == 0

    @property
    def installation(self) -> str:
        """Messages from one source page, test suite or issue come from one installation."""
        return self.source.split(" (")[0].split(" section")[0].split(" line")[0]


def load_fixtures() -> list[Fixture]:
    """The shipped messages joined with their expected outcomes."""
    expected = yaml.safe_load((FIXTURES / "expected.yaml").read_text(encoding="utf-8"))
    out = []
    for line in (FIXTURES / "messages.jsonl").read_text(encoding="utf-8").splitlines():
        m = json.loads(line)
        out.append(
            Fixture(m["id"], m["topic"], m["payload"], m["source"], m["licence"], expected[m["id"]])
        )
    return out


def fixture_settings() -> Settings:
    """Zigbee2MQTT on its default base, and the shipped ESPHome and Tasmota examples."""
    files = f"{example_path('esphome')},{example_path('tasmota')}"
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=None,
        mqtt_url=None,
        zigbee2mqtt_base="zigbee2mqtt",
        mapping_files=files,
    )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def miss(fixture: Fixture, everything: list[Fixture]) -> str | None:
    """None when the message becomes what was expected; else what happened instead."""
    exp = fixture.expected
    adapters = adapters_from(fixture_settings())
    # What the bridge had said before, as its retained topics are read at start-up.
    for other in everything:
        if other.installation == fixture.installation:
            for adapter in adapters:
                if other.topic in adapter.watches():
                    adapter.observe(other.topic, other.payload.encode())
    for name in exp.get("setup", ()):
        for adapter in adapters:
            for topic in adapter.watches():
                if topic.endswith("/bridge/info"):
                    adapter.observe(topic, json.dumps(SETUPS[name]).encode())
    subscribed = any(
        topic_matches_sub(f, fixture.topic) for a in adapters for f in a.subscriptions()
    )
    if exp.get("not_subscribed"):
        return None if not subscribed else "subscribed, expected not to be"
    if not subscribed:
        return "not subscribed"
    expected_ts = datetime.fromisoformat(exp["ts"]) if "ts" in exp else None
    received = expected_ts + timedelta(seconds=1) if expected_ts else NOW
    got = route(adapters, fixture.topic, fixture.payload.encode(), received_at=received)
    return _compare(exp, got, expected_ts or received)


def _compare(
    exp: dict[str, Any], got: Reading | StatusEvent | Ignored | DeadLetter, ts: datetime
) -> str | None:
    if "reading" in exp:
        if not isinstance(got, Reading):
            return f"expected a reading, got {got!r}"
        want = dict(exp["reading"])
        device = want.pop("device")
        have = signals_of(got)
        if got.device_id != device:
            return f"device {got.device_id!r}, expected {device!r}"
        if set(have) != set(want) or not all(_close(have[k], v) for k, v in want.items()):
            return f"signals {have}, expected {want} (dropped {dict(got.dropped)})"
        if set(got.dropped) != set(exp.get("dropped", ())):
            return f"dropped {dict(got.dropped)}, expected {exp.get('dropped', [])}"
        if got.ts != ts:
            return f"ts {got.ts.isoformat()}, expected {ts.isoformat()}"
        for key, value in exp.get("extra", {}).items():
            if key not in got.extra or not _close(got.extra[key], value):
                return f"extra[{key!r}] = {got.extra.get(key)!r}, expected {value!r}"
        return None
    if "status" in exp:
        want_status = exp["status"]
        if not isinstance(got, StatusEvent):
            return f"expected a status event, got {got!r}"
        if (got.device_id, got.status.value) != (want_status["device"], want_status["status"]):
            return f"status {got.device_id} {got.status.value}, expected {want_status}"
        return None
    if "ignored" in exp:
        if not isinstance(got, Ignored) or exp["ignored"].lower() not in got.why.lower():
            return f"expected ignored ({exp['ignored']}), got {got!r}"
        return None
    if "dead_letter" in exp:
        if not isinstance(got, DeadLetter) or exp["dead_letter"].lower() not in got.reason.lower():
            return f"expected a dead letter ({exp['dead_letter']}), got {got!r}"
        return None
    raise AssertionError(f"expected.yaml entry without an outcome: {exp}")


@dataclass(frozen=True, slots=True)
class Figures:
    """Handled as expected, over all, in the set used while building, and in the held-out set."""

    total: int
    passed: int
    built_total: int
    built_passed: int
    held_total: int
    held_passed: int
    misses: tuple[tuple[str, bool, str], ...]  # id, held out, what happened

    @property
    def share(self) -> float:
        """Share handled as expected."""
        return self.passed / self.total

    def lines(self) -> Iterator[str]:
        """A short report."""
        yield (
            f"real messages handled as expected: {self.passed}/{self.total} = {self.share:.1%} "
            f"(built against: {self.built_passed}/{self.built_total}; "
            f"held out: {self.held_passed}/{self.held_total})"
        )
        for fid, held, what in self.misses:
            yield f"  miss {fid}{' (held out)' if held else ''}: {what}"


def figures() -> Figures:
    """Run every fixture."""
    everything = load_fixtures()
    results = [(f, miss(f, everything)) for f in everything]
    held = [(f, m) for f, m in results if f.held_out]
    built = [(f, m) for f, m in results if not f.held_out]
    return Figures(
        total=len(results),
        passed=sum(m is None for _, m in results),
        built_total=len(built),
        built_passed=sum(m is None for _, m in built),
        held_total=len(held),
        held_passed=sum(m is None for _, m in held),
        misses=tuple((f.id, f.held_out, m) for f, m in results if m is not None),
    )


def test_every_fixture_names_its_source_licence_and_reason() -> None:
    fixtures = load_fixtures()
    assert len(fixtures) >= 100
    for f in fixtures:
        assert f.source and f.licence, f.id
        assert str(f.expected.get("why", "")).strip(), f"{f.id} has no why"
    assert {f.id.split("-")[0] for f in fixtures} == {"z2m", "esphome", "tasmota"}
    assert not any("BY-NC" in f.licence for f in fixtures), "a non-commercial licence shipped"


def test_real_messages_are_handled_as_their_users_expect(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = figures()
    with capsys.disabled():
        print()
        for line in result.lines():
            print(line)
    assert result.total >= 100
    assert result.share >= REQUIRED_SHARE, "\n".join(result.lines())


if __name__ == "__main__":
    for line in figures().lines():
        print(line)
