"""Storing messages without a broker: the ingester's parser and write path, called directly.

For loading history fast (``forewarn simulate --direct``, the demo's first model): messages are
parsed by ``ingest.router.route`` and written by ``ingest.writer.BatchWriter`` exactly as the
MQTT ingester does, in large batches, one transaction each.
"""

from __future__ import annotations

from datetime import UTC, datetime

from forewarn.domain import Ignored
from forewarn.settings import Settings
from ingest.router import adapters_from, route
from ingest.writer import BatchWriter, Received

BATCH = 5000


class DirectWriter:
    """A message sink (``simulators.publisher.MessageSink``) that writes to the database."""

    def __init__(self, settings: Settings, *, batch: int = BATCH) -> None:
        self._adapters = adapters_from(settings)
        self._writer = BatchWriter(settings)
        self._writer.open()
        self._batch = batch
        self._queued: list[Received] = []
        self.written = 0

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Parse one message and queue it for the next batch."""
        now = datetime.now(UTC)
        parsed = route(self._adapters, topic, payload, received_at=now)
        if isinstance(parsed, Ignored):
            return
        self._queued.append(Received(parsed, now, topic, payload))
        if len(self._queued) >= self._batch:
            self.flush()

    def flush(self, timeout: float = 30.0) -> None:
        """Write what is queued, in one transaction."""
        if self._queued:
            self.written += self._writer.write(self._queued).readings_written
            self._queued = []

    def close(self) -> None:
        """Write the rest, bring the hourly rollups up to date, and disconnect."""
        try:
            self.flush()
            self._writer.refresh_rollups(closed_only=False)
        finally:
            self._writer.close()
