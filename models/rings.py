"""Optional rings of the live scorer's state: arrays a device holds only while it needs them.

Most devices never report a battery, and most go days without a restart or an error code.
``models.state.FleetState`` keeps such columns out of every device's row: a ``Pool`` hands out
rows of its own arrays (blocks of ``BLOCK`` rows, never copied to grow) to the devices that
need them and takes them back, emptied, when they are free again. A device without a row
reads the empty values (``gather``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

# Rows per block of arrays (a pool grows a block at a time).
BLOCK = 1024
# A part of a pool: the shape of a device's row in it, its type, and its empty value.
Spec = tuple[tuple[tuple[int, ...], type[np.generic], float], ...]
Arrays = tuple[npt.NDArray[Any], ...]


class Pool:
    """Rows of the arrays laid out by `spec`, handed out one at a time."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._blocks: list[Arrays] = []
        self._free: list[int] = []
        self._rows = 0  # rows ever handed out

    @property
    def nbytes(self) -> int:
        """Bytes of the pool's arrays."""
        return sum(a.nbytes for b in self._blocks for a in b)

    def take(self) -> int:
        """A row, empty (a freed one first)."""
        if self._free:
            return self._free.pop()
        j, self._rows = self._rows, self._rows + 1
        if j >= len(self._blocks) * BLOCK:
            self._blocks.append(
                tuple(np.full((BLOCK, *shape), empty, dtype=t) for shape, t, empty in self.spec)
            )
        return j

    def give(self, j: int) -> None:
        """Empty row `j` and take it back."""
        for a, (_, _, empty) in zip(self.at(j), self.spec, strict=True):
            a[j % BLOCK] = empty
        self._free.append(j)

    def at(self, j: int) -> Arrays:
        """The arrays holding row `j` (at index ``j % BLOCK``)."""
        return self._blocks[j // BLOCK]

    def is_empty(self, j: int) -> bool:
        """Whether row `j` holds only empty values."""
        for a, (_, _, empty) in zip(self.at(j), self.spec, strict=True):
            row = a[j % BLOCK]
            if not (np.isnan(row).all() if np.isnan(empty) else (row == empty).all()):
                return False
        return True

    def gather(self, rows: npt.NDArray[np.int64]) -> list[npt.NDArray[Any]]:
        """Copies of these rows, device k in row k (a row -1: the empty values)."""
        out = [np.full((len(rows), *shape), empty, dtype=t) for shape, t, empty in self.spec]
        has = np.flatnonzero(rows >= 0)
        blk, at = rows[has] // BLOCK, rows[has] % BLOCK
        for b in np.unique(blk):
            sel = blk == b
            for part, a in zip(out, self._blocks[int(b)], strict=True):
                part[has[sel]] = a[at[sel]]
        return out

    def put(self, j: int, parts: Sequence[npt.NDArray[Any]], k: int) -> None:
        """Set row `j` to row `k` of `parts` (``gather``'s arrays)."""
        for a, part in zip(self.at(j), parts, strict=True):
            a[j % BLOCK] = part[k]


def layout(spec: Spec) -> list[str]:
    """The shape and type of a device's row in each part."""
    return ["x".join(map(str, shape)) + np.dtype(t).str for shape, t, _ in spec]
