"""Unsupervised scores: an anomaly score per device model, and battery time to empty.

The anomaly score catches what no label describes. It reads features that are already
relative to each device's own history (drops against its 24-hour mean, rates against its own
usual rate), so it is normalised per device; one isolation forest is trained per device model
on healthy rows, and its raw score becomes the share of healthy training rows it exceeds.
Its trees are walked by the compiled kernel of models/forest.py, with scikit-learn's exact
scores (``score_sklearn`` is the reference, and a test holds the two equal).
"""

from __future__ import annotations

import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Self

import numpy as np
import numpy.typing as npt

from models.base import SCORING_THREADS, FeatureSet, Labels, Matrix
from models.features import FEATURE_INDEX, NOT_DRAINING_H

if TYPE_CHECKING:
    # Imported where a forest is learnt or first scored (a stored one imports scikit-learn
    # as it is read): a model without anomaly scores loads neither scikit-learn nor numba.
    from sklearn.ensemble import IsolationForest

    from models.forest import CompiledIsolation

ANOMALY_FEATURES: tuple[str, ...] = (
    "signal_drop_2h",
    "signal_fall_2h",
    "reconnects_2h",
    "rate_2h",
    "gap_2h",
    "drain_6h",
    "temp_excess_24h",
    "temp_rise_2h",
    "temp_range_2h",
    "temp_repeat_2h",
    "reboots_6h",
)
_COLUMNS = np.array([FEATURE_INDEX[n] for n in ANOMALY_FEATURES])
# Healthy rows an isolation forest learns from, and its reference scores, at most.
_MAX_ROWS = 20_000


def inputs(x: Matrix) -> Matrix:
    """The anomaly score's columns of feature rows; a feature a model does not report (a mains
    device's battery) reads as "nothing unusual"."""
    return np.nan_to_num(x[:, _COLUMNS], nan=0.0, posinf=0.0, neginf=0.0)


class AnomalyScore:
    """How unusual a row is for its device model, as the share of healthy rows it exceeds."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self._forest: IsolationForest | None = None
        self._reference: npt.NDArray[np.float64] = np.empty(0)

    def learn(self, data: FeatureSet, y: Labels) -> Self:
        """Fit on the healthy rows (y == 0) of one device model."""
        healthy = inputs(data.x[y == 0])
        if len(healthy) < 50:
            raise ValueError("the anomaly score needs at least 50 healthy rows")
        rng = np.random.default_rng(self.seed)
        if len(healthy) > _MAX_ROWS:
            healthy = healthy[rng.choice(len(healthy), size=_MAX_ROWS, replace=False)]
        from sklearn.ensemble import IsolationForest

        self._forest = IsolationForest(n_estimators=100, max_samples=256, random_state=self.seed)
        self._forest.fit(healthy)
        self._reference = np.sort(-self._forest.score_samples(healthy))
        _FORESTS.pop(self, None)  # new trees: flatten them again on the next score
        return self

    def score(self, x: Matrix, *, threads: int = SCORING_THREADS) -> npt.NDArray[np.float64]:
        """Share of healthy training rows less unusual than each row, in [0, 1]."""
        if self._forest is None:
            raise RuntimeError("the anomaly score has not learned yet")
        if not len(x):
            return np.empty(0)
        if self not in _FORESTS:
            from models.forest import CompiledIsolation

            _FORESTS[self] = CompiledIsolation(self._forest)
        return self._share(_FORESTS[self].anomaly(inputs(x), threads=threads))

    def score_sklearn(self, x: Matrix, *, threads: int = 1) -> npt.NDArray[np.float64]:
        """``score`` through scikit-learn's own score_samples (the reference and the baseline).

        With several threads, each scores a block of the rows (scikit-learn walks its trees
        without the GIL), which keeps every row's sum of depths in the same order.
        """
        if self._forest is None:
            raise RuntimeError("the anomaly score has not learned yet")
        if not len(x):
            return np.empty(0)
        from models.forest import PARALLEL_ROWS

        rows = inputs(x)
        forest = self._forest
        if threads <= 1 or len(rows) < PARALLEL_ROWS:
            raw = -forest.score_samples(rows)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                parts = pool.map(forest.score_samples, np.array_split(rows, threads))
                raw = -np.concatenate(list(parts))
        return self._share(raw)

    def _share(self, raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return share(self._reference, raw)


def share(reference: npt.NDArray[np.float64], raw: npt.NDArray[np.float64]) -> Matrix:
    """The share of the healthy training rows' scores (`reference`, sorted) below each score."""
    rank = np.searchsorted(reference, raw, side="right")
    return np.asarray(rank / len(reference), dtype=np.float64)


def isolation_score(depths: Matrix, denominator: float) -> Matrix:
    """``-score_samples``: 2 to the minus (summed depth over trees x c(max_samples)).

    scikit-learn's expression, kept in one place for both forms of the forest.
    """
    d = denominator
    return np.asarray(
        2 ** (-np.divide(depths, d, out=np.ones_like(depths), where=d != 0)), dtype=np.float64
    )


# Each anomaly score's trees flattened once, beside the model rather than in it (as for the
# fault predictors): the stored bundle stays as it was, and scoring does not change it.
_FORESTS: weakref.WeakKeyDictionary[AnomalyScore, CompiledIsolation] = weakref.WeakKeyDictionary()


class BatteryLife:
    """Time to empty: the battery level over the faster of its recent and its usual drain."""

    def __init__(self, *, horizon_h: float = 24.0) -> None:
        self.horizon_h = horizon_h
        self.usual_drain: float = 0.0  # % per hour, median of healthy rows

    def learn(self, data: FeatureSet, y: Labels) -> Self:
        """Learn the usual drain rate from healthy rows that report a battery."""
        drain = data.x[y == 0, FEATURE_INDEX["drain_24h"]]
        drain = drain[np.isfinite(drain) & (drain > 0)]
        self.usual_drain = float(np.median(drain)) if len(drain) else 0.0
        return self

    def hours(self, x: Matrix) -> npt.NDArray[np.float64]:
        """Estimated hours until the battery is empty (NaN for a device without one)."""
        pct = x[:, FEATURE_INDEX["battery_pct"]]
        recent = np.nan_to_num(x[:, FEATURE_INDEX["drain_6h"]], nan=0.0)
        rate = np.maximum(recent, self.usual_drain)
        with np.errstate(divide="ignore", invalid="ignore"):
            est = np.where(rate > 0, pct / np.where(rate > 0, rate, 1.0), NOT_DRAINING_H)
        return np.where(np.isnan(pct), np.nan, np.minimum(est, NOT_DRAINING_H))

    def score(self, x: Matrix) -> npt.NDArray[np.float64]:
        """Near 1 when the battery empties well within the horizon, near 0 when not soon."""
        hours = self.hours(x)
        return np.where(np.isnan(hours), 0.0, np.exp(-np.nan_to_num(hours) / self.horizon_h))
