"""Compact streaming state of a fleet: only what the window features read, packed per fleet.

A day of five-minute buckets per device (300 rows of 22 aggregates, about 52 KB in float64)
does not fit 100,000 devices on a small machine. Each feature reads only some aggregates over
some windows, so the state keeps each aggregate only as far back as a feature looks, sums and
values in float32 and counts in uint16 (exact; a bucket or hour stops counting at 65,535
readings, which the default rate limit never lets a device reach), in arrays shared by blocks
of 1,024 devices (a device is a row, found by a dict), never in Python objects per device:

- 78 five-minute slots (the 6-hour window and the half hour before it) of the signal sums,
  reconnects, reboots, crash and power errors;
- 30 slots (the 2-hour window and the half hour before it) of the reading count, temperature
  sums and extremes, repeats, weakest signal, longest silence, link and heat errors;
- 6 slots (30 minutes) of the largest temperature step;
- 25 clock-hour slots (the day window and the same hour yesterday) of the counts, signal and
  temperature sums and reboots;
- a few float64 scalars: newest and first bucket, the previous reading's fields, the newest
  battery reading and the voltage of its bucket;
- only for a device that has reported a battery, battery rings in blocks of their own: the
  first battery reading of each of the 78 five-minute and 25 hour slots (float32) and its
  offset into the slot (uint16, ``state_features.FINE_OFF_UNIT``), 618 bytes. A mains-powered
  device has none: its battery features are NaN without them.

That is 362 float32, 562 uint16, 11 float64 and its battery row's number (int32) a device,
2,664 bytes, and 3,282 with battery rings (3,484 for every device when the battery readings
sat in the shared rings, 4,608 when the counts were float32 too), plus its entry in the index.
Each slot holds one bucket (or hour): slot = index mod ring size, cleared as the newest bucket
moves past it (the layout is in ``models.state_features``). ``FleetState.features`` gathers
the rows of many devices and computes their features at once (``state_features.features``,
following ``models.features.window_features`` definition by definition); the one difference
is float32 storage of the values, so they agree within the tolerance the equality test
states, and counts exactly.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

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
    COUNT_MAX,
    F32,
    F_RECONN,
    F_SIG_SUM,
    FC_CRASH,
    FC_POWER,
    FC_RESETS,
    FC_SIG_N,
    FINE,
    FINE_COLS,
    FINE_COUNTS,
    FINE_OFF_UNIT,
    H_SIG_SUM,
    H_TMP_SUM,
    HC_N,
    HC_RESETS,
    HC_SIG_N,
    HC_TMP_N,
    HOUR_COLS,
    HOUR_COUNTS,
    HOUR_OFF_UNIT,
    HOUR_SECONDS,
    HOURS,
    M_GAP,
    M_SIG_MIN,
    M_TMP_MAX,
    M_TMP_MIN,
    M_TMP_SUM,
    MC_LINK,
    MC_N,
    MC_SAME,
    MC_TEMP,
    MC_TMP_N,
    MID,
    MID_COLS,
    MID_COUNTS,
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
# (about 2.7 MB, and 0.6 MB of battery rings) is allocated beyond the devices seen, and nothing is ever copied to grow.
BLOCK = 1024


def _empty(cols: tuple[str, ...]) -> F32:
    return np.array([np.nan if c in _NAN else 0.0 for c in cols], dtype=np.float32)


_FINE_EMPTY, _MID_EMPTY, _HOUR_EMPTY = _empty(FINE_COLS), _empty(MID_COLS), _empty(HOUR_COLS)


# The shape of a device's part of each array of a block (``_Block.arrays`` order), and its type.
_GATHERED: tuple[tuple[tuple[int, ...], type[np.generic]], ...] = (
    ((FINE, len(FINE_COLS)), np.float32),
    ((FINE, len(FINE_COUNTS)), np.uint16),
    ((MID, len(MID_COLS)), np.float32),
    ((MID, len(MID_COUNTS)), np.uint16),
    ((SHORT,), np.float32),
    ((HOURS, len(HOUR_COLS)), np.float32),
    ((HOURS, len(HOUR_COUNTS)), np.uint16),
    ((len(SCALARS),), np.float64),
)
# The battery rings' parts of ``Gathered``, in order, with what a device without them reads.
_BATTERY: tuple[tuple[int, type[np.generic], float], ...] = (
    (FINE, np.float32, np.nan),
    (FINE, np.uint16, 0),
    (HOURS, np.float32, np.nan),
    (HOURS, np.uint16, 0),
)


# How many arrays ``FleetState.export`` returns: the ``Gathered`` parts, the battery rings and
# which devices have them.
EXPORT_PARTS = len(_GATHERED) + len(_BATTERY) + 1


def layout() -> str:
    """The shapes and types of a device's row in each exported array (a checkpoint of
    another layout is not loaded)."""
    shapes = [(shape, np.dtype(t).str) for shape, t in _GATHERED]
    shapes += [((n,), np.dtype(t).str) for n, t, _ in _BATTERY]
    return ",".join("x".join(map(str, shape)) + t for shape, t in shapes)


def _low(current: float, value: float) -> float:
    return value if math.isnan(current) or value < current else current


def _high(current: float, value: float) -> float:
    return value if math.isnan(current) or value > current else current


class _Block:
    """The arrays of BLOCK devices (a fleet grows a block at a time: nothing is copied)."""

    __slots__ = ("bat", "fine", "fine_n", "hour", "hour_n", "mid", "mid_n", "sc", "short")

    def __init__(self) -> None:
        self.fine = np.repeat(_FINE_EMPTY[None, None, :], BLOCK * FINE, axis=0).reshape(
            BLOCK, FINE, len(FINE_COLS)
        )
        self.fine_n = np.zeros((BLOCK, FINE, len(FINE_COUNTS)), dtype=np.uint16)
        self.mid = np.repeat(_MID_EMPTY[None, None, :], BLOCK * MID, axis=0).reshape(
            BLOCK, MID, len(MID_COLS)
        )
        self.mid_n = np.zeros((BLOCK, MID, len(MID_COUNTS)), dtype=np.uint16)
        self.short = np.full((BLOCK, SHORT), np.nan, dtype=np.float32)
        self.hour = np.repeat(_HOUR_EMPTY[None, None, :], BLOCK * HOURS, axis=0).reshape(
            BLOCK, HOURS, len(HOUR_COLS)
        )
        self.hour_n = np.zeros((BLOCK, HOURS, len(HOUR_COUNTS)), dtype=np.uint16)
        self.sc = np.full((BLOCK, len(SCALARS)), np.nan, dtype=np.float64)
        self.bat = np.full(BLOCK, -1, dtype=np.int32)  # the device's battery row; -1: none

    @property
    def nbytes(self) -> int:
        """Bytes of the block's arrays."""
        return sum(a.nbytes for a in self.arrays()) + self.bat.nbytes

    def arrays(self) -> tuple[npt.NDArray[Any], ...]:
        """The block's arrays, in ``Gathered`` order."""
        return (
            self.fine,
            self.fine_n,
            self.mid,
            self.mid_n,
            self.short,
            self.hour,
            self.hour_n,
            self.sc,
        )


