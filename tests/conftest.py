"""Shared fixtures: the real local PostgreSQL and Mosquitto when reachable, embedded ones otherwise.

Each test gets its own PostgreSQL schema (migrated), its own topic prefix and
its own MQTT client ids, so tests never see each other's rows or messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from api.app import create_app
from api.keys.flows import create_key
from api.keys.types import Role
from cli.embedded import EmbeddedBroker, embedded_postgres
from forewarn.clock import FixedClock
from forewarn.schema.migrate import migrate
from forewarn.settings import Settings
from forewarn.vault import install, new_key

LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
# Targets are encrypted at rest in every test, as in the compose stack; made per run.
TARGET_KEY = new_key()
LOCAL_MQTT = ("127.0.0.1", 1883)


@dataclass(frozen=True, slots=True)
class Services:
    """Where the test database and broker are."""

    database_url: str
    mqtt_url: str
    mqtt_protocol: str  # "5" for Mosquitto, "3.1.1" for the embedded broker


def _postgres_reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--embedded``: use the embedded PostgreSQL and broker even where local ones run."""
    parser.addoption(
        "--embedded",
        action="store_true",
        help="run against embedded PostgreSQL and amqtt (MQTT 3.1.1), as on a bare machine",
    )


@pytest.fixture(scope="session")
def services(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Services]:
    """The configured or local services; embedded ones where those are not reachable."""
    base = Settings(_env_file=None)  # type: ignore[call-arg]
    embedded = bool(pytestconfig.getoption("--embedded"))
    with contextlib.ExitStack() as stack:
        db = base.database_url or LOCAL_DATABASE
        if embedded or not _postgres_reachable(db):
            db = stack.enter_context(embedded_postgres(tmp_path_factory.mktemp("pg")))
        if base.mqtt_url and not embedded:
            mqtt_url, protocol = base.mqtt_url, base.mqtt_protocol
        elif _port_open(*LOCAL_MQTT) and not embedded:
            mqtt_url, protocol = f"mqtt://{LOCAL_MQTT[0]}:{LOCAL_MQTT[1]}", "5"
        else:
            broker = EmbeddedBroker()
            broker.start()
            stack.callback(broker.stop)
            mqtt_url, protocol = broker.url, "3.1.1"
        yield Services(db, mqtt_url, protocol)


def with_search_path(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to the schema (then public, for extensions)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema},public')}"


@pytest.fixture
def schema(services: Services) -> Iterator[str]:
    """A fresh, empty schema, dropped afterwards."""
    name = f"t_{secrets.token_hex(5)}"
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def bare_settings(services: Services, schema: str) -> Settings:
    """Settings for this test's schema and topic prefix, before any migration."""
    tag = schema.removeprefix("t_")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=with_search_path(services.database_url, schema),
        mqtt_url=services.mqtt_url,
        mqtt_protocol=services.mqtt_protocol,  # type: ignore[arg-type]
        topic_prefix=f"test-{tag}/v1",
        zigbee2mqtt_base=f"z2m-{tag}",
        ingest_client_id=f"test-{tag}",
        ingest_share_group=f"g{tag}",
        ingest_connections=2,
        ingest_batch_seconds=0.05,
        ingest_session_expiry_seconds=300,
        # Tests publish devices they never registered; tests of the registry's edge turn it off.
        auto_register=True,
        target_keys=TARGET_KEY,
    )


@pytest.fixture
def settings(bare_settings: Settings) -> Settings:
    """Settings whose schema is migrated."""
    with psycopg.connect(bare_settings.database_url or "") as conn:
        migrate(conn, settings=bare_settings)
    install(bare_settings)
    return bare_settings


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection to this test's schema."""
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        yield conn


class Publisher:
    """A real MQTT client that waits for the broker's acknowledgement of every publish."""

    def __init__(self, settings: Settings, client_id: str = "") -> None:
        v5 = settings.mqtt_protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        self.client.max_inflight_messages_set(500)
        self.client.connect(settings.mqtt_host, settings.mqtt_port)
        self.client.loop_start()
        self.prefix = settings.topic_prefix
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def raw(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        """Publish bytes to a topic at QoS 1."""
        self._pending.append(self.client.publish(topic, payload, qos=1, retain=retain))

    def reading(self, device_id: str, body: dict[str, Any]) -> None:
        """Publish a Forewarn v1 telemetry body for a device."""
        self.raw(f"{self.prefix}/devices/{device_id}/telemetry", json.dumps(body))

    def flush(self, timeout: float = 20.0) -> None:
        """Wait until the broker has acknowledged everything published so far."""
        for info in self._pending:
            info.wait_for_publish(timeout)
            assert info.is_published(), "the broker did not acknowledge a publish"
        self._pending.clear()

    def close(self) -> None:
        """Flush and disconnect."""
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(settings: Settings) -> Iterator[Publisher]:
    """A publisher on this test's broker."""
    pub = Publisher(settings)
    yield pub
    pub.close()


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that gives a child ``forewarn`` process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
    return env | settings.as_environment()


def wait_for(
    predicate: Callable[[], bool], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll until ``predicate`` holds; fail the test with ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def count(conn: psycopg.Connection[tuple[Any, ...]], sql: str, *args: object) -> int:
    """The single integer a counting query returns."""
    row = conn.execute(sql, args or None).fetchone()
    assert row is not None
    return int(row[0])


API_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def api_clock() -> FixedClock:
    """The API's business clock in tests: 2026-11-23 12:00 UTC until a test moves it."""
    return FixedClock(API_NOW)


@pytest.fixture
def api_client(settings: Settings, api_clock: FixedClock) -> Iterator[TestClient]:
    """A TestClient on the API for this test's schema (its lifespan opened: pool running)."""
    with TestClient(create_app(settings, clock=api_clock)) as client:
        yield client


@pytest.fixture
def keys(settings: Settings) -> dict[str, dict[str, str]]:
    """One API key per role, as request headers: ``keys["agent"]``."""
    with psycopg.connect(settings.database_url or "") as conn:
        made = {r.value: create_key(conn, name=f"test {r.value}", role=r) for r in Role}
    return {role: {"X-API-Key": new.secret} for role, new in made.items()}


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """test-output/<test name>/ for artefacts a person may want to look at."""
    path = Path("test-output") / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


__all__ = [
    "Publisher",
    "Services",
    "count",
    "env_for",
    "threading",
    "wait_for",
    "with_search_path",
]
