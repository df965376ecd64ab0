"""SQL for the ingester. Keyword-only functions; the caller owns the transaction."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from forewarn.db import TELEMETRY_CHANNEL
from forewarn.domain import DeadLetter, DeviceStatus, Reading, StatusEvent

Conn = psycopg.Connection[tuple[object, ...]]

_COLUMNS = (
    "device_id, ts, digest, received_at, firmware, signal_dbm, link_quality, battery_pct, "
    "battery_v, temperature_c, uptime_s, reconnects, error_codes, extra, source, dropped"
)


def _text_array(values: tuple[str, ...]) -> str:
    """A PostgreSQL array literal; psycopg's list dumper costs several µs a row in COPY."""
    if not values:
        return "{}"
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


@dataclass(frozen=True, slots=True)
class Staged:
    """A reading with the time it reached the ingester and the digest of its content, which
    keys it with ``(device_id, ts)`` (migration 10)."""

    reading: Reading
    received_at: datetime
    digest: int


def _json(value: Mapping[str, Any]) -> str:
    """JSON for a jsonb column; a NaN or infinity (which jsonb refuses) becomes its text."""
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Rows a batch really added (redelivered readings are not counted twice)."""

    readings_written: int
    duplicates: int
    status_events: int
    dead_letters: int


def prepare(conn: Conn) -> None:
    """Create this session's staging table (once per connection)."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS telemetry_stage "
        "(LIKE telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )


def notify_written(conn: Conn) -> None:
    """Wake streaming scorers (LISTEN forewarn_telemetry) once this transaction commits."""
    conn.execute("SELECT pg_notify(%s, '')", (TELEMETRY_CHANNEL,))


def ensure_partitions(conn: Conn, *, first: datetime, last: datetime) -> int:
    """Create the daily partitions covering [first, last] (plain-PostgreSQL path only)."""
    row = conn.execute("SELECT forewarn_ensure_partitions(%s, %s)", (first, last)).fetchone()
    return int(str(row[0])) if row else 0


def write_batch(
    conn: Conn,
    *,
    readings: Sequence[Staged],
    statuses: Sequence[StatusEvent],
    dead_letters: Sequence[DeadLetter],
) -> WriteResult:
    """COPY readings through the staging table, insert the rest, update devices."""
    written = 0
    if readings:
        with conn.cursor() as cur:
            with cur.copy(f"COPY telemetry_stage ({_COLUMNS}) FROM STDIN") as copy:
                for item in readings:
                    r = item.reading
                    copy.write_row(
                        (
                            r.device_id,
                            r.ts,
                            item.digest,
                            item.received_at,
                            r.firmware,
                            r.signal_dbm,
                            r.link_quality,
                            r.battery_pct,
                            r.battery_v,
                            r.temperature_c,
                            r.uptime_s,
                            r.reconnects,
                            _text_array(r.error_codes),
                            _json(r.extra) if r.extra else "{}",
                            r.source,
                            _json(r.dropped) if r.dropped else None,
                        )
                    )
            # Sorted so concurrent ingesters take row locks in the same order.
            cur.execute(
                f"INSERT INTO telemetry ({_COLUMNS}) SELECT {_COLUMNS} FROM telemetry_stage "
                "ORDER BY device_id, ts, digest ON CONFLICT (device_id, ts, digest) DO NOTHING"
            )
            written = max(cur.rowcount, 0)
    events = _insert_statuses(conn, statuses)
    if dead_letters:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (topic, payload, reason, received_at) "
                "VALUES (%s, %s, %s, %s)",
                [(d.topic, d.payload, d.reason, d.received_at) for d in dead_letters],
            )
    _upsert_devices(conn, [s.reading for s in readings], statuses)
    if written:
        # Every path that stores readings wakes the streaming scorers, at commit.
        notify_written(conn)
    return WriteResult(written, len(readings) - written, events, len(dead_letters))


def _insert_statuses(conn: Conn, statuses: Sequence[StatusEvent]) -> int:
    if not statuses:
        return 0
    ordered = sorted(statuses, key=lambda s: (s.device_id, s.ts))
    cur = conn.execute(
        "INSERT INTO device_status_events (device_id, ts, status, source) "
        "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[]) "
        "ON CONFLICT DO NOTHING",
        (
            [s.device_id for s in ordered],
            [s.ts for s in ordered],
            [s.status.value for s in ordered],
            [s.source for s in ordered],
        ),
    )
    return max(cur.rowcount, 0)


