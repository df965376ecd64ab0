"""The one interface every Forewarn model follows, and the data it learns from.

Like river's anomaly detectors, a model ``learn``s from history and ``score``s feature rows;
a higher score means more likely faulty, and scores lie in [0, 1]. Models are pure: seeded,
no I/O, and scoring never changes them. Thresholds live outside the model (``Threshold``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np
import numpy.typing as npt

from models.buckets import BUCKET_SECONDS

if TYPE_CHECKING:
    from forewarn.domain import Prediction

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


class Scoring(Protocol):
    """What the live scorer scores with: a model bundle, or its serving form."""

    @property
    def version(self) -> int | None:
        """The stored version it was loaded from."""
        ...

    def predictions(self, data: FeatureSet, *, at: Matrix | None = None) -> list[Prediction]:
        """The rows of `data` whose score reaches a threshold, as predictions with reasons."""
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


def logit(p: npt.NDArray[np.float64]) -> Matrix:
    """Log-odds of probabilities (clipped off 0 and 1), as one column: the calibration's input."""
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64).reshape(-1, 1)


def fold_mean(proba: Matrix, columns: Sequence[int]) -> npt.NDArray[np.float64]:
    """The mean of a predictor's fold models' probabilities (its `columns` of `proba`).

    One expression for every form of the model, so each adds the same floats in the same order.
    """
    return np.asarray(np.mean([proba[:, j] for j in columns], axis=0), dtype=np.float64)


def expit(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``1 / (1 + exp(-z))`` through the C library's exp, as scipy's ``expit`` computes it.

    numpy's vectorised exp differs from it in the last bit for about 2 % of values, so the
    serving form would not give scikit-learn's calibrated probabilities bit for bit. A row's
    five calls cost well under a microsecond each.
    """
    out = np.empty(len(z))
    for i, v in enumerate(z.tolist()):
        try:
            out[i] = 1.0 / (1.0 + math.exp(-v))
        except OverflowError:  # exp(-v) beyond the largest float: scipy gives 0
            out[i] = 0.0
    return out
