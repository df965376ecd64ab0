"""A model version's serving form (``models.serving``): the bundle's scores bit for bit from
ONNX trees and plain numbers, stored beside the bundle, refused when it is not one, and
scored by a process that loads neither scikit-learn nor numba."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pytest

from forewarn.domain import ANOMALY, FaultKind
from forewarn.settings import Settings
from models import repository
from models.anomaly import AnomalyScore, BatteryLife
from models.base import FeatureSet
from models.bundle import ModelBundle
from models.export import tree_ensemble
from models.features import FEATURES
from models.forest import _kernel
from models.labels import label_rows
from models.predictors import FaultPredictor
from models.reasons import Baseline
from models.serving import Forest, ServingError, ServingModel
from models.simulated import Dataset, simulate
from tests.conftest import env_for

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def small() -> Dataset:
    """A small simulated fleet with many faults (about 3 s to build)."""
    return simulate(devices=60, seed=3, days=2.0, fault_rate=0.5)


@pytest.fixture(scope="module")
def bundle(small: Dataset) -> ModelBundle:
    """Two fault predictors and one device model's isolation forest, learnt on the fleet; the
    other device models have none. Thresholds low enough that many rows alert."""
    data = small.data
    predictors = {
        fault: FaultPredictor(fault, seed=2, max_iter=iters).learn(
            data, label_rows(data, small.episodes, fault, horizon_h=24)
        )
        for fault, iters in ((FaultKind.BATTERY_FAILURE, 40), (FaultKind.CONNECTIVITY_LOSS, 25))
    }
    healthy = np.zeros(len(data), dtype=np.int8)
    first = str(data.device_models[0])
    return ModelBundle(
        seed=2,
        horizon_h=24.0,
        features=FEATURES,
        predictors=predictors,
        thresholds={ANOMALY: 0.5} | {f.value: 0.05 for f in predictors},
        anomaly={
            first: AnomalyScore(seed=3).learn(
                data.subset(data.device_models == first), healthy[data.device_models == first]
            )
        },
        battery=BatteryLife().learn(data, healthy),
        baseline=Baseline.learn(data.x),
        version=7,
    )


def _edge_rows(data: FeatureSet, bundle: ModelBundle) -> FeatureSet:
    """The fleet's rows with missing values, infinities and values exactly on a split."""
    x = data.x.copy()
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:50] = np.inf
    x[50:100] = -np.inf
    predictor = next(iter(bundle.predictors.values()))
    tree = predictor._folds[0]._predictors[0][0].nodes
    split = tree[~tree["is_leaf"].astype(bool)][0]
    x[100:150, split["feature_idx"]] = split["num_threshold"]
    return FeatureSet(x, data.device_ids, data.device_models, data.buckets)


def test_the_serving_form_scores_exactly_as_the_bundle(small: Dataset, bundle: ModelBundle) -> None:
    blob = bundle.serving()
    assert blob is not None
    form = ServingModel.loads(blob, version=bundle.version)
    data = _edge_rows(small.data, bundle)
    assert len(set(data.device_models.tolist())) > 1  # with and without an anomaly forest
    for rows in (
        data,
        data.subset(np.arange(len(data)) < 300),
        data.subset(np.arange(len(data)) == 7),
    ):
        expected, got = bundle.scores(rows), form.scores(rows)
        assert (
            expected.keys()
            == got.keys()
            == {FaultKind.BATTERY_FAILURE.value, FaultKind.CONNECTIVITY_LOSS.value, ANOMALY}
        )
        for fault in expected:
            np.testing.assert_array_equal(got[fault], expected[fault], err_msg=fault)
    scores = form.scores(data)
    assert all(np.ptp(s) > 0 for s in scores.values()), "a constant score tells nothing"
    predicted = form.predictions(data)
    assert predicted == bundle.predictions(data)
    assert {p.fault for p in predicted} == set(scores)
    assert all(p.model_version == 7 for p in predicted)
    assert form.ranks(data.x[:0]).shape == (0, 2 * (len(form.cut_starts) - 1))


def test_a_model_without_trees_has_a_serving_form(small: Dataset) -> None:
    healthy = np.zeros(len(small.data), dtype=np.int8)
    bare = ModelBundle(
        seed=0,
        horizon_h=12.0,
        features=(),
        predictors={},
        thresholds={ANOMALY: 0.0},
        anomaly={},
        battery=BatteryLife(horizon_h=12.0).learn(small.data, healthy),
        baseline=Baseline.learn(small.data.x),
    )
    blob = bare.serving()
    assert blob is not None
    form = ServingModel.loads(blob)
    assert form.battery.usual_drain == bare.battery.usual_drain > 0
    assert form.baseline == bare.baseline
    assert form.predictions(small.data) == bare.predictions(small.data)


@dataclass
class _Flat:
    """Trees laid out as models/forest.py lays them out, by hand."""

    feat: np.ndarray
    thr: np.ndarray
    left: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: np.ndarray
    ends: np.ndarray
    base: np.ndarray


