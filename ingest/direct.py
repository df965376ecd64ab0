"""Storing messages without a broker: the ingester's parser and write path, called directly.

For loading history fast (``forewarn simulate --direct``, the demo's first model): messages are
parsed by ``ingest.router.route`` and written by ``ingest.repository.write_batch`` exactly as
the MQTT ingester does, in large batches, one transaction each.
"""

from __future__ import annotations

from datetime import UTC, datetime

from forewarn.db import connect
from forewarn.domain import DeadLetter, Ignored, Reading, StatusEvent
from forewarn.schema.migrate import read_storage
from forewarn.settings import Settings
from ingest import repository
from ingest.router import adapters_from, route

BATCH = 5000


class DirectWriter:
    """A message sink (``simulators.publisher.MessageSink``) that writes to the database."""

    def __init__(self, settings: Settings, *, batch: int = BATCH) -> None:
        self._adapters = adapters_from(settings)
        self._conn = connect(settings)
        self._conn.autocommit = True  # one explicit transaction per batch
        repository.prepare(self._conn)
        self._partitioned = read_storage(self._conn) != "timescaledb"
        self._batch = batch
        self._readings: list[repository.Staged] = []
        self._statuses: list[StatusEvent] = []
        self._dead: list[DeadLetter] = []
        self._span: tuple[datetime, datetime] | None = None
        self.written = 0

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Parse one message and queue it for the next batch."""
        now = datetime.now(UTC)
        parsed = route(self._adapters, topic, payload, received_at=now)
        if isinstance(parsed, Reading):
            self._readings.append(repository.Staged(parsed, now))
        elif isinstance(parsed, StatusEvent):
            self._statuses.append(parsed)
        elif isinstance(parsed, DeadLetter):
            self._dead.append(parsed)
        elif isinstance(parsed, Ignored):
            return
        if len(self._readings) + len(self._statuses) + len(self._dead) >= self._batch:
            self.flush()

    def flush(self, timeout: float = 30.0) -> None:
        """Write what is queued, in one transaction."""
        if not (self._readings or self._statuses or self._dead):
            return
        stamps = [s.reading.ts for s in self._readings]
        with self._conn.transaction():
            if stamps and self._partitioned:
                repository.ensure_partitions(self._conn, first=min(stamps), last=max(stamps))
            result = repository.write_batch(
                self._conn,
                readings=self._readings,
                statuses=self._statuses,
                dead_letters=self._dead,
            )
        self.written += result.readings_written
        if stamps:
            lo, hi = min(stamps), max(stamps)
            self._span = (
                (min(lo, self._span[0]), max(hi, self._span[1])) if self._span else (lo, hi)
            )
        self._readings, self._statuses, self._dead = [], [], []

    def close(self) -> None:
        """Write the rest, bring the hourly rollups up to date, and disconnect."""
        try:
            self.flush()
            if self._span is not None and self._partitioned:
                with self._conn.transaction():
                    repository.refresh_rollups(self._conn, first=self._span[0], last=self._span[1])
        finally:
            self._conn.close()
