"""The layout of the live scorer's compact state, and the window features computed from it.

``models.state.FleetState`` keeps, per device, the rings and scalars laid out here; to score a
batch it gathers the devices' rows into a ``Gathered`` and calls ``features``, which follows
``models.features.window_features`` definition by definition (a test holds the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.buckets import BUCKET_SECONDS, Matrix
from models.features import (
    _DRAIN_SPAN,
    BUCKETS_PER_HOUR,
    DAY_HOURS,
    FEATURES,
    NOT_DRAINING_H,
    W2H,
    W6H,
    W24H,
    W30,
)

HOUR_SECONDS = BUCKET_SECONDS * BUCKETS_PER_HOUR
FINE, MID, SHORT, HOURS = W6H + W30, W2H + W30, W30, DAY_HOURS + 1

# Columns of each ring, in two arrays of the same slots: values (float32) and counts (uint16,
# exact, saturating at COUNT_MAX). The NaN values start empty as NaN (extremes, "first" values);
# the rest start at 0.
FINE_COLS = ("sig_sum",)
FINE_COUNTS = ("sig_n",)
# Event counts sit in rings of their own (``models.state``: most devices have none).
FINE_EVENTS = ("resets", "crash", "power")
MID_COLS = ("sig_min", "tmp_sum", "tmp_min", "tmp_max", "gap_max")
MID_COUNTS = ("n", "tmp_n", "tmp_same")
MID_EVENTS = ("link", "temp_err")
HOUR_COLS = ("sig_sum", "tmp_sum")
HOUR_COUNTS = ("n", "sig_n", "tmp_n")
HOUR_EVENTS = ("resets",)
SCALARS = (
    "head",  # newest bucket index
    "first",  # first bucket index
    "p_ts",  # the previous reading (NaN fields: it did not report them)
    "p_tmp",
    "p_up",
    "p_rc",
    "bat_b",  # bucket of the newest battery reading, its value and time
    "bat",
    "bat_ts",
    "bat_v",  # the last voltage of that bucket
    "cur_v",  # the last voltage of the newest bucket
)
_NAN = {"sig_min", "tmp_min", "tmp_max", "gap_max", "tmp_step"}
# Only devices that report a battery have battery rings (``models.state``): per five-minute
# slot of the fine ring and per hour slot, the first battery reading (float32, NaN: none) and
# its offset into the slot in a uint16 of these units (at most 30,000 and 36,000: exact to
# 5 ms and 50 ms, against drain spans of an hour and more).
FINE_OFF_UNIT, HOUR_OFF_UNIT = 0.01, 0.1
F_SIG_SUM = 0
FC_SIG_N = 0
(E_RESETS, E_CRASH, E_POWER) = range(3)
(M_SIG_MIN, M_TMP_SUM, M_TMP_MIN, M_TMP_MAX, M_GAP) = range(5)
(MC_N, MC_TMP_N, MC_SAME) = range(3)
(ME_LINK, ME_TEMP) = range(2)
(H_SIG_SUM, H_TMP_SUM) = range(2)
(HC_N, HC_SIG_N, HC_TMP_N) = range(3)
HE_RESETS = 0
(S_HEAD, S_FIRST, S_TS, S_TMP, S_UP, S_RC, S_BAT_B, S_BAT, S_BAT_TS, S_BAT_V, S_CUR_V) = range(11)
# A bucket or hour stops counting at this many readings (a uint16 would wrap around): under
# the default rate limit (settings.device_rate_per_minute, device_rate_burst) none reaches it.
COUNT_MAX = int(np.iinfo(np.uint16).max)

F32 = npt.NDArray[np.float32]
U16 = npt.NDArray[np.uint16]
Ring = npt.NDArray[Any]  # a ring of values or of counts
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Gathered:
    """The state of the devices being scored, copied together (device k is row k)."""

    fine: F32
    fine_n: U16
    mid: F32
    mid_n: U16
    short: F32
    hour: F32
    hour_n: U16
    sc: Matrix
    fine_bat: F32  # (device, FINE): NaN where the device has no battery ring
    fine_off: U16
    hour_bat: F32  # (device, HOURS)
    hour_off: U16
    fine_ev: U16  # (device, FINE, FINE_EVENTS): 0 where the device has no event rings
    mid_ev: U16  # (device, MID, MID_EVENTS)
    hour_ev: U16  # (device, HOURS, HOUR_EVENTS)
    fine_rc: F32  # (device, FINE, 1): the reconnects, with the events


def features(st: Gathered) -> Matrix:
    """Feature rows (FEATURES order) of the newest bucket of each gathered device."""
    sc = st.sc
    rows = np.arange(len(sc))
    t = sc[:, S_HEAD].astype(np.int64)
    first = sc[:, S_FIRST].astype(np.int64)
    hour = t // BUCKETS_PER_HOUR

    def window(ring: Ring, size: int, col: int, w: int, back: int = 0) -> Ring:
        buckets = t[:, None] - back - np.arange(w)[None, :]  # newest first
        return ring[rows[:, None], buckets % size, col]  # type: ignore[no-any-return]

    def total(ring: Ring, size: int, col: int, w: int, back: int = 0) -> Matrix:
        return np.asarray(window(ring, size, col, w, back).sum(axis=1, dtype=np.float64))

    def extreme(ring: F32, size: int, col: int, w: int, *, high: bool) -> Matrix:
        reduce = np.fmax if high else np.fmin
        return reduce.reduce(window(ring, size, col, w).astype(np.float64), axis=1)  # type: ignore[no-any-return]

    def day(ring: Ring, col: int) -> Matrix:
        hours = hour[:, None] - np.arange(DAY_HOURS)[None, :]
        return ring[rows[:, None], hours % HOURS, col].astype(np.float64).sum(axis=1)  # type: ignore[no-any-return]

    def span(w: int) -> Matrix:
        return (t - np.maximum(t - w + 1, first) + 1).astype(np.float64)

    fine, fine_n, mid, mid_n = st.fine, st.fine_n, st.mid, st.mid_n
    f: dict[str, Matrix] = {}

    def sig(w: int, back: int = 0) -> Matrix:
        return _div(total(fine, FINE, F_SIG_SUM, w, back), total(fine_n, FINE, FC_SIG_N, w, back))

    def tmp(w: int, back: int = 0) -> Matrix:
        return _div(total(mid, MID, M_TMP_SUM, w, back), total(mid_n, MID, MC_TMP_N, w, back))

    sig24 = _div(day(st.hour, H_SIG_SUM), day(st.hour_n, HC_SIG_N))
    sig30 = sig(W30)
    f["signal_30m"] = sig30
    f["signal_drop_30m"] = sig24 - sig30
    f["signal_drop_2h"] = sig24 - sig(W2H)
    f["signal_drop_6h"] = sig24 - sig(W6H)
    f["signal_dip_2h"] = sig24 - extreme(mid, MID, M_SIG_MIN, W2H, high=False)
    f["signal_fall_2h"] = sig(W30, W2H) - sig30
    f["signal_fall_6h"] = sig(W30, W6H) - sig30
    f["reconnects_30m"] = total(st.fine_rc, FINE, 0, W30)
    f["reconnects_2h"] = total(st.fine_rc, FINE, 0, W2H)
    f["reconnects_6h"] = total(st.fine_rc, FINE, 0, W6H)
    f["link_errors_2h"] = total(st.mid_ev, MID, ME_LINK, W2H)
    day_lo = np.maximum((hour - DAY_HOURS + 1) * BUCKETS_PER_HOUR, first)
    span24 = (t - day_lo + 1).astype(np.float64)
    rate24 = _div(day(st.hour_n, HC_N), span24)
    f["rate_30m"] = _div(_div(total(mid_n, MID, MC_N, W30), span(W30)), rate24)
    f["rate_2h"] = _div(_div(total(mid_n, MID, MC_N, W2H), span(W2H)), rate24)
    usual_gap = _div(np.full(len(rows), float(BUCKET_SECONDS)), rate24)
    f["gap_2h"] = _div(extreme(mid, MID, M_GAP, W2H, high=True), usual_gap)
    f.update(_battery(st, rows, sc, t, hour, day_lo))
    tmp24 = _div(day(st.hour, H_TMP_SUM), day(st.hour_n, HC_TMP_N))
    tmp30 = tmp(W30)
    yest = (hour - DAY_HOURS) % HOURS
    f["temp_30m"] = tmp30
    f["temp_excess_24h"] = tmp30 - tmp24
    y_sum = st.hour[rows, yest, H_TMP_SUM].astype(np.float64)
    y_n = st.hour_n[rows, yest, HC_TMP_N].astype(np.float64)
    f["temp_vs_yesterday"] = tmp30 - _div(y_sum, y_n)
    f["temp_rise_2h"] = tmp30 - tmp(W30, W2H)
    f["temp_max_excess_2h"] = extreme(mid, MID, M_TMP_MAX, W2H, high=True) - tmp24
    f["temp_step_30m"] = np.fmax.reduce(
        st.short[rows].astype(np.float64), axis=1
    )  # all six slots are the last 30 minutes
    for name, w in (("temp_range_30m", W30), ("temp_range_2h", W2H)):
        f[name] = extreme(mid, MID, M_TMP_MAX, w, high=True) - extreme(
            mid, MID, M_TMP_MIN, w, high=False
        )
    f["temp_repeat_30m"] = total(mid_n, MID, MC_SAME, W30)
    f["temp_repeat_2h"] = total(mid_n, MID, MC_SAME, W2H)
    f["reboots_2h"] = total(st.fine_ev, FINE, E_RESETS, W2H)
    f["reboots_6h"] = total(st.fine_ev, FINE, E_RESETS, W6H)
    f["reboots_24h"] = day(st.hour_ev, HE_RESETS)
    f["crash_errors_6h"] = total(st.fine_ev, FINE, E_CRASH, W6H)
    f["power_errors_6h"] = total(st.fine_ev, FINE, E_POWER, W6H)
    f["overtemp_errors_2h"] = total(st.mid_ev, MID, ME_TEMP, W2H)
    f["history_h"] = span24 * BUCKET_SECONDS / 3600.0
    return np.column_stack([f[name] for name in FEATURES]).astype(np.float64)


def _battery(
    st: Gathered, rows: Ints, sc: Matrix, t: Ints, hour: Ints, day_lo: Ints
) -> dict[str, Matrix]:
    """The battery features, as ``models.features._battery`` defines them."""
    first = sc[:, S_FIRST].astype(np.int64)
    last_b = sc[:, S_BAT_B]  # NaN: never reported a battery
    seen = ~np.isnan(last_b)
    last = np.where(seen, last_b, -1).astype(np.int64)
    out: dict[str, Matrix] = {}
    has = seen & (last >= np.maximum(t - W30 + 1, first))
    out["battery_pct"] = np.where(has, sc[:, S_BAT], np.nan)
    out["battery_v"] = np.where(has, sc[:, S_BAT_V], np.nan)
    k = np.arange(len(rows))
    for name, w in (("drain_2h", W2H), ("drain_6h", W6H), ("drain_24h", W24H)):
        if w == W24H:
            lo = day_lo
            hours = (hour - DAY_HOURS + 1)[:, None] + np.arange(DAY_HOURS)[None, :]  # oldest first
            slots = rows[:, None], hours % HOURS
            bat, base = st.hour_bat[slots], hours * HOUR_SECONDS
            off = st.hour_off[slots] * HOUR_OFF_UNIT
        else:
            lo = np.maximum(t - w + 1, first)
            buckets = (t - w + 1)[:, None] + np.arange(w)[None, :]
            slots = rows[:, None], buckets % FINE
            bat, base = st.fine_bat[slots], buckets * BUCKET_SECONDS
            off = st.fine_off[slots] * FINE_OFF_UNIT
        valid = ~np.isnan(bat)
        any_valid = valid.any(axis=1)
        j = np.argmax(valid, axis=1)  # the oldest slot of the window with a battery reading
        first_bat = bat[k, j].astype(np.float64)
        first_ts = base[k, j].astype(np.float64) + off[k, j].astype(np.float64)
        ok = seen & any_valid & (last >= lo)
        dt = sc[:, S_BAT_TS] - first_ts
        ok &= dt >= w * BUCKET_SECONDS * _DRAIN_SPAN
        drop = first_bat - sc[:, S_BAT]
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


def _div(a: Matrix, b: Matrix) -> Matrix:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)
