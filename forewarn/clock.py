"""Business time. Rules, SLA dues, quiet hours and cooldowns read it from a ``Clock``.

In production that is the wall clock. ``forewarn demo`` replays a fleet faster than real
time, so its responder reads a ``ScaledClock`` that runs with the simulation: a 4-hour
resolution target then passes in 48 wall seconds at 300x, in step with the telemetry.
Retry backoff of real network sends always uses the wall clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current business time (timezone-aware, UTC)."""

    def now(self) -> datetime:
        """The current time."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current wall-clock time in UTC."""
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ScaledClock:
    """Time that starts at `origin` and runs `speedup` times faster than the wall clock."""

    origin: datetime
    speedup: float
    wall_origin: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        """`origin` plus the wall time elapsed since creation, scaled."""
        return self.origin + timedelta(seconds=(time.monotonic() - self.wall_origin) * self.speedup)


@dataclass(slots=True)
class FixedClock:
    """A clock that moves only when told to: the edge tests replace."""

    at: datetime

    def now(self) -> datetime:
        """The time it was set to."""
        return self.at

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward."""
        self.at += delta
