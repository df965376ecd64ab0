"""Command line of ``bench/ingest.py``: its options, parsed into :class:`Options`.

A helper module, not an entry point: ``bench/ingest.py`` imports it from its own folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Options:
    """Parsed command line."""

    messages: int
    qos: int
    publishers: int
    devices: int
    ingesters: int
    connections: int
    batch_size: int | None
    batch_seconds: float | None
    receive_maximum: int | None
    database_url: str
    mqtt_url: str
    rounds: int
    poll_interval: float
    watch: str
    timeout: float
    keep_schema: bool
    profile: Path | None
    profile_gil: bool
    ingester_command: str
    window: int | None
    broker_queue: int
    private_broker: bool


def parse_args(argv: Sequence[str] | None = None, *, description: str | None = None) -> Options:
    """Command line to Options; ``description`` heads the --help text."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--messages", type=int, default=100_000, help="N (default 100000)")
    p.add_argument("--quick", action="store_true", help="N = 20000")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1)
    p.add_argument("--publishers", type=int, default=2, help="publisher processes")
    p.add_argument("--devices", type=int, default=500, help="devices, round-robin")
    p.add_argument("--ingesters", type=int, default=1, help="ingester processes")
    p.add_argument("--connections", type=int, default=4, help="MQTT connections per ingester")
    p.add_argument("--batch-size", type=int, default=None, help="FOREWARN_INGEST_BATCH_SIZE")
    p.add_argument("--batch-seconds", type=float, default=None)
    p.add_argument("--receive-maximum", type=int, default=None)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument(
        "--mqtt-url",
        default=None,
        help="use this broker, with publisher flow control (default: a private Mosquitto)",
    )
    p.add_argument("--rounds", type=int, default=1, help="bare + end-to-end rounds (median)")
    p.add_argument(
        "--poll-ms",
        type=float,
        default=50.0,
        help="commit poll interval (each metrics scrape costs the ingester a thread)",
    )
    p.add_argument(
        "--watch",
        choices=("metrics", "sql"),
        default="metrics",
        help="how commits are watched: the ingesters' Prometheus counter of committed rows "
        "(cheap) or SELECT count(*) (costs the database a scan per poll)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="budget for the whole run, s")
    p.add_argument("--keep-schema", action="store_true")
    p.add_argument("--profile", type=Path, default=None, help="py-spy raw profiles into DIR")
    p.add_argument("--profile-gil", action="store_true", help="py-spy --gil")
    p.add_argument("--ingester-command", choices=("auto", "cli", "snippet"), default="auto")
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="publisher flow-control window (default: 3/4 of what the broker holds; 0 = none)",
    )
    p.add_argument(
        "--broker-queue", type=int, default=1000, help="the broker's max_queued_messages"
    )
    a = p.parse_args(argv)
    if a.publishers < 1 or a.ingesters < 1 or a.devices < a.publishers:
        p.error("need publishers >= 1, ingesters >= 1 and devices >= publishers")
    return Options(
        messages=20_000 if a.quick else a.messages,
        qos=a.qos,
        publishers=a.publishers,
        devices=a.devices,
        ingesters=a.ingesters,
        connections=a.connections,
        batch_size=a.batch_size,
        batch_seconds=a.batch_seconds,
        receive_maximum=a.receive_maximum,
        database_url=a.database_url,
        mqtt_url=a.mqtt_url or "mqtt://127.0.0.1:1883",
        rounds=max(a.rounds, 1),
        poll_interval=a.poll_ms / 1000,
        watch=a.watch,
        timeout=a.timeout,
        keep_schema=a.keep_schema,
        profile=a.profile,
        profile_gil=a.profile_gil,
        ingester_command=a.ingester_command,
        window=a.window,
        broker_queue=a.broker_queue,
        private_broker=a.mqtt_url is None,
    )
