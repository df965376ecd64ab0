"""How good a fault predictor is, counted the way an owner or an agent would feel it.

Alerts, not rows, are what people see. A device's alert for a fault starts at the first row at
or above the threshold and lasts while rows keep crossing it with no pause longer than
``MERGE_GAP_H``; a flapping score is one alert. An alert that starts while the device has that
fault (from onset to failure, plus ``LATE_GRACE_H`` for a device that goes on reporting)
detects the episode. An alert that starts later still, on a device whose fault never healed,
is late: neither a detection nor a false alarm. Any other alert is a false alarm.

- precision: detected episodes / (detected episodes + false alarms)
- recall: detected episodes / episodes that had any reading after onset
- lead time: failure time minus the start of the first alert that detected it (median)
- false alarms per 1,000 device-days of telemetry
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forewarn.domain import FaultKind
from models.base import FeatureSet, Threshold
from models.labels import LATE_GRACE_H, Episode, by_device

MERGE_GAP_H = 6.0


@dataclass(frozen=True, slots=True)
class FaultQuality:
    """Event-level quality of one fault's alerts on one data set."""

    fault: str
    threshold: float
    episodes: int
    detected: int
    false_alarms: int
    precision: float
    recall: float
    f1: float
    median_lead_h: float | None
    false_alarms_per_1000_device_days: float
    device_days: float


@dataclass(frozen=True, slots=True)
class Timeline:
    """A feature set's rows grouped by device in time order, and its device-days.

    Built once per data set: every threshold tried and every fault counted reuses it.
    """

    order: npt.NDArray[np.int64]  # row positions, by device then time
    devices: tuple[str, ...]
    segments: tuple[npt.NDArray[np.int64], ...]  # per device, positions into `order`
    times: npt.NDArray[np.float64]  # in `order`
    days: float


def timeline(data: FeatureSet) -> Timeline:
    """Group `data` by device in time order and add up its days of telemetry."""
    order = np.lexsort((data.buckets, data.device_ids)).astype(np.int64)
    ids, times = data.device_ids[order], data.times[order]
    if not len(ids):
        return Timeline(order, (), (), times, 0.0)
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    segments = tuple(np.split(np.arange(len(ids), dtype=np.int64), cuts))
    days = sum(float(times[seg[-1]] - times[seg[0]]) / 86400.0 for seg in segments)
    return Timeline(order, tuple(str(ids[seg[0]]) for seg in segments), segments, times, days)


def alert_starts(times: npt.NDArray[np.float64], alerts: npt.NDArray[np.bool_]) -> list[float]:
    """Start times of the alerts in one device's time-ordered rows."""
    starts: list[float] = []
    last: float | None = None
    for t in times[alerts]:
        if last is None or t - last > MERGE_GAP_H * 3600:
            starts.append(float(t))
        last = float(t)
    return starts


def quality(
    data: FeatureSet,
    scores: npt.NDArray[np.float64],
    threshold: float,
    episodes: Iterable[Episode],
    fault: FaultKind | str,
    *,
    line: Timeline | None = None,
) -> FaultQuality:
    """Precision, recall, F1, lead time and false-alarm rate of `fault`'s alerts.

    `fault` "anomaly" matches an alert against an episode of any fault. `line` is
    ``timeline(data)``, passed in when several thresholds or faults are counted on `data`.
    """
    line = timeline(data) if line is None else line
    days, times = line.days, line.times
    wanted = [e for e in episodes if fault == "anomaly" or e.fault == fault]
    index = by_device(wanted)
    alerts = Threshold(threshold).alerts(scores[line.order])
    first_seen: dict[str, tuple[float, float]] = {}
    leads: list[float] = []
    detected_ids: set[tuple[str, float]] = set()
    false_alarms = 0
    for device, seg in zip(line.devices, line.segments, strict=True):
        first_seen[device] = (float(times[seg[0]]), float(times[seg[-1]]))
        for start in alert_starts(times[seg], alerts[seg]):
            mine = [e for e in index.get(device, ()) if e.onset <= start]
            hit = next((e for e in mine if start <= e.failure + LATE_GRACE_H * 3600), None)
            if hit is None:
                false_alarms += 0 if mine else 1
            elif (device, hit.onset) not in detected_ids:
                detected_ids.add((device, hit.onset))
                leads.append((hit.failure - start) / 3600.0)
    observable = sum(
        1 for e in wanted if e.device_id in first_seen and first_seen[e.device_id][1] >= e.onset
    )
    detected = len(detected_ids)
    precision = detected / (detected + false_alarms) if detected + false_alarms else 0.0
    recall = detected / observable if observable else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return FaultQuality(
        fault=str(fault),
        threshold=threshold,
        episodes=observable,
        detected=detected,
        false_alarms=false_alarms,
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        median_lead_h=round(statistics.median(leads), 2) if leads else None,
        false_alarms_per_1000_device_days=round(1000 * false_alarms / days, 3) if days else 0.0,
        device_days=round(days, 1),
    )


def choose_threshold(
    data: FeatureSet,
    scores: npt.NDArray[np.float64],
    episodes: list[Episode],
    fault: FaultKind | str,
    *,
    min_precision: float = 0.9,
    max_false_alarm_rate: float = 1.0,
) -> FaultQuality:
    """The threshold with the best F1 among those meeting the precision and false-alarm
    targets (the best F1 of all when none meets them), with its quality on `data`.

    Out-of-fold scores often reach the best F1 over a range of thresholds; the middle of that
    range is taken, which leaves room on both sides for a fleet the model has not seen.
    """
    line = timeline(data)
    # Evenly spaced in log-odds: calibrated scores crowd near 1 where alerts are decided.
    candidates = 1.0 / (1.0 + np.exp(-np.linspace(-2.0, 14.0, 97)))
    results = [quality(data, scores, float(t), episodes, fault, line=line) for t in candidates]
    ok = [
        q
        for q in results
        if q.precision >= min_precision
        and q.false_alarms_per_1000_device_days <= max_false_alarm_rate
    ]
    pool = ok or results
    top = max(q.f1 for q in pool)
    plateau = [q for q in pool if q.f1 >= top - 0.005]
    return plateau[len(plateau) // 2]
