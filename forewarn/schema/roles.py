"""Least-privilege database roles, made by ``forewarn db migrate --roles`` (docs/security.md).

Run by a role that may create roles (the database's superuser in the compose stack), after
the migrations: it creates or updates five login roles (``<prefix>migrator``, ``ingester``,
``scorer``, ``responder``, ``api``; passwords from ``FOREWARN_DB_<ROLE>_PASSWORD``), makes
the migrator the owner of Forewarn's schema and of everything in it (later migrations and
``forewarn db maintain`` can run as the migrator), and grants each service only what its
code does: ``GRANTS`` below, the table docs/security.md shows. The plain path's partition
and rollup functions run with the migrator's rights (SECURITY DEFINER, their search path
pinned), so the ingester needs no right to create or drop tables. Every run re-applies the
grants from scratch, so it is also how a new migration's tables reach the services.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from forewarn.settings import Settings

Conn = psycopg.Connection[tuple[object, ...]]

SERVICES = ("ingester", "scorer", "responder", "api")
ROLES = ("migrator", *SERVICES)

R = "SELECT"
RW = "SELECT, INSERT, UPDATE"
_META = {"forewarn_schema": R, "forewarn_meta": R}
_PRESENCE = (
    "model, firmware, first_seen, last_seen, last_reading_at, online, status_at, state, "
    "state_at, updated_at"
)

# What each service may do to each table; anything not listed is refused.
GRANTS: dict[str, dict[str, str]] = {
    "ingester": _META
    | {
        "telemetry": "SELECT, INSERT",
        "device_status_events": "SELECT, INSERT, DELETE",
        "dead_letters": "SELECT, INSERT, DELETE",
        "devices": f"SELECT, INSERT, UPDATE ({_PRESENCE})",
    },
    "scorer": _META
    | {
        "telemetry": R,
        "telemetry_hourly": R,
        "devices": R,
        "model_versions": R,
        "fault_labels": R,
        "predictions": RW,
        "detector_thresholds": R,
        "scorer_cursors": RW,
        "scorer_checkpoints": RW,
    },
    "responder": _META
    | {
        "telemetry": R,
        "telemetry_hourly": R,
        "devices": R,
        "owners": R,
        "predictions": R,
        "model_versions": R,
        "fault_labels": R,
        "inbound_messages": R,
        "incidents": RW,
        "fleet_incidents": RW,
        "fleet_incident_devices": RW,
        "snoozes": RW,
        "responder_cursors": RW,
        "onboarded": RW,
        "tickets": RW,
        "ticket_events": RW,
        "surveys": RW,
        "notifications": RW,
        "notification_attempts": RW,
        "guides": RW + ", DELETE",
        "guide_embeddings": RW + ", DELETE",
    },
    "api": _META
    | {
        "telemetry": R,
        "telemetry_hourly": R,
        "device_status_events": R,
        "dead_letters": R,
        "predictions": R,
        "model_versions": R,
        "responder_cursors": R,
        "scorer_cursors": R,
        "onboarded": R,
        "snoozes": R,
        "owners": RW,
        "devices": RW,
        "broker_credentials": RW,
        "fault_labels": RW,
        "incidents": RW,
        "fleet_incidents": RW,
        "fleet_incident_devices": R,
        "tickets": RW,
        "ticket_events": RW,
        "surveys": RW,
        "inbound_messages": RW,
        "notifications": RW,
        "notification_attempts": R,
        "guides": RW + ", DELETE",
        "guide_embeddings": RW + ", DELETE",
        "guide_versions": RW,
        "ticket_audits": RW,
        "api_keys": RW,
        "api_key_events": "SELECT, INSERT",
    },
}
# Functions of the plain path that create, drop or rewrite tables: the ingester calls them.
DEFINER_FUNCTIONS = {
    "forewarn_ensure_partitions": ("ingester",),
    "forewarn_drop_partitions": ("ingester",),
    "forewarn_refresh_rollups": ("ingester",),
}


@dataclass(frozen=True, slots=True)
class RolesReport:
    """What ``apply_roles`` did."""

    schema: str
    roles: tuple[str, ...]  # full names, migrator first
    created: tuple[str, ...]
    adopted: int  # objects whose owner became the migrator
    grants: int  # table grants made


def role_name(settings: Settings, role: str) -> str:
    """The full name of one of the roles."""
    return f"{settings.db_role_prefix}{role}"


def apply_roles(conn: Conn, *, settings: Settings) -> RolesReport:
    """Create or update the roles, hand the schema to the migrator and grant the services
    their tables, in one transaction."""
    with conn.transaction():
        row = conn.execute("SELECT current_schema()").fetchone()
        assert row is not None and row[0] is not None
        schema = str(row[0])
        created = tuple(r for r in ROLES if _ensure_role(conn, settings, r))
        migrator = sql.Identifier(role_name(settings, "migrator"))
        conn.execute(
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), migrator)
        )
        adopted = _adopt(conn, schema, role_name(settings, "migrator"))
        grants = _grant(conn, settings, schema)
    return RolesReport(
        schema,
        tuple(role_name(settings, r) for r in ROLES),
        tuple(role_name(settings, r) for r in created),
        adopted,
        grants,
    )


def _ensure_role(conn: Conn, settings: Settings, role: str) -> bool:
    name = role_name(settings, role)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    password = settings.role_password(role)
    query = sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT").format(
        sql.SQL(verb), sql.Identifier(name)
    )
    if password is not None:
        query = sql.SQL("{} PASSWORD {}").format(query, sql.Literal(password))
    conn.execute(query)
    return not exists


def _adopt(conn: Conn, schema: str, migrator: str) -> int:
    """Make the migrator the owner of every table, view and function of the schema (a
    database migrated before roles existed belongs to whoever ran it)."""
    rows = conn.execute(
        """SELECT c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm')
             AND pg_get_userbyid(c.relowner) <> %s
             AND NOT c.relispartition
           ORDER BY c.relkind, c.relname""",
        (schema, migrator),
    ).fetchall()
    parts = conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relispartition AND pg_get_userbyid(c.relowner) <> %s""",
        (schema, migrator),
    ).fetchall()
    target = sql.Identifier(migrator)
    for name, kind in rows:
        what = {"v": "VIEW", "m": "MATERIALIZED VIEW"}.get(str(kind), "TABLE")
        conn.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(what), sql.Identifier(schema), sql.Identifier(str(name)), target
            )
        )
    for (name,) in parts:
        conn.execute(
            sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(
                sql.Identifier(schema), sql.Identifier(str(name)), target
            )
        )
    functions = conn.execute(
        """SELECT p.oid::regprocedure::text FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = %s AND pg_get_userbyid(p.proowner) <> %s""",
        (schema, migrator),
    ).fetchall()
    for (signature,) in functions:
        conn.execute(
            sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(str(signature)), target)
        )
    return len(rows) + len(parts) + len(functions)


