"""Window features of a device, computed from its five-minute buckets.

``window_features`` serves training (every bucket of a device's stored history) and the
backtest (the newest bucket of a ``DeviceBuckets`` ring); the live scorer computes the same
features from compact per-device state (``models.state``), and a test holds the three to the
same values. A feature at bucket ``t`` looks only at buckets ``t - 299 .. t``, cut at the
device's first bucket. Windows: 30 minutes (6 buckets), 2 hours (24), 6 hours (72), and the day:
the 24 clock hours (UTC) ending with the current one, so from 23 h 5 min to 24 h long. The day
window is aligned on whole hours so that the live scorer can keep it as 25 hourly sums instead
of 288 five-minute buckets; "yesterday" is the same clock hour a day earlier, for the same reason.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.base import FeatureSet
from models.buckets import BUCKET_SECONDS, COL, HISTORY_BUCKETS, Matrix

W30, W2H, W6H, W24H = 6, 24, 72, 288
BUCKETS_PER_HOUR = 12
# The day window: the current clock hour and the 23 before it.
DAY_HOURS = 24
# A drain rate needs battery readings this far apart within its window (a third of it).
_DRAIN_SPAN = 1 / 3
# Hours to empty when the battery is not draining (or charging): "not soon".
NOT_DRAINING_H = 1000.0

FEATURES: tuple[str, ...] = (
    "signal_30m",  # mean signal_dbm
    "signal_drop_30m",  # 24-hour mean minus the window's mean (positive: weaker now)
    "signal_drop_2h",
    "signal_drop_6h",
    "signal_dip_2h",  # 24-hour mean minus the weakest reading of the last 2 hours
    "signal_fall_2h",  # the 30 minutes 2 hours ago minus the last 30 minutes
    "signal_fall_6h",
    "reconnects_30m",
    "reconnects_2h",
    "reconnects_6h",
    "link_errors_2h",
    "rate_30m",  # readings per hour against the 24-hour rate (1 = usual)
    "rate_2h",
    "gap_2h",  # longest silence of the last 2 hours against the usual interval
    "battery_pct",  # newest in the last 30 minutes
    "battery_v",
    "drain_2h",  # % per hour, positive when discharging
    "drain_6h",
    "drain_24h",
    "hours_to_empty",  # battery_pct / drain_6h
    "temp_30m",
    "temp_excess_24h",  # last 30 minutes against the 24-hour mean
    "temp_vs_yesterday",  # against the same clock hour a day earlier (the ambient pattern)
    "temp_rise_2h",
    "temp_max_excess_2h",  # hottest of the last 2 hours against the 24-hour mean
    "temp_step_30m",  # largest change between two readings in 30 minutes
    "temp_range_30m",
    "temp_range_2h",
    "temp_repeat_30m",  # readings repeating the previous temperature exactly
    "temp_repeat_2h",
    "reboots_2h",
    "reboots_6h",
    "reboots_24h",
    "crash_errors_6h",
    "power_errors_6h",
    "overtemp_errors_2h",
    "history_h",  # hours of the device's history the 24-hour window holds (young: less sure)
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}

IntArray = npt.NDArray[np.int64]


class _Windows:
    """Window arithmetic over one device's bucket matrix, cut at row `start`.

    `origin` is the bucket index (from the Unix epoch) of row 0: the day window is aligned on
    clock hours.
    """

    def __init__(self, m: Matrix, rows: IntArray, start: int, origin: int) -> None:
        self.m, self.rows, self.start, self.origin = m, rows, start, origin
        self._sums: dict[str, Matrix] = {}

    def bounds(self, w: int, back: int = 0) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
        """[lo, hi] of the `w`-bucket window ending `back` buckets before each row.

        ``W24H`` means the day window: from the start of the clock hour 23 hours back.
        """
        hi = self.rows - back
        if w == W24H:
            hour_start = (hi + self.origin) // BUCKETS_PER_HOUR * BUCKETS_PER_HOUR - self.origin
            lo = np.maximum(hour_start - (DAY_HOURS - 1) * BUCKETS_PER_HOUR, self.start)
        else:
            lo = np.maximum(hi - w + 1, self.start)
        return lo, hi, hi >= self.start

    def yesterday(self) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
        """[lo, hi] of the clock hour a day before each row's hour, cut at the start."""
        hour_start = (self.rows + self.origin) // BUCKETS_PER_HOUR * BUCKETS_PER_HOUR - self.origin
        lo = hour_start - DAY_HOURS * BUCKETS_PER_HOUR
        hi = lo + BUCKETS_PER_HOUR - 1
        return np.maximum(lo, self.start), hi, hi >= self.start

    def total(self, name: str, w: int, back: int = 0) -> Matrix:
        """Sum of an additive column over the window (0 where the window is empty)."""
        return self.total_in(name, self.bounds(w, back))

    def total_in(self, name: str, span: tuple[IntArray, IntArray, npt.NDArray[np.bool_]]) -> Matrix:
        """Sum of an additive column over explicit [lo, hi] bounds (0 where not `ok`)."""
        if name not in self._sums:
            self._sums[name] = np.concatenate(([0.0], np.cumsum(self.m[:, COL[name]])))
        c = self._sums[name]
        lo, hi, ok = span
        hi_c = np.where(ok, hi, lo - 1)
        return np.where(ok, c[hi_c + 1] - c[np.where(ok, lo, 0)], 0.0)

    def extreme(self, name: str, w: int, *, high: bool) -> Matrix:
        """Max (or min) of a column over the window, ignoring empty buckets."""
        offsets = np.arange(-w + 1, 1)
        idx = self.rows[:, None] + offsets[None, :]
        idx = np.where(idx >= self.start, idx, self.rows[:, None])
        values = self.m[idx, COL[name]]
        reduce = np.fmax if high else np.fmin
        return np.asarray(reduce.reduce(values, axis=1), dtype=np.float64)

    def mean(self, total: str, count: str, w: int, back: int = 0) -> Matrix:
        """Mean of a field over the window from its sum and count columns (NaN if none)."""
        return self.mean_in(total, count, self.bounds(w, back))

    def mean_in(
        self, total: str, count: str, span: tuple[IntArray, IntArray, npt.NDArray[np.bool_]]
    ) -> Matrix:
        """Mean of a field over explicit bounds from its sum and count columns (NaN if none)."""
        n = self.total_in(count, span)
        s = self.total_in(total, span)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, s / np.where(n > 0, n, 1.0), np.nan)

    def span(self, w: int) -> Matrix:
        """Buckets the window really covers (it is cut at the first bucket)."""
        lo, hi, _ = self.bounds(w)
        return (hi - lo + 1).astype(np.float64)


