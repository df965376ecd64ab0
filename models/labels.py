"""Turning fault episodes (ground truth or staff verdicts) into per-row training labels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from forewarn.domain import FaultKind
from models.base import FeatureSet, Labels

# Rows up to this long after failure still count as the fault: a device that goes on reporting
# (overheating, stuck, looping) and is caught late was still caught.
LATE_GRACE_H = 2.0


@dataclass(frozen=True, slots=True)
class Episode:
    """One fault on one device: developing from onset, failed at failure."""

    device_id: str
    fault: FaultKind
    onset: float  # epoch seconds
    failure: float

    @classmethod
    def of(cls, device_id: str, fault: str, onset: datetime, failure: datetime | None) -> Episode:
        """An episode from a label row (no failure time: a point event at onset)."""
        end = failure if failure is not None else onset
        return cls(device_id, FaultKind(fault), onset.timestamp(), end.timestamp())


def by_device(episodes: Iterable[Episode]) -> dict[str, list[Episode]]:
    """Episodes grouped by device."""
    out: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        out[e.device_id].append(e)
    return dict(out)


def label_rows(
    data: FeatureSet, episodes: Iterable[Episode], fault: FaultKind, *, horizon_h: float
) -> Labels:
    """1 where `fault` will strike within `horizon_h` (or struck under LATE_GRACE_H ago), 0
    where the device is healthy or has another fault, and -1 (left out of learning) where it
    is developing but further out than the horizon, or failed longer ago than the grace: no
    fault in the simulator heals, and neither answer is clearly right there."""
    y = np.zeros(len(data), dtype=np.int8)
    times = data.times
    index = by_device(e for e in episodes if e.fault is fault)
    for device_id, eps in index.items():
        rows = np.flatnonzero(data.device_ids == device_id)
        if not len(rows):
            continue
        t = times[rows]
        for e in eps:
            developing = (t >= e.onset) & (t <= e.failure + LATE_GRACE_H * 3600)
            near = e.failure - t <= horizon_h * 3600
            y[rows[developing & near]] = 1
            unclear = (t >= e.onset) & ~(developing & near)
            y[rows[unclear]] = np.where(y[rows[unclear]] == 1, 1, -1)
    return y
