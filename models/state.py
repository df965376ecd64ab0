"""Compact streaming state of a fleet: only what the window features read, packed per fleet.

A day of five-minute buckets per device (300 rows of 22 aggregates, about 52 KB in float64)
does not fit 100,000 devices on a small machine. Each feature reads only some aggregates over
some windows, so the state keeps each aggregate only as far back as a feature looks, sums and
values in float32 and counts in uint16 (exact; a bucket or hour stops counting at 65,535
readings, which the default rate limit never lets a device reach), in arrays shared by blocks
of 1,024 devices (a device is a row, found by a dict), never in Python objects per device:

- 78 five-minute slots (the 6-hour window and the half hour before it) of the signal sums and
  counts;
- 30 slots (the 2-hour window and the half hour before it) of the reading count, temperature
  sums and extremes, repeats, weakest signal and longest silence;
- 6 slots (30 minutes) of the largest temperature step;
- 25 clock-hour slots (the day window and the same hour yesterday) of the counts and the
  signal and temperature sums;
- a few float64 scalars: newest and first bucket, the previous reading's fields, the newest
  battery reading and the voltage of its bucket;
- optional rings (``models.rings``), in blocks of their own, only for the devices that need
  them: a device without them reads them empty.
  - Battery rings, made on a device's first battery reading: the first battery reading of
    each of the 78 five-minute and 25 hour slots (float32) and its offset into the slot
    (uint16, ``state_features.FINE_OFF_UNIT``), 618 bytes. A mains-powered device has none.
  - Event rings, made on a device's first restart, reconnect or error code and given back
    once its windows hold none: restarts, crash and power errors (uint16) and reconnects
    (float32) in the 78 five-minute slots, link and heat errors in the 30, restarts in the 25
    hours, 950 bytes.

That is 284 float32, 243 uint16, 11 float64 and two int32 (its optional rows) a device, 1,718
bytes, plus 618 with battery rings and 950 with event rings (3,484 for every device when all
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

from models import rings
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
from models.state_blocks import (
    BATTERY,
    BLOCK,
    EVENTS,
    GATHERED,
    Block,
    advance,
    passed,
)
from models.state_features import (
    COUNT_MAX,
    E_CRASH,
    E_POWER,
    E_RESETS,
    F_SIG_SUM,
    FC_SIG_N,
    FINE,
    FINE_OFF_UNIT,
    H_SIG_SUM,
    H_TMP_SUM,
    HC_N,
    HC_SIG_N,
    HC_TMP_N,
    HE_RESETS,
    HOUR_OFF_UNIT,
    HOUR_SECONDS,
    HOURS,
    M_GAP,
    M_SIG_MIN,
    M_TMP_MAX,
    M_TMP_MIN,
    M_TMP_SUM,
    MC_N,
    MC_SAME,
    MC_TMP_N,
    ME_LINK,
    ME_TEMP,
    MID,
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
    SHORT,
    Gathered,
    features,
)


def _low(current: float, value: float) -> float:
    return value if math.isnan(current) or value < current else current


def _high(current: float, value: float) -> float:
    return value if math.isnan(current) or value > current else current


class FleetState:
    """Every device's compact window state; readings of a device must come in time order."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._blocks: list[Block] = []
        self._free: list[int] = []  # rows of discarded devices, reused before new ones
        self._rows = 0  # rows ever handed out
        self._battery, self._events = rings.Pool(BATTERY), rings.Pool(EVENTS)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._index

    @property
    def nbytes(self) -> int:
        """Bytes of the state's arrays (whole blocks, not only the devices seen)."""
        blocks = sum(b.nbytes for b in self._blocks)
        return blocks + self._battery.nbytes + self._events.nbytes

    def _rings(
        self, pool: rings.Pool, rows: npt.NDArray[np.int32], i: int
    ) -> tuple[rings.Arrays, int]:
        """Row `i`'s rings of `pool` (its row in `rows`: ``Block.bat`` or ``.ev``), made
        when it has none, and the index of its row in them."""
        j = int(rows[i])
        if j < 0:
            j = pool.take()
            rows[i] = j
        return pool.at(j), j % BLOCK

    def _slot(self, device_id: str) -> tuple[Block, int]:
        i = self._index.get(device_id)
        if i is None:
            if self._free:
                i = self._free.pop()
            else:
                i, self._rows = self._rows, self._rows + 1
                if i >= len(self._blocks) * BLOCK:
                    self._blocks.append(Block())
            # Interned: the detectors' rows and the model map key the same ids.
            self._index[sys.intern(device_id)] = i
        return self._blocks[i // BLOCK], i % BLOCK

    def _find(self, device_id: str) -> tuple[Block, int] | None:
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
            blk.clear(i)
            for pool, rows in ((self._battery, blk.bat), (self._events, blk.ev)):
                if rows[i] >= 0:
                    pool.give(int(rows[i]))
                    rows[i] = -1

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
            advance(blk, i, int(head), b)
            self._advance_rings(blk, i, int(head), b)
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
            (f_bat, f_off, h_bat, h_off), j = self._rings(self._battery, blk.bat, i)
            if math.isnan(f_bat[j, b % FINE]):
                f_bat[j, b % FINE] = s.battery
                f_off[j, b % FINE] = round((s.ts - b * BUCKET_SECONDS) / FINE_OFF_UNIT)
            if math.isnan(h_bat[j, h % HOURS]):
                h_bat[j, h % HOURS] = s.battery
                h_off[j, h % HOURS] = round((s.ts - h * HOUR_SECONDS) / HOUR_OFF_UNIT)
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
                (f_ev, _, h_ev, _), j = self._rings(self._events, blk.ev, i)
                if in_b:
                    f_ev[j, b % FINE, E_RESETS] += 1
                if in_h:
                    h_ev[j, h % HOURS, HE_RESETS] += 1
            if s.reconnects is not None and not math.isnan(p_rc):
                step = s.reconnects - p_rc
                rc = step if step >= 0 else s.reconnects
                if rc:
                    (*_, f_rc), j = self._rings(self._events, blk.ev, i)
                    f_rc[j, b % FINE, 0] += rc
            mid[M_GAP] = _high(float(mid[M_GAP]), s.ts - prev_ts)
        if s.codes and in_b:
            link, crash = bool(s.codes & LINK_CODES), bool(s.codes & CRASH_CODES)
            power, heat = bool(s.codes & POWER_CODES), bool(s.codes & TEMP_CODES)
            if link or crash or power or heat:
                (f_ev, m_ev, _, _), j = self._rings(self._events, blk.ev, i)
                m_ev[j, b % MID, ME_LINK] += link
                f_ev[j, b % FINE, E_CRASH] += crash
                f_ev[j, b % FINE, E_POWER] += power
                m_ev[j, b % MID, ME_TEMP] += heat
        sc[S_TS] = s.ts
        sc[S_TMP] = np.nan if s.temp is None else s.temp
        sc[S_UP] = np.nan if s.uptime is None else s.uptime
        sc[S_RC] = np.nan if s.reconnects is None else s.reconnects
        return True

    def features(self, device_ids: Sequence[str]) -> Matrix:
        """Feature rows (FEATURES order) of the newest bucket of each device, in one pass."""
        parts, _, _ = self._gather(device_ids)
        return features(Gathered(*parts))

    def export(self, device_ids: Sequence[str]) -> list[npt.NDArray[Any]]:
        """These devices' state, as arrays of a row a device (``restore`` takes them back):
        the ``Gathered`` parts in order (the optional rings empty where a device has none),
        then whether each device has battery rings, and event rings."""
        parts, bat_rows, ev_rows = self._gather(device_ids)
        return [*parts, bat_rows >= 0, ev_rows >= 0]

    def restore(self, device_ids: Sequence[str], arrays: Sequence[npt.NDArray[Any]]) -> None:
        """Give these devices the state `export` returned (their rows made as needed)."""
        n, nb, ne = len(GATHERED), len(BATTERY), len(EVENTS)
        parts, bat, ev = arrays[:n], arrays[n : n + nb], arrays[n + nb : n + nb + ne]
        has_bat, has_ev = arrays[-2], arrays[-1]
        for k, device_id in enumerate(device_ids):
            self.reset(device_id)
            blk, i = self._slot(device_id)
            for a, part in zip(blk.arrays(), parts, strict=True):
                a[i] = part[k]
            for pool, rows, has, optional in (
                (self._battery, blk.bat, has_bat, bat),
                (self._events, blk.ev, has_ev, ev),
            ):
                if has[k]:
                    rows[i] = j = pool.take()
                    pool.put(j, optional, k)

    def _gather(
        self, device_ids: Sequence[str]
    ) -> tuple[list[npt.NDArray[Any]], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The devices' rows of every array copied together (device k is row k), in
        ``Gathered`` order, and their rows of battery and of event rings (-1: none)."""
        rows = np.array([self._index[d] for d in device_ids], dtype=np.int64)
        blk_of, at = rows // BLOCK, rows % BLOCK
        k = len(rows)
        parts = [np.empty((k, *shape), dtype=dtype) for shape, dtype in GATHERED]
        bat_rows, ev_rows = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
        for b in np.unique(blk_of):
            sel = blk_of == b
            idx = at[sel]
            blk = self._blocks[int(b)]
            for part, a in zip(parts, blk.arrays(), strict=True):
                part[sel] = a[idx]
            bat_rows[sel], ev_rows[sel] = blk.bat[idx], blk.ev[idx]
        # A device without optional rings reads them empty.
        parts += self._battery.gather(bat_rows) + self._events.gather(ev_rows)
        return parts, bat_rows, ev_rows

    def _advance_rings(self, blk: Block, i: int, old: int, new: int) -> None:
        """``_advance`` for row `i`'s optional rings; event rings holding no event any more
        are given back."""
        j = int(blk.bat[i])
        if j >= 0:
            f_bat, f_off, h_bat, h_off = self._battery.at(j)
            jj = j % BLOCK
            for b in passed(old, new, FINE):
                f_bat[jj, b], f_off[jj, b] = np.nan, 0
            for h in passed(old // BUCKETS_PER_HOUR, new // BUCKETS_PER_HOUR, HOURS):
                h_bat[jj, h], h_off[jj, h] = np.nan, 0
        j = int(blk.ev[i])
        if j >= 0:
            f_ev, m_ev, h_ev, f_rc = self._events.at(j)
            jj = j % BLOCK
            for b in passed(old, new, FINE):
                f_ev[jj, b], f_rc[jj, b] = 0, 0.0
            for b in passed(old, new, MID):
                m_ev[jj, b] = 0
            for h in passed(old // BUCKETS_PER_HOUR, new // BUCKETS_PER_HOUR, HOURS):
                h_ev[jj, h] = 0
            if self._events.is_empty(j):
                self._events.give(j)
                blk.ev[i] = -1
