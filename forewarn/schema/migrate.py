"""Apply migrations, set storage policies, run maintenance and report schema status.

The storage path (``timescaledb`` or ``partitioned``) is chosen on the first
migrate and recorded in ``forewarn_meta``; a database never switches paths.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg

from forewarn.errors import MigrationError
from forewarn.schema.versions import MIGRATIONS, Migration
from forewarn.settings import Settings

Storage = Literal["timescaledb", "partitioned"]

META_DDL = """
CREATE TABLE IF NOT EXISTS forewarn_schema (
    version integer PRIMARY KEY,
    name text NOT NULL,
    storage text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS forewarn_meta (key text PRIMARY KEY, value text NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """What one ``migrate`` call did."""

    storage: Storage
    storage_reason: str
    applied: tuple[int, ...]
    version: int


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """The schema as it stands: version, storage path and its policies."""

    storage: Storage | None
    storage_reason: str | None
    version: int
    latest: int
    pending: tuple[int, ...]
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one maintenance pass changed."""

    storage: Storage
    partitions_created: int
    partitions_dropped: tuple[str, ...]


def checksum(migration: Migration, storage: Storage) -> str:
    """Fingerprint of the SQL a migration runs on a path; an edited migration is refused."""
    body = migration.common + (migration.timescale if storage == "timescaledb" else migration.plain)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def migrate(conn: psycopg.Connection[tuple[object, ...]], *, settings: Settings) -> MigrateResult:
    """Bring the schema up to date in one transaction, then set the storage policies."""
    with conn.transaction():
        # Serialise concurrent migrates (several ingesters starting at once).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.migrate'))")
        conn.execute(META_DDL)
        storage, reason = _choose_storage(conn, settings)
        rows = conn.execute("SELECT version, checksum FROM forewarn_schema").fetchall()
        done = {int(str(v)): str(c) for v, c in rows}
        known = {m.version: m for m in MIGRATIONS}
        newer = sorted(v for v in done if v not in known)
        if newer:
            raise MigrationError(
                f"the database has schema version {newer[-1]}, newer than this code "
                f"({MIGRATIONS[-1].version}); upgrade Forewarn"
            )
        for version, digest in done.items():
            if digest != checksum(known[version], storage):
                raise MigrationError(
                    f"migration {version} ({known[version].name}) was changed after it was "
                    "applied; add a new migration instead of editing a shipped one"
                )
        applied: list[int] = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            _apply(conn, migration, storage)
            applied.append(migration.version)
    apply_policies(conn, settings=settings, storage=storage)
    return MigrateResult(storage, reason, tuple(applied), MIGRATIONS[-1].version)


def _apply(
    conn: psycopg.Connection[tuple[object, ...]], migration: Migration, storage: Storage
) -> None:
    body = migration.common + (migration.timescale if storage == "timescaledb" else migration.plain)
    try:
        if body.strip():
            conn.execute(body.encode())
    except psycopg.Error as exc:
        raise MigrationError(
            f"migration {migration.version} ({migration.name}) failed on the {storage} path: {exc}"
        ) from exc
    conn.execute(
        "INSERT INTO forewarn_schema (version, name, storage, checksum) VALUES (%s, %s, %s, %s)",
        (migration.version, migration.name, storage, checksum(migration, storage)),
    )


def _choose_storage(
    conn: psycopg.Connection[tuple[object, ...]], settings: Settings
) -> tuple[Storage, str]:
    meta = {
        str(k): str(v)
        for k, v in conn.execute(
            "SELECT key, value FROM forewarn_meta WHERE key IN ('storage', 'storage_reason')"
        ).fetchall()
    }
    if "storage" in meta:
        chosen: Storage = "timescaledb" if meta["storage"] == "timescaledb" else "partitioned"
        if settings.storage not in ("auto", chosen):
            raise MigrationError(
                f"this database already uses {chosen} storage; FOREWARN_STORAGE={settings.storage} "
                "cannot change it"
            )
        return chosen, str(meta.get("storage_reason", ""))
    storage, reason = _detect(conn, settings)
    conn.execute(
        "INSERT INTO forewarn_meta VALUES ('storage', %s), ('storage_reason', %s)",
        (storage, reason),
    )
    return storage, reason


def _detect(
    conn: psycopg.Connection[tuple[object, ...]], settings: Settings
) -> tuple[Storage, str]:
    if settings.storage == "partitioned":
        return "partitioned", "FOREWARN_STORAGE=partitioned"
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        if settings.storage == "timescaledb":
            raise MigrationError("FOREWARN_STORAGE=timescaledb but the extension is not installed")
        return "partitioned", "timescaledb extension not available on this server"
    if not _timescaledb_loadable(conn):
        # CREATE EXTENSION would fail with a FATAL error that closes the connection, so it
        # is not tried: the package is installed (after apt-get install, before
        # timescaledb-tune), but the server was not started with the library.
        why = (
            "timescaledb is installed but not preloaded (add it to shared_preload_libraries "
            "and restart PostgreSQL, e.g. with timescaledb-tune)"
        )
        if settings.storage == "timescaledb":
            raise MigrationError(f"FOREWARN_STORAGE=timescaledb, but {why}")
        return "partitioned", f"{why}; using native partitioning"
    try:
        with conn.transaction():
            # In public, not the first schema of the search path: Forewarn's own schema
            # may be a per-tenant or per-test one that is dropped, and the extension is
            # database-wide. Its functions are then found through public on the path.
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public")
    except psycopg.Error as exc:
        if conn.closed:
            raise MigrationError(
                f"creating the timescaledb extension closed the connection ({exc}); nothing was "
                "changed: fix the server (or set FOREWARN_STORAGE=partitioned) and migrate again"
            ) from exc
        if settings.storage == "timescaledb":
            raise MigrationError(f"cannot create the timescaledb extension: {exc}") from exc
        return "partitioned", f"timescaledb available but CREATE EXTENSION failed: {exc}"
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    return "timescaledb", f"timescaledb {row[0] if row else available[0]} extension"


def _timescaledb_loadable(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether CREATE EXTENSION timescaledb can work: it is created already, or the server
    preloads the library (TimescaleDB refuses to be loaded any other way)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'), "
        "current_setting('shared_preload_libraries')"
    ).fetchone()
    assert row is not None
    created, preload = bool(row[0]), str(row[1])
    return created or "timescaledb" in [lib.strip() for lib in preload.split(",")]


def apply_policies(
    conn: psycopg.Connection[tuple[object, ...]], *, settings: Settings, storage: Storage
) -> None:
    """Set retention and compression from the settings (idempotent; re-run on every migrate)."""
    retention = timedelta(days=settings.telemetry_retention_days)
    with conn.transaction():
        if storage == "timescaledb":
            conn.execute("SELECT remove_retention_policy('telemetry', if_exists => TRUE)")
            conn.execute("SELECT add_retention_policy('telemetry', drop_after => %s)", (retention,))
            conn.execute("SELECT remove_compression_policy('telemetry', if_exists => TRUE)")
            conn.execute(
                "SELECT add_compression_policy('telemetry', compress_after => %s)",
                (timedelta(days=settings.compress_after_days),),
            )
        conn.execute(
            "INSERT INTO forewarn_meta VALUES ('retention_days', %s), ('partitions_ahead_days', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (str(settings.telemetry_retention_days), str(settings.partitions_ahead_days)),
        )
    if storage == "partitioned":
        maintain(conn, settings=settings)


def maintain(
    conn: psycopg.Connection[tuple[object, ...]], *, settings: Settings, now: datetime | None = None
) -> MaintenanceReport:
    """Create partitions ahead and drop expired ones (plain path; TimescaleDB runs its own jobs)."""
    storage = read_storage(conn)
    if storage != "partitioned":
        return MaintenanceReport("timescaledb", 0, ())
    now = now or datetime.now(UTC)
    with conn.transaction():
        created_row = conn.execute(
            "SELECT forewarn_ensure_partitions(%s, %s)",
            (now - timedelta(days=1), now + timedelta(days=settings.partitions_ahead_days)),
        ).fetchone()
        dropped = conn.execute(
            "SELECT * FROM forewarn_drop_partitions(%s)",
            (now - timedelta(days=settings.telemetry_retention_days),),
        ).fetchall()
    return MaintenanceReport(
        "partitioned",
        int(str(created_row[0])) if created_row else 0,
        tuple(str(r[0]) for r in dropped),
    )


def read_storage(conn: psycopg.Connection[tuple[object, ...]]) -> Storage | None:
    """The storage path recorded by the first migrate, or None before it."""
    if conn.execute("SELECT to_regclass('forewarn_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM forewarn_meta WHERE key = 'storage'").fetchone()
    if row is None:
        return None
    return "timescaledb" if row[0] == "timescaledb" else "partitioned"


def status(conn: psycopg.Connection[tuple[object, ...]]) -> SchemaStatus:
    """Report version, pending migrations, storage path and what that path holds."""
    latest = MIGRATIONS[-1].version
    storage = read_storage(conn)
    if storage is None:
        return SchemaStatus(None, None, 0, latest, tuple(m.version for m in MIGRATIONS), ())
    done = {int(str(r[0])) for r in conn.execute("SELECT version FROM forewarn_schema")}
    reason_row = conn.execute(
        "SELECT value FROM forewarn_meta WHERE key = 'storage_reason'"
    ).fetchone()
    details = _timescale_details(conn) if storage == "timescaledb" else _plain_details(conn)
    meta = conn.execute(
        "SELECT key, value FROM forewarn_meta WHERE key IN ('retention_days', 'partitions_ahead_days')"
        " ORDER BY key"
    ).fetchall()
    return SchemaStatus(
        storage,
        str(reason_row[0]) if reason_row else None,
        max(done, default=0),
        latest,
        tuple(m.version for m in MIGRATIONS if m.version not in done),
        tuple((str(k), str(v)) for k, v in meta) + details,
    )


def _plain_details(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[tuple[str, str], ...]:
    if conn.execute("SELECT to_regclass('telemetry')").fetchone() == (None,):
        return ()
    row = conn.execute(
        """SELECT count(*), min(c.relname), max(c.relname)
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'telemetry'::regclass"""
    ).fetchone()
    assert row is not None
    return (
        ("partitions", str(row[0])),
        ("oldest partition", str(row[1])),
        ("newest partition", str(row[2])),
        ("rollups", "telemetry_hourly table, refreshed by forewarn_refresh_rollups()"),
    )


def _timescale_details(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[tuple[str, str], ...]:
    chunks = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE is_compressed)
           FROM timescaledb_information.chunks
           WHERE hypertable_schema = current_schema() AND hypertable_name = 'telemetry'"""
    ).fetchone()
    # The aggregate's refresh job is registered on its materialization hypertable,
    # which lives in TimescaleDB's internal schema, not in ours.
    jobs = conn.execute(
        """SELECT proc_name, schedule_interval::text, coalesce(config::text, '')
           FROM timescaledb_information.jobs
           WHERE (hypertable_schema, hypertable_name) IN (
               SELECT current_schema()::name, 'telemetry'::name
               UNION ALL
               SELECT materialization_hypertable_schema, materialization_hypertable_name
               FROM timescaledb_information.continuous_aggregates
               WHERE view_schema = current_schema() AND view_name = 'telemetry_hourly')
           ORDER BY proc_name"""
    ).fetchall()
    out = [("chunks", f"{chunks[0]} ({chunks[1]} compressed)" if chunks else "0")]
    out += [(f"job {name}", f"every {interval} {config}") for name, interval, config in jobs]
    out.append(("rollups", "telemetry_hourly continuous aggregate"))
    return tuple((str(k), str(v)) for k, v in out)
