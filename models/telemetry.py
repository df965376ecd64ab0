"""SQL the streaming scorer follows telemetry with: readings by the time they were written,
one device's window in time order, the ingester's commit notifications and the database's
clock. Keyword-only; nothing here writes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
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
# A device's slice: the same expression as forewarn.leases.Leases.slice_of_sql.
_SLICE = "(abs(hashtext(device_id)::bigint) %% %(p)s)::int"


def readings_since(conn: Conn, *, ingested_after: datetime, limit: int) -> list[NewReading]:
    """Readings written after `ingested_after`, oldest write first (at most `limit`)."""
    rows = conn.execute(
        f"SELECT {_READING_COLUMNS} FROM telemetry WHERE ingested_at > %s "
        "ORDER BY ingested_at LIMIT %s",
        (ingested_after, limit),
    ).fetchall()
    return [NewReading(*r) for r in rows]  # type: ignore[arg-type]


def device_readings(
    conn: Conn, *, device_id: str, since: datetime, until: datetime | None = None
) -> list[NewReading]:
    """One device's readings from `since` on, in time order (written up to `until`, if given)."""
    rows = conn.execute(
        f"SELECT {_READING_COLUMNS} FROM telemetry WHERE device_id = %s AND ts >= %s "
        "AND (%s::timestamptz IS NULL OR ingested_at <= %s) ORDER BY ts",
        (device_id, since, until, until),
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


def slice_readings(
    conn: Conn,
    *,
    after: datetime,
    until: datetime,
    slices: Sequence[int],
    partitions: int,
    limit: int,
) -> list[tuple[int, NewReading]]:
    """Readings of devices in `slices` (of `partitions`, by ``forewarn.leases``' hash) written
    in (`after`, `until`], oldest write first (at most `limit`), each with its slice."""
    rows = conn.execute(
        f"SELECT {_SLICE} AS s, {_READING_COLUMNS} FROM telemetry "
        f"WHERE ingested_at > %(after)s AND ingested_at <= %(until)s AND {_SLICE} = ANY(%(s)s) "
        "ORDER BY ingested_at LIMIT %(limit)s",
        {"p": partitions, "after": after, "until": until, "s": list(slices), "limit": limit},
    ).fetchall()
    return [(int(str(r[0])), NewReading(*r[1:])) for r in rows]  # type: ignore[arg-type]


def devices_in(conn: Conn, *, slices: Sequence[int], partitions: int) -> list[str]:
    """The known devices whose slice is in `slices`."""
    rows = conn.execute(
        f"SELECT device_id FROM devices WHERE {_SLICE} = ANY(%(s)s)",
        {"p": partitions, "s": list(slices)},
    ).fetchall()
    return [str(r[0]) for r in rows]


def device_models_in(conn: Conn, *, slices: Sequence[int], partitions: int) -> dict[str, str]:
    """Device id to product model, for the registered devices with one in `slices` (ids and
    models interned: a scorer's window state and detectors key the same ids)."""
    rows = conn.execute(
        f"SELECT device_id, model FROM devices WHERE model IS NOT NULL AND {_SLICE} = ANY(%(s)s)",
        {"p": partitions, "s": list(slices)},
    )
    return {sys.intern(str(d)): sys.intern(str(m)) for d, m in rows}