def _ratio(a: Matrix, b: Matrix) -> Matrix:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _battery(win: _Windows) -> dict[str, Matrix]:
    m, rows, start = win.m, win.rows, win.start
    valid = ~np.isnan(m[:, COL["bat_last"]])
    ar = np.arange(len(m))
    last_valid = np.maximum.accumulate(np.where(valid, ar, -1))
    big = len(m) + 1
    next_valid = np.minimum.accumulate(np.where(valid, ar, big)[::-1])[::-1]
    last = last_valid[rows]
    out: dict[str, Matrix] = {}
    lo30, _, _ = win.bounds(W30)
    has = last >= np.maximum(lo30, start)
    safe_last = np.where(last >= 0, last, 0)
    out["battery_pct"] = np.where(has, m[safe_last, COL["bat_last"]], np.nan)
    volts = m[safe_last, COL["volt_last"]]
    out["battery_v"] = np.where(has, volts, np.nan)
    for name, w in (("drain_2h", W2H), ("drain_6h", W6H), ("drain_24h", W24H)):
        lo, _, _ = win.bounds(w)
        first = next_valid[lo]
        ok = (last >= lo) & (first <= rows) & (last >= 0)
        safe_first = np.where(ok, first, 0)
        dt = m[safe_last, COL["bat_last_ts"]] - m[safe_first, COL["bat_first_ts"]]
        ok &= dt >= w * BUCKET_SECONDS * _DRAIN_SPAN
        drop = m[safe_first, COL["bat_first"]] - m[safe_last, COL["bat_last"]]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(ok, drop / np.where(ok, dt, 1.0) * 3600.0, np.nan)
    draining = out["drain_6h"] > 0.05
    with np.errstate(invalid="ignore", divide="ignore"):
        tte = np.where(
            draining, out["battery_pct"] / np.where(draining, out["drain_6h"], 1.0), NOT_DRAINING_H
        )
    out["hours_to_empty"] = np.where(
        np.isnan(out["battery_pct"]), np.nan, np.minimum(tte, NOT_DRAINING_H)
    )
    return out


