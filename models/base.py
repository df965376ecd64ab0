"""The one interface every Forewarn model follows, and the data it learns from.

Like river's anomaly detectors, a model ``learn``s from history and ``score``s feature rows;
a higher score means more likely faulty, and scores lie in [0, 1]. Models are pure: seeded,
no I/O, and scoring never changes them. Thresholds live outside the model (``Threshold``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt

from models.buckets import BUCKET_SECONDS

# Threads for scoring a large batch with the compiled trees (models/forest.py): plain threads
# that sleep when idle, not OpenMP's spinning workers; small batches use one.
SCORING_THREADS = 2

Matrix = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int8]  # 1 faulty, 0 healthy, -1 unknown (left out of learning)


class Model(Protocol):
    """Learn on history, score feature rows."""

    def learn(self, data: FeatureSet, y: Labels) -> Self:
        """Fit on `data` with labels `y` (unsupervised models use only the healthy rows)."""
        ...

    def score(self, x: Matrix) -> npt.NDArray[np.float64]:
        """One score in [0, 1] per row of `x`; higher means more likely faulty."""
        ...


@dataclass(frozen=True, slots=True)
class Threshold:
    """A cut on a model's score: at or above it, the row raises an alert."""

    value: float

    def alerts(self, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Which scores raise an alert."""
        return scores >= self.value


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Feature rows of many devices: one row per five-minute bucket with a reading."""

    x: Matrix
    device_ids: npt.NDArray[np.str_]
    device_models: npt.NDArray[np.str_]
    buckets: npt.NDArray[np.int64]  # bucket index (epoch seconds / 300)

    def __post_init__(self) -> None:
        n = len(self.x)
        if not len(self.device_ids) == len(self.device_models) == len(self.buckets) == n:
            raise ValueError("a feature set's columns must have one entry per row")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def times(self) -> npt.NDArray[np.float64]:
        """End of each row's bucket, epoch seconds: the moment the row describes."""
        return (self.buckets.astype(np.float64) + 1.0) * BUCKET_SECONDS

    def subset(self, mask: npt.NDArray[np.bool_]) -> FeatureSet:
        """The rows where `mask` is true."""
        return FeatureSet(
            self.x[mask], self.device_ids[mask], self.device_models[mask], self.buckets[mask]
        )

    @staticmethod
    def concat(parts: list[FeatureSet], width: int) -> FeatureSet:
        """One feature set from many (an empty one of `width` columns when there are none)."""
        if not parts:
            return FeatureSet(
                np.empty((0, width)),
                np.array([], dtype=str),
                np.array([], dtype=str),
                np.array([], dtype=np.int64),
            )
        return FeatureSet(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.device_ids for p in parts]),
            np.concatenate([p.device_models for p in parts]),
            np.concatenate([p.buckets for p in parts]),
        )
