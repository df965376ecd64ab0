"""Owners who follow the guide: for each fault, a share of owners who read its self-help guide
fix the device some time later (batteries changed, router moved closer, sensor re-paired,
firmware rolled back, the air conditioner's filter cleaned). Pure and seeded: the same device,
fault and delivery always give the same answer.

The shares and delays are the demo's assumptions, not measurements: they are here so the demo
and the KPIs show what "guide first" is for, and tests can set their own.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulators.catalog import FaultKind


def _default_follow() -> Mapping[FaultKind, float]:
    return {
        FaultKind.BATTERY_FAILURE: 0.7,  # new batteries: the easiest fix there is
        FaultKind.CONNECTIVITY_LOSS: 0.55,  # move the router or the device
        FaultKind.OVERHEATING: 0.5,  # out of the sun, clean the filter
        FaultKind.STUCK_SENSOR: 0.4,  # re-pair, or replace the probe
        FaultKind.REBOOT_LOOP: 0.35,  # roll the firmware back
    }


@dataclass(frozen=True, slots=True)
class GuideHabits:
    """How owners act on a guide: who fixes the problem, and how long reading and acting take
    (minutes; reading is exponential with this mean, capped, acting uniform)."""

    follow: Mapping[FaultKind, float] = field(default_factory=_default_follow)
    read_mean_min: float = 20.0  # most owners look at their phone within the hour
    read_max_min: float = 180.0
    act_min: tuple[float, float] = (5.0, 30.0)


@dataclass(frozen=True, slots=True)
class GuideRead:
    """A fault guide reached an owner: the device, the fault it is about, when it arrived."""

    device_id: str
    fault: str
    delivered_at: datetime


def fix_after_guide(
    habits: GuideHabits, *, seed: int, device_id: str, fault: str, delivered_at: datetime
) -> datetime | None:
    """When the owner fixes the fault after the guide reached them, or None if they do not."""
    try:
        share = habits.follow.get(FaultKind(fault), 0.0)
    except ValueError:
        return None  # the models' "anomaly" hint: no guide step fixes it
    rng = random.Random(f"forewarn-owner-acts:{seed}:{device_id}:{fault}")
    if rng.random() >= share:
        return None
    read = min(habits.read_max_min, rng.expovariate(1.0 / habits.read_mean_min))
    act = rng.uniform(*habits.act_min)
    return delivered_at + timedelta(minutes=read + act)
