"""A model version's serving form: what the live scorer needs, without scikit-learn or pickle.

A stored bundle (``models.bundle``) is a pickle of scikit-learn objects: loading it imports
scikit-learn, and scoring it fast compiles the trees with numba. A scorer that loads both
idles at about 259 MB before it holds a device (bench/memory.py --scorer-process
--trained-model), 2.6 KB a device of a 100,000-device fleet. The serving form is the same
model as plain numbers, stored beside the bundle (``model_versions.serving``) and read by the
scorer instead:

- the fault predictors' fold models as one ONNX ``TreeEnsemble`` (ai.onnx.ml opset 5, in
  double precision), walked by onnxruntime over the rows ranked among the split thresholds as
  ``models/forest.py`` ranks them (the two copies of a row, missing values lowest and highest);
  each output first adds its model's baseline, so each sum is scikit-learn's, in its order;
- each predictor's Platt calibration as its two numbers;
- each device model's isolation forest as a ``TreeEnsemble`` over the float32 rows, with its
  normaliser and its healthy reference scores;
- the battery's usual drain, the healthy baseline, the thresholds and the horizon.

So its probabilities are the bundle's, bit for bit (a test holds them to it). onnxruntime
walks the trees 1.7 to 2.8 times slower than the numba kernel (bench/serving.py, 50 to 2,000
rows), which batch scoring keeps; the live scorer scores a few hundred rows a pass.

The bytes are an ``.npz`` of arrays and one JSON header (``np.load`` without pickle): a blob
that is not one is refused with a clear error, never executed.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from forewarn.domain import ANOMALY, Prediction
from models.anomaly import BatteryLife, inputs, isolation_score, share
from models.base import FeatureSet, Matrix, expit, fold_mean, logit
from models.bundle import alerts
from models.reasons import Baseline

FORMAT = 1
# The serving form's ONNX operator set: TreeEnsemble, with double thresholds and sums.
ML_OPSET = 5
_MAX = float(np.finfo(np.float64).max)


class ServingError(ValueError):
    """Bytes that are no serving form of this format."""


class Forest:
    """An ONNX TreeEnsemble in an onnxruntime session: each row's sum per output."""

    def __init__(self, model: bytes) -> None:
        # Imported with the first trees (about 28 MB): a model without any loads none of it.
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread and no spinning pool: the scorer's batches are small, and it shares the
        # machine with the ingesters and the database.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ServingError(f"the serving form's trees do not load: {e}") from e
        self._input = self._session.get_inputs()[0].name

    def sums(self, x: Matrix) -> Matrix:
        """Rows x outputs: each output's leaf values added in tree order."""
        out = self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float64)})
        return np.asarray(out[0], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Calibration:
    """One fault predictor: its fold models' outputs (in the tree ensemble) and its Platt
    calibration, ``expit(coef * logit(mean) + intercept)``."""

    fault: str
    folds: int
    coef: float
    intercept: float


@dataclass(frozen=True, slots=True)
class Isolation:
    """One device model's isolation forest: trees whose leaves hold scikit-learn's terms."""

    trees: bytes
    denominator: float
    reference: npt.NDArray[np.float64]  # healthy training rows' scores, sorted


@dataclass(frozen=True, slots=True, eq=False)
class ServingModel:
    """A model version as the live scorer scores it (``models.base.Scoring``)."""

    horizon_h: float
    features: tuple[str, ...]
    thresholds: dict[str, float]
    calibrations: tuple[Calibration, ...]
    cut_values: npt.NDArray[np.float64]  # each feature's split thresholds, sorted, end to end
    cut_starts: npt.NDArray[np.int64]  # feature f's are cut_values[starts[f]:starts[f + 1]]
    trees: bytes  # the fold models' TreeEnsemble (empty without predictors)
    anomaly: dict[str, Isolation]
    battery: BatteryLife
    baseline: Baseline
    version: int | None = None
    _forests: dict[str, Forest] = field(default_factory=dict, repr=False)

    def _forest(self, key: str, model: bytes) -> Forest:
        # Sessions are made as a stored form is loaded (``loads``); a form being stored
        # (models/export.py) never needs them.
        if key not in self._forests:
            self._forests[key] = Forest(model)
        return self._forests[key]

    def ranks(self, x: Matrix) -> Matrix:
        """The rows twice, each value as its rank among its feature's split thresholds: first
        with missing values lowest, then highest (``models.forest._rank``, in numpy)."""
        n, width = x.shape[0], len(self.cut_starts) - 1
        out = np.empty((n, 2 * width))
        for f in range(width):
            cuts = self.cut_values[self.cut_starts[f] : self.cut_starts[f + 1]]
            column = x[:, f]
            missing = np.isnan(column)
            rank = np.searchsorted(cuts, np.clip(column, -_MAX, _MAX), side="left")
            out[:, f] = np.where(missing, 0, rank)
            out[:, width + f] = np.where(missing, len(cuts), rank)
        return out

    def scores(self, data: FeatureSet) -> dict[str, npt.NDArray[np.float64]]:
        """Per fault (and "anomaly"), one probability per row: the bundle's ``scores``."""
        out: dict[str, npt.NDArray[np.float64]] = {}
        if self.calibrations and len(data):
            raw = expit(self._forest("trees", self.trees).sums(self.ranks(data.x)).ravel())
            proba = raw.reshape(len(data), -1)
            first = 0
            for c in self.calibrations:
                mean = fold_mean(proba, range(first, first + c.folds))
                out[c.fault] = expit((logit(mean) * c.coef + c.intercept).ravel())
                first += c.folds
        elif self.calibrations:
            out = {c.fault: np.empty(0) for c in self.calibrations}
        anomaly = np.zeros(len(data))
        for model, forest in self.anomaly.items():
            rows = data.device_models == model
            if rows.any():
                x32 = inputs(data.x[rows]).astype(np.float32)
                depths = self._forest(model, forest.trees).sums(x32.astype(np.float64))[:, 0]
                anomaly[rows] = share(forest.reference, isolation_score(depths, forest.denominator))
        out[ANOMALY] = anomaly
        return out

    def predictions(
        self, data: FeatureSet, *, at: npt.NDArray[np.float64] | None = None
    ) -> list[Prediction]:
        """The bundle's ``predictions``: rows whose score reaches a threshold, with reasons."""
        return alerts(self, self.scores(data), data, at)

    def dumps(self) -> bytes:
        """The form as bytes: an npz of arrays and a JSON header, no pickle."""
        header = {
            "format": FORMAT,
            "horizon_h": self.horizon_h,
            "features": list(self.features),
            "thresholds": self.thresholds,
            "calibrations": [[c.fault, c.folds, c.coef, c.intercept] for c in self.calibrations],
            "anomaly": [[m, f.denominator] for m, f in self.anomaly.items()],
            "usual_drain": self.battery.usual_drain,
            "battery_horizon_h": self.battery.horizon_h,
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "header": np.array(json.dumps(header)),
            "cut_values": self.cut_values,
            "cut_starts": self.cut_starts,
            "trees": np.frombuffer(self.trees, dtype=np.uint8),
            "median": np.array(self.baseline.median, dtype=np.float64),
            "scale": np.array(self.baseline.scale, dtype=np.float64),
        }
        for i, forest in enumerate(self.anomaly.values()):
            arrays[f"anomaly{i}"] = np.frombuffer(forest.trees, dtype=np.uint8)
            arrays[f"reference{i}"] = forest.reference
        out = io.BytesIO()
        np.savez_compressed(out, allow_pickle=False, **arrays)
        return out.getvalue()

    @staticmethod
    def loads(blob: bytes, *, version: int | None = None) -> ServingModel:
        """A form from ``dumps`` (ServingError if the bytes are not one of this format)."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                header = json.loads(str(npz["header"]))
                if header.get("format") != FORMAT:
                    raise ServingError(f"serving form format {header.get('format')!r}")
                battery = BatteryLife(horizon_h=float(header["battery_horizon_h"]))
                battery.usual_drain = float(header["usual_drain"])
                form = ServingModel(
                    horizon_h=float(header["horizon_h"]),
                    features=tuple(str(f) for f in header["features"]),
                    thresholds={str(k): float(v) for k, v in header["thresholds"].items()},
                    calibrations=tuple(
                        Calibration(str(f), int(n), float(a), float(b))
                        for f, n, a, b in header["calibrations"]
                    ),
                    cut_values=np.asarray(npz["cut_values"], dtype=np.float64),
                    cut_starts=np.asarray(npz["cut_starts"], dtype=np.int64),
                    trees=npz["trees"].tobytes(),
                    anomaly={
                        str(model): Isolation(
                            npz[f"anomaly{i}"].tobytes(),
                            float(denominator),
                            np.asarray(npz[f"reference{i}"], dtype=np.float64),
                        )
                        for i, (model, denominator) in enumerate(header["anomaly"])
                    },
                    battery=battery,
                    baseline=Baseline(
                        tuple(float(v) for v in npz["median"]),
                        tuple(float(v) for v in npz["scale"]),
                    ),
                    version=version,
                )
        except ServingError:
            raise
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as e:
            raise ServingError(f"not a serving form: {e}") from e
        # Load the trees now: a form whose trees onnxruntime refuses fails here, not mid-pass.
        if form.calibrations:
            form._forest("trees", form.trees)
        for model, isolation in form.anomaly.items():
            form._forest(model, isolation.trees)
        return form
