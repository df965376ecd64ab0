"""Battery: hours to empty from the trend of the device's own charge level.

The level is the battery percentage a device reports, or its voltage put through the pack's
discharge curve (``chemistry``). Two straight lines are fitted as readings come: a slow one
(two days) that averages out the daily swing of temperature and the sawtooth of a battery
under load, and a fast one (six hours) for a battery that suddenly gives out, which may only
speak when it sees the battery empty within 48 hours. Each projects
the level to zero; a projection counts only when its fall is at least three standard errors.
The bar is the horizon: 7 days by default, so a score of 0.5 means "empty in 7 days" and 0.78
"empty in 48 hours". A charge (the level climbing well above its noise) starts a new cycle; a
device seen on a charger is judged by whether it empties before its next usual charge.
"""

from __future__ import annotations

import math

from models.detectors.base import QUIET, Observation, Verdict, squash
from models.detectors.chemistry import Chemistry, guess
from models.detectors.packed import Num, Packed, chem_code, chem_of
from models.detectors.trend import Trend

HORIZON_H = 7 * 24.0
URGENT_H = 48.0
# A rise of this many percent over the cycle's lowest level is a charge, not noise.
_CHARGE_RISE = 4.0
# Hours of a cycle before its fast line may speak, and its slow line.
_FAST_AFTER_H, _SLOW_AFTER_H = 3.0, 12.0
_T_MIN = 3.0
_UNCHARGED_H = 8.0
_SLOW_TAU_H, _FAST_TAU_H = 48.0, 6.0


class BatteryDrain(Packed):
    """One device's battery: its fields, then the slow trend's span, then the fast one's."""

    __slots__ = ()
    OWN = 2 * Trend.SIZE
    fault: str = "battery_failure"
    chem_code = Num(0.0)  # the pack (``packed.chem_of``); 0: none known
    horizon_h = Num(HORIZON_H)
    low = Num(math.inf)  # lowest level of this cycle
    charged_at = Num()  # epoch seconds of the last charge seen
    charge_every_h = Num()  # usual hours between charges (decayed mean)
    volts = Num()  # the newest voltage, for the reason

    def __init__(self, chem: Chemistry | None = None, horizon_h: float = HORIZON_H) -> None:
        self._own()
        self.chem = chem
        self.horizon_h = horizon_h

    @classmethod
    def defaults(cls) -> list[float]:
        """Fresh fields and two fresh trends (two days, six hours)."""
        own = [f.default for f in cls.FIELDS]
        return own + Trend.span(_SLOW_TAU_H) + Trend.span(_FAST_TAU_H)

    @property
    def chem(self) -> Chemistry | None:
        """The pack: read volts through it when there is no percentage."""
        return chem_of(self.chem_code)

    @chem.setter
    def chem(self, chem: Chemistry | None) -> None:
        self.chem_code = chem_code(chem)

    @property
    def slow(self) -> Trend:
        """The two-day trend."""
        return Trend.at(self._data, self._at + len(self.FIELDS))

    @property
    def fast(self) -> Trend:
        """The six-hour trend."""
        return Trend.at(self._data, self._at + len(self.FIELDS) + Trend.SIZE)

    def _level(self, x: Observation) -> float | None:
        if x.battery is not None and not math.isnan(x.battery):
            return x.battery
        if x.volts is None or math.isnan(x.volts) or x.volts <= 0:
            return None
        if self.chem is None:
            self.chem = guess(x.volts)
        return self.chem.percent(x.volts)

    def score_one(self, x: Observation) -> Verdict:
        """Estimated time to empty as a score against the horizon, with its reason."""
        chem = self.chem or (guess(x.volts) if x.volts else None)
        if x.battery is not None and not math.isnan(x.battery):
            level = x.battery
        elif x.volts is not None and chem is not None and x.volts > 0:
            level = chem.percent(x.volts)
        else:
            return QUIET
        if level > self.low + _CHARGE_RISE:
            return QUIET  # charging
        horizon = self._horizon(x.ts)
        best: tuple[float, float, float, float, float] | None = None  # evidence, h, lo, hi, rate
        for trend, after, fast in (
            (self.slow, _SLOW_AFTER_H, False),
            (self.fast, _FAST_AFTER_H, True),
        ):
            if trend.span_h() < after:
                continue
            fit = trend.fit(floor=0.1)
            if fit is None:
                continue
            now, slope, se = fit
            if slope >= 0 or -slope < _T_MIN * se:
                continue
            left = max(min(now, level), 0.0)
            hours = left / -slope
            if fast and hours > URGENT_H:
                continue  # six hours of a daily swing are no week's trend: only urgent news
            lo, hi = left / (-slope + 2 * se), left / max(-slope - 2 * se, 1e-9)
            evidence = horizon / max(hours, 0.1)
            if best is None or evidence > best[0]:
                best = (evidence, hours, lo, min(hi, 10 * hours), -slope * 24.0)
        if best is None:
            return QUIET
        evidence, hours, lo, hi, rate = best
        if evidence < 0.5:
            return Verdict(squash(evidence), hours_left=hours)
        return Verdict(squash(evidence), self._reason(x, level, rate, (hours, lo, hi)), hours)

    def _horizon(self, ts: float) -> float:
        """The horizon; a device on a charging habit need only last to its next charge."""
        if math.isnan(self.charged_at):
            # A rechargeable pack not yet seen on its charger may well be charged tonight.
            rechargeable = self.chem is not None and self.chem.rechargeable
            return _UNCHARGED_H if rechargeable else self.horizon_h
        every = self.charge_every_h if not math.isnan(self.charge_every_h) else 24.0
        due = every - (ts - self.charged_at) / 3600.0
        return min(self.horizon_h, max(due, 0.0) + 0.25 * every)

    def _reason(
        self, x: Observation, level: float, rate: float, left: tuple[float, float, float]
    ) -> str:
        """`rate` in percent a day; `left` hours to empty, and their likely range."""
        hours, lo, hi = left
        span = f"{_days(lo)} to {_days(hi)}"
        if x.battery is None and x.volts is not None and self.chem is not None:
            per_day = rate * self.chem.volts_per_percent(level)
            head = f"battery at {x.volts:.2f} V and falling {per_day:.2f} V a day"
        else:
            head = f"battery at {level:.0f} % and falling {rate:.1f} % a day"
        urgent = " (within 48 hours)" if hours <= URGENT_H else ""
        return f"{head}: about {_days(hours)} left{urgent}, likely {span}"

    def learn_one(self, x: Observation) -> None:
        """Fold the reading's level into both trends; a charge starts a new cycle."""
        level = self._level(x)
        if level is None:
            return
        if level > self.low + _CHARGE_RISE:
            if not math.isnan(self.charged_at):
                gap = (x.ts - self.charged_at) / 3600.0
                if gap > 2.0:  # the same charge seen again is not a new one
                    w = 0.3 if not math.isnan(self.charge_every_h) else 1.0
                    old = 0.0 if math.isnan(self.charge_every_h) else self.charge_every_h
                    self.charge_every_h = old * (1 - w) + gap * w
            if math.isnan(self.charged_at) or (x.ts - self.charged_at) / 3600.0 > 2.0:
                self.charged_at = x.ts
            self.slow.reset()
            self.fast.reset()
            self.low = level
        self.low = min(self.low, level)
        self.slow.add(x.ts, level)
        self.fast.add(x.ts, level)
        if x.volts is not None:
            self.volts = x.volts


def _days(hours: float) -> str:
    if hours < 1:
        return "under an hour"
    if hours < 48:
        return f"{hours:.0f} hours"
    return f"{hours / 24:.0f} days"
