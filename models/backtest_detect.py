"""The label-free detectors in a backtest: every row of a user's CSV judged as the live
scorer's detectors would have judged it, with no model and no labels.

Mapped signals feed each device's ``models.detect.Watch``; every other numeric column gets a
stuck-sensor detector of its own (a column named like a quantity, such as ``humidity``, also
knows what that quantity can physically read). Silence needs the whole fleet's clock, so the
table is replayed in time order across devices (``models.detector_eval.replay``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from models.csvfile import Table
from models.detect import Alert, FleetSilence, Profile
from models.detector_eval import replay
from models.detectors.base import Observation
from models.detectors.stuck import StuckSensor

# Which Observation field each Forewarn signal fills.
_FIELDS = {
    "signal_dbm": "signal",
    "battery_pct": "battery",
    "battery_v": "volts",
    "temperature_c": "temp",
    "uptime_s": "uptime",
    "reconnects": "reconnects",
}
STUCK = "stuck_sensor"


@dataclass(frozen=True, slots=True)
class Detected:
    """Per row, the detectors' alerts (fault, score, reason); and the silences."""

    alerts: list[list[tuple[str, float, str]]]
    silences: list[Alert]
    outages: list[FleetSilence]


def series_of(table: Table, *, before: float = math.inf) -> dict[str, list[Observation]]:
    """Each device's mapped signals as observations, in the table's order (rows before
    `before` only)."""
    fields = [(table.numeric.index(c), _FIELDS[s]) for c, s in table.signals]
    series: dict[str, list[Observation]] = {}
    for row in table.rows:
        if row.ts >= before:
            continue
        got = {f: v for j, f in fields if not math.isnan(v := row.values[j])}
        x = Observation(
            ts=row.ts,
            signal=got.get("signal"),
            battery=got.get("battery"),
            volts=got.get("volts"),
            temp=got.get("temp"),
            uptime=got.get("uptime"),
            reconnects=got.get("reconnects"),
        )
        series.setdefault(row.device, []).append(x)
    return series


def detect_table(
    table: Table,
    *,
    profile: Profile,
    thresholds: Mapping[str, float],
    scoring: list[bool],
) -> Detected:
    """Run the detectors over `table`; rows not `scoring` (the learning phase) never alert."""
    mapped = {c for c, _ in table.signals}
    extra = [(table.numeric.index(m), m) for m in table.metrics if m not in mapped]
    series = series_of(table)
    rows_of: dict[str, list[int]] = {}
    for i, row in enumerate(table.rows):
        rows_of.setdefault(row.device, []).append(i)
    model = "backtest"
    run = replay(series, dict.fromkeys(series, model), {model: profile}, thresholds)
    alerts: list[list[tuple[str, float, str]]] = [[] for _ in table.rows]
    k = 0
    for idx in rows_of.values():
        for i in idx:
            for fault, said in run.verdicts[k].items():
                if scoring[i] and said.reason and said.score >= run.thresholds[fault]:
                    alerts[i].append((fault, said.score, said.reason))
            k += 1
        # Columns that are no Forewarn signal: each can still stick or read the impossible.
        sensors = {name: StuckSensor(quantity=name.lower()) for _, name in extra}
        for i in idx:
            row = table.rows[i]
            for j, name in extra:
                value = None if math.isnan(row.values[j]) else row.values[j]
                verdict = sensors[name].score_value(row.ts, value)
                if scoring[i] and verdict.reason and verdict.score >= run.thresholds[STUCK]:
                    alerts[i].append((STUCK, verdict.score, verdict.reason))
                sensors[name].learn_value(row.ts, value)
    return Detected(alerts, run.silences, run.outages)
