"""A bundle's serving form (``models.serving``), made where it is trained and stored.

The trees come from their flat layout in ``models/forest.py``: every split compares one
column with one threshold and sends rows at or below it to its first child, so each becomes a
``BRANCH_LEQ`` node of an ONNX ``TreeEnsemble`` whose true branch is that child. The fault
predictors' splits compare ranks (the threshold's rank among its feature's, the row's value's
likewise), so the ensemble takes the ranked rows; the isolation forests' compare the float32
row with the float64 threshold, as scikit-learn does. A tree of one output is preceded by a
one-leaf tree holding the output's baseline, so each sum starts from it as scikit-learn's
does. Loading scikit-learn, numba and onnx is this module's business, never the scorer's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.bundle import ModelBundle
from models.forest import CompiledIsolation
from models.serving import ML_OPSET, Calibration, Isolation, ServingModel

_BRANCH_LEQ = 0
_SUM = 1


def serving_form(bundle: ModelBundle) -> ServingModel | None:
    """The bundle as the live scorer scores it; None if its trees have a kind of split the
    compiled forests do not hold (categorical splits, several outputs)."""
    predictors = list(bundle.predictors.values())
    calibrations: list[Calibration] = []
    for p in predictors:
        lr = p._calibration
        if lr is None or not p._folds:
            raise ValueError(f"{p.fault} predictor has not learned yet")
        if lr.coef_.shape != (1, 1) or len(lr.classes_) != 2:
            return None
        calibrations.append(
            Calibration(
                p.fault.value, len(p._folds), float(lr.coef_[0, 0]), float(lr.intercept_[0])
            )
        )
    trees = b""
    cut_values, cut_starts = np.empty(0), np.zeros(1, dtype=np.int64)
    if predictors:
        # The bundle's own flattened trees (made once, shared with its batch scoring).
        forests = bundle.group().forests
        if forests is None:
            return None
        trees = tree_ensemble(
            forests, forests.rank_thr.astype(np.float64), inputs=2 * len(forests.cuts)
        )
        cut_values, cut_starts = forests.cut_values, forests.cut_starts
    anomaly: dict[str, Isolation] = {}
    for model, score in bundle.anomaly.items():
        forest = score._forest
        if forest is None:
            raise ValueError(f"the anomaly score of {model} has not learned yet")
        isolation = CompiledIsolation(forest)
        anomaly[model] = Isolation(
            tree_ensemble(isolation, isolation.thr, inputs=int(forest.n_features_in_)),
            float(np.ravel(isolation.denominator)[0]),
            np.asarray(score._reference, dtype=np.float64),
        )
    return ServingModel(
        horizon_h=bundle.horizon_h,
        features=bundle.features,
        thresholds=dict(bundle.thresholds),
        calibrations=tuple(calibrations),
        cut_values=np.asarray(cut_values, dtype=np.float64),
        cut_starts=np.asarray(cut_starts, dtype=np.int64),
        trees=trees,
        anomaly=anomaly,
        battery=bundle.battery,
        baseline=bundle.baseline,
        version=bundle.version,
    )


def tree_ensemble(flat: Any, thresholds: npt.NDArray[np.float64], *, inputs: int) -> bytes:
    """Flat trees (``CompiledForests`` or ``CompiledIsolation``: ``feat``, ``left``,
    ``value``, ``roots``, ``ends``, ``base``) as a serialised ONNX model: input ``X``
    (rows x `inputs`, double), output ``Y`` (rows x models, double), each output the sum of
    its model's baseline and its trees' leaves, in tree order."""
    feat = np.asarray(flat.feat, dtype=np.int64)
    left = np.asarray(flat.left, dtype=np.int64)
    value = np.asarray(flat.value, dtype=np.float64)
    roots = np.asarray(flat.roots, dtype=np.int64)
    ends = np.asarray(flat.ends, dtype=np.int64)
    base = np.asarray(flat.base, dtype=np.float64)
    models = len(ends)
    k = np.arange(len(feat))
    is_leaf = left == k  # a leaf is its own first child
    splits = np.flatnonzero(~is_leaf)
    leaves = np.flatnonzero(is_leaf)
    # Base trees come first: node i and leaf i of output i, both branches to the leaf.
    node_at = np.full(len(feat), -1)
    node_at[splits] = models + np.arange(len(splits))
    leaf_at = np.full(len(feat), -1)
    leaf_at[leaves] = models + np.arange(len(leaves))
    tree_of = np.searchsorted(roots, k, side="right") - 1
    model_of_tree = np.searchsorted(ends, np.arange(len(roots)), side="right")

    def branch(child: npt.NDArray[np.int64]) -> tuple[list[int], list[int]]:
        leaf = is_leaf[child]
        return np.where(leaf, leaf_at[child], node_at[child]).tolist(), leaf.astype(int).tolist()

    true_ids, true_leafs = branch(left[splits])
    false_ids, false_leafs = branch(left[splits] + 1)
    base_ids = list(range(models))
    node_feat = [0] * models + feat[splits].tolist()
    node_split = np.concatenate([np.zeros(models), thresholds[splits]])
    true_ids, false_ids = base_ids + true_ids, base_ids + false_ids
    true_leafs = [1] * models + true_leafs
    false_leafs = [1] * models + false_leafs
    tree_roots = base_ids.copy()
    for root in roots.tolist():
        if not is_leaf[root]:
            tree_roots.append(int(node_at[root]))
            continue
        # A tree that is one leaf: a node whose branches both reach it.
        tree_roots.append(len(node_feat))
        node_feat.append(0)
        node_split = np.append(node_split, 0.0)
        for ids, flags in ((true_ids, true_leafs), (false_ids, false_leafs)):
            ids.append(int(leaf_at[root]))
            flags.append(1)
    node = helper.make_node(
        "TreeEnsemble",
        ["X"],
        ["Y"],
        domain="ai.onnx.ml",
        aggregate_function=_SUM,
        n_targets=models,
        post_transform=0,
        tree_roots=tree_roots,
        nodes_featureids=node_feat,
        nodes_splits=numpy_helper.from_array(node_split.astype(np.float64)),
        nodes_modes=numpy_helper.from_array(np.full(len(node_feat), _BRANCH_LEQ, np.uint8)),
        nodes_truenodeids=true_ids,
        nodes_trueleafs=true_leafs,
        nodes_falsenodeids=false_ids,
        nodes_falseleafs=false_leafs,
        leaf_targetids=list(range(models)) + model_of_tree[tree_of[leaves]].tolist(),
        leaf_weights=numpy_helper.from_array(np.concatenate([base, value[leaves]])),
    )
    graph = helper.make_graph(
        [node],
        "forewarn_trees",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, inputs])],
        [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, [None, models])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="forewarn",
    )
    onnx.checker.check_model(model)
    serialised: bytes = model.SerializeToString()
    return serialised
