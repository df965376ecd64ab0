"""Every operation of the app's OpenAPI document, fuzzed by schemathesis in process.

The document is the app's own (``create_app(...).openapi()``, what ``/openapi.json``
serves), built when the module is collected, so a route added later is tested without
touching this file: one test per operation. Requests go to the app over ASGI with an admin
key. The module's schema holds devices with a day of readings, tickets in several states with
their incidents and timelines, and a guide sent; a hook mixes those rows' ids into the path
parameters, since hypothesis alone would almost never guess a device id. Checks: no response
is a server error, and every response has a documented status, content type and body.
Then every free-text parameter of a GET route gets a NUL character once, which PostgreSQL
refuses and the fuzzer draws only now and then.

Deterministic (derandomized, no deadline, no example database) and bounded: EXAMPLES
generated cases per operation, plus schemathesis's coverage cases. One schema for the module,
not one per test: migrating and seeding ~40 times would cost over a minute. Operations run in
the document's order against the same rows, so a run is repeatable. The schema is loaded from
the document, not through ``schemathesis.pytest.from_fixture``: under pytest 9 its lazy
schema fails on the ``_nodeid`` attribute pytest no longer has.
"""

from __future__ import annotations

import secrets
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.openapi.checks import UndefinedStatusCode

from api.app import create_app
from api.keys.flows import create_key
from api.keys.types import Role
from forewarn.clock import FixedClock
from forewarn.schema.migrate import migrate
from forewarn.settings import Settings
from notifier.tickets.types import Priority, Tier
from tests import factories
from tests.conftest import API_NOW, Services, with_search_path

Db = psycopg.Connection[tuple[Any, ...]]

EXAMPLES = 20  # generated cases per operation, besides the coverage cases: ~2,000 requests
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The document depends on the code only; the database URL is never used to build it.
DOCUMENT = create_app(
    Settings(_env_file=None, database_url="postgresql://openapi@127.0.0.1:1/unused")  # type: ignore[call-arg]
).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)

# Filled by the module fixture, read by the hooks when hypothesis draws (after setup).
KNOWN: dict[str, list[Any]] = {}
PROTECTED_KEY: list[int] = []
SENT: Counter[str] = Counter()

pytestmark = [pytest.mark.slow]


@dataclass(frozen=True, slots=True)
class Target:
    """The app under test and the headers every request carries."""

    app: FastAPI
    headers: dict[str, str]


def seed(db: Db) -> dict[str, list[Any]]:
    """Devices with readings, tickets in four states, a guide sent; their ids by parameter."""
    devices = [
        factories.device(db, d, model=m, kind=k)
        for d, m, k in (
            ("lock-1", "lock-s1", "lock"),
            ("cam-1", "cam-c2", "camera"),
            ("watch-1", "watch-w3", "watch"),
        )
    ]
    for d in devices:
        factories.readings(
            db, d, start=API_NOW - timedelta(hours=26), minutes=26 * 60, step_minutes=5
        )
    plan = [
        ("lock-1", Priority.CRITICAL, Tier.L3, "battery_failure", 40),
        ("lock-1", Priority.MINOR, Tier.L1, "connectivity_loss", 100),
        ("cam-1", Priority.MAJOR, Tier.L2, "overheating", 5),
        ("watch-1", Priority.MINOR, Tier.L1, "battery_failure", 60 * 30),
    ]
    tickets = [
        factories.ticket(
            db, d, opened_at=API_NOW - timedelta(minutes=m), priority=p, tier=t, fault=f
        )
        for d, p, t, f, m in plan
    ]
    db.execute(
        "UPDATE tickets SET state = 'acknowledged', tier_acknowledged_at = opened_at, "
        "first_response_at = opened_at WHERE ticket_id = %s",
        (tickets[1],),
    )
    db.execute(
        "UPDATE tickets SET state = 'closed', resolved_at = opened_at + interval '2 h', "
        "closed_at = opened_at + interval '3 h', resolution_code = 'fixed_by_guide' "
        "WHERE ticket_id = %s",
        (tickets[3],),
    )
    incidents = [int(r[0]) for r in db.execute("SELECT incident_id FROM incidents ORDER BY 1")]
    notes = [
        factories.guide_notification(
            db, incident_id=incidents[0], device_id="lock-1", at=API_NOW - timedelta(minutes=50)
        )
    ]
    return {
        "device_id": devices,
        "ticket_id": tickets,
        "incident_id": incidents,
        "notification_id": notes,
    }