@dataclass(slots=True)
class _Presence:
    first: datetime
    last: datetime | None  # of readings only: a last will is the broker talking, not the device
    model: str | None
    firmware: str | None
    firmware_at: datetime | None
    status_at: datetime
    online: bool


def _upsert_devices(
    conn: Conn, readings: Sequence[Reading], statuses: Sequence[StatusEvent]
) -> None:
    """Register new devices; keep last seen, firmware and online status current.

    A reading at time t is evidence the device was online at t; a status event says
    so explicitly. The newest evidence wins, here and against what is stored.
    """
    seen: dict[str, _Presence] = {}
    for r in readings:
        p = seen.get(r.device_id)
        if p is None:
            seen[r.device_id] = _Presence(
                r.ts, r.ts, r.model, r.firmware, r.ts if r.firmware else None, r.ts, True
            )
            continue
        p.first, p.last = min(p.first, r.ts), max(p.last or r.ts, r.ts)
        p.model = r.model or p.model
        if r.firmware and (p.firmware_at is None or r.ts >= p.firmware_at):
            p.firmware, p.firmware_at = r.firmware, r.ts
        if r.ts >= p.status_at:
            p.status_at, p.online = r.ts, True
    for s in statuses:
        p = seen.get(s.device_id)
        online = s.status is DeviceStatus.ONLINE
        if p is None:
            seen[s.device_id] = _Presence(s.ts, None, None, None, None, s.ts, online)
        elif s.ts >= p.status_at:
            p.status_at, p.online = s.ts, online
    if not seen:
        return
    ids = sorted(seen)  # same lock order in every ingester
    rows = [seen[i] for i in ids]
    conn.execute(
        """
        INSERT INTO devices AS d (device_id, model, firmware, first_seen, last_seen, online,
                                  status_at)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],
                             %s::timestamptz[], %s::boolean[], %s::timestamptz[])
        ON CONFLICT (device_id) DO UPDATE SET
            model = coalesce(EXCLUDED.model, d.model),
            firmware = CASE WHEN EXCLUDED.last_seen >= coalesce(d.last_seen, '-infinity')
                            THEN coalesce(EXCLUDED.firmware, d.firmware) ELSE d.firmware END,
            first_seen = least(d.first_seen, EXCLUDED.first_seen),
            last_seen = greatest(d.last_seen, EXCLUDED.last_seen),
            online = CASE WHEN EXCLUDED.status_at >= coalesce(d.status_at, '-infinity')
                          THEN EXCLUDED.online ELSE d.online END,
            status_at = greatest(d.status_at, EXCLUDED.status_at)
        """,
        (
            ids,
            [p.model for p in rows],
            [p.firmware for p in rows],
            [p.first for p in rows],
            [p.last for p in rows],
            [p.online for p in rows],
            [p.status_at for p in rows],
        ),
    )


def refresh_rollups(conn: Conn, *, first: datetime, last: datetime) -> int:
    """Recompute the hourly rollups covering [first, last] (plain-PostgreSQL path only)."""
    row = conn.execute("SELECT forewarn_refresh_rollups(%s, %s)", (first, last)).fetchone()
    return int(str(row[0])) if row else 0


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What the database holds, for progress displays and summaries."""

    readings: int
    devices: int
    online: int
    offline: int
    dead_letters: int
    status_events: int


def store_counts(conn: Conn) -> StoreCounts:
    """Count readings, devices by online status, dead letters and status events."""
    row = conn.execute(
        """SELECT (SELECT count(*) FROM telemetry),
                  count(*), count(*) FILTER (WHERE online), count(*) FILTER (WHERE NOT online),
                  (SELECT count(*) FROM dead_letters),
                  (SELECT count(*) FROM device_status_events)
           FROM devices"""
    ).fetchone()
    assert row is not None  # an aggregate always returns one row
    readings, devices, online, offline, dead, events = (int(str(v)) for v in row)
    return StoreCounts(readings, devices, online, offline, dead, events)
