"""A trained model version: the per-fault predictors, the anomaly scores and the battery
estimate, with the thresholds and healthy baseline that turn their scores into predictions.

Learning is pure and seeded: the same feature set, labels and seed give the same bundle.
"""

from __future__ import annotations

import pickle
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from forewarn.domain import ANOMALY, FaultKind, Prediction
from models.anomaly import AnomalyScore, BatteryLife
from models.base import SCORING_THREADS, FeatureSet, Threshold
from models.evaluation import FaultQuality, choose_threshold
from models.features import FEATURES
from models.labels import Episode, label_rows
from models.reasons import Baseline, explain

if TYPE_CHECKING:
    # scikit-learn and the compiled trees load when a stored predictor is read (pickle imports
    # its module) or one is learnt, not with this module: a scorer whose model has none (the
    # label-free detectors alone, the fleet benchmark's model) never pays their memory.
    from models.predictors import FaultPredictor, PredictorGroup

DEFAULT_HORIZON_H = 24.0
# The anomaly score alerts only on rows rarer than this share of healthy rows.
ANOMALY_THRESHOLD = 0.9995
Progress = Callable[[str], None]


# eq=False: a bundle is itself (hashable by identity, so its compiled trees can be kept
# beside it in a weak dictionary); nothing compares two bundles' contents.
@dataclass(slots=True, eq=False, weakref_slot=True)
class ModelBundle:
    """Everything one model version needs to score feature rows."""

    seed: int
    horizon_h: float
    features: tuple[str, ...]
    predictors: dict[FaultKind, FaultPredictor]
    thresholds: dict[str, float]
    anomaly: dict[str, AnomalyScore]
    battery: BatteryLife
    baseline: Baseline
    training: dict[str, object] = field(default_factory=dict)
    version: int | None = None

    def scores(
        self, data: FeatureSet, *, threads: int = SCORING_THREADS
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Per fault (and "anomaly"), one probability per row of `data`.

        The fault predictors are scored together (``PredictorGroup``); a large batch is split
        among `threads` threads.
        """
        out: dict[str, npt.NDArray[np.float64]] = {}
        if self.predictors:
            scores = self.group().scores(data.x, threads=threads)
            out = {fault.value: s for fault, s in zip(self.predictors, scores, strict=True)}
        anomaly = np.zeros(len(data))
        for model, scorer in self.anomaly.items():
            rows = data.device_models == model
            if rows.any():
                anomaly[rows] = scorer.score(data.x[rows], threads=threads)
        out[ANOMALY] = anomaly
        return out

    def group(self) -> PredictorGroup:
        """The fault predictors flattened together (made once, again if they relearnt)."""
        from models.predictors import PredictorGroup

        predictors = list(self.predictors.values())
        group = _GROUPS.get(self)
        if group is None or not group.current(predictors):
            group = _GROUPS[self] = PredictorGroup(predictors)
        return group

    def predictions(
        self, data: FeatureSet, *, at: npt.NDArray[np.float64] | None = None
    ) -> list[Prediction]:
        """The rows of `data` whose score reaches a threshold, as predictions with reasons.

        `at` gives each row's moment (epoch seconds; the live scorer passes the reading's
        time); by default it is the end of the row's bucket.
        """
        return alerts(self, self.scores(data), data, at)

    def serving(self) -> bytes | None:
        """The bundle's serving form as bytes (``models.serving``), or None for a bundle whose
        trees it cannot hold (categorical splits, several outputs)."""
        from models.export import serving_form

        form = serving_form(self)
        return None if form is None else form.dumps()

    def dumps(self) -> bytes:
        """The bundle as bytes for the model_versions table (pickle: trusted storage only)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(blob: bytes) -> ModelBundle:
        """A bundle from ``dumps`` output read back from Forewarn's own database."""
        bundle = pickle.loads(blob)
        if not isinstance(bundle, ModelBundle):
            raise TypeError("the stored model is not a Forewarn model bundle")
        return bundle


class Cuts(Protocol):
    """What turns a model's scores into predictions: a bundle, or its serving form."""

    @property
    def thresholds(self) -> dict[str, float]: ...
    @property
    def battery(self) -> BatteryLife: ...
    @property
    def baseline(self) -> Baseline: ...
    @property
    def horizon_h(self) -> float: ...
    @property
    def version(self) -> int | None: ...


