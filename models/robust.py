"""A streaming anomaly score for any numeric metrics: robust z-scores against recent values.

Each metric keeps its last ``window`` values (by count, not by time, so a gap in the data
does not empty the baseline and the baseline holds the same evidence at any sampling rate).
A new value is judged three ways, each as a robust z-score (distance from the median in units
of the interquartile spread):

* level: the value against the metric's recent values;
* change: the step from the previous value against recent steps (a jump inside the usual
  range, as when a daily cycle is cut short); skipped after a silence much longer than the
  usual interval, where a drifting metric has simply moved on;
* flat line: how long the value has repeated exactly, against the longest repeat seen
  recently (a sensor that stops changing after it used to vary).

Real sensors are quantised and cyclic, so two things are never extreme: a step of one
quantum (the smallest step the metric has taken), and what the metric did in the last few
days (a value inside its fading range of about three days is not judged on its level; a step
no larger than 1.2 times its largest recent step is not judged as a jump), which is also how
a level shift becomes the new normal.

A metric that has only ever gone up (a counter such as uptime) is judged on its steps alone.
The row's z is the largest over metrics and checks; its score is ``1 - exp(-z / Z_SCALE)``.

>>> scorer = RobustZScore()
>>> for i in range(100):
...     scorer.learn_one({"temp": 20.0 + (i % 7) * 0.1})
>>> scorer.score_one({"temp": 20.3}) < 0.9 < scorer.score_one({"temp": 25.0})
True
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping

WINDOW = 500
# A metric says nothing until it has this many values (and steps) to compare with.
MIN_VALUES = 10
# score = 1 - exp(-z / Z_SCALE): 0.9 at z = 4.6, 0.99 at z = 9.2. Noise rarely passes z = 5,
# so the default threshold of 0.99 alerts on what no noise explains.
Z_SCALE = 2.0
# A flat line as long as the longest recent repeat scores this z, and grows with its length.
FLAT_Z = 3.0
# A silence this many times the usual interval breaks the comparison with the previous value.
GAP_FACTOR = 5.0
_INTERVALS = 101
# Spreads are never taken below this share of the metric's size, so a metric that never
# changed before does not turn a rounding difference into an alert.
_RELATIVE_FLOOR = 1e-3
# The fading range and largest step remember about three days (or 2,000 rows without times).
_MEMORY_S = 3 * 86400.0
_FADE_PER_ROW = math.exp(-1 / 2000)
# A step up to this share beyond the largest recent one is what the metric does.
_ROOM = 1.2
_IQR_SIGMA = 1.349  # interquartile range of a normal distribution, in standard deviations
_P90_SIGMA = 3.290  # its 5th to 95th percentile range


class _Baseline:
    """The last `size` values of one quantity, also kept sorted for quantiles."""

    __slots__ = ("_order", "_size", "_sorted")

    def __init__(self, size: int) -> None:
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        self._size = size

    def __len__(self) -> int:
        return len(self._order)

    def add(self, value: float) -> float | None:
        """Take a value in; return the one that fell out of the window, if any."""
        self._order.append(value)
        bisect.insort(self._sorted, value)
        if len(self._order) <= self._size:
            return None
        old = self._order.popleft()
        del self._sorted[bisect.bisect_left(self._sorted, old)]
        return old

    def quantile(self, q: float) -> float:
        """The q-quantile, interpolating between neighbours."""
        s = self._sorted
        pos = q * (len(s) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    def median_and_scale(self, floor: float) -> tuple[float, float]:
        """Median and a robust standard deviation, at least `floor`.

        The deviation comes from the interquartile range or, where that is (next to) zero, as
        for a quantised metric that mostly repeats, from the 5th to 95th percentile range.
        """
        med = self.quantile(0.5)
        scale = (self.quantile(0.75) - self.quantile(0.25)) / _IQR_SIGMA
        if scale < floor:
            scale = (self.quantile(0.95) - self.quantile(0.05)) / _P90_SIGMA
        return med, max(scale, floor)


class _Track:
    """What the scorer remembers of one metric."""

    __slots__ = (
        "big_step",
        "changes",
        "falls",
        "high",
        "intervals",
        "level",
        "longest",
        "low",
        "prev",
        "prev_t",
        "quantum",
        "rises",
        "run",
        "runs",
        "runs_total",
    )

    def __init__(self, window: int) -> None:
        self.level = _Baseline(window)
        self.changes = _Baseline(window)
        self.intervals = _Baseline(_INTERVALS)
        self.prev: float | None = None
        self.prev_t: float | None = None
        self.rises = self.falls = 0  # steps up and down among `changes`
        self.run = 0  # readings in the current run of one exact value
        self.runs: deque[int] = deque()  # lengths of the finished runs still in the window
        self.runs_total = 0
        self.longest = 0
        # The sensor's resolution: the smallest step it has taken. One step of it is never
        # extreme, however rarely the metric moves.
        self.quantum = math.inf
        # The largest step and the range of the last days, fading (by time when rows carry
        # it): what a daily cycle does (lights on at eight) is no anomaly the next day.
        self.big_step = 0.0
        self.low, self.high = math.inf, -math.inf

    def after_gap(self, t: float | None) -> bool:
        """Whether a value at `t` comes after a silence too long to compare it with the last."""
        if t is None or self.prev_t is None or len(self.intervals) < MIN_VALUES:
            return False
        return t - self.prev_t > GAP_FACTOR * self.intervals.quantile(0.5)

    def judge(self, name: str, v: float, t: float | None) -> tuple[float, str]:
        """The largest z of the three checks and what it means in words."""
        if len(self.level) < MIN_VALUES:
            return 0.0, ""
        found: list[tuple[float, str]] = []
        counter = len(self.changes) >= MIN_VALUES and self.falls == 0 and self.rises > 0
        # Both spreads are floored relative to the metric's size, not its steps' size.
        floor = _RELATIVE_FLOOR * max(1.0, abs(self.level.quantile(0.5)))
        quantum = self.quantum if math.isfinite(self.quantum) else 0.0
        floor = max(floor, quantum)
        if not counter and not self.low <= v <= self.high:
            med, scale = self.level.median_and_scale(floor)
            found.append((abs(v - med) / scale, f"{name} {v:.4g} against a usual {med:.4g}"))
        if self.prev is not None and len(self.changes) >= MIN_VALUES and not self.after_gap(t):
            med, scale = self.changes.median_and_scale(floor)
            step = v - self.prev
            if abs(step) > max(1.5 * quantum, _ROOM * self.big_step):
                found.append((abs(step - med) / scale, f"{name} moved {step:+.4g} in one reading"))
        if self.runs and v == self.prev:
            run = self.run + 1
            z = FLAT_Z * (run - 1) / max(self.longest - 1, 1)
            found.append((z, f"{name} stuck at {v:.4g} for {run} readings"))
        return max(found, default=(0.0, ""))

    def learn(self, v: float, t: float | None) -> None:
        """Take the value in."""
        fade = _FADE_PER_ROW
        if t is not None and self.prev_t is not None:
            fade = math.exp(-max(t - self.prev_t, 0.0) / _MEMORY_S)
        mid = 0.5 * (self.low + self.high) if math.isfinite(self.low) else v
        # The range shrinks towards its middle as it fades, then widens to take the value.
        self.low = min(mid - (mid - self.low) * fade if math.isfinite(self.low) else v, v)
        self.high = max(mid + (self.high - mid) * fade if math.isfinite(self.high) else v, v)
        self.big_step *= fade
        if self.prev is not None:
            if v != self.prev:
                self.quantum = min(self.quantum, abs(v - self.prev))
            if not self.after_gap(t):
                step = v - self.prev
                self.big_step = max(self.big_step, abs(step))
                self._count(step, +1)
                old = self.changes.add(step)
                if old is not None:
                    self._count(old, -1)
            if v == self.prev:
                self.run += 1
            else:
                self._finish_run()
        else:
            self.run = 1
        self.level.add(v)
        if t is not None and self.prev_t is not None:
            self.intervals.add(t - self.prev_t)
        self.prev = v
        if t is not None:
            self.prev_t = t
        # Finished runs older than the window are forgotten: a flat line that outlasts the
        # window has become the metric's normal, as its level baseline has.
        while self.runs and self.runs_total + self.run > len(self.level):
            gone = self.runs.popleft()
            self.runs_total -= gone
            if gone == self.longest:
                self.longest = max(self.runs, default=0)

    def _count(self, step: float, sign: int) -> None:
        if step > 0:
            self.rises += sign
        elif step < 0:
            self.falls += sign

    def _finish_run(self) -> None:
        self.runs.append(self.run)
        self.runs_total += self.run
        self.longest = max(self.longest, self.run)
        self.run = 1


class RobustZScore:
    """How unusual a row of metrics is against each metric's own recent values, in [0, 1].

    ``score_one`` never changes the scorer; ``learn_one`` takes the row in. Give both the
    row's time (epoch seconds) as `t` so that a long silence is not read as a jump.
    Deterministic: the same rows in the same order give the same scores.
    """

    def __init__(self, *, window: int = WINDOW) -> None:
        if window < MIN_VALUES:
            raise ValueError(f"the window must hold at least {MIN_VALUES} values")
        self.window = window
        self._tracks: dict[str, _Track] = {}

    def learn_one(self, x: Mapping[str, float], *, t: float | None = None) -> None:
        """Take one row in (missing and non-finite values are skipped)."""
        for name, v in x.items():
            if math.isfinite(v):
                track = self._tracks.get(name)
                if track is None:
                    track = self._tracks[name] = _Track(self.window)
                track.learn(v, t)

    def score_one(self, x: Mapping[str, float], *, t: float | None = None) -> float:
        """Score in [0, 1] of one row; high means anomalous, 0 until a metric has history."""
        return self.explain_one(x, t=t)[0]

    def explain_one(self, x: Mapping[str, float], *, t: float | None = None) -> tuple[float, str]:
        """The row's score and the metric and check behind it, in words."""
        z, words = 0.0, ""
        for name, v in x.items():
            track = self._tracks.get(name)
            if track is not None and math.isfinite(v):
                z, words = max((z, words), track.judge(name, v, t))
        return 1.0 - math.exp(-z / Z_SCALE), words
