"""Compact streaming state of a fleet: only what the window features read, packed per fleet.

A day of five-minute buckets per device (300 rows of 22 aggregates, about 52 KB in float64)
does not fit 100,000 devices on a small machine. Each feature reads only some aggregates over
some windows, so the state keeps each aggregate only as far back as a feature looks, in
float32, in arrays shared by blocks of 1,024 devices (a device is a row, found by a dict),
never in Python objects per device:

- 78 five-minute slots (the 6-hour window and the half hour before it) of the signal sums,
  reconnects, reboots, crash and power errors, and the first battery reading;
- 30 slots (the 2-hour window and the half hour before it) of the reading count, temperature
  sums and extremes, repeats, weakest signal, longest silence, link and heat errors;
- 6 slots (30 minutes) of the largest temperature step;
- 25 clock-hour slots (the day window and the same hour yesterday) of the counts, signal and
  temperature sums, reboots and first battery reading;
- a few float64 scalars: newest and first bucket, the previous reading's fields, the newest
  battery reading and the voltage of its bucket.

That is 1,130 float32 and 11 float64 a device, 4,608 bytes, plus its entry in the index.
Each slot holds one bucket (or hour): slot = index mod ring size, cleared as the newest bucket
moves past it (the layout is in ``models.state_features``). ``FleetState.features`` gathers
the rows of many devices and computes their features at once (``state_features.features``,
following ``models.features.window_features`` definition by definition); the one difference
is float32 storage, so values agree within the tolerance the equality test states, and
counts exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from models.buckets import (
    BUCKET_SECONDS,
    CRASH_CODES,
    LINK_CODES,
    POWER_CODES,
    TEMP_CODES,
    Matrix,
    Sample,
)
from models.features import BUCKETS_PER_HOUR
from models.state_features import (
    _NAN,
    F32,
    F_BAT,
    F_BAT_OFF,
    F_CRASH,
    F_POWER,
    F_RECONN,
    F_RESETS,
    F_SIG_N,
    F_SIG_SUM,
    FINE,
    FINE_COLS,
    H_BAT,
    H_BAT_OFF,
    H_N,
    H_RESETS,
    H_SIG_N,
    H_SIG_SUM,
    H_TMP_N,
    H_TMP_SUM,
    HOUR_COLS,
    HOUR_SECONDS,
    HOURS,
    M_GAP,
    M_LINK,
    M_N,
    M_SAME,
    M_SIG_MIN,
    M_TEMP,
    M_TMP_MAX,
    M_TMP_MIN,
    M_TMP_N,
    M_TMP_SUM,
    MID,
    MID_COLS,
    S_BAT,
    S_BAT_B,
    S_BAT_TS,
    S_BAT_V,
    S_CUR_V,
    S_FIRST,
    S_HEAD,
    S_RC,
    S_TMP,
    S_TS,
    S_UP,
    SCALARS,
    SHORT,
    Gathered,
    features,
)

# Devices per block of arrays: a fleet grows a block at a time, so at most one block's worth
# (about 4.6 MB) is allocated beyond the devices seen, and nothing is ever copied to grow.
BLOCK = 1024


def _empty(cols: tuple[str, ...]) -> F32:
    return np.array([np.nan if c in _NAN else 0.0 for c in cols], dtype=np.float32)


_FINE_EMPTY, _MID_EMPTY, _HOUR_EMPTY = _empty(FINE_COLS), _empty(MID_COLS), _empty(HOUR_COLS)


def _low(current: float, value: float) -> float:
    return value if math.isnan(current) or value < current else current


def _high(current: float, value: float) -> float:
    return value if math.isnan(current) or value > current else current


class _Block:
    """The arrays of BLOCK devices (a fleet grows a block at a time: nothing is copied)."""

    __slots__ = ("fine", "hour", "mid", "sc", "short")

    def __init__(self) -> None:
        self.fine = np.repeat(_FINE_EMPTY[None, None, :], BLOCK * FINE, axis=0).reshape(
            BLOCK, FINE, len(FINE_COLS)
        )
        self.mid = np.repeat(_MID_EMPTY[None, None, :], BLOCK * MID, axis=0).reshape(
            BLOCK, MID, len(MID_COLS)
        )
        self.short = np.full((BLOCK, SHORT), np.nan, dtype=np.float32)
        self.hour = np.repeat(_HOUR_EMPTY[None, None, :], BLOCK * HOURS, axis=0).reshape(
            BLOCK, HOURS, len(HOUR_COLS)
        )
        self.sc = np.full((BLOCK, len(SCALARS)), np.nan, dtype=np.float64)

    @property
    def nbytes(self) -> int:
        """Bytes of the block's arrays."""
        return sum(a.nbytes for a in (self.fine, self.mid, self.short, self.hour, self.sc))


