"""Silence: a device that stops reporting without saying goodbye, judged by its own cadence.

The cadence is a fading mean of the log of the time between readings (a geometric mean: a
few long gaps do not inflate it) and the longest gap seen lately. A device is silent once it
has been quiet for six times its cadence, half again its longest recent gap, and 15 minutes.
Unlike the others this detector is asked about a moment, not a reading: ``score_at`` is
called by a sweep over the fleet's clock, and ``models.detect`` turns many devices falling
silent together into one fleet incident.
"""

from __future__ import annotations

import math

from models.detectors.base import QUIET, Observation, Verdict, duration, squash
from models.detectors.packed import Int, Num, Packed

_TIMES, _LONGEST_TIMES, _MIN_S = 6.0, 1.5, 900.0
_ALPHA = 0.02
# The longest recent gap halves every this many gaps, so one outage is not excused forever.
_LONGEST_FADE = 0.995


class Silence(Packed):
    """One device's reporting rhythm."""

    __slots__ = ()
    fault: str = "connectivity_loss"
    last_ts = Num()
    log_gap = Num()  # mean log seconds between readings
    longest = Num(0.0)
    gaps = Int(0.0)

    def __init__(self) -> None:
        self._own()

    def cadence(self) -> float:
        """The usual seconds between readings (NaN before two readings)."""
        return math.exp(self.log_gap) if not math.isnan(self.log_gap) else math.nan

    def allowed(self) -> float:
        """Seconds of quiet that are still ordinary for this device."""
        return max(_TIMES * self.cadence(), _LONGEST_TIMES * self.longest, _MIN_S)

    def score_at(self, now: float) -> Verdict:
        """Whether the device has been silent too long at `now`."""
        if self.gaps < 5 or math.isnan(self.last_ts):
            return QUIET
        quiet = now - self.last_ts
        evidence = quiet / self.allowed()
        if evidence < 1.0:
            return Verdict(squash(evidence) if evidence >= 0.5 else 0.0)
        return Verdict(
            squash(evidence),
            f"no reading for {duration(quiet)}; it usually reports every "
            f"{duration(self.cadence()) if self.cadence() >= 60 else f'{self.cadence():.0f} s'}",
        )

    def score_one(self, x: Observation) -> Verdict:
        """A reading is never silence."""
        return QUIET

    def learn_one(self, x: Observation) -> None:
        """Fold the time since the previous reading into the cadence."""
        if not math.isnan(self.last_ts) and x.ts > self.last_ts:
            gap = x.ts - self.last_ts
            lg = math.log(gap)
            a = max(_ALPHA, 1.0 / (self.gaps + 1))
            self.log_gap = (
                lg if math.isnan(self.log_gap) else self.log_gap + a * (lg - self.log_gap)
            )
            self.longest = max(self.longest * _LONGEST_FADE, gap)
            self.gaps += 1
        self.last_ts = max(x.ts, self.last_ts) if not math.isnan(self.last_ts) else x.ts
