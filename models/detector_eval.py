"""The label-free detectors run over whole histories: their scores per reading, and their
quality counted exactly like the supervised predictors' (``models.evaluation.quality``).

Silences found by the sweep become rows of their own (the moment the silence was called),
scored at least at their fault's threshold (the sweep judged them against silence's own);
silences grouped into a fleet incident are not device alerts and count nowhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from forewarn.domain import FaultKind
from forewarn.settings import Settings
from models.base import FeatureSet
from models.buckets import BUCKET_SECONDS
from models.detect import (
    DEFAULT_THRESHOLD,
    FAULTS,
    THRESHOLD_KEYS,
    Alert,
    Fleet,
    FleetSilence,
    Profile,
    observations,
)
from models.detectors.base import Observation, Verdict
from models.evaluation import quality, timeline
from models.labels import Episode
from models.simulated import Dataset

# How often the silence sweep looks, in the history's own time.
SWEEP_S = 300.0


@dataclass(frozen=True, slots=True)
class DetectorScores:
    """Every fault's score at every reading (and at every silence called), row by row."""

    data: FeatureSet  # no feature columns: only who and when
    scores: dict[str, npt.NDArray[np.float64]]
    reasons: list[dict[str, str]]  # per row, the fault's reason where it alerted
    outages: list[FleetSilence]


@dataclass(frozen=True, slots=True)
class Replay:
    """Every detector's verdicts on each reading (in the order given), and the silences."""

    verdicts: list[dict[str, Verdict]]
    silences: list[Alert]  # device alerts released by the sweep
    outages: list[FleetSilence]
    thresholds: dict[str, float]


def replay(
    series: Mapping[str, Sequence[Observation]],
    models: Mapping[str, str],
    profiles_by_model: Mapping[str, Profile],
    thresholds: Mapping[str, float] | None = None,
) -> Replay:
    """Run every device's detectors over its readings in the fleet's time order, sweeping
    for silence every ``SWEEP_S``; verdicts come back device by device, in `series` order."""
    fleet = Fleet(models, profiles_by_model, thresholds)
    events = [(x.ts, d, i) for d, rows in series.items() for i, x in enumerate(rows)]
    events.sort(key=lambda e: e[0])
    offsets, total = {}, 0
    for d, rows in series.items():
        offsets[d], total = total, total + len(rows)
    verdicts: list[dict[str, Verdict]] = [{}] * total
    silences: list[Alert] = []
    outages: list[FleetSilence] = []
    next_sweep = events[0][0] + SWEEP_S if events else 0.0
    for ts, device, i in events:
        while ts >= next_sweep:
            released, incidents = fleet.sweep(next_sweep)
            silences.extend(released)
            outages.extend(incidents)
            next_sweep += SWEEP_S
        x = series[device][i]
        w = fleet.watch(device)
        verdicts[offsets[device] + i] = w.score_one(x)
        w.learn_one(x)
        fleet.observe_learned(device)
    if events:  # a last look, for devices that never spoke again
        released, incidents = fleet.sweep(next_sweep + SWEEP_S)
        silences.extend(released)
        outages.extend(incidents)
    # An outage that grew is reported at each growth: keep its last, largest form.
    latest = {o.ts: o for o in outages}
    return Replay(verdicts, silences, list(latest.values()), fleet.thresholds)


def run_fleet(
    series: Mapping[str, Sequence[Observation]],
    models: Mapping[str, str],
    profiles_by_model: Mapping[str, Profile],
    thresholds: Mapping[str, float] | None = None,
) -> DetectorScores:
    """The detectors' scores as rows of a feature set: one per reading, one per silence."""
    run = replay(series, models, profiles_by_model, thresholds)
    ids: list[str] = []
    times: list[float] = []
    per: dict[str, list[float]] = {f: [] for f in FAULTS}
    reasons: list[dict[str, str]] = []
    flat = [(d, x) for d, rows in series.items() for x in rows]
    for (device, x), verdict in zip(flat, run.verdicts, strict=True):
        ids.append(device)
        times.append(x.ts)
        for f in FAULTS:
            per[f].append(verdict[f].score)
        reasons.append({f: v.reason for f, v in verdict.items() if v.score >= run.thresholds[f]})
    for a in run.silences:
        ids.append(a.device_id)
        times.append(a.ts)
        for f in FAULTS:
            # The sweep called it against silence's own threshold: it alerts for its fault
            # whatever that fault's threshold for readings is.
            per[f].append(max(a.score, run.thresholds[f]) if f == a.fault else 0.0)
        reasons.append({a.fault: a.reason})
    n = len(ids)
    data = FeatureSet(
        np.empty((n, 0)),
        np.array(ids, dtype=str),
        np.array([models.get(d, "unknown") for d in ids], dtype=str),
        (np.array(times, dtype=np.float64) // BUCKET_SECONDS).astype(np.int64),
    )
    return DetectorScores(
        data, {f: np.array(v, dtype=np.float64) for f, v in per.items()}, reasons, run.outages
    )


def detector_quality(
    run: DetectorScores, episodes: Iterable[Episode], thresholds: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """Precision, recall, lead and false alarms per fault of the detectors' alerts."""
    line = timeline(run.data)
    wanted = list(episodes)
    return {
        f: asdict(quality(run.data, run.scores[f], thresholds[f], wanted, FaultKind(f), line=line))
        for f in FAULTS
    }


def evaluate_detectors(
    ds: Dataset, settings: Settings, thresholds: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """The detectors' quality per fault on a simulated data set."""
    from models.detect import profiles

    cuts = dict.fromkeys(THRESHOLD_KEYS, DEFAULT_THRESHOLD) | dict(thresholds)
    series = {d: list(observations(s)) for d, s in ds.series.items()}
    run = run_fleet(
        series, ds.models, profiles(settings.battery_chemistry, settings.temperature_limits), cuts
    )
    return detector_quality(run, ds.episodes, cuts)
