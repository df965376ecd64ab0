"""An exponentially weighted straight line through a series: level now, slope, and the slope's
standard error, in seven floats (and the time constant, the first and the newest time).

Time is kept relative to the newest point (every update shifts the sums), so the intercept is
the fitted level now and the sums never grow with the calendar.
"""

from __future__ import annotations

import math

from models.detectors.packed import Num, Packed


class Trend(Packed):
    """Weighted least squares of y on time (hours), old points fading with `tau_h`."""

    __slots__ = ()
    tau_h = Num()
    s0 = Num(0.0)  # sum of weights
    s1 = Num(0.0)  # sum w t
    s2 = Num(0.0)  # sum w t^2
    sy = Num(0.0)
    sty = Num(0.0)
    syy = Num(0.0)
    sww = Num(0.0)  # sum of squared weights (effective sample size)
    start = Num()  # epoch seconds of the first point
    last = Num()  # epoch seconds of the newest point

    def __init__(self, tau_h: float) -> None:
        self._own()
        self.tau_h = tau_h

    @classmethod
    def span(cls, tau_h: float) -> list[float]:
        """A fresh trend's slots with time constant `tau_h`."""
        out = cls.defaults()
        out[0] = tau_h  # the first field
        return out

    def reset(self) -> None:
        """Forget everything (a battery was charged or replaced)."""
        self.s0 = self.s1 = self.s2 = self.sy = self.sty = self.syy = self.sww = 0.0
        self.start = self.last = math.nan

    def add(self, ts: float, y: float) -> None:
        """Add a point at `ts` (epoch seconds); older points fade."""
        if math.isnan(self.last):
            self.start = ts
        else:
            dt = max(ts - self.last, 0.0) / 3600.0
            w = math.exp(-dt / self.tau_h)
            # Shift time so the new point sits at t = 0, then fade the past.
            s1 = self.s1 - dt * self.s0
            s2 = self.s2 - 2 * dt * self.s1 + dt * dt * self.s0
            sty = self.sty - dt * self.sy
            self.s0, self.s1, self.s2 = self.s0 * w, s1 * w, s2 * w
            self.sy, self.sty, self.syy = self.sy * w, sty * w, self.syy * w
            self.sww *= w * w
        self.last = ts
        self.s0 += 1.0
        self.sy += y
        self.syy += y * y
        self.sww += 1.0

    def span_h(self) -> float:
        """Hours between the first and the newest point."""
        return 0.0 if math.isnan(self.last) else (self.last - self.start) / 3600.0

    def fit(self, floor: float = 0.0) -> tuple[float, float, float] | None:
        """(level now, slope per hour, slope's standard error), or None with too few points.

        `floor` is the smallest noise the series can have (its quantisation step), so a
        perfectly straight quantised line is not taken as infinitely certain.
        """
        d = self.s0 * self.s2 - self.s1 * self.s1
        neff = self.s0 * self.s0 / self.sww if self.sww else 0.0
        if neff < 4.0 or d <= 1e-12 * max(self.s0 * self.s2, 1e-300):
            return None
        b = (self.s0 * self.sty - self.s1 * self.sy) / d
        a = (self.sy - b * self.s1) / self.s0
        rss = max(self.syy - a * self.sy - b * self.sty, 0.0)
        var = max(rss / self.s0 * neff / (neff - 2.0), floor * floor / 12.0)
        # Variance of the slope: sigma^2 / (sum w (t - mean t)^2), scaled to effective counts.
        se = math.sqrt(var * self.s0 / d * self.s0 / neff)
        return a, b, se