class FleetState:
    """Every device's compact window state; readings of a device must come in time order."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._blocks: list[_Block] = []
        self._free: list[int] = []  # rows of discarded devices, reused before new ones
        self._rows = 0  # rows ever handed out

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._index

    @property
    def nbytes(self) -> int:
        """Bytes of the state's arrays (whole blocks, not only the devices seen)."""
        return sum(b.nbytes for b in self._blocks)

    def _slot(self, device_id: str) -> tuple[_Block, int]:
        i = self._index.get(device_id)
        if i is None:
            if self._free:
                i = self._free.pop()
            else:
                i, self._rows = self._rows, self._rows + 1
                if i >= len(self._blocks) * BLOCK:
                    self._blocks.append(_Block())
            self._index[device_id] = i
        return self._blocks[i // BLOCK], i % BLOCK

    def _find(self, device_id: str) -> tuple[_Block, int] | None:
        i = self._index.get(device_id)
        return None if i is None else (self._blocks[i // BLOCK], i % BLOCK)

    def _scalar(self, device_id: str, col: int) -> float | None:
        found = self._find(device_id)
        value = np.nan if found is None else float(found[0].sc[found[1], col])
        return None if math.isnan(value) else value

    def head(self, device_id: str) -> int | None:
        """Bucket index of the device's newest reading (None if it has none)."""
        head = self._scalar(device_id, S_HEAD)
        return None if head is None else int(head)

    def last_ts(self, device_id: str) -> float | None:
        """Epoch seconds of the device's newest reading folded in."""
        return self._scalar(device_id, S_TS)

    def reset(self, device_id: str) -> None:
        """Forget a device's state (before refolding its history in time order)."""
        found = self._find(device_id)
        if found is not None:
            blk, i = found
            blk.fine[i], blk.mid[i], blk.short[i] = _FINE_EMPTY, _MID_EMPTY, np.nan
            blk.hour[i], blk.sc[i] = _HOUR_EMPTY, np.nan

    def discard(self, device_id: str) -> None:
        """Forget a device and free its row for another (a device now scored elsewhere)."""
        if device_id in self._index:
            self.reset(device_id)
            self._free.append(self._index.pop(device_id))

    def add(self, device_id: str, s: Sample) -> bool:
        """Fold one reading in; False (and nothing changes) when older than the newest."""
        blk, i = self._slot(device_id)
        sc = blk.sc[i]
        prev_ts = float(sc[S_TS])
        has_prev = not math.isnan(prev_ts)
        if has_prev and s.ts <= prev_ts:
            return False
        b = math.floor(s.ts / BUCKET_SECONDS)
        h = b // BUCKETS_PER_HOUR
        head = float(sc[S_HEAD])
        if math.isnan(head):
            sc[S_FIRST] = b
        elif b > head:
            _advance(blk, i, int(head), b)
        sc[S_HEAD] = b
        fine, mid, hour = blk.fine[i, b % FINE], blk.mid[i, b % MID], blk.hour[i, h % HOURS]
        mid[M_N] += 1
        hour[H_N] += 1
        if s.signal is not None:
            fine[F_SIG_N] += 1
            fine[F_SIG_SUM] += s.signal
            hour[H_SIG_N] += 1
            hour[H_SIG_SUM] += s.signal
            mid[M_SIG_MIN] = _low(float(mid[M_SIG_MIN]), s.signal)
        if s.volts is not None:
            sc[S_CUR_V] = s.volts
        if s.battery is not None:
            if math.isnan(fine[F_BAT]):
                fine[F_BAT], fine[F_BAT_OFF] = s.battery, s.ts - b * BUCKET_SECONDS
            if math.isnan(hour[H_BAT]):
                hour[H_BAT], hour[H_BAT_OFF] = s.battery, s.ts - h * HOUR_SECONDS
            sc[S_BAT_B], sc[S_BAT], sc[S_BAT_TS] = b, s.battery, s.ts
        if sc[S_BAT_B] == b:  # the newest battery bucket's voltage is its last one
            sc[S_BAT_V] = sc[S_CUR_V]
        if s.temp is not None:
            mid[M_TMP_N] += 1
            mid[M_TMP_SUM] += s.temp
            mid[M_TMP_MIN] = _low(float(mid[M_TMP_MIN]), s.temp)
            mid[M_TMP_MAX] = _high(float(mid[M_TMP_MAX]), s.temp)
            hour[H_TMP_N] += 1
            hour[H_TMP_SUM] += s.temp
        if has_prev:
            p_tmp, p_up, p_rc = float(sc[S_TMP]), float(sc[S_UP]), float(sc[S_RC])
            if s.temp is not None and not math.isnan(p_tmp):
                mid[M_SAME] += s.temp == p_tmp
                j = b % SHORT
                blk.short[i, j] = _high(float(blk.short[i, j]), abs(s.temp - p_tmp))
            if s.uptime is not None and not math.isnan(p_up) and s.uptime < p_up:
                fine[F_RESETS] += 1
                hour[H_RESETS] += 1
            if s.reconnects is not None and not math.isnan(p_rc):
                step = s.reconnects - p_rc
                fine[F_RECONN] += step if step >= 0 else s.reconnects
            mid[M_GAP] = _high(float(mid[M_GAP]), s.ts - prev_ts)
        if s.codes:
            mid[M_LINK] += bool(s.codes & LINK_CODES)
            fine[F_CRASH] += bool(s.codes & CRASH_CODES)
            fine[F_POWER] += bool(s.codes & POWER_CODES)
            mid[M_TEMP] += bool(s.codes & TEMP_CODES)
        sc[S_TS] = s.ts
        sc[S_TMP] = np.nan if s.temp is None else s.temp
        sc[S_UP] = np.nan if s.uptime is None else s.uptime
        sc[S_RC] = np.nan if s.reconnects is None else s.reconnects
        return True

    def features(self, device_ids: Sequence[str]) -> Matrix:
        """Feature rows (FEATURES order) of the newest bucket of each device, in one pass."""
        rows = np.array([self._index[d] for d in device_ids], dtype=np.int64)
        blk_of, at = rows // BLOCK, rows % BLOCK
        k = len(rows)
        got = Gathered(
            np.empty((k, FINE, len(FINE_COLS)), dtype=np.float32),
            np.empty((k, MID, len(MID_COLS)), dtype=np.float32),
            np.empty((k, SHORT), dtype=np.float32),
            np.empty((k, HOURS, len(HOUR_COLS)), dtype=np.float32),
            np.empty((k, len(SCALARS)), dtype=np.float64),
        )
        for b in np.unique(blk_of):
            sel = blk_of == b
            blk, idx = self._blocks[int(b)], at[sel]
            got.fine[sel], got.mid[sel], got.short[sel] = (
                blk.fine[idx],
                blk.mid[idx],
                blk.short[idx],
            )
            got.hour[sel], got.sc[sel] = blk.hour[idx], blk.sc[idx]
        return features(got)


def _advance(blk: _Block, i: int, old: int, new: int) -> None:
    """Clear the slots of the buckets (and hours) after `old` up to `new`."""
    for b in range(old + 1, min(new, old + FINE) + 1):
        blk.fine[i, b % FINE] = _FINE_EMPTY
    for b in range(old + 1, min(new, old + MID) + 1):
        blk.mid[i, b % MID] = _MID_EMPTY
    for b in range(old + 1, min(new, old + SHORT) + 1):
        blk.short[i, b % SHORT] = np.nan
    h_old, h_new = old // BUCKETS_PER_HOUR, new // BUCKETS_PER_HOUR
    for h in range(h_old + 1, min(h_new, h_old + HOURS) + 1):
        blk.hour[i, h % HOURS] = _HOUR_EMPTY
    blk.sc[i, S_CUR_V] = np.nan
