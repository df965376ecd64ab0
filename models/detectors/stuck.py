"""Stuck sensor: a value repeated for longer than this sensor's own history allows, a known
reset or saturation value, or a reading the quantity cannot physically take.

How long a repeat may last is learned per sensor: a noisy sensor almost never repeats a
reading, a coarsely quantised one in a quiet room repeats for hours. The detector keeps the
share of readings that repeated their predecessor (from finished runs only, so a run in
progress never teaches itself to be normal) and the longest run seen; a run is evidence when
its chance under that share is below one in 100,000, it is half again as long as any run seen,
and it has lasted ten minutes.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import replace

from models.detectors.base import CERTAIN, QUIET, Observation, Verdict, duration, squash
from models.detectors.packed import Int, Num, Packed

# Values sensors report when they are reset, disconnected or saturated: 85.0 is a DS18B20's
# power-on value, -127 its "no sensor", 6553.5 and 655.35 are 0xFFFF in tenths/hundredths.
SATURATION = frozenset({85.0, -127.0, 6553.5, 655.35, 65535.0, -999.0})
# What each quantity can physically read; outside it the sensor, not the world, is wrong (a
# certain fault, and a reading no other detector judges or learns: ``plausible``).
PHYSICAL: dict[str, tuple[float, float]] = {
    "temperature_c": (-60.0, 130.0),
    "humidity": (0.0, 100.0),
    "humidity_pct": (0.0, 100.0),
    "battery_pct": (0.0, 100.0),
    "light": (0.0, 200_000.0),
    "pressure_hpa": (300.0, 1100.0),
}
UNITS = {"temperature_c": " °C", "humidity": " %", "humidity_pct": " %", "battery_pct": " %"}
# A run this unlikely under the sensor's own repeat rate is evidence: ln(100,000).
_SURPRISE = math.log(1e5)
_MIN_RUN_S = 600.0
# Finished runs are remembered with this much weight at most, so the repeat share follows a
# sensor whose behaviour changes over weeks.
_MEMORY = 3000.0


def plausible(x: Observation) -> Observation:
    """`x` with a temperature it cannot physically be left out (the stuck sensor alone sees it)."""
    low, high = PHYSICAL["temperature_c"]
    if x.temp is None or low <= x.temp <= high:
        return x
    return replace(x, temp=None)


class StuckSensor(Packed):
    """One sensor quantity of one device."""

    __slots__ = ("quantity",)
    fault: str = "stuck_sensor"
    value = Num()  # the current run's value
    run_start = Num(0.0)
    run_len = Int(0.0)
    longest = Int(1.0)
    seen = Num(0.0)  # readings in finished runs (decayed)
    repeats = Num(0.0)  # of which repeated their predecessor

    def __init__(self, quantity: str = "temperature_c") -> None:
        self._own()
        self.quantity = quantity

    @classmethod
    def of_temperature(cls, data: array[float], at: int) -> StuckSensor:
        """A view of a device's temperature sensor at `at` of `data`."""
        obj = cls.at(data, at)
        obj.quantity = "temperature_c"
        return obj

    def score_one(self, x: Observation) -> Verdict:
        """Judge the sensor's temperature reading."""
        return self.score_value(x.ts, x.temp)

    def learn_one(self, x: Observation) -> None:
        """Fold in the sensor's temperature reading."""
        self.learn_value(x.ts, x.temp)

    def score_value(self, ts: float, v: float | None) -> Verdict:
        """Judge one reading of the quantity."""
        if v is None or math.isnan(v):
            return QUIET
        name = self.quantity.replace("_c", "").replace("_pct", "").replace("_", " ")
        unit = UNITS.get(self.quantity, "")
        low, high = PHYSICAL.get(self.quantity, (-math.inf, math.inf))
        if not low - 1e-9 <= v <= high + 1e-9:
            return Verdict(CERTAIN, f"{name} reads {v:g}{unit}, which it cannot physically be")
        same = v == self.value
        k = self.run_len + 1 if same else 1
        lasted = ts - self.run_start if same else 0.0
        if v in SATURATION and k >= 2:
            return Verdict(
                squash(2.0 + lasted / 3600.0),
                f"{name} stuck at {v:g}{unit}, a sensor reset or fault value, "
                f"for {duration(lasted)}",
            )
        if k < 3:
            return QUIET
        p = (self.repeats + 1.0) / (self.seen + 2.0)
        surprise = (k - 1) * -math.log(p)
        evidence = min(
            surprise / _SURPRISE, (k - 1) / (1.5 * self.longest + 1.0), lasted / _MIN_RUN_S
        )
        if evidence < 0.5:
            return QUIET
        return Verdict(
            squash(evidence),
            f"{name} has read exactly {v:g}{unit} {k} times in a row for {duration(lasted)}; "
            f"its longest repeat before was {self.longest} readings",
        )

    def learn_value(self, ts: float, v: float | None) -> None:
        """Fold one reading in: a run that ends teaches the sensor's repeat habits."""
        if v is None or math.isnan(v):
            return
        if v == self.value:
            self.run_len += 1
            return
        self._finish()
        self.value, self.run_start, self.run_len = v, ts, 1

    def late_value(self, ts: float, v: float | None) -> None:
        """A reading that came after newer ones (it is not learnt: the state has no way back).
        A value other than the current run's, from inside the run, shows the sensor moved
        meanwhile: the run restarts there, so a reading lost to the order of arrival does not
        join two runs into one that looks stuck."""
        if v is None or math.isnan(v) or v == self.value or ts < self.run_start:
            return
        self.run_start, self.run_len = ts, 1

    def _finish(self) -> None:
        k = self.run_len
        low, high = PHYSICAL.get(self.quantity, (-math.inf, math.inf))
        if k == 0 or self.value in SATURATION or not low <= self.value <= high:
            return  # a fault value's run says nothing of the healthy sensor
        keep = min(1.0, _MEMORY / max(self.seen, 1.0))
        self.seen = self.seen * keep + k
        self.repeats = self.repeats * keep + (k - 1)
        self.longest = max(self.longest, k)