class _BatteryBlock:
    """The battery rings of BLOCK battery-powered devices (``_BATTERY`` order)."""

    __slots__ = ("fine", "fine_off", "hour", "hour_off")

    def __init__(self) -> None:
        self.fine = np.full((BLOCK, FINE), np.nan, dtype=np.float32)
        self.fine_off = np.zeros((BLOCK, FINE), dtype=np.uint16)
        self.hour = np.full((BLOCK, HOURS), np.nan, dtype=np.float32)
        self.hour_off = np.zeros((BLOCK, HOURS), dtype=np.uint16)

    def arrays(self) -> tuple[npt.NDArray[Any], ...]:
        """The block's arrays, in ``_BATTERY`` order."""
        return (self.fine, self.fine_off, self.hour, self.hour_off)

    def clear(self, j: int) -> None:
        """Empty row `j`."""
        self.fine[j], self.fine_off[j], self.hour[j], self.hour_off[j] = np.nan, 0, np.nan, 0


class FleetState:
    """Every device's compact window state; readings of a device must come in time order."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._blocks: list[_Block] = []
        self._free: list[int] = []  # rows of discarded devices, reused before new ones
        self._rows = 0  # rows ever handed out
        # Battery rings, for devices that have reported a battery (their own rows and blocks).
        self._bat_blocks: list[_BatteryBlock] = []
        self._bat_free: list[int] = []
        self._bat_rows = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._index

    @property
    def nbytes(self) -> int:
        """Bytes of the state's arrays (whole blocks, not only the devices seen)."""
        blocks = sum(b.nbytes for b in self._blocks)
        return blocks + sum(a.nbytes for b in self._bat_blocks for a in b.arrays())

    def _battery_of(self, blk: _Block, i: int) -> tuple[_BatteryBlock, int]:
        """The battery rings of row `i` of `blk`, given a row on its first battery reading."""
        j = int(blk.bat[i])
        if j < 0:
            if self._bat_free:
                j = self._bat_free.pop()
            else:
                j, self._bat_rows = self._bat_rows, self._bat_rows + 1
                if j >= len(self._bat_blocks) * BLOCK:
                    self._bat_blocks.append(_BatteryBlock())
            blk.bat[i] = j
        return self._bat_blocks[j // BLOCK], j % BLOCK

    def _slot(self, device_id: str) -> tuple[_Block, int]:
        i = self._index.get(device_id)
        if i is None:
            if self._free:
                i = self._free.pop()
            else:
                i, self._rows = self._rows, self._rows + 1
                if i >= len(self._blocks) * BLOCK:
                    self._blocks.append(_Block())
            # Interned: the detectors' rows and the model map key the same ids.
            self._index[sys.intern(device_id)] = i
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
            blk.fine_n[i], blk.mid_n[i], blk.hour_n[i] = 0, 0, 0
            j = int(blk.bat[i])
            if j >= 0:
                self._bat_blocks[j // BLOCK].clear(j % BLOCK)
                self._bat_free.append(j)
                blk.bat[i] = -1

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
            j = int(blk.bat[i])
            if j >= 0:
                _advance_battery(self._bat_blocks[j // BLOCK], j % BLOCK, int(head), b)
        sc[S_HEAD] = b
        fine, mid, hour = blk.fine[i, b % FINE], blk.mid[i, b % MID], blk.hour[i, h % HOURS]
        fine_n, mid_n, hour_n = (
            blk.fine_n[i, b % FINE],
            blk.mid_n[i, b % MID],
            blk.hour_n[i, h % HOURS],
        )
        # Every count of a bucket (an hour) is at most its readings, each count growing by one
        # a reading at most: while the readings are below COUNT_MAX no count can pass it (a
        # uint16 would wrap around); a full bucket or hour counts nothing more.
        in_b, in_h = bool(mid_n[MC_N] < COUNT_MAX), bool(hour_n[HC_N] < COUNT_MAX)
        if in_b:
            mid_n[MC_N] += 1
        if in_h:
            hour_n[HC_N] += 1
        if s.signal is not None:
            if in_b:
                fine_n[FC_SIG_N] += 1
            fine[F_SIG_SUM] += s.signal
            if in_h:
                hour_n[HC_SIG_N] += 1
            hour[H_SIG_SUM] += s.signal
            mid[M_SIG_MIN] = _low(float(mid[M_SIG_MIN]), s.signal)
        if s.volts is not None:
            sc[S_CUR_V] = s.volts
        if s.battery is not None:
            bb, j = self._battery_of(blk, i)
            if math.isnan(bb.fine[j, b % FINE]):
                bb.fine[j, b % FINE] = s.battery
                bb.fine_off[j, b % FINE] = round((s.ts - b * BUCKET_SECONDS) / FINE_OFF_UNIT)
            if math.isnan(bb.hour[j, h % HOURS]):
                bb.hour[j, h % HOURS] = s.battery
                bb.hour_off[j, h % HOURS] = round((s.ts - h * HOUR_SECONDS) / HOUR_OFF_UNIT)
            sc[S_BAT_B], sc[S_BAT], sc[S_BAT_TS] = b, s.battery, s.ts
        if sc[S_BAT_B] == b:  # the newest battery bucket's voltage is its last one
            sc[S_BAT_V] = sc[S_CUR_V]
        if s.temp is not None:
            if in_b:
                mid_n[MC_TMP_N] += 1
            mid[M_TMP_SUM] += s.temp
            mid[M_TMP_MIN] = _low(float(mid[M_TMP_MIN]), s.temp)
            mid[M_TMP_MAX] = _high(float(mid[M_TMP_MAX]), s.temp)
            if in_h:
                hour_n[HC_TMP_N] += 1
            hour[H_TMP_SUM] += s.temp
        if has_prev:
            p_tmp, p_up, p_rc = float(sc[S_TMP]), float(sc[S_UP]), float(sc[S_RC])
            if s.temp is not None and not math.isnan(p_tmp):
                if in_b:
                    mid_n[MC_SAME] += s.temp == p_tmp
                j = b % SHORT
                blk.short[i, j] = _high(float(blk.short[i, j]), abs(s.temp - p_tmp))
            if s.uptime is not None and not math.isnan(p_up) and s.uptime < p_up:
                if in_b:
                    fine_n[FC_RESETS] += 1
                if in_h:
                    hour_n[HC_RESETS] += 1
            if s.reconnects is not None and not math.isnan(p_rc):
                step = s.reconnects - p_rc
                fine[F_RECONN] += step if step >= 0 else s.reconnects
            mid[M_GAP] = _high(float(mid[M_GAP]), s.ts - prev_ts)
        if s.codes and in_b:
            mid_n[MC_LINK] += bool(s.codes & LINK_CODES)
            fine_n[FC_CRASH] += bool(s.codes & CRASH_CODES)
            fine_n[FC_POWER] += bool(s.codes & POWER_CODES)
            mid_n[MC_TEMP] += bool(s.codes & TEMP_CODES)
        sc[S_TS] = s.ts
        sc[S_TMP] = np.nan if s.temp is None else s.temp
        sc[S_UP] = np.nan if s.uptime is None else s.uptime
        sc[S_RC] = np.nan if s.reconnects is None else s.reconnects
        return True

    def features(self, device_ids: Sequence[str]) -> Matrix:
        """Feature rows (FEATURES order) of the newest bucket of each device, in one pass."""
        parts, bat, _ = self._gather(device_ids)
        return features(Gathered(*parts, *bat))

    def export(self, device_ids: Sequence[str]) -> list[npt.NDArray[Any]]:
        """These devices' state, as arrays of a row a device (``restore`` takes them back):
        the ``Gathered`` parts in order, then whether each has battery rings."""
        parts, bat, has = self._gather(device_ids)
        return [*parts, *bat, has]

    def restore(self, device_ids: Sequence[str], arrays: Sequence[npt.NDArray[Any]]) -> None:
        """Give these devices the state `export` returned (their rows made as needed)."""
        n = len(_GATHERED)
        parts, bat, has = arrays[:n], arrays[n : n + len(_BATTERY)], arrays[-1]
        for k, device_id in enumerate(device_ids):
            self.reset(device_id)
            blk, i = self._slot(device_id)
            for a, part in zip(blk.arrays(), parts, strict=True):
                a[i] = part[k]
            if has[k]:
                bb, j = self._battery_of(blk, i)
                for a, part in zip(bb.arrays(), bat, strict=True):
                    a[j] = part[k]

    def _gather(
        self, device_ids: Sequence[str]
    ) -> tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]], npt.NDArray[np.bool_]]:
        """The devices' rows of every array copied together (device k is row k): the
        ``Gathered`` parts, the battery rings (empty where a device has none) and which
        devices have battery rings."""
        rows = np.array([self._index[d] for d in device_ids], dtype=np.int64)
        blk_of, at = rows // BLOCK, rows % BLOCK
        k = len(rows)
        parts = [np.empty((k, *shape), dtype=dtype) for shape, dtype in _GATHERED]
        bat_rows = np.empty(k, dtype=np.int64)
        for b in np.unique(blk_of):
            sel = blk_of == b
            idx = at[sel]
            blk = self._blocks[int(b)]
            for part, a in zip(parts, blk.arrays(), strict=True):
                part[sel] = a[idx]
            bat_rows[sel] = blk.bat[idx]
        # A device without battery rings reads them empty (NaN: it never reported one).
        bat = [np.full((k, n), empty, dtype=dtype) for n, dtype, empty in _BATTERY]
        has = np.flatnonzero(bat_rows >= 0)
        bat_blk, bat_at = bat_rows[has] // BLOCK, bat_rows[has] % BLOCK
        for b in np.unique(bat_blk):
            sel = bat_blk == b
            for part, a in zip(bat, self._bat_blocks[int(b)].arrays(), strict=True):
                part[has[sel]] = a[bat_at[sel]]
        return parts, bat, bat_rows >= 0


def _advance(blk: _Block, i: int, old: int, new: int) -> None:
    """Clear the slots of the buckets (and hours) after `old` up to `new`."""
    for b in range(old + 1, min(new, old + FINE) + 1):
        blk.fine[i, b % FINE] = _FINE_EMPTY
        blk.fine_n[i, b % FINE] = 0
    for b in range(old + 1, min(new, old + MID) + 1):
        blk.mid[i, b % MID] = _MID_EMPTY
        blk.mid_n[i, b % MID] = 0
    for b in range(old + 1, min(new, old + SHORT) + 1):
        blk.short[i, b % SHORT] = np.nan
    h_old, h_new = old // BUCKETS_PER_HOUR, new // BUCKETS_PER_HOUR
    for h in range(h_old + 1, min(h_new, h_old + HOURS) + 1):
        blk.hour[i, h % HOURS] = _HOUR_EMPTY
        blk.hour_n[i, h % HOURS] = 0
    blk.sc[i, S_CUR_V] = np.nan


def _advance_battery(bb: _BatteryBlock, j: int, old: int, new: int) -> None:
    """``_advance`` for the battery rings of row `j` of `bb`."""
    for b in range(old + 1, min(new, old + FINE) + 1):
        bb.fine[j, b % FINE], bb.fine_off[j, b % FINE] = np.nan, 0
    h_old, h_new = old // BUCKETS_PER_HOUR, new // BUCKETS_PER_HOUR
    for h in range(h_old + 1, min(h_new, h_old + HOURS) + 1):
        bb.hour[j, h % HOURS], bb.hour_off[j, h % HOURS] = np.nan, 0
