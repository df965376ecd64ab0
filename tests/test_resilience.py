"""Nothing is lost: ingester killed, database down, broker restarted, load shared."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from forewarn.settings import Settings
from ingest.service import Ingester
from tests.conftest import Publisher, count, env_for, wait_for
from tests.faults import Mosquitto, TcpProxy, postgres_target

Conn = psycopg.Connection[tuple[Any, ...]]


def start_ingest_process(settings: Settings, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """``forewarn ingest`` in a child process, logging to a file."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "ingest", "--progress-every", "1"],
        env=env_for(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


class Stream:
    """Publishes N distinct readings at a steady rate on a background thread."""

    def __init__(self, publisher: Publisher, n: int, per_second: float) -> None:
        self.publisher, self.n, self.per_second = publisher, n, per_second
        self.base = datetime.now(UTC) - timedelta(hours=2)
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        for i in range(self.n):
            ts = self.base + timedelta(seconds=i)
            self.publisher.reading(f"dev-{i % 25}", {"ts": ts.isoformat(), "battery_pct": 50})
            self.sent = i + 1
            ahead = started + (i + 1) / self.per_second - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        self.publisher.flush(60)

    def start(self) -> Stream:
        """Begin publishing."""
        self.thread.start()
        return self

    def join(self) -> None:
        """Wait until every reading is published and acknowledged by the broker."""
        self.thread.join(120)
        assert not self.thread.is_alive()


def test_ingester_killed_mid_stream_loses_nothing(
    settings: Settings, publisher: Publisher, db: Conn, output_dir: Path
) -> None:
    if settings.mqtt_protocol != "5":
        pytest.skip(
            "the embedded amqtt broker drops a persistent session's unacknowledged and "
            "offline-queued messages (measured), so no ingester can be lossless on it"
        )
    # While the ingester is dead the machine's stock Mosquitto queues at most 1,000
    # messages per offline session (docs/operations.md); four sessions and 400 msg/s keep
    # a slow restart on a loaded CI machine well inside that.
    settings = settings.with_overrides(ingest_connections=4)
    log = (output_dir / "ingest.log").open("ab")
    first = start_ingest_process(settings, log)
    try:
        warm_up = {"ts": datetime.now(UTC).isoformat()}

        def subscribed() -> bool:
            # Until the child has subscribed, messages go nowhere; the same reading dedups.
            publisher.reading("warm-up", warm_up)
            publisher.flush()
            time.sleep(0.2)
            return count(db, "SELECT count(*) FROM telemetry") == 1

        wait_for(subscribed, what="the child ingester to subscribe")
        stream = Stream(publisher, n=3000, per_second=400).start()
        wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") > 800, what="800 rows")
        first.send_signal(signal.SIGKILL)  # no chance to flush or acknowledge anything
        first.wait(10)
        rows_at_kill = count(db, "SELECT count(*) FROM telemetry")
        time.sleep(1.0)  # the stream goes on; the broker keeps it for the ingester's sessions
        second = start_ingest_process(settings, log)
        try:
            stream.join()
            wait_for(
                lambda: count(db, "SELECT count(*) FROM telemetry") == 3001,
                timeout=60,
                what="all 3000 readings after the restart",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        log.close()
    assert rows_at_kill < 3001
    assert count(db, "SELECT count(DISTINCT (device_id, ts)) FROM telemetry") == 3001


@pytest.fixture
def proxied(settings: Settings) -> Iterator[tuple[Settings, TcpProxy]]:
    """Settings whose database link goes through a proxy the test can cut."""
    assert settings.database_url is not None
    proxy = TcpProxy(postgres_target(settings.database_url))
    yield settings.with_overrides(database_url=proxy.url_for(settings.database_url)), proxy
    proxy.close()


def test_database_outage_stops_acks_and_resumes_without_loss(
    proxied: tuple[Settings, TcpProxy], publisher: Publisher, db: Conn
) -> None:
    settings, proxy = proxied
    ingester = Ingester(settings.with_overrides(ingest_retry_max_seconds=0.5))
    ingester.start()
    try:
        Stream(publisher, n=200, per_second=2000).start().join()
        wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 200, what="200 rows")
        proxy.cut()
        more = Stream(publisher, n=400, per_second=2000)
        more.base += timedelta(hours=1)
        more.start().join()
        wait_for(lambda: ingester.stats().db_errors > 0, what="the writer to notice the outage")
        time.sleep(1.0)
        assert count(db, "SELECT count(*) FROM telemetry") == 200  # nothing written meanwhile
        assert ingester.stats().written == 200
        proxy.restore()
        wait_for(
            lambda: count(db, "SELECT count(*) FROM telemetry") == 600,
            timeout=30,
            what="the backlog to be written after the database came back",
        )
    finally:
        ingester.stop()
    assert ingester.failure is None


def test_broker_restart_reconnects_and_resubscribes(
    settings: Settings, db: Conn, tmp_path: Path
) -> None:
    try:
        broker = Mosquitto(tmp_path)
    except FileNotFoundError:
        pytest.skip("no mosquitto binary on this machine to restart")
    broker.start()
    own = settings.with_overrides(mqtt_url=f"mqtt://127.0.0.1:{broker.port}", mqtt_protocol="5")
    ingester = Ingester(own)
    ingester.start()
    try:
        pub = Publisher(own)
        Stream(pub, n=100, per_second=1000).start().join()
        pub.close()
        wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 100, what="100 rows")
        broker.stop()
        wait_for(lambda: ingester.stats().connections_up == 0, what="the ingester to notice")
        broker.start()
        wait_for(
            lambda: ingester.stats().connections_up == own.ingest_connections,
            timeout=60,
            what="the ingester to reconnect",
        )
        pub = Publisher(own)
        later = Stream(pub, n=100, per_second=1000)
        later.base += timedelta(hours=1)
        later.start().join()
        pub.close()
        wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 200, what="200 rows")
    finally:
        ingester.stop()
        broker.stop()


def test_two_ingesters_share_the_load(settings: Settings, publisher: Publisher, db: Conn) -> None:
    if settings.mqtt_protocol != "5":
        pytest.skip("shared subscriptions need an MQTT 5 broker")
    a = Ingester(settings.with_overrides(ingest_client_id=settings.ingest_client_id + "-a"))
    b = Ingester(settings.with_overrides(ingest_client_id=settings.ingest_client_id + "-b"))
    a.start()
    b.start()
    try:
        Stream(publisher, n=2000, per_second=5000).start().join()
        wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 2000, what="2000 rows")
    finally:
        a.stop()
        b.stop()
    assert a.stats().written > 0 and b.stats().written > 0
    assert a.stats().written + b.stats().written == 2000