def alerts(
    model: Cuts,
    scores: dict[str, npt.NDArray[np.float64]],
    data: FeatureSet,
    at: npt.NDArray[np.float64] | None,
) -> list[Prediction]:
    """The rows whose score (per fault, and "anomaly") reaches `model`'s threshold, as
    predictions at `at` (by default the end of each row's bucket) with their reasons."""
    times = data.times if at is None else at
    horizon_h, version, baseline = model.horizon_h, model.version, model.baseline
    found: list[Prediction] = []
    hours = model.battery.hours(data.x)
    for fault, values in scores.items():
        cut = Threshold(model.thresholds.get(fault, ANOMALY_THRESHOLD))
        for i in np.flatnonzero(cut.alerts(values)):
            drains = fault == FaultKind.BATTERY_FAILURE.value and np.isfinite(hours[i])
            found.append(
                Prediction(
                    device_id=str(data.device_ids[i]),
                    fault=fault,
                    at=datetime.fromtimestamp(float(times[i]), UTC),
                    probability=round(float(values[i]), 4),
                    horizon_h=min(float(hours[i]), horizon_h) if drains else horizon_h,
                    reasons=explain(fault, data.x[i], baseline),
                    model_version=version,
                    hours_to_empty=round(float(hours[i]), 1) if drains else None,
                )
            )
    return found


# Each bundle's predictors flattened together once, beside the bundle rather than in it: the
# stored bundle stays as it was, and scoring does not change it.
_GROUPS: weakref.WeakKeyDictionary[ModelBundle, PredictorGroup] = weakref.WeakKeyDictionary()


def learn_bundle(
    data: FeatureSet,
    episodes: list[Episode],
    *,
    seed: int = 0,
    horizon_h: float = DEFAULT_HORIZON_H,
    on_progress: Progress | None = None,
) -> tuple[ModelBundle, dict[str, FaultQuality]]:
    """Fit every model on `data` and choose thresholds on out-of-fold scores.

    Returns the bundle and, per fault, the out-of-fold quality at the chosen threshold.
    """
    from models.predictors import FaultPredictor

    say = on_progress or (lambda _msg: None)
    if data.x.shape[1] != len(FEATURES):
        raise ValueError("the feature set does not have the current feature columns")
    any_fault = np.zeros(len(data), dtype=bool)
    predictors: dict[FaultKind, FaultPredictor] = {}
    thresholds: dict[str, float] = {}
    oof: dict[str, FaultQuality] = {}
    for fault in FaultKind:
        y = label_rows(data, episodes, fault, horizon_h=horizon_h)
        any_fault |= y != 0
        if not (y == 1).any():
            say(f"{fault}: no labelled episode in the training data, skipped")
            continue
        say(f"{fault}: learning on {int((y >= 0).sum())} rows ({int((y == 1).sum())} faulty)")
        predictor = FaultPredictor(fault, seed=seed).learn(data, y)
        q = choose_threshold(data, predictor.oof_, episodes, fault)
        predictors[fault], thresholds[fault.value], oof[fault.value] = predictor, q.threshold, q
    healthy = ~any_fault
    y_healthy = np.where(healthy, 0, 1).astype(np.int8)
    anomaly: dict[str, AnomalyScore] = {}
    for model in sorted(set(data.device_models.tolist())):
        rows = data.device_models == model
        if int((rows & healthy).sum()) >= 50:
            anomaly[model] = AnomalyScore(seed=seed).learn(data.subset(rows), y_healthy[rows])
    say(f"anomaly scores for {len(anomaly)} device models")
    thresholds[ANOMALY] = ANOMALY_THRESHOLD
    bundle = ModelBundle(
        seed=seed,
        horizon_h=horizon_h,
        features=FEATURES,
        predictors=predictors,
        thresholds=thresholds,
        anomaly=anomaly,
        battery=BatteryLife(horizon_h=horizon_h).learn(data, y_healthy),
        baseline=Baseline.learn(data.x[healthy]),
        training={
            "rows": len(data),
            "devices": len(set(data.device_ids.tolist())),
            "episodes": len(episodes),
        },
    )
    return bundle, oof
