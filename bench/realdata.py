"""Label-free detectors on public real-world telemetry with known failures (bench/README.md).

For each data set in bench/data/ (shipped, with source and licence beside it; nothing is
fetched), the file goes through ``forewarn backtest``'s own code with no model and no labels;
then, per part of the split decided before any run (development, held out), it prints false
alarms per 1,000 device-days in the healthy periods and, per known failure, whether an alert
started inside its window and with what lead. Anomaly hints (the generic robust z-score, which
never opens anything by itself) are counted apart. Prints one JSON document.

``.venv/bin/python bench/realdata.py``
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.backtest import BacktestOptions, score_table
from models.backtest_report import ANOMALY, Found, alerts_of
from models.csvfile import Columns, read_table

DATA = Path(__file__).resolve().parent / "data"
GRACE_H = 2.0


def _t(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Failure:
    """A known failure: its label time and its window (NAB's labels, MIT licence)."""

    label: float
    start: float
    end: float
    what: str


@dataclass(frozen=True, slots=True)
class DataSet:
    """A shipped file, how to read it, its known failures and where held out begins."""

    name: str
    path: Path
    signal: str  # the Forewarn signal its value column carries
    failures: tuple[Failure, ...]
    held_out_from: float


SETS = (
    DataSet(
        "nab machine temperature",
        DATA / "nab" / "machine_temperature_system_failure.csv",
        "temperature_c",
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
        "temperature_c",
        (
            Failure(_t("2013-12-22 20:00"), _t("2013-12-15 07:00"), _t("2013-12-30 09:00"), "1"),
            Failure(_t("2014-04-13 09:00"), _t("2014-03-29 15:00"), _t("2014-04-20 22:00"), "2"),
        ),
        _t("2014-01-09 00:00"),
    ),
)


def _part(
    found: list[Found], ds: DataSet, lo: float, hi: float, first: float, last: float
) -> dict[str, Any]:
    """Figures of one part [lo, hi) of a data set's time."""
    lo, hi = max(lo, first), min(hi, last)
    windows = [(f.start, f.end) for f in ds.failures]
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
    for fail in ds.failures:
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


def run(ds: DataSet) -> dict[str, Any]:
    """The data set through the backtest, and its figures per part."""
    columns = Columns(signals=(("value", ds.signal),))
    table = read_table(ds.path, columns)
    scores = score_table(table, BacktestOptions(columns=columns))
    found = alerts_of(table, scores)
    first, last = table.rows[0].ts, table.rows[-1].ts
    return {
        "data_set": ds.name,
        "rows": len(table.rows),
        "development": _part(found, ds, first, ds.held_out_from, first, last),
        "held_out": _part(found, ds, ds.held_out_from, last + 1, first, last),
    }


def main() -> None:
    """Run every data set and print the figures."""
    print(json.dumps([run(ds) for ds in SETS], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
