"""Label-free detectors on public real-world telemetry with known failures (bench/README.md).

For each data set in bench/data/ (shipped, with source and licence beside it; nothing is
fetched), the file goes through ``forewarn backtest``'s own code with no model and no labels,
twice: **uncalibrated** (the detectors' own bars) and **calibrated**, as an operator would run
it (``forewarn backtest --calibrate-until``): thresholds set as ``forewarn calibrate`` sets them
(``models.calibrate``, the same functions) from the data set's development part alone (its own
history, no labels) within the false-alarm budget. Then, per part of the split decided before any run (development, held
out), it prints false alarms per 1,000 device-days in the healthy periods and, per known
failure, whether an alert started inside its window and with what lead. Anomaly hints (the
generic robust z-score, which never opens anything by itself) are counted apart. Prints one
JSON document.

``.venv/bin/python bench/realdata.py [--budget 1.0]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from forewarn.settings import Settings
from models.backtest import BacktestOptions, score_table
from models.backtest_report import ANOMALY, Found, alerts_of
from models.csvfile import Columns, Table, read_table

DATA = Path(__file__).resolve().parent / "data"
GRACE_H = 2.0


def _t(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Failure:
    """A known failure: its label time and its window (from the data set's own labels)."""

    label: float
    start: float
    end: float
    what: str


@dataclass(frozen=True, slots=True)
class DataSet:
    """A shipped file, how to read it, its known failures and where held out begins."""

    name: str
    path: Path
    columns: Columns
    failures: tuple[Failure, ...] | Callable[[Table], tuple[Failure, ...]]
    held_out_from: float

    def known(self, table: Table) -> tuple[Failure, ...]:
        """The known failures (some data sets mark them in the file itself)."""
        return self.failures if isinstance(self.failures, tuple) else self.failures(table)


def sentinel_runs(column: str, value: float) -> Callable[[Table], tuple[Failure, ...]]:
    """Failures marked in the file: each run of rows whose `column` reads `value`, its window
    the run plus ``GRACE_H``."""

    def runs(table: Table) -> tuple[Failure, ...]:
        j = table.numeric.index(column)
        out: list[Failure] = []
        start: float | None = None
        last = 0.0
        for row in table.rows:
            if row.values[j] == value:
                start = row.ts if start is None else start
                last = row.ts
            elif start is not None:
                hours = (last - start) / 3600 + 1
                out.append(
                    Failure(start, start, last + GRACE_H * 3600, f"{hours:.0f} h of {value:g}")
                )
                start = None
        if start is not None:
            hours = (last - start) / 3600 + 1
            out.append(Failure(start, start, last + GRACE_H * 3600, f"{hours:.0f} h of {value:g}"))
        return tuple(out)

    return runs


SETS = (
    DataSet(
        "nab machine temperature",
        DATA / "nab" / "machine_temperature_system_failure.csv",
        Columns(signals=(("value", "temperature_c"),)),
        (
            Failure(
                _t("2013-12-11 06:00"), _t("2013-12-10 06:25"), _t("2013-12-12 05:35"), "shutdown"
            ),
            Failure(_t("2013-12-16 17:25"), _t("2013-12-15 17:50"), _t("2013-12-17 17:00"), "2"),
            Failure(_t("2014-01-28 13:55"), _t("2014-01-27 14:20"), _t("2014-01-29 13:30"), "3"),
            Failure(
                _t("2014-02-08 14:30"),
                _t("2014-02-07 14:55"),
                _t("2014-02-09 14:05"),
                "catastrophic",
            ),
        ),
        _t("2014-01-18 00:00"),
    ),
    DataSet(
        "nab ambient temperature",
        DATA / "nab" / "ambient_temperature_system_failure.csv",
        Columns(signals=(("value", "temperature_c"),)),
        (
            Failure(_t("2013-12-22 20:00"), _t("2013-12-15 07:00"), _t("2013-12-30 09:00"), "1"),
            Failure(_t("2014-04-13 09:00"), _t("2014-03-29 15:00"), _t("2014-04-20 22:00"), "2"),
        ),
        _t("2014-01-09 00:00"),
    ),
    DataSet(
        "uci air quality device",
        DATA / "uci_air_quality" / "air_quality_device.csv",
        Columns(),  # temperature_c maps itself; every other column is a metric
        sentinel_runs("temperature_c", -200.0),  # all its sensors read -200 together
        _t("2004-10-30 00:00"),
    ),
)


def _part(found: list[Found], ds: DataSet, table: Table, lo: float, hi: float) -> dict[str, Any]:
    """Figures of one part [lo, hi) of a data set's time."""
    lo, hi = max(lo, table.rows[0].ts), min(hi, table.rows[-1].ts)
    known = ds.known(table)
    windows = [(f.start, f.end) for f in known]
    inside = sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in windows)
    healthy_days = max(hi - lo - inside, 0.0) / 86400.0

    def in_window(t: float) -> bool:
        return any(s <= t <= e for s, e in windows)

    out: dict[str, Any] = {"healthy_device_days": round(healthy_days, 1)}
    for kind, hint in (("detectors", False), ("anomaly hints", True)):
        mine = [f for f in found if (f.fault == ANOMALY) == hint]
        false = [f for f in mine if lo <= f.start < hi and not in_window(f.start)]
        out[kind] = {
            "false_alarms": len(false),
            "per_1000_device_days": round(1000 * len(false) / healthy_days, 1)
            if healthy_days
            else None,
            "false_alarm_reasons": [f"{f.fault}: {f.reason}" for f in false[:5]],
        }
    failures = []
    for fail in known:
        if not lo <= fail.label < hi:
            continue
        hits = [
            f
            for f in found
            if f.fault != ANOMALY and fail.start <= f.start <= fail.label + GRACE_H * 3600
        ]
        failures.append(
            {
                "failure": fail.what,
                "label": datetime.fromtimestamp(fail.label, UTC).isoformat(),
                "warned": bool(hits),
                "lead_h": round((fail.label - hits[0].start) / 3600, 1) if hits else None,
                "by": f"{hits[0].fault}: {hits[0].reason}" if hits else "",
            }
        )
    out["failures"] = failures
    return out


