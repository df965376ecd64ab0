"""Backtests: score a user's telemetry CSV row by row, as the live scorer would have then.

Scores are causal. Each device's rows are taken in time order and row i is scored from rows
before it only: the anomaly scorer (``models.robust.RobustZScore``) scores the row and only
then learns it, and the fault predictors read the features of the device's bucket ring
(``models.buckets.DeviceBuckets``) right after the row is folded in, exactly as streaming does.
So nothing a row shows depends on the rows after it.

The first part of each device's history is the learning phase: until the device has both
``learn_hours`` of history and ``learn_rows`` rows before the row, rows are learned but not
scored (``phase=learning``, empty scores, no alert). The same rule applies to every score.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import numpy as np
import numpy.typing as npt

from forewarn.domain import ANOMALY, FaultKind
from forewarn.errors import ConfigError, ValidationError
from models.backtest_detect import detect_table, series_of
from models.base import FeatureSet
from models.buckets import BUCKET_SECONDS, DeviceBuckets, Sample
from models.bundle import ANOMALY_THRESHOLD, ModelBundle
from models.calibrate import series_calibration
from models.csvfile import Columns, Row, Table
from models.detect import FAULTS as FAULT_NAMES
from models.detect import Alert, FleetSilence, Profile
from models.detector_repository import Calibration
from models.features import FEATURES, latest_features
from models.reasons import explain
from models.robust import RobustZScore

LEARN_HOURS = 24.0
LEARN_ROWS = 50
THRESHOLD = 0.99
PROGRESS_EVERY = 5000
# Feature rows scored by the bundle at once: large enough to be fast, small enough that a
# long file's features are never all in memory together.
_SCORE_BATCH = 8192
# Which Sample field each signal fills.
_SAMPLE_FIELDS = {
    "signal_dbm": "signal",
    "battery_pct": "battery",
    "battery_v": "volts",
    "temperature_c": "temp",
    "uptime_s": "uptime",
    "reconnects": "reconnects",
}
LEARNING, SCORING = "learning", "scoring"
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    """How to read the file and how to score it."""

    columns: Columns = field(default_factory=Columns)
    learn_hours: float = LEARN_HOURS
    learn_rows: int = LEARN_ROWS
    threshold: float = THRESHOLD
    device_model: str = "unknown"
    # The label-free detectors: the devices' battery pack and temperature limit, and any
    # calibrated thresholds (fault or "silence" -> score; the rest keep the detector's own bar).
    profile: Profile = field(default_factory=Profile)
    detector_thresholds: tuple[tuple[str, float], ...] = ()
    # Or calibrate them as `forewarn calibrate` would, on the file's own rows before this time
    # (epoch seconds; no labels), within `budget` alerts per 1,000 device-days.
    calibrate_until: float | None = None
    budget: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.learn_hours) and self.learn_hours >= 0):
            raise ConfigError(f"the learning phase must be 0 hours or more, not {self.learn_hours}")
        if self.learn_rows < 0:
            raise ConfigError(f"the learning phase must be 0 rows or more, not {self.learn_rows}")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"the alert threshold must be in (0, 1], not {self.threshold}")
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise ConfigError(f"the false-alarm budget must be above 0, not {self.budget}")


@dataclass(frozen=True, slots=True)
class Scores:
    """Per row of a table: its phase, anomaly score, fault probabilities and reasons."""

    phases: list[str]
    anomaly: list[float | None]  # None in the learning phase
    faults: tuple[str, ...]  # fault column stems, empty when the predictors were not used
    thresholds: tuple[float, ...]  # per fault
    probabilities: npt.NDArray[np.float64]  # rows x faults; NaN in the learning phase
    reasons: list[str]
    threshold: float
    # The label-free detectors: per row the faults they alerted on; silences by the sweep.
    detected: list[tuple[str, ...]] = field(default_factory=list)
    silences: tuple[Alert, ...] = ()
    outages: tuple[FleetSilence, ...] = ()
    calibration: tuple[Calibration, ...] = ()  # when the options asked for one

    def anomaly_alerts(self) -> list[bool]:
        """Which rows' anomaly score reaches the threshold."""
        return [s is not None and s >= self.threshold for s in self.anomaly]

    def fault_alerts(self) -> npt.NDArray[np.bool_]:
        """Which rows reach each fault's threshold (rows x faults)."""
        with np.errstate(invalid="ignore"):
            return self.probabilities >= np.asarray(self.thresholds, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What a backtest did, for its summary."""

    output: str
    rows: int
    devices: int
    learning_rows: int
    alerts: int  # rows with any alert
    anomaly_alerts: int
    fault_alerts: dict[str, int]
    dropped: int  # rows repeating a device's timestamp
    reordered: bool  # the input was not in device and time order (the output always is)
    unscored_devices: int  # devices whose every row fell in the learning phase
    metrics: tuple[str, ...]
    signals: tuple[tuple[str, str], ...]
    faults: tuple[str, ...]
    detector_alerts: dict[str, int]  # rows the detectors alerted on, per fault
    scores: Scores


def faults_skipped(table: Table, bundle: ModelBundle | None) -> str:
    """Why the fault predictors cannot run on this table, or "" when they can."""
    if bundle is None:
        return "no trained model was given"
    if not table.signals:
        return f"no column maps to a known signal ({', '.join(_SAMPLE_FIELDS)})"
    if tuple(bundle.features) != FEATURES:
        raise ConfigError("the model was trained on other features than this code computes")
    return ""


def output_header(table: Table, faults: tuple[str, ...]) -> tuple[str, ...]:
    """The output's columns: the input's, then the scores."""
    added = ["phase", "anomaly_score", "anomaly_alert"]
    for fault in faults:
        added += [f"p_{fault}", f"alert_{fault}"]
    added += ["detected", "alert", "reasons"]
    clash = [c for c in added if c in table.header]
    if clash:
        raise ValidationError(
            f"{table.path}: the file already has a column named {clash[0]!r}, which the "
            "output adds; rename it (or back-test the original file, not a scored one)"
        )
    return (*table.header, *added)


def score_table(
    table: Table,
    options: BacktestOptions | None = None,
    *,
    bundle: ModelBundle | None = None,
    on_progress: Progress | None = None,
) -> Scores:
    """Score every row of `table` causally; faults too when `bundle` is given and can run."""
    options = options or BacktestOptions()
    n = len(table.rows)
    faults = (
        _faults(bundle, options) if bundle is not None and not faults_skipped(table, bundle) else ()
    )
    output_header(
        table, tuple(map(_label, faults))
    )  # a clash with the input's columns fails before the work
    phases: list[str] = []
    anomaly: list[float | None] = [None] * n
    reasons: list[list[str]] = [[] for _ in range(n)]
    probs = np.full((n, len(faults)), np.nan)
    batch = (
        _Batch(bundle, options.device_model, faults, probs, reasons) if bundle and faults else None
    )
    metric_at = [(m, table.numeric.index(m)) for m in table.metrics]
    signal_at = [(table.numeric.index(c), _SAMPLE_FIELDS[s]) for c, s in table.signals]
    for _, group in groupby(enumerate(table.rows), key=lambda item: item[1].device):
        scorer, ring = RobustZScore(), DeviceBuckets()
        first_ts: float | None = None
        for seen, (i, row) in enumerate(group):
            first_ts = row.ts if first_ts is None else first_ts
            learning = seen < options.learn_rows or row.ts - first_ts < options.learn_hours * 3600
            phases.append(LEARNING if learning else SCORING)
            x = {m: v for m, j in metric_at if not math.isnan(v := row.values[j])}
            if not learning:
                score, why = scorer.explain_one(x, t=row.ts)
                anomaly[i] = score
                if score >= options.threshold and why:
                    reasons[i].append(f"anomaly: {why}")
            scorer.learn_one(x, t=row.ts)  # only now, so the row's own score never saw it
            if batch is not None:
                ring.add(_sample(row, signal_at))
                if not learning and (head := ring.head) is not None:
                    batch.add(i, row, latest_features(ring.window(), ring.valid_from(), head)[0])
            if on_progress is not None and (i + 1) % PROGRESS_EVERY == 0:
                on_progress(i + 1, n)
    if batch is not None:
        batch.flush()
    calibration = _calibration(table, options)
    found = detect_table(
        table,
        profile=options.profile,
        thresholds=dict(options.detector_thresholds) | {c.fault: c.threshold for c in calibration},
        scoring=[p == SCORING for p in phases],
    )
    detected = [tuple(dict.fromkeys(f for f, _, _ in row)) for row in found.alerts]
    for i, row_alerts in enumerate(found.alerts):
        reasons[i][:0] = [f"{fault}: {why}" for fault, _, why in row_alerts]
    _note_silences(table, found.silences, reasons, detected)
    if on_progress is not None:
        on_progress(n, n)
    thresholds = tuple(batch.thresholds() if batch is not None else ())
    return Scores(
        phases,
        anomaly,
        tuple(map(_label, faults)),
        thresholds,
        probs,
        ["; ".join(r) for r in reasons],
        options.threshold,
        detected,
        tuple(found.silences),
        tuple(found.outages),
        calibration,
    )


def _calibration(table: Table, options: BacktestOptions) -> tuple[Calibration, ...]:
    """The detectors' thresholds from the file's rows before ``calibrate_until`` (if asked)."""
    if options.calibrate_until is None:
        return ()
    series = series_of(table, before=options.calibrate_until)
    if not series:
        raise ConfigError("no row comes before the calibration's end: nothing to calibrate on")
    return tuple(series_calibration(series, options.profile, options.budget))


def write_scored(table: Table, scores: Scores, out: Path) -> None:
    """Write the table's rows with their scores as CSV, in the input's delimiter."""
    header = output_header(table, scores.faults)
    if out.resolve() == Path(table.path).resolve():
        raise ConfigError(f"{out}: the output would overwrite the input; choose another path")
    anomaly_alerts = scores.anomaly_alerts()
    fault_alerts = scores.fault_alerts()
    try:
        with out.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter=table.delimiter)
            writer.writerow(header)
            for i, row in enumerate(table.rows):
                score = scores.anomaly[i]
                cells = [
                    *row.cells,
                    scores.phases[i],
                    "" if score is None else f"{score:.4f}",
                    _flag(anomaly_alerts[i]),
                ]
                for j in range(len(scores.faults)):
                    p = scores.probabilities[i, j]
                    cells += ["" if math.isnan(p) else f"{p:.4f}", _flag(fault_alerts[i, j])]
                found = scores.detected[i] if scores.detected else ()
                cells += [
                    " ".join(found),
                    _flag(anomaly_alerts[i] or bool(fault_alerts[i].any()) or bool(found)),
                    scores.reasons[i],
                ]
                writer.writerow(cells)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the output: {exc.strerror or exc}") from exc


def backtest(
    table: Table,
    out: Path,
    options: BacktestOptions | None = None,
    *,
    bundle: ModelBundle | None = None,
    on_progress: Progress | None = None,
) -> BacktestResult:
    """Score `table` and write it to `out`; returns the counts for a summary."""
    options = options or BacktestOptions()
    scores = score_table(table, options, bundle=bundle, on_progress=on_progress)
    write_scored(table, scores, out)
    anomaly = scores.anomaly_alerts()
    faulty = scores.fault_alerts()
    found = np.array([bool(d) for d in scores.detected], dtype=bool)
    any_alert = np.asarray(anomaly, dtype=bool) | faulty.any(axis=1) | found
    scored_devices = {
        r.device for r, p in zip(table.rows, scores.phases, strict=True) if p == SCORING
    }
    return BacktestResult(
        output=str(out),
        rows=len(table.rows),
        devices=table.devices,
        learning_rows=scores.phases.count(LEARNING),
        alerts=int(any_alert.sum()),
        anomaly_alerts=sum(anomaly),
        fault_alerts={f: int(faulty[:, j].sum()) for j, f in enumerate(scores.faults)},
        dropped=table.dropped,
        reordered=table.reordered,
        unscored_devices=table.devices - len(scored_devices),
        metrics=table.metrics,
        signals=table.signals,
        faults=scores.faults,
        detector_alerts={f: sum(f in d for d in scores.detected) for f in FAULT_NAMES},
        scores=scores,
    )


def _faults(bundle: ModelBundle, options: BacktestOptions) -> tuple[str, ...]:
    """The bundle's scores to report: its predictors, and its anomaly score for a known model."""
    faults = [k.value for k in FaultKind if k in bundle.predictors]
    if options.device_model in bundle.anomaly:
        faults.append(ANOMALY)
    return tuple(faults)


def _label(fault: str) -> str:
    """The output's name for one of the bundle's scores (its anomaly score is not ours)."""
    return "model_anomaly" if fault == ANOMALY else fault


def _note_silences(
    table: Table,
    silences: Sequence[Alert],
    reasons: list[list[str]],
    detected: list[tuple[str, ...]],
) -> None:
    """A silence has no row of its own: it is told on the device's last row before it."""
    last: dict[str, list[tuple[float, int]]] = {}
    for i, row in enumerate(table.rows):
        last.setdefault(row.device, []).append((row.ts, i))
    for a in silences:
        rows = last.get(a.device_id, [])
        at = bisect.bisect_right(rows, (a.ts, len(table.rows))) - 1
        if at >= 0:
            i = rows[at][1]
            reasons[i].append(f"{a.fault}: {a.reason}")
            detected[i] = tuple(dict.fromkeys((*detected[i], a.fault)))


def _flag(alert: bool | np.bool_) -> str:
    return "1" if alert else "0"


def _sample(row: Row, signal_at: list[tuple[int, str]]) -> Sample:
    got = {name: v for j, name in signal_at if not math.isnan(v := row.values[j])}
    return Sample(
        ts=row.ts,
        signal=got.get("signal"),
        battery=got.get("battery"),
        volts=got.get("volts"),
        temp=got.get("temp"),
        uptime=got.get("uptime"),
        reconnects=got.get("reconnects"),
    )


class _Batch:
    """Feature rows waiting to be scored by the bundle, a batch at a time."""

    def __init__(
        self,
        bundle: ModelBundle,
        device_model: str,
        faults: tuple[str, ...],
        probs: npt.NDArray[np.float64],
        reasons: list[list[str]],
    ) -> None:
        self.bundle, self.device_model, self.faults = bundle, device_model, faults
        self.probs, self.reasons = probs, reasons
        self.rows: list[int] = []
        self.devices: list[str] = []
        self.buckets: list[int] = []
        self.x: list[npt.NDArray[np.float64]] = []

    def thresholds(self) -> list[float]:
        """Each fault's alert threshold."""
        return [self.bundle.thresholds.get(f, ANOMALY_THRESHOLD) for f in self.faults]

    def add(self, i: int, row: Row, features: npt.NDArray[np.float64]) -> None:
        """Queue row i's features; score the batch once it is full."""
        self.rows.append(i)
        self.devices.append(row.device)
        self.buckets.append(math.floor(row.ts / BUCKET_SECONDS))
        self.x.append(features)
        if len(self.rows) >= _SCORE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Score what is queued and fill in the probabilities and reasons."""
        if not self.rows:
            return
        x = np.vstack(self.x)
        data = FeatureSet(
            x,
            np.array(self.devices, dtype=str),
            np.full(len(self.rows), self.device_model),
            np.array(self.buckets, dtype=np.int64),
        )
        rows = np.array(self.rows, dtype=np.int64)
        scores = self.bundle.scores(data)
        for j, (fault, threshold) in enumerate(zip(self.faults, self.thresholds(), strict=True)):
            p = scores[fault]
            self.probs[rows, j] = p
            for k in np.flatnonzero(p >= threshold):
                why = explain(fault, x[k], self.bundle.baseline)
                self.reasons[int(rows[k])].append(
                    f"{_label(fault)}: {', '.join(why) or 'no single feature stands out'}"
                )
        self.rows, self.devices, self.buckets, self.x = [], [], [], []
