"""The API's Prometheus metrics: its own requests, gauges read from the database at scrape
time, and any registries handed in (the ingester's, when it runs in the same process)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ApiMetrics:
    """Request counters and latency, plus the database's state as gauges."""

    def __init__(self, *, extra: Sequence[CollectorRegistry] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.extra = tuple(extra)
        self.requests = Counter(
            "forewarn_api_requests",
            "API requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "forewarn_api_request_seconds",
            "API request latency by route template",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.devices = Gauge(
            "forewarn_devices", "Registered devices by status", ["status"], registry=self.registry
        )
        self.tickets_open = Gauge(
            "forewarn_tickets_open",
            "Open tickets by priority",
            ["priority"],
            registry=self.registry,
        )
        self.tickets_breached = Gauge(
            "forewarn_tickets_breached_open",
            "Open tickets past a due at L3",
            registry=self.registry,
        )
        self.notifications = Gauge(
            "forewarn_notifications", "Outbox rows by status", ["status"], registry=self.registry
        )
        self.dead_letters = Gauge(
            "forewarn_dead_letters",
            "Messages the ingester could not read, stored with reasons",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def set_state(self, state: Mapping[str, Mapping[str, int]]) -> None:
        """Set the database gauges from `ops.repository.state`."""
        for gauge, key in (
            (self.devices, "devices"),
            (self.tickets_open, "tickets_open"),
            (self.notifications, "notifications"),
        ):
            for label, value in state[key].items():
                gauge.labels(label).set(value)
        self.tickets_breached.set(state["totals"]["tickets_breached_open"])
        self.dead_letters.set(state["totals"]["dead_letters"])

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return b"".join(generate_latest(r) for r in (self.registry, *self.extra))
