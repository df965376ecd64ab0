"""The benchmarks' models. The fleet benchmark's: a real, tiny model bundle whose anomaly
threshold is 0, so every scored reading writes its prediction row (the write path's worst
case, and the publish-to-prediction latency of every reading made visible). A trained one:
every part a trained model has (five fault predictors of three gradient-boosted fold models
and a calibration each, an isolation forest), learnt on seeded random rows. Seeded; no
download."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from forewarn.domain import ANOMALY, FaultKind
from models import repository
from models.anomaly import AnomalyScore, BatteryLife
from models.base import FeatureSet
from models.bundle import ModelBundle
from models.features import FEATURES
from models.reasons import Baseline


def activate_alert_everything(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """Store and activate the bundle; returns its version."""
    rng = np.random.default_rng(0)
    rows = 60
    data = FeatureSet(
        rng.normal(size=(rows, len(FEATURES))),
        np.array([f"d-{i}" for i in range(rows)]),
        np.array(["lock-s2"] * rows),
        np.arange(rows, dtype=np.int64),
    )
    bundle = ModelBundle(
        seed=0,
        horizon_h=24.0,
        features=FEATURES,
        predictors={},
        thresholds={ANOMALY: 0.0},
        anomaly={},
        battery=BatteryLife().learn(data, np.zeros(rows, dtype=np.int8)),
        baseline=Baseline.learn(data.x),
    )
    return activate(conn, bundle, note="bench/fleet")


def activate(conn: psycopg.Connection[tuple[Any, ...]], bundle: ModelBundle, *, note: str) -> int:
    """Store `bundle` (and its serving form) and make it the active version; returns it."""
    now = datetime.now(UTC)
    version = repository.save_version(
        conn, bundle=bundle, trained_from=now, trained_to=now, evaluation={}, note=note
    )
    repository.activate(conn, version=version)
    return version


def trained_bundle() -> bytes:
    """A bundle with every part of a trained model, learnt on seeded random rows."""
    from models.predictors import FaultPredictor

    rng = np.random.default_rng(0)
    rows = 3000
    x = rng.normal(size=(rows, len(FEATURES)))
    data = FeatureSet(
        x,
        np.array([f"d-{i % 30}" for i in range(rows)]),
        np.array(["lock-s2"] * rows),
        np.arange(rows, dtype=np.int64),
    )
    healthy = np.zeros(rows, dtype=np.int8)
    predictors: dict[FaultKind, FaultPredictor] = {}
    for j, fault in enumerate(FaultKind):
        y = (x[:, j] + rng.normal(0, 0.5, rows) > 1.5).astype(np.int8)
        predictors[fault] = FaultPredictor(fault, seed=0).learn(data, y)
    bundle = ModelBundle(
        seed=0,
        horizon_h=24.0,
        features=FEATURES,
        predictors=predictors,
        thresholds={ANOMALY: 0.0} | {f.value: 0.9 for f in FaultKind},
        anomaly={"lock-s2": AnomalyScore(seed=0).learn(data, healthy)},
        battery=BatteryLife().learn(data, healthy),
        baseline=Baseline.learn(data.x),
    )
    return bundle.dumps()
