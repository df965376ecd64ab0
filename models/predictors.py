"""Per-fault predictors: "will this device suffer fault F within the next H hours?"

Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, which takes the NaN of
a feature a model does not report, such as the battery of a mains device) learn on labelled
rows; a logistic (Platt) calibration fitted on out-of-fold scores turns their output into
probabilities while keeping their order, so thresholds keep their resolution near 1. The
predictor is the average of the fold models (as CalibratedClassifierCV with ensemble=True):
the scores it gives a new fleet are distributed like the out-of-fold scores its threshold
was chosen on, which a single model refitted on all rows would not be. Rows are strongly autocorrelated, so healthy rows are subsampled (and weighted
back up when calibrating) to keep learning fast without losing what they say.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Self

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from forewarn.domain import FaultKind
from models.base import SCORING_THREADS, FeatureSet, Labels, Matrix, fold_mean, logit
from models.forest import CompiledForests

FOLDS = 3
# OpenMP threads for the trees. One: OpenMP's workers spin while they wait, and on a machine
# shared with the ingester, the database and the broker that spinning cost more than the
# second thread gained (a test that takes seconds alone took minutes beside other work).
THREADS = 1
# Healthy rows kept for learning: at least this many, or this many per faulty row.
MIN_HEALTHY_ROWS = 30_000
HEALTHY_PER_FAULTY = 6


class FaultPredictor:
    """Calibrated probability that one fault strikes within the horizon."""

    def __init__(self, fault: FaultKind, *, seed: int = 0, max_iter: int = 150) -> None:
        self.fault, self.seed, self.max_iter = fault, seed, max_iter
        self._folds: list[HistGradientBoostingClassifier] = []
        self._calibration: LogisticRegression | None = None
        # Calibrated out-of-fold scores of every training row (for choosing a threshold).
        self.oof_: npt.NDArray[np.float64] = np.empty(0)

    def _classifier(self) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=0.1,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=self.seed,
        )

    def _sample(self, y: Labels, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Every faulty row among `rows` and a seeded subsample of the healthy ones."""
        rng = np.random.default_rng(self.seed)
        pos = rows[y[rows] == 1]
        neg = rows[y[rows] == 0]
        keep = min(len(neg), max(MIN_HEALTHY_ROWS, HEALTHY_PER_FAULTY * len(pos)))
        chosen = rng.choice(neg, size=keep, replace=False) if keep < len(neg) else neg
        return np.sort(np.concatenate((pos, chosen)))

    def learn(self, data: FeatureSet, y: Labels) -> Self:
        """Fit on labelled rows (y in {0, 1}); rows with y = -1 are only scored out of fold."""
        with threadpool_limits(limits=THREADS, user_api="openmp"):
            return self._learn(data, y)

    def _learn(self, data: FeatureSet, y: Labels) -> Self:
        if not (y == 1).any() or not (y == 0).any():
            raise ValueError(f"{self.fault}: learning needs both faulty and healthy rows")
        x = data.x
        raw = np.zeros(len(y))
        self._folds = []
        groups = data.device_ids
        n_groups = len(np.unique(groups))
        splits = GroupKFold(n_splits=min(FOLDS, n_groups)).split(x, y, groups)
        for train, test in splits:
            fit_rows = self._sample(y, train[y[train] >= 0].astype(np.int64))
            if len(np.unique(y[fit_rows])) < 2:
                continue  # a fold without faulty rows: its out-of-fold scores stay 0
            clf = self._classifier().fit(x[fit_rows], y[fit_rows])
            raw[test] = clf.predict_proba(x[test])[:, 1]
            self._folds.append(clf)
        labelled = y >= 0
        self._calibration = LogisticRegression(C=100.0)
        self._calibration.fit(logit(raw[labelled]), y[labelled])
        self.oof_ = self._calibrated(raw)
        _FORESTS.pop(self, None)  # new trees: flatten them again on the next score
        return self

    def score(self, x: Matrix, *, threads: int = SCORING_THREADS) -> npt.NDArray[np.float64]:
        """Calibrated probability per row that the fault strikes within the horizon."""
        if not self._folds or self._calibration is None:
            raise RuntimeError(f"{self.fault} predictor has not learned yet")
        if not len(x):
            return np.empty(0)
        forests = _compiled(self)
        if forests is None:
            return self.score_sklearn(x)
        p = forests.proba(x, threads=threads)
        # The same mean of the same floats as score_sklearn: the same scores, to the last bit.
        return self._calibrated(fold_mean(p, range(p.shape[1])))

    def score_sklearn(self, x: Matrix, *, threads: int = THREADS) -> npt.NDArray[np.float64]:
        """``score`` through scikit-learn's own predict_proba (the reference and the baseline)."""
        if not self._folds or self._calibration is None:
            raise RuntimeError(f"{self.fault} predictor has not learned yet")
        if not len(x):
            return np.empty(0)
        with threadpool_limits(limits=threads, user_api="openmp"):
            raw = np.mean([clf.predict_proba(x)[:, 1] for clf in self._folds], axis=0)
        return self._calibrated(raw)

    def _calibrated(self, raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        assert self._calibration is not None
        return np.asarray(self._calibration.predict_proba(logit(raw))[:, 1], dtype=np.float64)


# Each predictor's trees flattened once, beside the predictor rather than in it: the stored
# bundle stays as it was, and scoring does not change the model.
_FORESTS: weakref.WeakKeyDictionary[FaultPredictor, CompiledForests | None] = (
    weakref.WeakKeyDictionary()
)


def _compiled(predictor: FaultPredictor) -> CompiledForests | None:
    """The predictor's fold models as compiled forests (None: left to scikit-learn)."""
    if predictor not in _FORESTS:
        folds = predictor._folds
        _FORESTS[predictor] = CompiledForests(folds) if CompiledForests.supports(folds) else None
    return _FORESTS[predictor]


class PredictorGroup:
    """Several fault predictors scored together: one ranking of the rows, one walk of all trees.

    Each predictor's ``score`` ranks the rows among its own thresholds; a bundle's five would
    rank them five times, which cost as much as walking the trees once those were fast. The
    group flattens every fold model of every predictor into one set of forests, ranks the
    rows once among all their thresholds, and hands each predictor its folds' columns: the
    same floats as each predictor's ``score``.
    """

    def __init__(self, predictors: Sequence[FaultPredictor]) -> None:
        self.predictors = tuple(predictors)
        # The fold lists compiled (learn replaces them): to tell when the group is stale.
        self._folds = tuple(p._folds for p in self.predictors)
        classifiers = [clf for p in self.predictors for clf in p._folds]
        supported = bool(classifiers) and CompiledForests.supports(classifiers)
        self._forests = CompiledForests(classifiers) if supported else None

    @property
    def forests(self) -> CompiledForests | None:
        """Every fold model of the group's predictors as compiled forests, in the group's
        order (None: left to scikit-learn)."""
        return self._forests

    def current(self, predictors: Sequence[FaultPredictor]) -> bool:
        """Whether the group was built from these predictors, as they are now."""
        return len(predictors) == len(self.predictors) and all(
            p is q and p._folds is folds
            for p, q, folds in zip(predictors, self.predictors, self._folds, strict=True)
        )

    def scores(self, x: Matrix, *, threads: int = SCORING_THREADS) -> list[npt.NDArray[np.float64]]:
        """Each predictor's ``score(x)``, in the group's order."""
        if self._forests is None or not len(x):
            return [p.score(x, threads=threads) for p in self.predictors]
        for p in self.predictors:
            if not p._folds or p._calibration is None:
                raise RuntimeError(f"{p.fault} predictor has not learned yet")
        proba = self._forests.proba(x, threads=threads)
        out, first = [], 0
        for p, folds in zip(self.predictors, self._folds, strict=True):
            columns = range(first, first + len(folds))
            # The same mean of the same floats as FaultPredictor.score.
            out.append(p._calibrated(fold_mean(proba, columns)))
            first += len(folds)
        return out
