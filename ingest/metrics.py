"""Ingester counters, kept in a per-ingester Prometheus registry.

The registry is per instance (not the global default) so several ingesters can
live in one process, as they do in tests; ``serve`` exposes it for scraping.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass(frozen=True, slots=True)
class IngestStats:
    """A snapshot of the counters, for progress displays and tests."""

    received: int
    written: int
    duplicates: int
    status_events: int
    dead_letters: int
    ignored: int
    batches: int
    db_errors: int
    backlog: int
    connections_up: int
    mapping_reloads: int = 0
    mapping_errors: int = 0


class IngestMetrics:
    """The ingester's Prometheus metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "forewarn_ingest_messages",
            "MQTT messages handled, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "forewarn_ingest_batch_seconds",
            "Time to write and commit one batch",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "forewarn_ingest_batch_messages",
            "Messages per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=self.registry,
        )
        self.db_errors = Counter(
            "forewarn_ingest_db_errors", "Failed batch writes (retried)", registry=self.registry
        )
        self.backlog = Gauge(
            "forewarn_ingest_backlog",
            "Messages received, not yet committed",
            registry=self.registry,
        )
        self.refused = Counter(
            "forewarn_ingest_refused",
            "Messages the edge refused into dead letters, by reason (unknown_device, "
            "device_suspended, device_decommissioned, clock_skew, too_old, rate_limited)",
            ["reason"],
            registry=self.registry,
        )
        self.connections = Gauge(
            "forewarn_ingest_mqtt_connections_up", "MQTT connections up", registry=self.registry
        )
        self.mapping_reloads = Counter(
            "forewarn_ingest_mapping_reloads",
            "Mapping file reloads that took effect",
            registry=self.registry,
        )
        self.mapping_errors = Counter(
            "forewarn_ingest_mapping_errors",
            "Mapping file reloads refused (the previous mappings stayed active)",
            registry=self.registry,
        )

    def refuse(self, reason: str) -> None:
        """Count one message refused at the edge."""
        self.refused.labels(reason).inc()

    def refused_count(self, reason: str) -> int:
        """Messages refused for `reason` so far."""
        value = self.registry.get_sample_value("forewarn_ingest_refused_total", {"reason": reason})
        return int(value or 0)

    def count(self, outcome: str, n: int = 1) -> None:
        """Add ``n`` messages with this outcome."""
        if n:
            self.messages.labels(outcome).inc(n)

    def snapshot(self) -> IngestStats:
        """Current values as plain integers."""

        def sample(name: str, labels: dict[str, str] | None = None) -> int:
            return int(self.registry.get_sample_value(name, labels or {}) or 0)

        def messages(outcome: str) -> int:
            return sample("forewarn_ingest_messages_total", {"outcome": outcome})

        return IngestStats(
            received=messages("received"),
            written=messages("written"),
            duplicates=messages("duplicate"),
            status_events=messages("status"),
            dead_letters=messages("dead_letter"),
            ignored=messages("ignored"),
            batches=sample("forewarn_ingest_batch_messages_count"),
            db_errors=sample("forewarn_ingest_db_errors_total"),
            backlog=sample("forewarn_ingest_backlog"),
            connections_up=sample("forewarn_ingest_mqtt_connections_up"),
            mapping_reloads=sample("forewarn_ingest_mapping_reloads_total"),
            mapping_errors=sample("forewarn_ingest_mapping_errors_total"),
        )

    def serve(self, port: int) -> None:
        """Expose the metrics on ``http://0.0.0.0:port/metrics``."""
        start_http_server(port, registry=self.registry)
