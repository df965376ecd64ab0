"""Fast scoring of the bundle's trees, with scikit-learn's exact decisions.

scikit-learn's HistGradientBoosting ``predict_proba`` walks one tree at a time over every row,
a branch per node that the processor cannot predict: profiled on the bundle (5 faults x 3
fold models x 150 trees), that walk was 95 % of batch scoring, about 18,000 rows a second.
Here the fold models are flattened into arrays (each split's two children side by side, so
the step is ``left + (x > threshold)`` without a branch) and walked by a kernel compiled with
numba: a block of 64 rows goes through one tree level by level, so the rows' steps overlap
instead of waiting for each other, and the tree stays in the cache for the block; the block
leaves a tree as soon as a level moves none of its rows (a device's consecutive rows tend to
end on the same leaves). The walk compares small integers: each value is replaced by its rank
among its feature's split thresholds (a binary search per value, once per batch for all the
predictors scored together), and each split by its threshold's rank, which decides the same
way and keeps a row in 148 bytes instead of 592. Missing values cost no test: each row is
given twice, once with them ranked lowest and once highest, and each split reads the copy
that sends them its way.

The decisions are scikit-learn's: a value at or below the threshold goes left, a missing value
goes where the split sent missing values in training, leaves add their value to the model's
baseline in the same order. So the probabilities are the same floats, bit for bit, and a test
holds them to it. Models this module does not know (categorical splits, several outputs) are
left to scikit-learn. The anomaly score's isolation forests go through the same kernel
(``CompiledIsolation``): float32 rows against float64 thresholds, as scikit-learn compares
them, each leaf adding the term scikit-learn adds, so their scores are the same floats too.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from models.anomaly import isolation_score

Matrix = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
U32 = npt.NDArray[np.uint32]
Ranks = npt.NDArray[np.unsignedinteger[Any]]

# Rows that go through a tree together: enough to overlap their steps and to share each
# tree's trip to the cache, few enough to keep their ranks (74 uint16 each) in the first-level
# cache. An A/B of the kernel alone on the bench's bundle: 64 rows a little ahead of 32 and 128.
BLOCK_ROWS = 64
# Below this many rows a second thread costs more than it saves (the live scorer's batches).
PARALLEL_ROWS = 8_192
_MAX = float(np.finfo(np.float64).max)


def _walk(
    x: npt.NDArray[Any],
    feat: U32,
    thr: npt.NDArray[Any],
    left: U32,
    value: Matrix,
    roots: U32,
    depth: I32,
    ends: I32,
    base: Matrix,
) -> Matrix:
    """Raw predictions (rows x models): each model's baseline plus its trees' leaf values.

    For the fault predictors `x` is the rows twice over as ranks (``CompiledForests._ranks``),
    so a split reads the copy whose missing values fall its way, and `thr` holds each split's
    rank: ``x > threshold`` exactly when ``rank(x) > rank(threshold)``. For an isolation
    forest `x` is the rows as float32 and `thr` the float64 thresholds. Model m owns trees
    ``ends[m-1] .. ends[m]-1``. A leaf points to itself with the highest threshold, so a row on
    its leaf stays there; a block stops walking a tree once a level moved none of its rows.

    The node indices are unsigned on purpose: numba gives a signed index that it cannot prove
    positive Python's wrap-around (a test and a select on every read), and each step reads
    four arrays by index; unsigned indices and the block as its own slice skip that.
    """
    n, models = x.shape[0], ends.shape[0]
    out = np.empty((n, models))
    idx = np.empty(BLOCK_ROWS, dtype=np.uint32)
    acc = np.empty(BLOCK_ROWS)
    for lo in range(0, n, BLOCK_ROWS):
        w = min(BLOCK_ROWS, n - lo)
        rows = x[lo : lo + w]
        first = 0
        for m in range(models):
            for r in range(w):
                acc[r] = base[m]
            for t in range(first, ends[m]):
                root = roots[t]
                for r in range(w):
                    idx[r] = root
                for _ in range(depth[t]):
                    moved = np.uint32(0)
                    for r in range(w):
                        k = idx[r]
                        step = left[k] + np.uint32(rows[r, feat[k]] > thr[k])
                        moved |= step ^ k
                        idx[r] = step
                    if moved == 0:  # every row of the block is on its leaf
                        break
                for r in range(w):
                    acc[r] += value[idx[r]]
            for r in range(w):
                out[lo + r, m] = acc[r]
            first = ends[m]
    return out


def _rank(x: Matrix, cuts: Matrix, starts: npt.NDArray[np.int64], out: Ranks) -> Ranks:
    """The rows twice (`out`), each value as its rank among its feature's thresholds.

    Feature f's thresholds are ``cuts[starts[f]:starts[f + 1]]``, sorted. Rank = how many
    thresholds lie below the value (a binary search without a branch on the comparison). In
    the first copy a missing value ranks lowest (it goes left at every split), in the second
    above every threshold (right). Real infinities count as the largest finite float, as a
    split at +inf (scikit-learn's "every value left, missing ones right") was moved down to
    it. One pass in compiled code: numpy's searchsorted per column, twice, cost a tenth of
    the walk.
    """
    n, width = x.shape
    for i in range(n):
        for f in range(width):
            v = x[i, f]
            first, size = starts[f], starts[f + 1] - starts[f]
            if np.isnan(v):
                out[i, f] = 0
                out[i, width + f] = size
                continue
            v = min(max(v, -_MAX), _MAX)
            base = first
            while size > 1:  # the rank lies in [base, base + size]
                half = size // 2
                if cuts[base + half - 1] < v:
                    base += half
                size -= half
            if size == 1 and cuts[base] < v:
                base += 1
            out[i, f] = base - first
            out[i, width + f] = base - first
    return out


# Compiled on first use (about a second), once per process; nogil lets threads share the rows.
_kernel: Any = numba.njit(nogil=True, cache=False)(_walk)
_rank_kernel: Any = numba.njit(nogil=True, cache=False)(_rank)


class CompiledForests:
    """Binary HistGradientBoosting classifiers as flat arrays: P(class 1) per row and model."""

    def __init__(self, classifiers: list[HistGradientBoostingClassifier]) -> None:
        layout = _Layout()
        ends: list[int] = []
        base: list[float] = []
        width = max((int(c.n_features_in_) for c in classifiers), default=0)
        for clf in classifiers:
            base.append(float(np.ravel(clf._baseline_prediction)[0]))
            for (predictor,) in clf._predictors:
                _flatten(predictor.nodes, width, layout)
            ends.append(len(layout.roots))
        self.feat, self.thr, self.left, self.value, self.roots, self.depth = layout.arrays()
        self.ends = np.array(ends, dtype=np.int32)
        self.base = np.array(base, dtype=np.float64)
        # Each feature's distinct split thresholds (whichever way the split sends missing
        # values, so both copies of a row rank alike), and each split's rank among them.
        split = np.isfinite(self.thr)
        column = self.feat % max(width, 1)
        self.cuts = [np.unique(self.thr[split & (column == f)]) for f in range(width)]
        most = max((len(c) for c in self.cuts), default=0)
        self.rank_dtype = np.uint16 if most < np.iinfo(np.uint16).max else np.uint32
        self.rank_thr = np.full(len(self.thr), np.iinfo(self.rank_dtype).max, self.rank_dtype)
        for f, cuts in enumerate(self.cuts):
            nodes = np.flatnonzero(split & (column == f))
            self.rank_thr[nodes] = np.searchsorted(cuts, self.thr[nodes])
        self.cut_values = np.concatenate([np.empty(0), *self.cuts])
        self.cut_starts = np.cumsum([0] + [len(c) for c in self.cuts], dtype=np.int64)

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
        """The rows twice, each value as its rank among its feature's thresholds."""
        out = np.empty((len(x), 2 * len(self.cuts)), dtype=self.rank_dtype)
        return np.asarray(_rank_kernel(x, self.cut_values, self.cut_starts, out))

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
        raw = by_row_blocks(self._raw, np.asarray(x, dtype=np.float64), threads)
        return np.asarray(expit(raw), dtype=np.float64)


def by_row_blocks(
    fn: Callable[[npt.NDArray[Any]], Matrix], x: npt.NDArray[Any], threads: int
) -> Matrix:
    """``fn(x)``, on `threads` blocks of rows at once when there are enough rows.

    The kernel releases the GIL, so the blocks run in parallel; each row's result does not
    depend on the others, so it is the same float either way.
    """
    if threads <= 1 or len(x) < PARALLEL_ROWS:
        return fn(x)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return np.concatenate(list(pool.map(fn, np.array_split(x, threads))))


class _Layout:
    """Trees laid out as flat arrays for the kernel: per node its feature, threshold, first
    child and value; per tree its root and depth. Each tree goes in breadth first, so that
    each split's children sit side by side; a leaf's threshold is +inf (nothing exceeds it,
    so a row stays) and its first child is itself."""

    def __init__(self) -> None:
        self.feat: list[int] = []
        self.thr: list[float] = []
        self.left: list[int] = []
        self.value: list[float] = []
        self.roots: list[int] = []
        self.depth: list[int] = []

    def tree(
        self, depth: int, children: Callable[[int], tuple[int, int] | None]
    ) -> list[tuple[int, int | None]]:
        """Start a tree of `depth`; its nodes (``children`` gives a split's two, None for a
        leaf) in the order to add them, each with the flat index of its first child (None for
        a leaf)."""
        offset = len(self.feat)
        self.roots.append(offset)
        self.depth.append(depth)
        order = [0]
        position = {0: 0}
        kids: dict[int, tuple[int, int] | None] = {}
        for k in order:  # grows while it is walked: breadth first
            kids[k] = children(k)
            for child in kids[k] or ():
                position[child] = len(order)
                order.append(child)
        out: list[tuple[int, int | None]] = []
        for k in order:
            pair = kids[k]
            out.append((k, None if pair is None else offset + position[pair[0]]))
        return out

    def leaf(self, value: float) -> None:
        """Add a leaf."""
        self.left.append(len(self.feat))
        self.feat.append(0)
        self.thr.append(np.inf)
        self.value.append(value)

    def split(self, feature: int, threshold: float, first_child: int) -> None:
        """Add a split: rows above `threshold` in `feature` go to the second child."""
        self.feat.append(feature)
        self.thr.append(threshold)
        self.left.append(first_child)
        self.value.append(0.0)

    def arrays(self) -> tuple[npt.NDArray[Any], ...]:
        """feat, thr, left, value, roots and depth as the kernel reads them."""
        return (
            np.array(self.feat, dtype=np.uint32),
            np.array(self.thr, dtype=np.float64),
            np.array(self.left, dtype=np.uint32),
            np.array(self.value, dtype=np.float64),
            np.array(self.roots, dtype=np.uint32),
            np.array(self.depth, dtype=np.int32),
        )


def _flatten(nodes: Any, width: int, layout: _Layout) -> None:
    """Append one HistGradientBoosting tree. A split whose missing values go right reads
    column ``f + width`` of ``_ranks``."""

    def children(k: int) -> tuple[int, int] | None:
        return None if nodes["is_leaf"][k] else (int(nodes["left"][k]), int(nodes["right"][k]))

    for k, first in layout.tree(int(nodes["depth"].max()), children):
        node = nodes[k]
        if first is None:
            layout.leaf(float(node["value"]))
        else:
            side = 0 if node["missing_go_to_left"] else width
            layout.split(
                int(node["feature_idx"]) + side, min(float(node["num_threshold"]), _MAX), first
            )


class CompiledIsolation:
    """An isolation forest as flat arrays: ``-score_samples`` per row, bit for bit.

    scikit-learn's ``score_samples`` casts the rows to float32 and, tree after tree, adds the
    depth of the row's leaf plus the average path length of the training rows left in it
    (less one); the anomaly score is ``2 ** -(sum / (trees x c(max_samples)))``. Here each
    leaf carries that sum's term, computed by the same float operations, the kernel adds the
    terms in the same order, and the last step is the same numpy expression. The rows are
    compared as float32 values against float64 thresholds, as scikit-learn's ``apply`` does.
    Rows must not hold missing values (the anomaly score replaces them before scoring).
    """

    def __init__(self, forest: IsolationForest) -> None:
        layout = _Layout()
        subsample = forest._max_features != forest.n_features_in_
        for tree, features, lengths, average in zip(
            forest.estimators_,
            forest.estimators_features_,
            forest._decision_path_lengths,
            forest._average_path_length_per_tree,
            strict=True,
        ):
            # The term scikit-learn adds for a row in each leaf, by the same operations.
            terms = lengths + average - 1.0
            columns = np.asarray(features) if subsample else None
            _flatten_tree(tree.tree_, terms, columns, layout)
        self.feat, self.thr, self.left, self.value, self.roots, self.depth = layout.arrays()
        self.ends = np.array([len(layout.roots)], dtype=np.int32)
        self.base = np.zeros(1)
        self.denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])

    def _depths(self, x: F32) -> Matrix:
        args = (self.feat, self.thr, self.left, self.value, self.roots, self.depth)
        return np.asarray(_kernel(x, *args, self.ends, self.base)[:, 0], dtype=np.float64)

    def anomaly(self, x: Matrix, *, threads: int = 1) -> Matrix:
        """``-forest.score_samples(x)`` per row (higher is more unusual)."""
        rows = np.ascontiguousarray(x, dtype=np.float32)
        return isolation_score(by_row_blocks(self._depths, rows, threads), self.denominator)


def _flatten_tree(
    nodes: Any, terms: Matrix, columns: npt.NDArray[np.intp] | None, layout: _Layout
) -> None:
    """Append one scikit-learn tree (``tree_``); a leaf's value is its term of the sum."""
    children_left, children_right = nodes.children_left, nodes.children_right

    def children(k: int) -> tuple[int, int] | None:
        if children_left[k] == -1:
            return None
        return int(children_left[k]), int(children_right[k])

    for k, first in layout.tree(int(nodes.max_depth), children):
        if first is None:
            layout.leaf(float(terms[k]))
        else:
            f = int(nodes.feature[k])
            feature = int(columns[f]) if columns is not None else f
            layout.split(feature, float(nodes.threshold[k]), first)
