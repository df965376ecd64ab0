"""Reboot loop: restarts, seen as uptime going back (or a message counter starting over),
counted over the last hours against the device's own usual rate.

A restart is a reading whose uptime is lower than the previous one's plus the time between
them (so a restart between two readings is seen even when the new uptime is the larger), or,
without uptime, a reconnect counter that went back to zero. Restarts fade with a six-hour time
constant; the bar is three recent restarts, or twice the device's usual count if it is
used to restarting (a device with a nightly restart schedule).
"""

from __future__ import annotations

import math

from models.detectors.base import QUIET, Observation, Verdict, decay, squash
from models.detectors.packed import Num, Packed

_TAU_S = 6 * 3600.0
_USUAL_TAU_S = 7 * 86400.0
# Clocks on cheap devices drift; an uptime this much short of the elapsed time is still fine.
_SLACK_S = 90.0


class RebootLoop(Packed):
    """One device's restarts."""

    __slots__ = ()
    fault: str = "reboot_loop"
    last_ts = Num()
    uptime = Num()
    counter = Num()
    recent = Num(0.0)  # restarts, fading over six hours
    usual = Num(0.0)  # restarts, fading over a week
    first_ts = Num()

    def __init__(self) -> None:
        self._own()

    def _restarted(self, x: Observation) -> bool:
        if math.isnan(self.last_ts):
            return False
        if x.uptime is not None and not math.isnan(self.uptime):
            return x.uptime + _SLACK_S < self.uptime + (x.ts - self.last_ts)
        if x.reconnects is not None and not math.isnan(self.counter):
            return x.reconnects < self.counter
        return False

    def _counts(self, x: Observation) -> tuple[float, float]:
        dt = 0.0 if math.isnan(self.last_ts) else x.ts - self.last_ts
        hit = 1.0 if self._restarted(x) else 0.0
        return self.recent * decay(dt, _TAU_S) + hit, self.usual * decay(dt, _USUAL_TAU_S) + hit

    def score_one(self, x: Observation) -> Verdict:
        """How many recent restarts, against this device's usual."""
        recent, usual = self._counts(x)
        if recent < 1.5:
            return QUIET
        days = 0.0 if math.isnan(self.first_ts) else (x.ts - self.first_ts) / 86400.0
        # The usual count per six hours, from the week's fading count, without the recent ones.
        per_6h = max(usual - recent, 0.0) / max(min(days, 7.0), 1.0) / 4.0
        bar = max(3.0, 2.0 * per_6h)
        evidence = recent / bar
        if evidence < 0.5:
            return QUIET
        n = round(recent)
        habit = (
            f"it usually restarts about {per_6h * 4:.1f} times a day"
            if per_6h * 4 >= 0.1
            else "it rarely restarts otherwise"
        )
        return Verdict(squash(evidence), f"restarted about {n} times in the last 6 hours; {habit}")

    def learn_one(self, x: Observation) -> None:
        """Fold the reading in."""
        self.recent, self.usual = self._counts(x)
        if math.isnan(self.first_ts):
            self.first_ts = x.ts
        self.last_ts = x.ts
        if x.uptime is not None:
            self.uptime = x.uptime
        if x.reconnects is not None:
            self.counter = x.reconnects
