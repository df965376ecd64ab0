"""The one write path from parsed messages to the database, for the MQTT ingester and for
writing without a broker (``ingest.direct``).

A batch is one transaction: the daily partitions it needs (plain-PostgreSQL path), COPY of
its readings through the staging table, its status events and dead letters, the devices it
touched, and a NOTIFY that wakes the scorers at commit. The hourly rollups of the plain path
are brought up to date for the span written, when the caller asks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from forewarn.db import Conn, connect
from forewarn.domain import DeadLetter, Parsed, Reading, StatusEvent
from forewarn.errors import StorageError
from forewarn.schema.migrate import read_storage
from forewarn.settings import Settings
from ingest import repository


@dataclass(frozen=True, slots=True)
class Received:
    """A parsed message, the time it reached Forewarn, and the message itself."""

    parsed: Parsed | DeadLetter
    received_at: datetime
    topic: str
    payload: bytes


def digest(topic: str, payload: bytes) -> int:
    """A 64-bit hash of the message as it arrived: with the device and time it keys the row,
    so a redelivered message (the same bytes) is one row, and different messages stamped with
    the same second are several (migration 10). Hashing the bytes costs under a microsecond;
    hashing the parsed reading cost five."""
    h = hashlib.blake2b(topic.encode(), digest_size=8)
    h.update(b"\0")
    h.update(payload)
    return int.from_bytes(h.digest(), "big", signed=True)


class BatchWriter:
    """Writes batches of parsed messages on a connection of its own."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: Conn | None = None
        self._partitioned: bool | None = None
        self._partition_days: set[date] = set()
        self._dirty: tuple[datetime, datetime] | None = None

    def open(self) -> None:
        """Check that the schema is there and learn its storage path; StorageError if not."""
        storage = read_storage(self.connection())
        if storage is None:
            raise StorageError("the database has no Forewarn schema; run `forewarn db migrate`")
        self._partitioned = storage == "partitioned"

    @property
    def partitioned(self) -> bool:
        """Whether telemetry is in native PostgreSQL partitions (the plain path)."""
        if self._partitioned is None:
            self.open()
        assert self._partitioned is not None
        return self._partitioned

    def connection(self) -> Conn:
        """The writer's connection (autocommit: each batch is an explicit transaction)."""
        if self._conn is None or self._conn.closed:
            conn = connect(self._settings)
            conn.autocommit = True
            repository.prepare(conn)
            self._conn = conn
        return self._conn

    def write(self, messages: Sequence[Received]) -> repository.WriteResult:
        """Write one batch in one transaction (a savepoint inside a caller's transaction)."""
        readings = [
            repository.Staged(m.parsed, m.received_at, digest(m.topic, m.payload))
            for m in messages
            if isinstance(m.parsed, Reading)
        ]
        statuses = [
            repository.StagedStatus(m.parsed, m.received_at)
            for m in messages
            if isinstance(m.parsed, StatusEvent)
        ]
        dead = [m.parsed for m in messages if isinstance(m.parsed, DeadLetter)]
        stamps = [s.reading.ts for s in readings]
        span = (min(stamps), max(stamps)) if stamps else None
        conn = self.connection()
        with conn.transaction():
            if span and self.partitioned:
                self._ensure_partitions(conn, *span)
            result = repository.write_batch(
                conn, readings=readings, statuses=statuses, dead_letters=dead
            )
        if span:
            old = self._dirty
            self._dirty = (min(span[0], old[0]), max(span[1], old[1])) if old else span
        return result

    def refresh_rollups(self, *, closed_only: bool = True, now: datetime | None = None) -> None:
        """Bring the hourly rollups up to date for what was written (plain path only).

        With `closed_only` (the running ingester), only hours that have ended are recomputed,
        as TimescaleDB's refresh policy materialises them, and the hour under way waits until
        it ends: recomputing it every refresh aggregated all of its readings again each time
        (millions at 100,000 devices) and stalled the database. Ingesters refresh one at a
        time; one that finds another refreshing keeps its span for its next turn.
        """
        if self._dirty is None or not self.partitioned:
            return
        first, last = self._dirty
        cut = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        if closed_only and first >= cut:
            return
        upto = min(last, cut - timedelta(microseconds=1)) if closed_only else last
        conn = self.connection()
        with conn.transaction():
            if not repository.rollup_lock(conn, wait=not closed_only):
                return
            repository.refresh_rollups(conn, first=first, last=upto)
        self._dirty = (cut, last) if upto < last else None

    @property
    def dirty(self) -> bool:
        """Whether rows were written since the rollups were last refreshed."""
        return self._dirty is not None

    def forget_partitions_before(self, day: date) -> None:
        """Partitions older than `day` were dropped by retention: stop assuming they exist."""
        self._partition_days = {d for d in self._partition_days if d >= day}

    def rollback(self) -> None:
        """Roll back a failed transaction, keeping the connection."""
        if self._conn is not None and not self._conn.closed:
            self._conn.rollback()

    def close(self) -> None:
        """Close the connection (the next write opens a new one)."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _ensure_partitions(self, conn: Conn, first: datetime, last: datetime) -> None:
        # Every day from first to last: what forewarn_ensure_partitions creates.
        days = {
            first.date() + timedelta(days=d) for d in range((last.date() - first.date()).days + 1)
        }
        if not days <= self._partition_days:
            repository.ensure_partitions(conn, first=first, last=last)
            self._partition_days |= days
