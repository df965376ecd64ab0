"""Connectivity: the radio signal sinking below the device's own usual level, and reconnects.

The usual level is a day-long fading mean of the signal with its fading mean deviation; the
present is a half-hour fading mean. A drop counts beyond a few decibels, in units of the
larger of four usual deviations and 10 dB (a weak hour of a few dB is ordinary). Reconnects are
counter increments fading over two hours, four of them as much evidence as the full drop. The
two add up: a link that both sinks and keeps reconnecting is the loss to come.
"""

from __future__ import annotations

import math

from models.detectors.base import QUIET, Observation, Verdict, decay, squash
from models.detectors.packed import Num, Packed

_SLOW_S, _FAST_S, _RECONNECT_S = 24 * 3600.0, 1800.0, 2 * 3600.0
_MIN_DROP_DB, _DROP_UNIT_DB, _RECONNECT_UNIT = 3.0, 10.0, 4.0


class LinkLoss(Packed):
    """One device's radio link."""

    __slots__ = ()
    fault: str = "connectivity_loss"
    last_ts = Num()
    usual = Num()  # dBm, fading over a day
    spread = Num(2.0)  # mean absolute deviation around it
    now = Num()  # dBm, fading over half an hour
    counter = Num()
    reconnects = Num(0.0)  # increments, fading over two hours
    since = Num()  # epoch seconds of the first signal reading

    def __init__(self) -> None:
        self._own()

    def _step(self, x: Observation) -> tuple[float, float, float]:
        """(fast mean, fading reconnects, dt) after `x`, without changing anything."""
        dt = 0.0 if math.isnan(self.last_ts) else max(x.ts - self.last_ts, 0.0)
        now = self.now
        if x.signal is not None and not math.isnan(x.signal):
            a = 1.0 - decay(dt, _FAST_S) if not math.isnan(now) else 1.0
            now = x.signal if math.isnan(now) else now + a * (x.signal - now)
        added = 0.0
        if x.reconnects is not None and not math.isnan(self.counter):
            # A counter that went back started over (a restart): its new value is all new.
            added = x.reconnects - self.counter if x.reconnects >= self.counter else 0.0
        return now, self.reconnects * decay(dt, _RECONNECT_S) + added, dt

    def score_one(self, x: Observation) -> Verdict:
        """How far the link has sunk below its usual and how often it reconnects."""
        now, reconnects, _ = self._step(x)
        if math.isnan(self.usual) or (x.ts - self.since) < 6 * 3600:
            drop = 0.0  # no usual level yet: a first day's signal has nothing to sink from
        else:
            drop = max(self.usual - now - _MIN_DROP_DB, 0.0)
        unit = max(4.0 * self.spread, _DROP_UNIT_DB)
        evidence = drop / unit + reconnects / _RECONNECT_UNIT
        if evidence < 0.5:
            return QUIET
        parts = []
        if drop > 0:
            parts.append(
                f"signal {now:.0f} dBm, {self.usual - now:.0f} dB below its usual "
                f"{self.usual:.0f} dBm"
            )
        if reconnects >= 1:
            parts.append(f"about {reconnects:.0f} reconnects in the last 2 hours")
        return Verdict(squash(evidence), "; ".join(parts))

    def learn_one(self, x: Observation) -> None:
        """Fold the reading in."""
        self.now, self.reconnects, dt = self._step(x)
        self.last_ts = x.ts
        if x.reconnects is not None:
            self.counter = x.reconnects
        if x.signal is None or math.isnan(x.signal):
            return
        if math.isnan(self.usual):
            self.usual, self.since = x.signal, x.ts
            return
        # Until a day has passed, average evenly; then fade over a day.
        age = max(x.ts - self.since, 1.0)
        a = max(1.0 - decay(dt, _SLOW_S), dt / age if age < _SLOW_S else 0.0)
        self.spread += a * (abs(x.signal - self.usual) - self.spread)
        self.usual += a * (x.signal - self.usual)
