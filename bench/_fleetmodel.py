"""The benchmarks' models. The fleet benchmark's: a real, tiny model bundle whose anomaly
threshold is 0, so every scored reading writes its prediction row (the write path's worst
case, and the publish-to-prediction latency of every reading made visible). A trained one,
learnt on a simulated fleet. Seeded; no download."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from forewarn.domain import ANOMALY
from models import repository
from models.anomaly import BatteryLife
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
    """Store `bundle` (and its serving form) and make it the active version; returns it. Its
    evaluation is empty: the label-free detectors keep every fault (``live.supervised_faults``)
    and the model's own fault predictions are scored, not written."""
    now = datetime.now(UTC)
    version = repository.save_version(
        conn, bundle=bundle, trained_from=now, trained_to=now, evaluation={}, note=note
    )
    repository.activate(conn, version=version)
    return version


def trained_bundle() -> bytes:
    """A trained model's bundle: learnt by ``learn_bundle`` on a simulated fleet (80 devices,
    2 days, seed 11; about 25 s), so its trees and forests are a real model's (5 fault
    predictors of three 150-tree fold models, an isolation forest per device model). Its
    anomaly threshold is 0, as the fleet benchmark's model's: every scored reading writes its
    prediction."""
    from models.bundle import learn_bundle
    from models.simulated import simulate

    fleet = simulate(devices=80, seed=11, days=2.0, fault_rate=0.5)
    bundle, _ = learn_bundle(fleet.data, fleet.episodes, seed=0)
    bundle.thresholds[ANOMALY] = 0.0
    return bundle.dumps()