def window_features(m: Matrix, rows: IntArray, *, origin: int, start: int = 0) -> Matrix:
    """Feature rows (one per entry of `rows`, columns in FEATURES order) of a bucket matrix.

    `m` holds consecutive buckets of one device, oldest first, row 0 being bucket `origin`;
    windows are cut at row `start` (the device's first bucket). Only buckets within
    HISTORY_BUCKETS of a row are read.
    """
    rows = np.asarray(rows, dtype=np.int64)
    win = _Windows(m, rows, start, origin)
    f: dict[str, Matrix] = {}
    sig24 = win.mean("sig_sum", "sig_n", W24H)
    sig30 = win.mean("sig_sum", "sig_n", W30)
    f["signal_30m"] = sig30
    f["signal_drop_30m"] = sig24 - sig30
    f["signal_drop_2h"] = sig24 - win.mean("sig_sum", "sig_n", W2H)
    f["signal_drop_6h"] = sig24 - win.mean("sig_sum", "sig_n", W6H)
    f["signal_dip_2h"] = sig24 - win.extreme("sig_min", W2H, high=False)
    f["signal_fall_2h"] = win.mean("sig_sum", "sig_n", W30, back=W2H) - sig30
    f["signal_fall_6h"] = win.mean("sig_sum", "sig_n", W30, back=W6H) - sig30
    f["reconnects_30m"] = win.total("reconn", W30)
    f["reconnects_2h"] = win.total("reconn", W2H)
    f["reconnects_6h"] = win.total("reconn", W6H)
    f["link_errors_2h"] = win.total("err_link", W2H)
    rate24 = _ratio(win.total("n", W24H), win.span(W24H))
    f["rate_30m"] = _ratio(_ratio(win.total("n", W30), win.span(W30)), rate24)
    f["rate_2h"] = _ratio(_ratio(win.total("n", W2H), win.span(W2H)), rate24)
    usual_gap = _ratio(np.full(len(rows), float(BUCKET_SECONDS)), rate24)
    f["gap_2h"] = _ratio(win.extreme("gap_max", W2H, high=True), usual_gap)
    f.update(_battery(win))
    tmp24 = win.mean("tmp_sum", "tmp_n", W24H)
    tmp30 = win.mean("tmp_sum", "tmp_n", W30)
    f["temp_30m"] = tmp30
    f["temp_excess_24h"] = tmp30 - tmp24
    f["temp_vs_yesterday"] = tmp30 - win.mean_in("tmp_sum", "tmp_n", win.yesterday())
    f["temp_rise_2h"] = tmp30 - win.mean("tmp_sum", "tmp_n", W30, back=W2H)
    f["temp_max_excess_2h"] = win.extreme("tmp_max", W2H, high=True) - tmp24
    f["temp_step_30m"] = win.extreme("tmp_step", W30, high=True)
    for name, w in (("temp_range_30m", W30), ("temp_range_2h", W2H)):
        f[name] = win.extreme("tmp_max", w, high=True) - win.extreme("tmp_min", w, high=False)
    f["temp_repeat_30m"] = win.total("tmp_same", W30)
    f["temp_repeat_2h"] = win.total("tmp_same", W2H)
    f["reboots_2h"] = win.total("resets", W2H)
    f["reboots_6h"] = win.total("resets", W6H)
    f["reboots_24h"] = win.total("resets", W24H)
    f["crash_errors_6h"] = win.total("err_crash", W6H)
    f["power_errors_6h"] = win.total("err_power", W6H)
    f["overtemp_errors_2h"] = win.total("err_temp", W2H)
    f["history_h"] = win.span(W24H) * BUCKET_SECONDS / 3600.0
    return np.column_stack([f[name] for name in FEATURES]).astype(np.float64)


def series_features(m: Matrix, first_bucket: int) -> tuple[IntArray, Matrix]:
    """Features of every bucket of a device's history that holds a reading: (rows, matrix).

    `first_bucket` is the bucket index of the matrix's first row.
    """
    rows = np.flatnonzero(m[:, COL["n"]] > 0).astype(np.int64)
    return rows, window_features(m, rows, origin=first_bucket)


def device_rows(device_id: str, model: str, first_bucket: int, m: Matrix) -> FeatureSet:
    """The feature set of one device's bucket matrix whose first row is `first_bucket`."""
    rows, x = series_features(m, first_bucket)
    n = len(rows)
    return FeatureSet(x, np.full(n, device_id), np.full(n, model), rows + first_bucket)


def latest_features(ring: Matrix, start: int, head: int) -> Matrix:
    """The feature row of the newest bucket (index `head`) of a ring (1 x len(FEATURES))."""
    last = HISTORY_BUCKETS - 1
    return window_features(ring, np.array([last], dtype=np.int64), origin=head - last, start=start)
