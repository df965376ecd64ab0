"""Training and evaluation: stored history in, model versions and quality figures out."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from forewarn.db import connect
from forewarn.errors import ConfigError
from forewarn.settings import Settings
from models import detector_repository as detector_repo
from models import repository
from models.base import FeatureSet
from models.bundle import ModelBundle, learn_bundle
from models.detector_eval import evaluate_detectors
from models.evaluation import quality, timeline
from models.features import FEATURES, device_rows
from models.simulated import Dataset, simulate

Say = Callable[[str], None]

# The evaluation fleet a new version is judged on (and compared with the active one).
EVALUATION = {"seed": 7, "devices": 800, "days": 3.0, "fault_rate": 0.3, "outages_per_day": 0.5}
# "Not worse": the new version's mean F1 over faults may trail the active one by this much.
F1_TOLERANCE = 0.01


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What ``forewarn train`` did."""

    version: int
    activated: bool
    why: str
    rows: int
    devices: int
    episodes: int
    evaluation: dict[str, Any]


def stored_dataset(
    settings: Settings, *, since: datetime | None, until: datetime | None, say: Say
) -> tuple[Dataset, datetime, datetime, repository.LabelSet]:
    """Feature rows of the stored history and its labels (the whole history by default)."""
    with connect(settings) as conn:
        span = repository.telemetry_span(conn)
        if span is None:
            raise ConfigError("no telemetry stored yet: run the ingester and a fleet first")
        since = since or span[0]
        until = until or span[1] + timedelta(seconds=1)
        labels = repository.load_labels(conn, since=since, until=until)
        models = repository.device_models(conn)
        parts: list[FeatureSet] = []
        say(f"loading five-minute buckets {since:%Y-%m-%d %H:%M} → {until:%Y-%m-%d %H:%M} UTC")
        for series in repository.load_buckets(conn, since=since, until=until):
            model = models.get(series.device_id, "unknown")
            parts.append(device_rows(series.device_id, model, series.first_bucket, series.buckets))
            if len(parts) % 200 == 0:
                say(f"  {len(parts)} devices")
    data = FeatureSet.concat(parts, len(FEATURES))
    return Dataset(data, labels.episodes), since, until, labels