def test_tree_ensemble_sums_as_the_compiled_kernel_with_one_leaf_trees() -> None:
    # Output 0: a split on column 0 at 0.5 (leaves 1.0 and 2.0), then a tree that is one leaf
    # (0.25). Output 1: a split on column 1 at -1.0 whose right child splits on column 0 at 3.
    inf = np.inf
    flat = _Flat(
        feat=np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=np.uint32),
        thr=np.array([0.5, inf, inf, inf, -1.0, inf, 3.0, inf, inf, inf]),
        left=np.array([1, 1, 2, 3, 5, 5, 7, 7, 8, 9], dtype=np.uint32),
        value=np.array([0.0, 1.0, 2.0, 0.25, 0.0, -4.0, 0.0, 0.125, 8.0, 0.0]),
        roots=np.array([0, 3, 4], dtype=np.uint32),
        depth=np.array([1, 0, 2], dtype=np.int32),
        ends=np.array([2, 3], dtype=np.int32),
        base=np.array([0.1, -0.3]),
    )
    x = np.array([[0.0, -2.0], [0.5, -1.0], [0.6, 0.0], [4.0, 5.0], [3.0, -0.5], [-1e300, 1e300]])
    expected = _kernel(
        x, flat.feat, flat.thr, flat.left, flat.value, flat.roots, flat.depth, flat.ends, flat.base
    )
    got = Forest(tree_ensemble(flat, flat.thr, inputs=2)).sums(x)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        got[:, 0],
        [
            0.1 + 1.0 + 0.25,
            0.1 + 1.0 + 0.25,
            0.1 + 2.0 + 0.25,
            0.1 + 2.0 + 0.25,
            0.1 + 2.0 + 0.25,
            0.1 + 1.0 + 0.25,
        ],
    )
    np.testing.assert_array_equal(
        got[:, 1], [-0.3 - 4.0, -0.3 - 4.0, -0.3 + 0.125, -0.3 + 8.0, -0.3 + 0.125, -0.3 + 0.125]
    )


def test_bytes_that_are_no_serving_form_are_refused(bundle: ModelBundle) -> None:
    blob = bundle.serving()
    assert blob is not None
    with pytest.raises(ServingError, match="not a serving form"):
        ServingModel.loads(b"not a model")
    with pytest.raises(ServingError, match="not a serving form"):
        ServingModel.loads(pickle.dumps(bundle))  # a pickle is never unpickled
    with pytest.raises(ServingError, match="not a serving form"):
        ServingModel.loads(blob[: len(blob) // 2])
    # Another format's header, and trees onnxruntime cannot load.
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = str(arrays["header"])
    for change, message in (
        ({"header": np.array(header.replace('"format": 1', '"format": 99'))}, "format 99"),
        ({"trees": np.frombuffer(b"\x00garbage", dtype=np.uint8)}, "trees do not load"),
    ):
        out = io.BytesIO()
        np.savez(out, allow_pickle=False, **(arrays | change))
        with pytest.raises(ServingError, match=message):
            ServingModel.loads(out.getvalue())


_SCORE_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
from forewarn.db import connect
from forewarn.settings import Settings
from models import repository, sliced
from models.base import FeatureSet
from models.features import FEATURES

with connect(Settings()) as conn:
    form = repository.load_serving(conn, version=int(sys.argv[1]))
rng = np.random.default_rng(0)
x = rng.normal(size=(200, len(FEATURES)))
data = FeatureSet(x, np.array([f"d{i}" for i in range(200)]), np.array(["m"] * 200), np.arange(200))
found = form.predictions(data)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "numba", "llvmlite", "onnx"})
print(len(found), form.version, ",".join(heavy) or "-")
"""


def test_a_stored_version_is_scored_from_its_serving_form_without_scikit_learn(
    settings: Settings, db: Conn, bundle: ModelBundle
) -> None:
    from models.scorer import Scorer

    now = datetime.now(UTC)
    version = repository.save_version(
        db, bundle=bundle, trained_from=now, trained_to=now, evaluation={}, note="test"
    )
    repository.activate(db, version=version)
    db.commit()
    form = repository.load_serving(db, version=version)
    assert form is not None and form.version == version
    run = subprocess.run(
        [sys.executable, "-c", _SCORE_IN_A_FRESH_PROCESS, str(version)],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    found, loaded, heavy = run.stdout.split()
    assert int(found) > 0 and int(loaded) == version
    assert heavy == "-", f"the scoring process loaded {heavy}"

    scorer = Scorer(settings, warmup_hours=0)
    scorer._check_model(db)
    assert isinstance(scorer._bundle, ServingModel)
    # A version stored before serving forms: scored from its bundle.
    db.execute("UPDATE model_versions SET serving = NULL, serving_sha256 = NULL")
    db.commit()
    assert repository.load_serving(db, version=version) is None
    fallback = Scorer(settings, warmup_hours=0)
    fallback._check_model(db)
    assert isinstance(fallback._bundle, ModelBundle) and fallback._bundle.version == version
    # An altered form is refused by its digest.
    blob = bundle.serving()
    db.execute(
        "UPDATE model_versions SET serving = %s, serving_sha256 = %s",
        (blob, "0" * 64),
    )
    db.commit()
    with pytest.raises(ValueError, match="does not match its digest"):
        repository.load_serving(db, version=version)
