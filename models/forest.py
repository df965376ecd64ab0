"""Fast scoring of the fault predictors' trees, with scikit-learn's exact decisions.

scikit-learn's HistGradientBoosting ``predict_proba`` walks one tree at a time over every row,
a branch per node that the processor cannot predict: profiled on the bundle (5 faults x 3
fold models x 150 trees), that walk was 95 % of batch scoring, about 18,000 rows a second.
Here the fold models of a predictor are flattened into arrays (each split's two children side
by side, so the step is ``left + (x > threshold)`` without a branch) and walked by a kernel
compiled with numba: a block of 32 rows goes through one tree level by level, so the rows'
steps overlap instead of waiting for each other, and the tree stays in the cache for the block.
The walk compares small integers: each value is replaced by its rank among its column's split
thresholds (a binary search per value, once per batch), and each split by its threshold's
rank, which decides the same way and keeps a row in 148 bytes instead of 592. Missing values
cost no test: each row is given twice, once with them ranked lowest and once highest, and each
split reads the copy that sends them its way.

The decisions are scikit-learn's: a value at or below the threshold goes left, a missing value
goes where the split sent missing values in training, leaves add their value to the model's
baseline in the same order. So the probabilities are the same floats, bit for bit, and a test
holds them to it. Models this module does not know (categorical splits, several outputs) are
left to scikit-learn.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier

Matrix = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
Ranks = npt.NDArray[np.unsignedinteger[Any]]

# Rows that go through a tree together: enough to overlap their steps, few enough to keep
# their features (37 float64 each) in the first-level cache.
BLOCK_ROWS = 32
# Below this many rows a second thread costs more than it saves (the live scorer's batches).
PARALLEL_ROWS = 8_192
_MAX = float(np.finfo(np.float64).max)


def _walk(
    x: Ranks,
    feat: I32,
    thr: Ranks,
    left: I32,
    value: Matrix,
    roots: I32,
    depth: I32,
    ends: I32,
    base: Matrix,
) -> Matrix:
    """Raw predictions (rows x models): each model's baseline plus its trees' leaf values.

    `x` is the rows twice over as ranks (``CompiledForests._ranks``), so a split reads the
    copy whose missing values fall its way, and `thr` holds each split's rank:
    ``x > threshold`` exactly when ``rank(x) > rank(threshold)``. Model m owns trees ``ends[m-1] .. ends[m]-1``. A leaf points to itself with
    an infinite threshold, so walking a tree for its full depth leaves every row on its leaf.
    """
    n, models = x.shape[0], ends.shape[0]
    out = np.empty((n, models))
    idx = np.empty(BLOCK_ROWS, dtype=np.int32)
    acc = np.empty(BLOCK_ROWS)
    for lo in range(0, n, BLOCK_ROWS):
        w = min(BLOCK_ROWS, n - lo)
        first = 0
        for m in range(models):
            for r in range(w):
                acc[r] = base[m]
            for t in range(first, ends[m]):
                for r in range(w):
                    idx[r] = roots[t]
                for _ in range(depth[t]):
                    for r in range(w):
                        k = idx[r]
                        idx[r] = left[k] + (x[lo + r, feat[k]] > thr[k])
                for r in range(w):
                    acc[r] += value[idx[r]]
            for r in range(w):
                out[lo + r, m] = acc[r]
            first = ends[m]
    return out


# Compiled on first use (about a second), once per process; nogil lets threads share the rows.
_kernel: Any = numba.njit(nogil=True, cache=False)(_walk)


class CompiledForests:
    """Binary HistGradientBoosting classifiers as flat arrays: P(class 1) per row and model."""

    def __init__(self, classifiers: list[HistGradientBoostingClassifier]) -> None:
        feat: list[int] = []
        thr: list[float] = []
        left: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        depth: list[int] = []
        ends: list[int] = []
        base: list[float] = []
        for clf in classifiers:
            base.append(float(np.ravel(clf._baseline_prediction)[0]))
            width = int(clf.n_features_in_)
            for (predictor,) in clf._predictors:
                nodes = predictor.nodes
                roots.append(len(feat))
                depth.append(int(nodes["depth"].max()))
                _flatten(nodes, len(feat), width, feat, thr, left, value)
            ends.append(len(roots))
        self.feat = np.array(feat, dtype=np.int32)
        self.thr = np.array(thr, dtype=np.float64)
        self.left = np.array(left, dtype=np.int32)
        self.value = np.array(value, dtype=np.float64)
        self.roots = np.array(roots, dtype=np.int32)
        self.depth = np.array(depth, dtype=np.int32)
        self.ends = np.array(ends, dtype=np.int32)
        self.base = np.array(base, dtype=np.float64)
        # Each column's distinct split thresholds, and each split's rank among them.
        columns = 2 * max((int(c.n_features_in_) for c in classifiers), default=0)
        split = np.isfinite(self.thr)
        self.cuts = [np.unique(self.thr[split & (self.feat == c)]) for c in range(columns)]
        most = max((len(c) for c in self.cuts), default=0)
        self.rank_dtype = np.uint16 if most < np.iinfo(np.uint16).max else np.uint32
        self.rank_thr = np.full(len(self.thr), np.iinfo(self.rank_dtype).max, self.rank_dtype)
        for c, cuts in enumerate(self.cuts):
            nodes = np.flatnonzero(split & (self.feat == c))
            self.rank_thr[nodes] = np.searchsorted(cuts, self.thr[nodes])

    @staticmethod
    def supports(classifiers: list[HistGradientBoostingClassifier]) -> bool:
        """Whether every classifier is a binary one without categorical splits."""
        for clf in classifiers:
            if getattr(clf, "n_trees_per_iteration_", 0) != 1:
                return False
            for (predictor,) in clf._predictors:
                if predictor.nodes["is_categorical"].any():
                    return False
        return True

    def _ranks(self, x: Matrix) -> Ranks:
        """The rows twice, each value as its rank among its column's thresholds.

        Rank = how many thresholds lie below the value. In the first copy a missing value
        ranks lowest (it goes left at every split), in the second highest (right). Real
        infinities count as the largest finite float, as a split at +inf (scikit-learn's
        "every value left, missing ones right") was moved down to it.
        """
        width = len(self.cuts) // 2
        out = np.empty((len(x), 2 * width), dtype=self.rank_dtype)
        if np.isinf(x).any():
            x = np.clip(x, -_MAX, _MAX)  # NaN stays NaN
        missing = np.isnan(x)
        for f in range(width):
            col = x[:, f]
            # searchsorted sorts NaN after every number: the highest rank.
            out[:, f] = np.where(missing[:, f], 0, np.searchsorted(self.cuts[f], col))
            out[:, width + f] = np.searchsorted(self.cuts[width + f], col)
        return out

    def _raw(self, x: Matrix) -> Matrix:
        return np.asarray(
            _kernel(
                self._ranks(x),
                self.feat,
                self.rank_thr,
                self.left,
                self.value,
                self.roots,
                self.depth,
                self.ends,
                self.base,
            ),
            dtype=np.float64,
        )

    def proba(self, x: Matrix, *, threads: int = 1) -> Matrix:
        """P(class 1) per row (rows x classifiers), as each classifier's predict_proba gives it."""
        x = np.asarray(x, dtype=np.float64)
        if threads <= 1 or len(x) < PARALLEL_ROWS:
            raw = self._raw(x)
        else:
            parts = np.array_split(x, threads)
            with ThreadPoolExecutor(max_workers=threads) as pool:
                raw = np.concatenate(list(pool.map(self._raw, parts)))
        return np.asarray(expit(raw), dtype=np.float64)


def _flatten(
    nodes: Any,
    offset: int,
    width: int,
    feat: list[int],
    thr: list[float],
    left: list[int],
    value: list[float],
) -> None:
    """Append one tree, breadth first so that each split's children sit side by side.

    A split whose missing values go right reads column ``f + width`` of ``_ranks``.
    """
    order = [0]
    position = {0: 0}
    for k in order:  # grows while it is walked: breadth first
        if not nodes["is_leaf"][k]:
            for child in (int(nodes["left"][k]), int(nodes["right"][k])):
                position[child] = len(order)
                order.append(child)
    for k in order:
        node = nodes[k]
        if node["is_leaf"]:
            # Stays put: nothing exceeds +inf.
            feat.append(0)
            thr.append(np.inf)
            left.append(offset + position[k])
            value.append(float(node["value"]))
        else:
            side = 0 if node["missing_go_to_left"] else width
            feat.append(int(node["feature_idx"]) + side)
            thr.append(min(float(node["num_threshold"]), _MAX))
            left.append(offset + position[int(node["left"])])
            value.append(0.0)
