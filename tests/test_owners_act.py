"""Owners who follow the guide (simulators.owners and the engine's fix): who fixes a fault and
when is seeded and bounded, and a fixed fault is gone from what the device publishes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulators.engine import FleetEngine, MessageKind
from simulators.fleet import FaultEpisode, FaultKind, Fleet, generate_fleet
from simulators.owners import GuideHabits, GuideRead, fix_after_guide

START = datetime(2026, 11, 20, tzinfo=UTC)
SPAN = timedelta(days=3)
ALWAYS = GuideHabits(follow=dict.fromkeys(FaultKind, 1.0))


def test_who_fixes_and_when_is_seeded_and_bounded() -> None:
    habits = GuideHabits()
    delivered = START + timedelta(hours=5)

    def fix(device: str, fault: str, h: GuideHabits = habits) -> datetime | None:
        return fix_after_guide(h, seed=7, device_id=device, fault=fault, delivered_at=delivered)

    battery = [fix(f"lock-{i}", "battery_failure") for i in range(2000)]
    assert battery == [fix(f"lock-{i}", "battery_failure") for i in range(2000)]  # seeded
    share = sum(b is not None for b in battery) / len(battery)
    assert share == pytest.approx(0.7, abs=0.03)
    lo = delivered + timedelta(minutes=habits.act_min[0])
    hi = delivered + timedelta(minutes=habits.read_max_min + habits.act_min[1])
    assert all(lo <= b <= hi for b in battery if b is not None)
    assert fix("lock-1", "anomaly", ALWAYS) is None  # no guide step fixes a vague hint
    never = GuideHabits(follow={})
    assert all(fix(f"x-{i}", "overheating", never) is None for i in range(100))


def _episode(fleet: Fleet, fault: FaultKind) -> FaultEpisode:
    return next(e for e in fleet.episodes if e.fault is fault)


def _readings(engine: FleetEngine, until: datetime, device: str) -> list[dict[str, Any]]:
    return [
        json.loads(m.payload)
        for m in engine.step_until(until)
        if m.device_id == device and m.kind is MessageKind.TELEMETRY
    ]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet(devices=300, seed=11, start=START, span=SPAN, fault_rate=0.4)


def test_new_batteries_end_a_battery_failure(fleet: Fleet) -> None:
    episode = _episode(fleet, FaultKind.BATTERY_FAILURE)
    device = episode.device_id
    halfway = episode.onset_at + (episode.failure_at - episode.onset_at) / 2
    engine = FleetEngine(fleet, device_ids=frozenset({device}))
    before = _readings(engine, halfway, device)
    read = GuideRead(device, "battery_failure", halfway)
    assert engine.owner_read_guide(GuideRead(device, "overheating", halfway), ALWAYS) is None
    fixed_at = engine.owner_read_guide(read, ALWAYS)
    assert fixed_at is not None and fixed_at > halfway
    assert engine.owner_read_guide(read, ALWAYS) is None  # fixed once
    after = _readings(engine, episode.failure_at + timedelta(hours=6), device)
    later = [r for r in after if r["ts"] > (fixed_at + timedelta(minutes=1)).isoformat()]
    assert before[-1]["battery_pct"] < 90 and later[0]["battery_pct"] > 95
    # The failure it was heading for never comes: it keeps reporting past failure_at.
    assert later[-1]["ts"] > episode.failure_at.isoformat()[:19]
    assert not any("E_LOW_BATTERY" in r.get("error_codes", []) for r in later)
    assert engine.records()[device].went_offline is False


def test_a_guide_read_after_the_device_failed_changes_nothing(fleet: Fleet) -> None:
    episode = _episode(fleet, FaultKind.CONNECTIVITY_LOSS)
    device = episode.device_id
    engine = FleetEngine(fleet, device_ids=frozenset({device}))
    engine.step_until(episode.failure_at + timedelta(hours=1))
    late = GuideRead(device, "connectivity_loss", episode.failure_at + timedelta(minutes=30))
    assert engine.owner_read_guide(late, ALWAYS) is None
    assert engine.records()[device].went_offline is True
