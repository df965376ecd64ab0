"""The least-privilege roles of `forewarn db migrate --roles`, on the real PostgreSQL: made,
owning and granted as docs/security.md says; each service connects as its own role, does what
its code does, and is refused the rest. The real ingester writes as the ingester role."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from forewarn.schema.roles import ROLES, apply_roles
from forewarn.settings import Settings
from ingest.service import Ingester
from tests.conftest import Publisher, count, wait_for

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def roles(settings: Settings) -> Iterator[Settings]:
    """The roles for this test (a prefix of its own: roles are cluster-wide), dropped after."""
    prefix = f"r{secrets.token_hex(3)}_"
    mine = settings.with_overrides(db_role_prefix=prefix)
    try:
        with psycopg.connect(settings.database_url or "") as conn:
            report = apply_roles(conn, settings=mine)
        assert report.created == tuple(prefix + r for r in ROLES)
        yield mine
    finally:
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()
            assert schema is not None
            # Hand the schema back before the roles go (the test fixture drops it).
            conn.execute(f"ALTER SCHEMA {schema[0]} OWNER TO CURRENT_USER")
            conn.execute(f"REASSIGN OWNED BY {prefix}migrator TO CURRENT_USER")
            for role in ROLES:
                conn.execute(f"DROP OWNED BY {prefix}{role}")
                conn.execute(f"DROP ROLE {prefix}{role}")


def as_role(settings: Settings, role: str) -> Settings:
    """The settings with the database URL's user replaced by one of the roles."""
    url = settings.database_url or ""
    scheme, rest = url.split("://", 1)
    host = rest.split("@", 1)[1]
    return settings.with_overrides(
        database_url=f"{scheme}://{settings.db_role_prefix}{role}@{host}"
    )


def refused(conn: Conn, statement: str, *args: object) -> bool:
    """Whether PostgreSQL refuses the statement for lack of privilege (rolled back)."""
    try:
        with conn.transaction():
            conn.execute(statement, args or None)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def allowed(conn: Conn, statement: str, *args: object) -> bool:
    """Whether the statement runs (then rolled back, so checks do not depend on each other)."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(statement, args or None)
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


NOW = datetime.now(UTC)
CASES = {
    "ingester": {
        "allowed": [
            (
                "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES ('t', 'x', 'r', now())",
            ),
            ("INSERT INTO devices (device_id, first_seen) VALUES ('d-new', now())",),
            ("UPDATE devices SET last_seen = now(), online = true WHERE device_id = 'd-1'",),
            ("DELETE FROM device_status_events WHERE ts < now() - interval '90 days'",),
            ("SELECT forewarn_ensure_partitions(now(), now() + interval '2 days')",),
        ],
        "refused": [
            "SELECT * FROM owners",
            "SELECT * FROM api_keys",
            "UPDATE devices SET owner_id = NULL WHERE device_id = 'd-1'",
            "INSERT INTO tickets (kind, fault, symptom, trigger, scope, priority, tier, team, "
            "opened_at, first_response_due, resolution_due, tier_since, tier_respond_due, "
            "tier_solve_due) VALUES ('device', 'x', 'x', 'x', 'x', 'minor', 'L1', 't', now(), "
            "now(), now(), now(), now(), now())",
            "DROP TABLE telemetry",
            "CREATE TABLE mine (x int)",
        ],
    },
    "scorer": {
        "allowed": [
            ("SELECT count(*) FROM telemetry",),
            ("SELECT * FROM model_versions",),
            (
                "INSERT INTO scorer_cursors (partitions, slice, ingested_after) VALUES (1, 0, now())",
            ),
        ],
        "refused": [
            "SELECT * FROM owners",
            "INSERT INTO telemetry (device_id, ts, received_at) VALUES ('d-1', now(), now())",
            "DELETE FROM predictions",
            "SELECT * FROM broker_credentials",
        ],
    },
    "responder": {
        "allowed": [
            ("SELECT notify_targets FROM owners",),
            ("UPDATE notifications SET status = status WHERE false",),
            ("INSERT INTO responder_cursors VALUES ('x', now())",),
        ],
        "refused": [
            "UPDATE owners SET name = 'x'",
            "SELECT * FROM api_keys",
            "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES ('t', 'x', 'r', now())",
            "DELETE FROM tickets",
            "SELECT * FROM broker_credentials",
        ],
    },
    "api": {
        "allowed": [
            ("SELECT * FROM api_keys",),
            ("UPDATE owners SET name = name WHERE false",),
            (
                "INSERT INTO api_key_events (key_id, event) SELECT key_id, 'used' FROM api_keys WHERE false",
            ),
        ],
        "refused": [
            "DELETE FROM api_key_events",
            "UPDATE api_key_events SET actor = 'someone else'",
            "DELETE FROM telemetry",
            "DELETE FROM predictions",
            "DELETE FROM tickets",
            "TRUNCATE notifications",
        ],
    },
}


@pytest.mark.parametrize("role", list(CASES))
def test_each_service_role_may_do_its_work_and_nothing_else(
    roles: Settings, db: Conn, role: str
) -> None:
    db.execute("INSERT INTO owners (owner_id, name) VALUES ('o-1', 'Ann')")
    db.execute("INSERT INTO devices (device_id, owner_id) VALUES ('d-1', 'o-1')")
    with psycopg.connect(as_role(roles, role).database_url or "") as conn:
        who = conn.execute("SELECT current_user").fetchone()
        assert who == (f"{roles.db_role_prefix}{role}",)
        for (statement,) in CASES[role]["allowed"]:
            assert allowed(conn, statement), f"{role} should be allowed: {statement}"
        for statement in CASES[role]["refused"]:
            assert refused(conn, statement), f"{role} should be refused: {statement}"


def test_the_migrator_owns_the_schema_and_can_migrate_later(roles: Settings, db: Conn) -> None:
    from forewarn.schema.migrate import migrate

    owners = db.execute(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
        "AND c.relkind IN ('r', 'p', 'v')"
    ).fetchall()
    assert owners == [(f"{roles.db_role_prefix}migrator",)]
    migrator = as_role(roles, "migrator")
    with psycopg.connect(migrator.database_url or "") as conn:
        assert migrate(conn, settings=migrator).applied == ()
        assert allowed(conn, "CREATE TABLE later_migration (x int)")
        assert refused(conn, "CREATE ROLE intruder")


@pytest.mark.slow
def test_the_ingester_writes_as_its_role(roles: Settings, db: Conn) -> None:
    ingester = Ingester(as_role(roles, "ingester"))
    ingester.start()
    publisher = Publisher(roles)
    try:
        publisher.reading("lock-r1", {"ts": NOW.isoformat(), "battery_pct": 50, "x": float("nan")})
        publisher.raw(f"{roles.topic_prefix}/devices/lock-r1/telemetry", b"not json")
        publisher.raw(
            f"{roles.topic_prefix}/devices/lock-r1/status", json.dumps({"status": "online"})
        )
        publisher.flush()
        wait_for(lambda: count(db, "SELECT count(*) FROM telemetry") == 1, what="the reading")
        wait_for(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, what="a dead letter")
        wait_for(
            lambda: count(db, "SELECT count(*) FROM device_status_events") == 1, what="the status"
        )
    finally:
        publisher.close()
        ingester.stop()
    assert ingester.failure is None
    assert ingester.stats().db_errors == 0