def _grant(conn: Conn, settings: Settings, schema: str) -> int:
    """Each service's grants, from nothing."""
    ns = sql.Identifier(schema)
    tables = {
        str(r[0])
        for r in conn.execute(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm')""",
            (schema,),
        ).fetchall()
    }
    made = 0
    for service in SERVICES:
        who = sql.Identifier(role_name(settings, service))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ns, who))
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(ns, who))
        conn.execute(sql.SQL("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {} FROM {}").format(ns, who))
        conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(ns, who))
        for table, privileges in GRANTS[service].items():
            if table not in tables:  # telemetry_hourly is a TimescaleDB view elsewhere
                continue
            conn.execute(
                sql.SQL("GRANT {} ON {}.{} TO {}").format(
                    sql.SQL(privileges), ns, sql.Identifier(table), who
                )
            )
            made += 1
    for function, callers in DEFINER_FUNCTIONS.items():
        for (signature,) in conn.execute(
            """SELECT p.oid::regprocedure::text FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = %s AND p.proname = %s""",
            (schema, function),
        ).fetchall():
            fn = sql.SQL(str(signature))
            conn.execute(
                sql.SQL(
                    "ALTER FUNCTION {} SECURITY DEFINER SET search_path = {}, public, pg_temp"
                ).format(fn, ns)
            )
            conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(fn))
            for caller in callers:
                conn.execute(
                    sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                        fn, sql.Identifier(role_name(settings, caller))
                    )
                )
    return made
