"""SQL the streaming scorer follows telemetry with: readings by the time they were written,
one device's window in time order, the ingester's commit notifications and the database's
clock. Keyword-only; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forewarn.db import TELEMETRY_CHANNEL, Conn


@dataclass(frozen=True, slots=True)
class NewReading:
    """A stored reading the streaming scorer has not seen yet."""

    device_id: str
    ts: datetime
    ingested_at: datetime
    signal: float | None
    battery: float | None
    volts: float | None
    temp: float | None
    uptime: float | None
    reconnects: float | None
    codes: tuple[str, ...]


_READING_COLUMNS = (
    "device_id, ts, ingested_at, signal_dbm::float8, battery_pct::float8, battery_v::float8, "
    "temperature_c::float8, uptime_s::float8, reconnects::float8, error_codes"
)


def readings_since(conn: Conn, *, ingested_after: datetime, limit: int) -> list[NewReading]:
    """Readings written after `ingested_after`, oldest write first (at most `limit`)."""
    rows = conn.execute(
        f"SELECT {_READING_COLUMNS} FROM telemetry WHERE ingested_at > %s "
        "ORDER BY ingested_at LIMIT %s",
        (ingested_after, limit),
    ).fetchall()
    return [NewReading(*r) for r in rows]  # type: ignore[arg-type]


def device_readings(conn: Conn, *, device_id: str, since: datetime) -> list[NewReading]:
    """One device's readings from `since` on, in time order."""
    rows = conn.execute(
        f"SELECT {_READING_COLUMNS} FROM telemetry WHERE device_id = %s AND ts >= %s ORDER BY ts",
        (device_id, since),
    ).fetchall()
    return [NewReading(*r) for r in rows]  # type: ignore[arg-type]


def notify_listen(conn: Conn) -> None:
    """Subscribe this (autocommit) connection to the ingester's commit notifications."""
    conn.execute(f"LISTEN {TELEMETRY_CHANNEL}")


def now(conn: Conn) -> datetime:
    """The database's clock (the scorer's cursor is in its time)."""
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]
