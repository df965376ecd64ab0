"""SQL of the detectors' calibrated thresholds (table ``detector_thresholds``). Keyword-only;
the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forewarn.db import Conn


@dataclass(frozen=True, slots=True)
class Calibration:
    """One fault's threshold and what it was measured on."""

    fault: str
    threshold: float
    alerts_per_1000_device_days: float
    device_days: float
    budget: float


def thresholds(conn: Conn) -> dict[str, float]:
    """The calibrated threshold per fault (faults never calibrated are absent)."""
    rows = conn.execute("SELECT fault, threshold::float8 FROM detector_thresholds").fetchall()
    return {str(r[0]): float(r[1]) for r in rows}  # type: ignore[arg-type]


def save(conn: Conn, *, calibrations: list[Calibration]) -> None:
    """Store each fault's calibration, replacing the previous one."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO detector_thresholds (fault, threshold, alerts_per_1000_device_days, "
            "device_days, budget) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (fault) DO UPDATE SET "
            "threshold = EXCLUDED.threshold, "
            "alerts_per_1000_device_days = EXCLUDED.alerts_per_1000_device_days, "
            "device_days = EXCLUDED.device_days, budget = EXCLUDED.budget, "
            "calibrated_at = now()",
            [
                (c.fault, c.threshold, c.alerts_per_1000_device_days, c.device_days, c.budget)
                for c in calibrations
            ],
        )


def devices_reporting(conn: Conn, *, since: datetime, until: datetime) -> list[str]:
    """Devices with at least one reading in [since, until), by id."""
    rows = conn.execute(
        "SELECT DISTINCT device_id FROM telemetry WHERE ts >= %s AND ts < %s ORDER BY 1",
        (since, until),
    ).fetchall()
    return [str(r[0]) for r in rows]