def evaluate_bundle(
    bundle: ModelBundle | None,
    *,
    seed: int,
    devices: int,
    days: float,
    fault_rate: float,
    say: Say,
    outages_per_day: float = 0.0,
    settings: Settings | None = None,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Quality per fault of `bundle` (when given) and of the label-free detectors beside it,
    on one freshly simulated fleet."""
    last = [-1.0]

    def progress(share: float) -> None:
        if share - last[0] >= 0.2 or share >= 1.0:
            say(f"  simulated {share:.0%} of the evaluation fleet")
            last[0] = share

    ds = simulate(
        devices=devices,
        seed=seed,
        days=days,
        fault_rate=fault_rate,
        on_progress=progress,
        outages_per_day=outages_per_day,
    )
    per_fault: dict[str, Any] = {}
    if bundle is not None:
        line = timeline(ds.data)
        per_fault = {
            fault: asdict(
                quality(ds.data, s, bundle.thresholds[fault], ds.episodes, fault, line=line)
            )
            for fault, s in bundle.scores(ds.data).items()
        }
    say("running the label-free detectors over the same fleet")
    return {
        "fleet": {
            "seed": seed,
            "devices": devices,
            "days": days,
            "fault_rate": fault_rate,
            "outages_per_day": outages_per_day,
        },
        "model_version": None if bundle is None else bundle.version,
        "faults": per_fault,
        "detectors": evaluate_detectors(
            ds, settings or Settings(database_url=None, mqtt_url=None), thresholds or {}
        ),
    }


def _mean_f1(evaluation: dict[str, Any]) -> float:
    faults = [q for f, q in evaluation.get("faults", {}).items() if f != "anomaly"]
    return float(np.mean([q["f1"] for q in faults])) if faults else 0.0


def _seeds(runs: tuple[str, ...]) -> set[int]:
    return {int(m.group(1)) for r in runs if (m := re.match(r"sim-(-?\d+)-", r))}


def train(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    seed: int = 0,
    force: bool = False,
    evaluation: dict[str, Any] | None = None,
    note: str | None = None,
    say: Say = print,
) -> TrainResult:
    """Fit a new version on the stored history, evaluate it, store it, activate if not worse."""
    fleet = {**EVALUATION, **(evaluation or {})}
    ds, since, until, labels = stored_dataset(settings, since=since, until=until, say=say)
    if not ds.episodes:
        raise ConfigError("no fault labels in the training window: nothing to learn from")
    if int(fleet["seed"]) in _seeds(labels.runs):
        raise ConfigError(
            f"evaluation seed {fleet['seed']} is in the training data; pick another seed"
        )
    say(
        f"learning on {len(ds.data)} rows of {len(set(ds.data.device_ids.tolist()))} devices, "
        f"{len(ds.episodes)} fault episodes"
    )
    bundle, oof = learn_bundle(ds.data, ds.episodes, seed=seed, on_progress=say)
    bundle.training.update(
        runs=list(labels.runs),
        staff_confirmed=labels.staff_confirmed,
        staff_false_alarms=labels.staff_false_alarms,
        out_of_fold={f: asdict(q) for f, q in oof.items()},
    )
    say(f"evaluating on a fresh fleet (seed {fleet['seed']}, {fleet['devices']} devices)")
    report = evaluate_bundle(
        bundle,
        seed=int(fleet["seed"]),
        devices=int(fleet["devices"]),
        days=float(fleet["days"]),
        fault_rate=float(fleet["fault_rate"]),
        outages_per_day=float(fleet["outages_per_day"]),
        say=say,
        settings=settings,
    )
    with connect(settings) as conn:
        current = repository.active_version(conn)
        stale = current is not None and current.evaluation.get("fleet") != report["fleet"]
        active = (
            repository.load_version(conn, version=current.version) if stale and current else None
        )
    baseline: dict[str, Any] | None = current.evaluation if current is not None else None
    if current is not None and active is not None:
        say(f"re-evaluating active version {current.version} on the same fleet")
        baseline = evaluate_bundle(active, **report["fleet"], say=say)
    new, old = _mean_f1(report), _mean_f1(baseline) if baseline else None
    if old is None or current is None:
        activated, why = True, "first version"
    elif new >= old - F1_TOLERANCE:
        activated, why = True, f"mean F1 {new:.3f}, version {current.version} had {old:.3f}"
    elif force:
        activated, why = (
            True,
            f"forced (mean F1 {new:.3f}, version {current.version} had {old:.3f})",
        )
    else:
        activated, why = False, f"worse: mean F1 {new:.3f} against {old:.3f}; --force activates"
    with connect(settings) as conn, conn.transaction():
        version = repository.save_version(
            conn,
            bundle=bundle,
            trained_from=since,
            trained_to=until,
            evaluation=report,
            note=note,
        )
        if activated:
            repository.activate(conn, version=version)
    report["model_version"] = version
    return TrainResult(
        version,
        activated,
        why,
        len(ds.data),
        len(set(ds.data.device_ids.tolist())),
        len(ds.episodes),
        report,
    )


def evaluate(
    settings: Settings,
    *,
    seed: int,
    devices: int,
    days: float,
    fault_rate: float,
    version: int | None = None,
    outages_per_day: float = 0.0,
    say: Say = print,
) -> dict[str, Any]:
    """Score a freshly simulated fleet with a stored version (the active one by default; with
    none, the detectors alone)."""
    with connect(settings) as conn:
        bundle = repository.load_version(conn, version=version)
        thresholds = detector_repo.thresholds(conn)
    if bundle is None and version is not None:
        raise ConfigError(f"no model version {version}")
    if bundle is not None and seed in _seeds(tuple(map(str, bundle.training.get("runs", [])))):  # type: ignore[call-overload]
        raise ConfigError(f"seed {seed} was used for training this version; pick another")
    report = evaluate_bundle(
        bundle,
        seed=seed,
        devices=devices,
        days=days,
        fault_rate=fault_rate,
        outages_per_day=outages_per_day,
        say=say,
        settings=settings,
        thresholds=thresholds,
    )
    report["evaluated_at"] = datetime.now(UTC).isoformat()
    return report


def report_json(report: dict[str, Any]) -> str:
    """A report as JSON (numpy numbers become plain ones)."""
    return json.dumps(report, default=_plain, indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
