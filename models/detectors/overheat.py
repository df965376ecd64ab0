"""Overheating: the temperature above what this device usually reads at this hour of the day,
or close to its model's limit.

The usual daily cycle is 24 hourly means (an hour not yet seen: the fading peak) (UTC hours: the cycle is learnt, so the device's
time zone does not matter) fading over three days, with one fading mean absolute deviation.
A reading counts beyond 4 °C above its hour's mean, in units of the larger of five deviations
and 8 °C (half as much again for an hour not seen yet) (a hot afternoon is ordinary); a known limit counts from 10 °C below it. Readings
that alert teach the cycle only a tenth as much, so a climb is not learnt while it climbs, yet
a device moved somewhere warmer becomes the new normal within days. Sensor reset values (85.0)
are the stuck-sensor detector's business, not this one's. Readings must stay above the bar for
20 minutes before it alerts: a spike is one reading, overheating is a state.
"""

from __future__ import annotations

import math

from models.detectors.base import QUIET, Observation, Verdict, decay, squash
from models.detectors.packed import Num, Packed
from models.detectors.stuck import SATURATION

_TAU_S = 3 * 86400.0
_MARGIN_C, _UNIT_C, _LIMIT_SPAN_C = 4.0, 8.0, 10.0
# An hour not seen yet is judged against the mean of all hours, which lags a daily peak.
_UNSEEN = 1.5
_PEAK_S = 86400.0
# Readings must stay above the bar this long: a spike is a reading, overheating is a state.
_PERSIST_S = 1200.0


class Overheating(Packed):
    """One device's temperature against its own daily cycle and its model's limit.

    After the fields come 24 slots of the mean per UTC hour (NaN: not seen yet), then 24 of
    when each hour was last updated.
    """

    __slots__ = ()
    OWN = 48
    fault: str = "overheating"
    limit = Num()  # °C; NaN: no known limit
    mean = Num()  # over all hours
    spread = Num(1.0)
    last_ts = Num()
    last = Num()
    peak = Num()  # the highest reading, fading towards the mean over a day
    hot_since = Num()  # when the present run of readings above the bar began

    def __init__(self, limit_c: float | None = None) -> None:
        self._own()
        self.limit_c = limit_c

    @property
    def limit_c(self) -> float | None:
        """The model's temperature limit, if known."""
        return None if math.isnan(self.limit) else self.limit

    @limit_c.setter
    def limit_c(self, value: float | None) -> None:
        self.limit = math.nan if value is None else value

    def _hour(self, h: int) -> float:
        return self._data[self._at + _HOURS + h]

    def _set_hour(self, h: int, value: float) -> None:
        self._data[self._at + _HOURS + h] = value

    def _seen(self, h: int) -> float:
        return self._data[self._at + _HOURS + 24 + h]

    def _expected(self, ts: float) -> float:
        h = int(ts // 3600) % 24
        # An hour not seen yet may be the daily peak: judge it against the fading peak.
        mean = self._hour(h)
        return mean if not math.isnan(mean) else max(self.mean, self.peak)

    def _evidence(self, x: Observation) -> tuple[float, float]:
        """(evidence, expected temperature) for the reading."""
        t = x.temp
        if t is None or math.isnan(t) or t in SATURATION or t == self.last or math.isnan(self.mean):
            return 0.0, math.nan
        expected = self._expected(x.ts)
        unit = max(5.0 * self.spread, _UNIT_C)
        if math.isnan(self._hour(int(x.ts // 3600) % 24)):
            unit *= _UNSEEN
        evidence = max(t - expected - _MARGIN_C, 0.0) / unit
        if self.limit_c is not None:
            evidence = max(evidence, (t - (self.limit_c - _LIMIT_SPAN_C)) / _LIMIT_SPAN_C)
        return evidence, expected

    def score_one(self, x: Observation) -> Verdict:
        """How far above its usual temperature for the hour the device is."""
        evidence, expected = self._evidence(x)
        if evidence < 0.5 or x.temp is None:
            return QUIET
        since = x.ts if math.isnan(self.hot_since) else self.hot_since
        if evidence >= 1.0 and x.ts - since < _PERSIST_S:
            return Verdict(squash(0.99))  # a spike is not yet a device running hot
        said = f"temperature {x.temp:.1f} °C, {x.temp - expected:.1f} °C above its usual "
        said += f"{expected:.1f} °C at this hour"
        if self.limit_c is not None:
            said += f"; its model's limit is {self.limit_c:.0f} °C"
        return Verdict(squash(evidence), said)

    def learn_one(self, x: Observation) -> None:
        """Fold the reading into the daily cycle."""
        t = x.temp
        if t is None or math.isnan(t) or t in SATURATION:
            return
        evidence, _ = self._evidence(x)
        if evidence < 1.0:
            self.hot_since = math.nan
        elif math.isnan(self.hot_since):
            self.hot_since = x.ts
        self.last = t
        weight = 0.1 if evidence >= 1.0 else 1.0
        h = int(x.ts // 3600) % 24
        if math.isnan(self.mean):
            self.mean, self.last_ts = t, x.ts
        dt = max(x.ts - self.last_ts, 0.0)
        a = weight * max(1.0 - decay(dt, _TAU_S), 0.002)
        expected = self._expected(x.ts)
        self.spread += a * (abs(t - expected) - self.spread)
        self.mean += a * (t - self.mean)
        fade = decay(dt, _PEAK_S)
        peak = self.mean + (self.peak - self.mean) * fade if not math.isnan(self.peak) else t
        self.peak = max(peak, t) if evidence < 1.0 else peak
        mean = self._hour(h)
        if math.isnan(mean):
            self._set_hour(h, t)
        else:
            since = max(x.ts - self._seen(h), 0.0)
            # An hour's mean is updated about once a reading within that hour each day.
            b = weight * max(1.0 - decay(since, _TAU_S / 4.0), 0.02)
            self._set_hour(h, mean + b * (t - mean))
        self._data[self._at + _HOURS + 24 + h] = x.ts
        self.last_ts = x.ts


# Where the hourly means begin in the span: after the fields.
_HOURS = len(Overheating.FIELDS)
