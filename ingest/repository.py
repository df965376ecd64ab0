"""SQL for the ingester. Keyword-only functions; the caller owns the transaction."""

from __future__ import annotations

import hashlib
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


@dataclass(frozen=True, slots=True)
class StagedStatus:
    """A status message with the time it reached the ingester."""

    status: StatusEvent
    received_at: datetime


def write_batch(
    conn: Conn,
    *,
    readings: Sequence[Staged],
    statuses: Sequence[StagedStatus],
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
    events = _insert_statuses(conn, [s.status for s in statuses])
    if dead_letters:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (topic, payload, reason, received_at, payload_bytes, "
                "payload_sha256) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        # Text columns refuse NUL; a reason may quote what the device sent.
                        d.topic.replace("\0", "\\0"),
                        d.payload,
                        d.reason.replace("\0", "\\0"),
                        d.received_at,
                        d.size if d.size is not None else len(d.payload),
                        d.sha256 or hashlib.sha256(d.payload).hexdigest(),
                    )
                    for d in dead_letters
                ],
            )
    _upsert_devices(conn, readings, statuses)
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
    first: datetime  # receive times
    last: datetime | None  # of readings only: a last will is the broker talking, not the device
    reading_at: datetime | None  # the newest reading's stamp, never later than its arrival
    status_at: datetime  # the newest evidence's own stamp, never later than its arrival
    online: bool
    model: str | None = None
    firmware: str | None = None
    firmware_at: datetime | None = None


def _upsert_devices(
    conn: Conn, readings: Sequence[Staged], statuses: Sequence[StagedStatus]
) -> None:
    """Keep devices' last seen, firmware and online status current (creating a device not
    registered yet, when the edge let it through: FOREWARN_AUTO_REGISTER).

    last_seen is when the ingester last received a reading from the device, never a time the
    device claims. Whether a device is online follows its newest evidence (a reading means
    online; a status says so), put in order by the device's own stamps, because several
    connections and batches deliver a device's messages out of order; a stamp counts for no
    later than the message's arrival, so a device cannot claim the future (and the edge has
    already refused messages stamped further ahead than the allowed clock skew). The newest
    reading's firmware wins the same way. A provisioned device's first message makes it active.
    """
    seen: dict[str, _Presence] = {}

    def note(device_id: str, ts: datetime, at: datetime, online: bool, reading: bool) -> _Presence:
        stamp = min(ts, at)
        p = seen.get(device_id)
        if p is None:
            p = seen[device_id] = _Presence(
                at, at if reading else None, stamp if reading else None, stamp, online
            )
            return p
        p.first = min(p.first, at)
        if reading:
            p.last = max(p.last or at, at)
            p.reading_at = max(p.reading_at or stamp, stamp)
        if stamp >= p.status_at:
            p.status_at, p.online = stamp, online
        return p

    for staged in readings:
        r = staged.reading
        p = note(r.device_id, r.ts, staged.received_at, True, True)
        p.model = r.model or p.model
        stamp = min(r.ts, staged.received_at)
        if r.firmware and (p.firmware_at is None or stamp >= p.firmware_at):
            p.firmware, p.firmware_at = r.firmware, stamp
    for staged_status in statuses:
        st = staged_status.status
        note(
            st.device_id, st.ts, staged_status.received_at, st.status is DeviceStatus.ONLINE, False
        )
    if not seen:
        return
    ids = sorted(seen)  # same lock order in every ingester
    rows = [seen[i] for i in ids]
    conn.execute(
        """
        INSERT INTO devices AS d (device_id, model, firmware, first_seen, last_seen, online,
                                  status_at, last_reading_at)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],
                             %s::timestamptz[], %s::boolean[], %s::timestamptz[],
                             %s::timestamptz[])
        ON CONFLICT (device_id) DO UPDATE SET
            model = coalesce(EXCLUDED.model, d.model),
            firmware = CASE WHEN EXCLUDED.status_at >= coalesce(d.status_at, '-infinity')
                            THEN coalesce(EXCLUDED.firmware, d.firmware) ELSE d.firmware END,
            first_seen = least(d.first_seen, EXCLUDED.first_seen),
            last_seen = greatest(d.last_seen, EXCLUDED.last_seen),
            last_reading_at = greatest(d.last_reading_at, EXCLUDED.last_reading_at),
            online = CASE WHEN EXCLUDED.status_at >= coalesce(d.status_at, '-infinity')
                          THEN EXCLUDED.online ELSE d.online END,
            status_at = greatest(d.status_at, EXCLUDED.status_at),
            state = CASE WHEN d.state = 'provisioned' THEN 'active' ELSE d.state END,
            state_at = CASE WHEN d.state = 'provisioned' THEN clock_timestamp()
                            ELSE d.state_at END,
            updated_at = CASE WHEN d.state = 'provisioned' THEN clock_timestamp()
                              ELSE d.updated_at END
        """,
        (
            ids,
            [p.model for p in rows],
            [p.firmware for p in rows],
            [p.first for p in rows],
            [p.last for p in rows],
            [p.online for p in rows],
            [p.status_at for p in rows],
            [p.reading_at for p in rows],
        ),
    )


def purge_dead_letters(conn: Conn, *, before: datetime) -> int:
    """Delete dead letters received before `before`; returns how many."""
    return conn.execute("DELETE FROM dead_letters WHERE received_at < %s", (before,)).rowcount


def rollup_lock(conn: Conn, *, wait: bool) -> bool:
    """Take the rollup refresh's lock for this transaction; without `wait`, only if no other
    ingester holds it (whether it was taken)."""
    if wait:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('forewarn_refresh_rollups'))")
        return True
    row = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('forewarn_refresh_rollups'))")
    got = row.fetchone()
    return bool(got and got[0])


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


def purge_status_events(conn: Conn, *, before: datetime) -> int:
    """Delete device status events stamped before `before`; returns how many."""
    return conn.execute("DELETE FROM device_status_events WHERE ts < %s", (before,)).rowcount
