"""The ingester: MQTT in, batched COPY into PostgreSQL, acknowledgements after commit.

Delivery is at-least-once end to end: a message is acknowledged to the broker
only once the transaction holding its row has committed, and the row's primary
key ``(device_id, ts)`` absorbs redeliveries. While the database is down the
writer keeps its batch, retries with backoff and acknowledges nothing, so the
broker stops sending once each connection's Receive Maximum is reached.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import errors as pg_errors

from forewarn.db import connect
from forewarn.domain import DeadLetter, Ignored, Reading, StatusEvent
from forewarn.errors import StorageError
from forewarn.schema.migrate import maintain, read_storage
from forewarn.settings import Settings
from ingest import repository
from ingest.inbox import Inbox
from ingest.metrics import IngestMetrics, IngestStats
from ingest.mqtt import Inbound, SubscriberPool
from ingest.router import adapters_from, route

log = logging.getLogger(__name__)

ROLLUP_REFRESH_SECONDS = 30.0  # plain path: how stale telemetry_hourly may get
MAINTENANCE_SECONDS = 3600.0  # plain path: partitions ahead and retention, hourly is plenty
# Errors that say "this data", not "this database": isolate the rows that cause them.
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
# Errors worth retrying as they are: the database is busy or briefly unavailable.
_TRANSIENT = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class Ingester:
    """Runs the subscriber pool and the writer thread until ``stop``."""

    def __init__(self, settings: Settings, *, metrics: IngestMetrics | None = None) -> None:
        self._settings = settings
        self.metrics = metrics or IngestMetrics()
        adapters = adapters_from(settings)
        # Broker flow control bounds what is in hand to connections x Receive Maximum;
        # twice that leaves room for redeliveries after a reconnect.
        capacity = settings.ingest_connections * settings.ingest_receive_maximum * 2
        self._inbox = Inbox(batch_size=settings.ingest_batch_size, capacity=capacity)
        self._pool = SubscriberPool(
            settings,
            filters=[f for a in adapters for f in a.subscriptions()],
            parse=lambda topic, payload, at: route(adapters, topic, payload, received_at=at),
            sink=self._inbox.put,
            on_connections=self.metrics.connections.set,
        )
        self._stopping = threading.Event()
        self._writer = threading.Thread(target=self._run, name="forewarn-writer", daemon=True)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._storage: str | None = None
        self._partition_days: set[date] = set()
        self._dirty: tuple[datetime, datetime] | None = None
        self._last_rollup = time.monotonic()
        self._last_maintenance = time.monotonic()
        self._stop_deadline = float("inf")
        self.failure: BaseException | None = None

    # lifecycle -------------------------------------------------------------

    def start(self, *, wait: float = 15.0) -> None:
        """Check the schema, connect to the broker and start writing."""
        with connect(self._settings) as conn:
            storage = read_storage(conn)
        if storage is None:
            raise StorageError("the database has no Forewarn schema; run `forewarn db migrate`")
        self._storage = storage
        self._writer.start()
        self._pool.start()
        if not self._pool.connected.wait(wait):
            log.warning("not every MQTT connection is up after %.0f s; still trying", wait)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop receiving, commit and acknowledge what is in hand, then disconnect."""
        self._stop_deadline = time.monotonic() + timeout
        self._stopping.set()
        self._writer.join(timeout + 5)
        self._pool.stop()
        if self._conn is not None:
            self._conn.close()

    def stats(self) -> IngestStats:
        """Counters so far."""
        return self.metrics.snapshot()

    # writer ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                batch = self._collect()
                if batch:
                    self._commit(batch)
                self._housekeeping()
            # Stopping: commit what is in hand, not what keeps arriving meanwhile (that
            # stays unacknowledged and the broker delivers it again after the restart).
            in_hand = len(self._inbox)
            while in_hand > 0 and time.monotonic() < self._stop_deadline:
                batch = self._inbox.take(wait=0, linger=0)
                if not batch:
                    break
                in_hand -= len(batch)
                self.metrics.count("received", len(batch))
                self._commit(batch)
        except BaseException as exc:  # surfaced through .failure; the process supervisor restarts
            self.failure = exc
            log.exception("ingester writer stopped")
            raise

    def _collect(self) -> list[Inbound]:
        batch = self._inbox.take(wait=0.1, linger=self._settings.ingest_batch_seconds)
        if batch:
            self.metrics.count("received", len(batch))
            self.metrics.backlog.set(len(self._inbox) + len(batch))
        return batch

    def _commit(self, batch: list[Inbound]) -> None:
        delay = 0.1
        isolate = False
        while True:
            started = time.perf_counter()
            try:
                conn = self._connection()
                if isolate:
                    batch = self._isolate(conn, batch)
                result = self._write(conn, batch)
                break
            except _DATA_ERRORS as exc:
                self._rollback()
                if not isolate:
                    log.warning(
                        "a batch of %d was refused (%s); isolating the bad rows", len(batch), exc
                    )
                    isolate = True
                    continue
                # Refused again once the bad rows are dead letters: not a row's fault.
                self.metrics.db_errors.inc()
                log.error("batch refused after isolating bad rows (%s); retrying", exc)
                time.sleep(delay)
                delay = min(delay * 2, self._settings.ingest_retry_max_seconds)
            except (psycopg.Error, StorageError) as exc:
                self.metrics.db_errors.inc()
                self._drop_connection()
                if time.monotonic() > self._stop_deadline:
                    log.error(
                        "stopping with %d uncommitted messages; the broker keeps them", len(batch)
                    )
                    return
                transient = isinstance(exc, _TRANSIENT)
                log.warning("batch write failed (%s); retrying in %.1f s", exc, delay)
                time.sleep(0 if transient else delay)
                delay = min(delay * 2, self._settings.ingest_retry_max_seconds)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(batch))
        self.metrics.count("written", result.readings_written)
        self.metrics.count("duplicate", result.duplicates)
        self.metrics.count("status", result.status_events)
        self.metrics.count("dead_letter", result.dead_letters)
        self.metrics.count("ignored", sum(isinstance(i.parsed, Ignored) for i in batch))
        for item in batch:  # in arrival order, as MQTT requires of acknowledgements
            self._pool.ack(item)
        self.metrics.backlog.set(len(self._inbox))

    def _write(
        self, conn: psycopg.Connection[tuple[object, ...]], batch: list[Inbound]
    ) -> repository.WriteResult:
        readings = [
            repository.Staged(i.parsed, i.received_at)
            for i in batch
            if isinstance(i.parsed, Reading)
        ]
        statuses = [i.parsed for i in batch if isinstance(i.parsed, StatusEvent)]
        dead = [i.parsed for i in batch if isinstance(i.parsed, DeadLetter)]
        span = (
            (min(s.reading.ts for s in readings), max(s.reading.ts for s in readings))
            if readings
            else None
        )
        with conn.transaction():
            if span and self._storage == "partitioned":
                self._ensure_partitions(conn, *span)
            result = repository.write_batch(
                conn, readings=readings, statuses=statuses, dead_letters=dead
            )
        if span:
            old = self._dirty
            self._dirty = (min(span[0], old[0]), max(span[1], old[1])) if old else span
        return result

    def _isolate(
        self, conn: psycopg.Connection[tuple[object, ...]], batch: list[Inbound]
    ) -> list[Inbound]:
        """Try each message alone and roll it back; the ones refused become dead letters.

        Nothing is committed here: the caller writes the cleaned batch as usual, so the
        counters and the acknowledgements stay those of one batch.
        """
        out: list[Inbound] = []
        for item in batch:
            try:
                with conn.transaction(force_rollback=True):
                    self._write(conn, [item])
                out.append(item)
            except _DATA_ERRORS as exc:
                reason = f"database refused: {str(exc).splitlines()[0]}"
                out.append(
                    replace(
                        item, parsed=DeadLetter(item.topic, item.payload, reason, item.received_at)
                    )
                )
        return out

    def _ensure_partitions(
        self, conn: psycopg.Connection[tuple[object, ...]], first: datetime, last: datetime
    ) -> None:
        # Every day from first to last: what forewarn_ensure_partitions creates.
        days = {
            first.date() + timedelta(days=d) for d in range((last.date() - first.date()).days + 1)
        }
        if not days <= self._partition_days:
            repository.ensure_partitions(conn, first=first, last=last)
            self._partition_days |= days

    def _housekeeping(self) -> None:
        if self._storage != "partitioned":
            return
        now = time.monotonic()
        try:
            if self._dirty and now - self._last_rollup > ROLLUP_REFRESH_SECONDS:
                conn = self._connection()
                with conn.transaction():
                    repository.refresh_rollups(conn, first=self._dirty[0], last=self._dirty[1])
                self._dirty, self._last_rollup = None, now
            if now - self._last_maintenance > MAINTENANCE_SECONDS:
                report = maintain(self._connection(), settings=self._settings)
                horizon = datetime.now(UTC).date() - timedelta(
                    days=self._settings.telemetry_retention_days
                )
                self._partition_days = {d for d in self._partition_days if d >= horizon}
                self._last_maintenance = now
                if report.partitions_dropped:
                    log.info(
                        "retention dropped partitions %s", ", ".join(report.partitions_dropped)
                    )
        except (psycopg.Error, StorageError) as exc:
            log.warning("housekeeping failed (%s); will retry", exc)
            self._drop_connection()

    # connection ------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = connect(self._settings)
            conn.autocommit = True  # transactions are explicit, via conn.transaction()
            repository.prepare(conn)
            self._conn = conn
        return self._conn

    def _rollback(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.rollback()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
