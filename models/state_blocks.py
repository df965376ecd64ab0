"""The blocks of arrays the live scorer's compact state is kept in (``models.state``): what a
device's row holds in each (the columns are named in ``models.state_features``), the optional
rings' layout (``models.rings``), and clearing the slots a newest bucket moves past."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from models import rings
from models.features import BUCKETS_PER_HOUR
from models.rings import Spec
from models.state_features import (
    _NAN,
    F32,
    FINE,
    FINE_COLS,
    FINE_COUNTS,
    FINE_EVENTS,
    HOUR_COLS,
    HOUR_COUNTS,
    HOUR_EVENTS,
    HOURS,
    MID,
    MID_COLS,
    MID_COUNTS,
    MID_EVENTS,
    S_CUR_V,
    SCALARS,
    SHORT,
)

# Devices per block of arrays: a fleet grows a block at a time, so at most one block's worth
# (about 1.8 MB, and 0.6 and 1 MB of the two kinds of optional rings) is allocated beyond the
# devices seen, and nothing is ever copied to grow.
BLOCK = rings.BLOCK


def _empty(cols: tuple[str, ...]) -> F32:
    return np.array([np.nan if c in _NAN else 0.0 for c in cols], dtype=np.float32)


_FINE_EMPTY, _MID_EMPTY, _HOUR_EMPTY = _empty(FINE_COLS), _empty(MID_COLS), _empty(HOUR_COLS)


# The shape of a device's part of each array of a block (``Block.arrays`` order), and its type.
GATHERED: tuple[tuple[tuple[int, ...], type[np.generic]], ...] = (
    ((FINE, len(FINE_COLS)), np.float32),
    ((FINE, len(FINE_COUNTS)), np.uint16),
    ((MID, len(MID_COLS)), np.float32),
    ((MID, len(MID_COUNTS)), np.uint16),
    ((SHORT,), np.float32),
    ((HOURS, len(HOUR_COLS)), np.float32),
    ((HOURS, len(HOUR_COUNTS)), np.uint16),
    ((len(SCALARS),), np.float64),
)
# The optional rings (``models.rings``), each part with what a device without them reads: the
# battery rings (made on a device's first battery reading) and the event rings (restarts and
# error codes: made on a device's first one, given back once the windows hold none).
BATTERY: Spec = (
    ((FINE,), np.float32, np.nan),
    ((FINE,), np.uint16, 0),
    ((HOURS,), np.float32, np.nan),
    ((HOURS,), np.uint16, 0),
)
EVENTS: Spec = (
    ((FINE, len(FINE_EVENTS)), np.uint16, 0),
    ((MID, len(MID_EVENTS)), np.uint16, 0),
    ((HOURS, len(HOUR_EVENTS)), np.uint16, 0),
    ((FINE, 1), np.float32, 0.0),  # reconnects: mostly none
)


# How many arrays ``FleetState.export`` returns: the ``Gathered`` parts, the battery and event
# rings and which devices have each.
EXPORT_PARTS = len(GATHERED) + len(BATTERY) + len(EVENTS) + 2


def layout() -> str:
    """The shapes and types of a device's row in each exported array (a checkpoint of
    another layout is not loaded)."""
    shapes = ["x".join(map(str, shape)) + np.dtype(t).str for shape, t in GATHERED]
    return ",".join(shapes + rings.layout(BATTERY) + rings.layout(EVENTS))


class Block:
    """The arrays of BLOCK devices (a fleet grows a block at a time: nothing is copied)."""

    __slots__ = ("bat", "ev", "fine", "fine_n", "hour", "hour_n", "mid", "mid_n", "sc", "short")

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
        # The device's rows of battery and event rings; -1: none.
        self.bat = np.full(BLOCK, -1, dtype=np.int32)
        self.ev = np.full(BLOCK, -1, dtype=np.int32)

    @property
    def nbytes(self) -> int:
        """Bytes of the block's arrays."""
        return sum(a.nbytes for a in self.arrays()) + self.bat.nbytes + self.ev.nbytes

    def clear(self, i: int) -> None:
        """Empty row `i` (its optional rows are the caller's)."""
        self.fine[i], self.mid[i], self.short[i] = _FINE_EMPTY, _MID_EMPTY, np.nan
        self.hour[i], self.sc[i] = _HOUR_EMPTY, np.nan
        self.fine_n[i], self.mid_n[i], self.hour_n[i] = 0, 0, 0

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


def passed(old: int, new: int, size: int) -> list[int]:
    """The slots of a ring of `size` of the buckets (or hours) after `old` up to `new`."""
    return [b % size for b in range(old + 1, min(new, old + size) + 1)]


def advance(blk: Block, i: int, old: int, new: int) -> None:
    """Clear the slots of the buckets (and hours) after `old` up to `new`."""
    for b in passed(old, new, FINE):
        blk.fine[i, b], blk.fine_n[i, b] = _FINE_EMPTY, 0
    for b in passed(old, new, MID):
        blk.mid[i, b], blk.mid_n[i, b] = _MID_EMPTY, 0
    for b in passed(old, new, SHORT):
        blk.short[i, b] = np.nan
    for h in passed(old // BUCKETS_PER_HOUR, new // BUCKETS_PER_HOUR, HOURS):
        blk.hour[i, h], blk.hour_n[i, h] = _HOUR_EMPTY, 0
    blk.sc[i, S_CUR_V] = np.nan
