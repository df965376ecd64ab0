"""The fleet benchmark's model: a real, tiny model bundle whose anomaly threshold is 0, so
every scored reading writes its prediction row (the write path's worst case, and the
publish-to-prediction latency of every reading made visible). Seeded; no download."""

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
    now = datetime.now(UTC)
    version = repository.save_version(
        conn, bundle=bundle, trained_from=now, trained_to=now, evaluation={}, note="bench/fleet"
    )
    repository.activate(conn, version=version)
    return version