@pytest.fixture(scope="module")
def target(services: Services) -> Iterator[Target]:
    """A migrated, seeded schema of its own and the app on it, its pool open."""
    name = f"t_{secrets.token_hex(5)}"
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=with_search_path(services.database_url, name),
        )
        with psycopg.connect(settings.database_url or "", autocommit=True) as db:
            migrate(db, settings=settings)
            admin = create_key(db, name="schemathesis", role=Role.ADMIN)
            KNOWN.update(seed(db))
        PROTECTED_KEY[:] = [admin.key.key_id]
        app = create_app(settings, clock=FixedClock(API_NOW))
        # The TestClient context runs the app's lifespan, which opens its connection pool.
        with TestClient(app):
            yield Target(app, {"X-API-Key": admin.secret})
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")
        total = sum(SENT.values())
        print(f"\nschemathesis: {len(SENT)} operations, {total} requests", file=sys.stderr)
        for label, n in SENT.most_common():
            print(f"{n:6d} {label}", file=sys.stderr)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """As generated, or with ids that name seeded rows: each id one way or the other."""
    if not path_parameters:
        return st.just(path_parameters)
    return st.fixed_dictionaries(
        {
            name: st.sampled_from([value, *KNOWN[name]]) if KNOWN.get(name) else st.just(value)
            for name, value in path_parameters.items()
        }
    )


@schema.hook
def filter_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> bool:
    """Never revoke the key the requests carry: everything after would be a 401."""
    return not path_parameters or path_parameters.get("key_id") not in PROTECTED_KEY


@schema.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but one: FastAPI's 400 for a body that is not JSON at all."""
    # FastAPI answers bytes it cannot parse as JSON with 400 "There was an error parsing the
    # body" before any route runs; documenting that on every route with a body would be noise.
    return not (
        isinstance(failure, UndefinedStatusCode)
        and response.status_code == 400
        and response.text == '{"detail":"There was an error parsing the body"}'
    )


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation(case: Any, target: Target) -> None:
    """No generated request gets a 5xx; each response is a documented status and body."""
    SENT[case.operation.label] += 1
    # A copy: schemathesis adds its own headers to the dict it is given.
    case.call_and_validate(app=target.app, headers=dict(target.headers), checks=CHECKS)


def text_parameters() -> list[Any]:
    """Every free-text query or path parameter of a GET operation in the document."""
    found = []
    for path, operations in DOCUMENT["paths"].items():
        for p in operations.get("get", {}).get("parameters", []):
            kinds = p.get("schema", {}).get("anyOf", [p.get("schema", {})])
            if any(k.get("type") == "string" and not {"enum", "format"} & k.keys() for k in kinds):
                found.append(pytest.param(path, p["in"], p["name"], id=f"{path} {p['name']}"))
    return found


@pytest.mark.parametrize(("path", "where", "name"), text_parameters())
def test_nul_in_text_parameter(target: Target, path: str, where: str, name: str) -> None:
    """A NUL character, which PostgreSQL refuses, gets a documented 4xx from every route."""
    # The fuzzer draws NUL only now and then; this asks every route once, deterministically.
    parameters = DOCUMENT["paths"][path]["get"].get("parameters", [])
    values = {
        p["name"]: (KNOWN.get(p["name"]) or ["x"])[0] for p in parameters if p["in"] == "path"
    }
    query = {}
    if where == "path":
        values[name] = "a\x00b"
    else:
        query[name] = "a\x00b"
    case = schema[path]["GET"].Case(path_parameters=values, query=query)
    case.call_and_validate(app=target.app, headers=dict(target.headers), checks=CHECKS)
