"""What a backtest found, for people: a summary per device, alerts per 1,000 device-days per
fault, the known failures it warned of (``--events``), as JSON or one self-contained HTML page.

Alerts are counted as people see them (``models.evaluation.alert_starts``: rows alerting with
no pause longer than six hours are one alert). A known failure is warned of when an alert of
its fault on its device starts at most ``LOOKBACK_DAYS`` before it and at most
``LATE_GRACE_H`` after it; the lead is the failure's time minus that start (negative: flagged
after the failure time given). Every other alert of a fault that has events is a false alarm.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forewarn.errors import ConfigError, ValidationError
from models.backtest import SCORING, Scores
from models.csvfile import Table, parse_time
from models.evaluation import alert_starts
from models.labels import LATE_GRACE_H

LOOKBACK_DAYS = 14.0
ANOMALY = "anomaly"


@dataclass(frozen=True, slots=True)
class Found:
    """One alert as people see it: its device, fault, start and first reason."""

    device: str
    fault: str
    start: float
    reason: str


@dataclass(frozen=True, slots=True)
class Event:
    """A known failure from the user's events file."""

    device: str
    fault: str
    ts: float


@dataclass(frozen=True, slots=True)
class Summary:
    """The backtest's alerts, per device and per fault."""

    device_days: float
    devices: dict[str, dict[str, Any]]  # device -> rows, days, alerts per fault
    per_fault: dict[str, dict[str, float]]  # fault -> alerts, per 1,000 device-days
    alerts: list[Found]
    outages: list[dict[str, Any]]
    events: dict[str, Any] | None = None


def alerts_of(table: Table, scores: Scores) -> list[Found]:
    """Every alert start: the detectors', the trained model's faults', and anomaly hints."""
    by_device: dict[str, list[int]] = {}
    for i, row in enumerate(table.rows):
        by_device.setdefault(row.device, []).append(i)
    anomaly = scores.anomaly_alerts()
    faulty = scores.fault_alerts()
    found: list[Found] = []
    for device, idx in by_device.items():
        times = np.array([table.rows[i].ts for i in idx])
        kinds: dict[str, list[bool]] = {ANOMALY: [anomaly[i] for i in idx]}
        for j, fault in enumerate(scores.faults):
            kinds[f"model {fault}"] = [bool(faulty[i, j]) for i in idx]
        for fault in sorted({f for i in idx for f in scores.detected[i]}):
            kinds[fault] = [fault in scores.detected[i] for i in idx]
        for fault, flags in kinds.items():
            mask = np.array(flags, dtype=bool)
            for start in alert_starts(times, mask):
                i = idx[int(np.searchsorted(times, start))]
                found.append(Found(device, fault, start, _reason_for(scores.reasons[i], fault)))
    for a in scores.silences:
        found.append(Found(a.device_id, a.fault, a.ts, a.reason))
    found.sort(key=lambda f: (f.device, f.start))
    return _merge(found)


def summarize(table: Table, scores: Scores, events: Sequence[Event] = ()) -> Summary:
    """Per device and per fault, and against the known failures when there are any."""
    found = alerts_of(table, scores)
    devices: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(table.rows):
        d = devices.setdefault(row.device, {"rows": 0, "first": row.ts, "last": row.ts})
        d["rows"] += 1
        d["last"] = row.ts
        d.setdefault("scored_rows", 0)
        d["scored_rows"] += scores.phases[i] == SCORING
    for d in devices.values():
        d["days"] = round((d.pop("last") - d.pop("first")) / 86400.0, 2)
        d["alerts"] = {}
    for f in found:
        alerts = devices[f.device]["alerts"]
        alerts[f.fault] = alerts.get(f.fault, 0) + 1
    days = sum(d["days"] for d in devices.values())
    per_fault: dict[str, dict[str, float]] = {}
    for fault in sorted({f.fault for f in found}):
        n = sum(1 for f in found if f.fault == fault)
        per_fault[fault] = {
            "alerts": n,
            "per_1000_device_days": round(1000.0 * n / days, 2) if days else 0.0,
        }
    outages = [
        {"ts": o.ts, "devices": list(o.devices), "active": o.active, "reason": o.reason}
        for o in scores.outages
    ]
    quality = event_quality(found, events) if events else None
    return Summary(round(days, 2), devices, per_fault, found, outages, quality)


def read_events(path: Path) -> list[Event]:
    """Known failures from a CSV with columns device, fault and time (ISO 8601 or epoch)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            need = {"device", "fault", "time"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise ValidationError(
                    f"{path}: an events file needs the columns device, fault and time "
                    f"(it has: {', '.join(reader.fieldnames or [])})"
                )
            out = []
            for row in reader:
                try:
                    ts = parse_time(row["time"])
                except (ValueError, OverflowError) as exc:
                    raise ValidationError(
                        f"{path}: line {reader.line_num}: cannot read the time {row['time']!r}"
                    ) from exc
                out.append(Event(row["device"].strip(), row["fault"].strip(), ts))
            return out
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the events: {exc.strerror or exc}") from exc


def event_quality(found: Sequence[Found], events: Sequence[Event]) -> dict[str, Any]:
    """Per fault with events: precision, recall, leads; and each failure, warned or not."""
    out: dict[str, Any] = {"failures": [], "faults": {}}
    for fault in sorted({e.fault for e in events}):
        mine = [f for f in found if f.fault == fault]
        used: set[int] = set()
        leads: list[float] = []
        warned = 0
        wanted = [e for e in events if e.fault == fault]
        for e in wanted:
            hits = [
                (k, f)
                for k, f in enumerate(mine)
                if f.device == e.device
                and e.ts - LOOKBACK_DAYS * 86400 <= f.start <= e.ts + LATE_GRACE_H * 3600
            ]
            lead = (e.ts - hits[0][1].start) / 3600.0 if hits else None
            used.update(k for k, _ in hits)
            if lead is not None:
                warned += 1
                leads.append(lead)
            out["failures"].append(
                {
                    "device": e.device,
                    "fault": fault,
                    "time": e.ts,
                    "warned": lead is not None,
                    "lead_h": None if lead is None else round(lead, 2),
                    "reason": hits[0][1].reason if hits else "",
                }
            )
        false = len(mine) - len(used)
        out["faults"][fault] = {
            "failures": len(wanted),
            "warned": warned,
            "false_alarms": false,
            "precision": round(len(used) / len(mine), 4) if mine else 0.0,
            "recall": round(warned / len(wanted), 4) if wanted else 0.0,
            "median_lead_h": round(statistics.median(leads), 2) if leads else None,
        }
    return out


def summary_json(summary: Summary) -> str:
    """The summary as JSON."""
    data = asdict(summary)
    data["alerts"] = [asdict(a) for a in summary.alerts]
    return json.dumps(data, indent=2, ensure_ascii=False)


def _reason_for(reasons: str, fault: str) -> str:
    """The part of a row's reasons that speaks of `fault`."""
    key = fault.removeprefix("model ")
    key = "model_anomaly" if key == ANOMALY and fault != ANOMALY else key
    for part in reasons.split("; "):
        if part.startswith(f"{key}: "):
            return part.removeprefix(f"{key}: ")
    return reasons


def _merge(found: list[Found]) -> list[Found]:
    """A silence right after the same fault's alert on the device is the same alert."""
    out: list[Found] = []
    for f in found:
        prev = next((p for p in reversed(out) if p.device == f.device and p.fault == f.fault), None)
        if prev is not None and 0 <= f.start - prev.start <= 6 * 3600 and "no reading" in f.reason:
            continue
        out.append(f)
    return out
