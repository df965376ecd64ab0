"""The ingester: MQTT in, batched COPY into PostgreSQL, acknowledgements after commit.

Delivery is at-least-once end to end: a message is acknowledged to the broker
only once the transaction holding its row has committed, and the row's primary
key ``(device_id, ts, digest)`` absorbs redeliveries (the digest hashes the message's
bytes). While the database is down the writer keeps its batch, retries with backoff and
acknowledges nothing, so the broker stops sending once each connection's Receive Maximum is
reached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import errors as pg_errors

from forewarn.clock import Clock, SystemClock
from forewarn.domain import DeadLetter, Ignored, Parsed, Reading, StatusEvent
from forewarn.errors import MappingError, StorageError
from forewarn.schema.migrate import maintain
from forewarn.settings import Settings
from forewarn.worker import Worker
from ingest import repository
from ingest.edge import DeviceDirectory, Edge
from ingest.inbox import Inbox
from ingest.mappings.adapter import MappingAdapter
from ingest.metrics import IngestMetrics, IngestStats
from ingest.mqtt import Inbound, SubscriberPool
from ingest.payloads import PayloadAdapter
from ingest.router import adapters_from, limits_from, route
from ingest.watcher import BridgeWatcher
from ingest.writer import BatchWriter, Received

log = logging.getLogger(__name__)

ROLLUP_REFRESH_SECONDS = 30.0  # plain path: how often ended hours written to are recomputed
DIRECTORY_REFRESH_SECONDS = 1.0  # how soon a registry change reaches the edge
MAINTENANCE_SECONDS = 3600.0  # plain path: partitions ahead and retention, hourly is plenty
# After the watcher's subscription is granted the broker sends the retained copies; a moment
# lets them land before device messages start arriving on the main connections.
WATCH_SETTLE_SECONDS = 0.3
# Errors that say "this data", not "this database": isolate the rows that cause them.
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
# Errors worth retrying as they are: the database is busy or briefly unavailable.
_TRANSIENT = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class Ingester(Worker):
    """Runs the subscriber pool, and the writer in the worker's thread, until ``stop``."""

    name = "ingester"

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: IngestMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        self.metrics = metrics or IngestMetrics()
        adapters = adapters_from(settings)
        self._adapters = adapters
        self._mappings = next((a for a in adapters if isinstance(a, MappingAdapter)), None)
        self._reload_requested = threading.Event()
        self._directory = DeviceDirectory()
        self._edge = edge = Edge(settings, self._directory, on_refused=self.metrics.refuse)
        limit = settings.max_payload_bytes
        caps = limits_from(settings)

        def parse(topic: str, payload: bytes, at: datetime) -> Parsed | DeadLetter:
            parsed = route(adapters, topic, payload, received_at=at, max_bytes=limit, limits=caps)
            return edge.admit(parsed, topic, payload, at)

        # Broker flow control bounds what is in hand to connections x Receive Maximum;
        # twice that leaves room for redeliveries after a reconnect.
        capacity = settings.ingest_connections * settings.ingest_receive_maximum * 2
        self._inbox = Inbox(batch_size=settings.ingest_batch_size, capacity=capacity)
        self._pool = SubscriberPool(
            settings,
            filters=_filters(adapters),
            parse=parse,
            sink=self._inbox.put,
            on_connections=self.metrics.connections.set,
            clock=self._clock,
        )
        self._watcher = BridgeWatcher(settings, adapters)
        self._writer = BatchWriter(settings)
        self._last_rollup = time.monotonic()
        self._last_maintenance = time.monotonic()
        self._last_directory = time.monotonic()
        self._last_reload_check = time.monotonic()
        self._stop_deadline = float("inf")

    # lifecycle -------------------------------------------------------------

    def start(self, *, wait: float = 15.0) -> None:
        """Check the schema, learn the registry's devices, connect to the broker and start
        writing."""
        self._writer.open()
        self._directory.refresh(self._writer.connection())
        super().start()
        # The watcher first: what the bridges' retained topics say (groups, units) should be
        # known before their devices' messages are read.
        self._watcher.start()
        if self._watcher.subscribed.wait(wait):
            if self._watcher.topics:
                time.sleep(WATCH_SETTLE_SECONDS)
        else:
            log.warning("the bridge watcher is not subscribed after %.0f s; still trying", wait)
        self._pool.start()
        if not self._pool.connected.wait(wait):
            log.warning("not every MQTT connection is up after %.0f s; still trying", wait)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop receiving, commit and acknowledge what is in hand, then disconnect."""
        self._stop_deadline = time.monotonic() + timeout
        super().stop(timeout + 5)
        self._pool.stop()
        self._watcher.stop()
        self._writer.close()

    def request_reload(self) -> None:
        """Reload the mapping files at the next turn of the writer (what SIGHUP does)."""
        self._reload_requested.set()

    @property
    def watcher(self) -> BridgeWatcher:
        """The connection reading the bridges' retained topics."""
        return self._watcher

    def stats(self) -> IngestStats:
        """Counters so far."""
        return self.metrics.snapshot()

    # writer ----------------------------------------------------------------

    def run(self) -> None:
        """Write batches until stopped; then commit what is in hand."""
        while not self.stopping.is_set():
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
        try:  # the hour under way too: no ingester may be left to refresh it when it ends
            self._writer.refresh_rollups(closed_only=False)
        except (psycopg.Error, StorageError) as exc:
            log.warning("the hourly rollups were not brought up to date at stop (%s)", exc)

    def _collect(self) -> list[Inbound]:
        batch = self._inbox.take(wait=0.1, linger=self._settings.ingest_batch_seconds)
        if batch:
            self.metrics.count("received", len(batch))
            self.metrics.backlog.set(len(self._inbox) + len(batch))
        return batch

    def _quarantine(self, batch: list[Inbound]) -> list[Inbound]:
        """Messages of devices not in the registry become dead letters (unless devices are
        registered on first sight), after one fresh look at the registry."""
        if not any(self._edge.unknown(i.parsed) for i in batch):
            return batch
        self._directory.refresh(self._writer.connection())
        self._last_directory = time.monotonic()
        out: list[Inbound] = []
        for item in batch:
            parsed = item.parsed
            if self._edge.unknown(parsed) and isinstance(parsed, Reading | StatusEvent):
                dead = self._edge.refuse_unknown(parsed, item.topic, item.payload, item.received_at)
                item = replace(item, parsed=dead)
            out.append(item)
        return out

    def _commit(self, batch: list[Inbound]) -> None:
        delay = 0.1
        isolate = False
        while True:
            started = time.perf_counter()
            try:
                batch = self._quarantine(batch)
                if isolate:
                    batch = self._isolate(batch)
                result = self._writer.write(_received(batch))
                break
            except _DATA_ERRORS as exc:
                self._writer.rollback()
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
                self._writer.close()
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

    def _isolate(self, batch: list[Inbound]) -> list[Inbound]:
        """Try each message alone and roll it back; the ones refused become dead letters.

        Nothing is committed here: the caller writes the cleaned batch as usual, so the
        counters and the acknowledgements stay those of one batch.
        """
        conn = self._writer.connection()
        out: list[Inbound] = []
        for item in batch:
            try:
                with conn.transaction(force_rollback=True):
                    self._writer.write(_received([item]))
                out.append(item)
            except _DATA_ERRORS as exc:
                reason = f"database refused: {str(exc).splitlines()[0]}"
                out.append(
                    replace(
                        item, parsed=DeadLetter(item.topic, item.payload, reason, item.received_at)
                    )
                )
        return out

    def _reload_mappings(self) -> None:
        """Swap in changed mapping files (between batches; no message is in a parse then
        that could see half of each) and subscribe to any new topic patterns."""
        mappings = self._mappings
        if mappings is None:
            return
        now = time.monotonic()
        asked = self._reload_requested.is_set()
        if not asked and now - self._last_reload_check < self._settings.mapping_reload_seconds:
            return
        self._last_reload_check = now
        if not asked and not mappings.changed():
            return
        self._reload_requested.clear()
        try:
            mappings.reload()
        except MappingError as exc:
            self.metrics.mapping_errors.inc()
            log.error("mapping files not reloaded, the previous ones stay active: %s", exc)
            return
        self.metrics.mapping_reloads.inc()
        self._pool.resubscribe(_filters(self._adapters))

    def _housekeeping(self) -> None:
        self._reload_mappings()
        now = time.monotonic()
        try:
            if now - self._last_directory >= DIRECTORY_REFRESH_SECONDS:
                self._directory.refresh(self._writer.connection())
                self._last_directory = now
            partitioned = self._writer.partitioned
            rollups_due = now - self._last_rollup > ROLLUP_REFRESH_SECONDS
            if partitioned and self._writer.dirty and rollups_due:
                self._writer.refresh_rollups()
                self._last_rollup = now
            if now - self._last_maintenance > MAINTENANCE_SECONDS:
                self._maintain(partitioned)
                self._last_maintenance = now
        except (psycopg.Error, StorageError) as exc:
            log.warning("housekeeping failed (%s); will retry", exc)
            self._writer.close()

    def _maintain(self, partitioned: bool) -> None:
        """Hourly: dead letters and status events past their retention go; on the plain path,
        partitions are made ahead and dropped past retention."""
        conn = self._writer.connection()
        horizon = self._clock.now() - timedelta(days=self._settings.dead_letter_retention_days)
        events_before = self._clock.now() - timedelta(
            days=self._settings.status_event_retention_days
        )
        with conn.transaction():
            purged = repository.purge_dead_letters(conn, before=horizon)
            events = repository.purge_status_events(conn, before=events_before)
        if purged or events:
            log.info(
                "deleted %d dead letters older than %s, %d status events older than %s",
                purged,
                horizon.date(),
                events,
                events_before.date(),
            )
        if not partitioned:
            return
        report = maintain(conn, settings=self._settings)
        oldest = datetime.now(UTC).date() - timedelta(days=self._settings.telemetry_retention_days)
        self._writer.forget_partitions_before(oldest)
        if report.partitions_dropped:
            log.info("retention dropped partitions %s", ", ".join(report.partitions_dropped))


def _filters(adapters: Sequence[PayloadAdapter]) -> list[str]:
    """Every adapter's subscriptions, once each."""
    return list(dict.fromkeys(f for a in adapters for f in a.subscriptions()))


def _received(batch: list[Inbound]) -> list[Received]:
    """What the writer stores of a batch (ignored messages are only counted)."""
    return [
        Received(i.parsed, i.received_at, i.topic, i.payload)
        for i in batch
        if not isinstance(i.parsed, Ignored)
    ]