def run(ds: DataSet, budget: float) -> dict[str, Any]:
    """The data set through the backtest, uncalibrated and calibrated, its figures per part."""
    table = read_table(ds.path, ds.columns)
    out: dict[str, Any] = {"data_set": ds.name, "rows": len(table.rows)}
    # Calibrated: `forewarn backtest --calibrate-until`, on the development part alone.
    for mode, until in (("uncalibrated", None), ("calibrated", ds.held_out_from)):
        options = BacktestOptions(columns=ds.columns, calibrate_until=until, budget=budget)
        scores = score_table(table, options)
        if scores.calibration:
            out["calibration"] = {
                "on": "development part, no labels",
                "budget_per_1000_device_days": budget,
                "device_days": round(scores.calibration[0].device_days, 1),
                "thresholds": {
                    c.fault: {
                        "threshold": c.threshold,
                        "development_alerts_per_1000_device_days": c.alerts_per_1000_device_days,
                    }
                    for c in scores.calibration
                },
            }
        alerts = alerts_of(table, scores)
        out[mode] = {
            "development": _part(alerts, ds, table, -math.inf, ds.held_out_from),
            "held_out": _part(alerts, ds, table, ds.held_out_from, math.inf),
        }
    return out


def main() -> None:
    """Run every data set and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget",
        type=float,
        default=Settings.model_fields["false_alarm_budget"].default,
        help="false alarms per 1,000 device-days calibrate allows (FOREWARN_FALSE_ALARM_BUDGET)",
    )
    args = parser.parse_args()
    print(json.dumps([run(ds, args.budget) for ds in SETS], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
