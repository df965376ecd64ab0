"""A slice's checkpoint: the streaming state of its devices, packed to bytes and back.

A scorer that takes over a slice (another died or let it go) needs each device's window
state and detectors as they were at the slice's cursor. Rebuilding them means reading and
folding a day of readings per device: about 200 s for one slice of a 100,000-device fleet cut
into 64 (bench/takeover.py), a pass held up all that while. So a scorer saves each slice it holds every
``CHECKPOINT_SECONDS`` (one slice a pass, in turn), and the next holder loads it and folds
only the readings written since (``models.sliced``).

The bytes are an ``.npz`` of plain arrays (no pickle): the device ids, every array of the
window state (``FleetState.export``) and the detector rows (``Live.export``). ``LAYOUT``
names the shapes: a checkpoint of another layout (a scorer of another version wrote it) is
not loaded, and the slice is rebuilt from the readings.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.detect import WIDTH
from models.detect import layout as detector_layout
from models.state_blocks import EXPORT_PARTS
from models.state_blocks import layout as window_layout

# Seconds between two checkpoints of one slice.
CHECKPOINT_SECONDS = 300.0
# The format's version and a digest of both layouts.
LAYOUT = "1:" + hashlib.sha256(f"{window_layout()}|{detector_layout()}".encode()).hexdigest()[:16]
_WINDOW, _ROWS, _SILENT, _IDS = "w", "rows", "silent", "ids"


@dataclass(frozen=True, slots=True)
class SliceState:
    """The state of a slice's devices, device k in row k of every array."""

    device_ids: tuple[str, ...]
    window: tuple[npt.NDArray[Any], ...]  # FleetState.export
    detectors: npt.NDArray[np.float64]  # Live.export: the rows ...
    silent: npt.NDArray[np.bool_]  # ... and which devices were found silent


class CheckpointError(ValueError):
    """Bytes that are no checkpoint of this layout."""


def pack(state: SliceState) -> bytes:
    """The state as bytes."""
    arrays: dict[str, npt.NDArray[Any]] = {
        _IDS: np.array(state.device_ids, dtype=str),
        _ROWS: state.detectors,
        _SILENT: state.silent,
    }
    arrays |= {f"{_WINDOW}{i}": a for i, a in enumerate(state.window)}
    out = io.BytesIO()
    np.savez(out, allow_pickle=False, **arrays)
    return out.getvalue()


def unpack(data: bytes) -> SliceState:
    """The state `pack` wrote (CheckpointError if it is not one of this layout's)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            ids = tuple(str(d) for d in npz[_IDS])
            window = tuple(npz[f"{_WINDOW}{i}"] for i in range(EXPORT_PARTS))
            rows, silent = npz[_ROWS], npz[_SILENT]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"not a scorer checkpoint: {e}") from e
    _check(ids, window, rows, silent)
    return SliceState(ids, window, rows, silent)


def _check(
    ids: Sequence[str],
    window: Sequence[npt.NDArray[Any]],
    rows: npt.NDArray[Any],
    silent: npt.NDArray[Any],
) -> None:
    n = len(ids)
    if rows.shape != (n, WIDTH) or rows.dtype != np.float64 or silent.shape != (n,):
        raise CheckpointError(f"detector rows of shape {rows.shape}, expected ({n}, {WIDTH})")
    if any(len(a) != n for a in window):
        raise CheckpointError("window arrays of another length than the device ids")
