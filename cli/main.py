"""The ``forewarn`` command: one entry point, settings built once and passed down."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.acting import register as register_acting
from cli.common import (
    Conn,
    _log_info,
    _on_database,
    _reported,
    _settings,
    _stop_on_signals,
    err,
)
from cli.learning import register as register_learning
from cli.mappings import register as register_mappings
from cli.registry import register as register_registry
from cli.security import register as register_security
from cli.staff import register as register_api

if TYPE_CHECKING:
    from forewarn.schema.migrate import MaintenanceReport

app = typer.Typer(no_args_is_help=True, help="Forewarn: proactive support for smart products.")
db_app = typer.Typer(no_args_is_help=True, help="Schema migrations, status and maintenance.")
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def db_migrate(
    roles: Annotated[
        bool,
        typer.Option(
            "--roles",
            help="Also create the least-privilege roles (migrator, ingester, scorer, responder, "
            "api), hand the schema to the migrator and grant each service its tables "
            "(docs/security.md); needs a role that may create roles.",
        ),
    ] = False,
) -> None:
    """Create or upgrade the schema, and apply the retention and compression settings."""
    from forewarn.schema.migrate import migrate
    from forewarn.schema.roles import apply_roles

    settings = _settings()
    result = _on_database(settings, lambda conn: migrate(conn, settings=settings))
    applied = ", ".join(map(str, result.applied)) or "none (already up to date)"
    typer.echo(f"schema version {result.version}; applied: {applied}")
    typer.echo(f"storage: {result.storage} ({result.storage_reason})")
    if roles:
        report = _on_database(settings, lambda conn: apply_roles(conn, settings=settings))
        made = ", ".join(report.created) or "none (all existed)"
        typer.echo(
            f"roles {', '.join(report.roles)} (created: {made}); schema {report.schema} "
            f"owned by {report.roles[0]} ({report.adopted} objects handed over); "
            f"{report.grants} table grants"
        )


@db_app.command("status")
def db_status() -> None:
    """Show the schema version, pending migrations and which storage path is in use."""
    from forewarn.schema.migrate import status

    st = _on_database(_settings(), status)
    table = Table(show_header=False, box=None)
    table.add_row("storage", f"{st.storage or 'none yet'} ({st.storage_reason or 'not migrated'})")
    table.add_row("schema version", f"{st.version} of {st.latest}")
    table.add_row("pending", ", ".join(map(str, st.pending)) or "none")
    for key, value in st.details:
        table.add_row(key, value)
    Console().print(table)


@db_app.command("maintain")
def db_maintain() -> None:
    """Apply every retention: delete expired dead letters, status events and finished
    notifications, erase the personal data of old finished tickets; create partitions ahead
    and drop expired ones (plain PostgreSQL; TimescaleDB runs its own jobs). The ingester
    does its part hourly; run this daily."""
    from forewarn.schema.migrate import maintain
    from ingest.repository import purge_dead_letters, purge_status_events
    from notifier.privacy import expire

    settings = _settings()
    now = datetime.now(UTC)

    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    def work(conn: Conn) -> tuple[MaintenanceReport, dict[str, int]]:
        report = maintain(conn, settings=settings)
        with conn.transaction():
            done = {
                "dead letters": purge_dead_letters(
                    conn, before=ago(settings.dead_letter_retention_days)
                ),
                "status events": purge_status_events(
                    conn, before=ago(settings.status_event_retention_days)
                ),
            }
            return report, done | expire(
                conn,
                tickets_before=ago(settings.ticket_personal_data_days),
                notifications_before=ago(settings.notification_retention_days),
            )

    report, done = _on_database(settings, work)
    typer.echo(
        f"dead letters deleted (older than {settings.dead_letter_retention_days} days): "
        f"{done.pop('dead letters')}"
    )
    for what, n in done.items():
        typer.echo(f"retention, {what}: {n}")
    if report.storage == "timescaledb":
        typer.echo("TimescaleDB jobs handle compression, retention and rollups")
        return
    dropped = ", ".join(report.partitions_dropped) or "none"
    typer.echo(f"partitions created: {report.partitions_created}; dropped: {dropped}")


@app.command("ingest")
def ingest(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    progress_every: Annotated[float, typer.Option(help="Seconds between progress lines.")] = 10.0,
    score: Annotated[
        bool, typer.Option(help="Also run the streaming scorer in this process.")
    ] = False,
) -> None:
    """Run the MQTT ingester until SIGTERM or Ctrl-C; SIGHUP reloads the mapping files."""
    from forewarn.worker import Worker, supervise
    from ingest.service import Ingester
    from models.scorer import Scorer

    _log_info()
    settings = _settings()
    stop = _stop_on_signals()
    with _reported():
        ingester = Ingester(settings)
    workers: list[Worker] = [ingester]
    # SIGHUP reloads the mapping files (they are also reloaded when they change on disk).
    signal.signal(signal.SIGHUP, lambda signum, frame: ingester.request_reload())
    with _reported():
        ingester.start()
        if score:
            scorer = Scorer(settings)
            scorer.start()
            workers.append(scorer)
        port = metrics_port or settings.metrics_port
        if port:
            ingester.metrics.serve(port)

        def report() -> None:
            s = ingester.stats()
            err.print(
                f"received {s.received} written {s.written} duplicates {s.duplicates} "
                f"dead letters {s.dead_letters} backlog {s.backlog} mqtt up {s.connections_up}"
            )

        try:
            supervise(workers, stop, report=report, every=progress_every)
        finally:
            s = ingester.stats()
            err.print(
                f"stopped: received {s.received}, written {s.written}, "
                f"dead letters {s.dead_letters}"
            )


@app.command("simulate")
def simulate(
    devices: Annotated[int, typer.Option(min=1, help="Fleet size.")] = 200,
    seed: Annotated[int, typer.Option(help="Same seed, same fleet and faults.")] = 1,
    speedup: Annotated[
        float, typer.Option(help="Simulated seconds per wall second; 0 = as fast as possible.")
    ] = 600.0,
    duration: Annotated[
        float | None, typer.Option(help="Wall seconds to run (default: until Ctrl-C).")
    ] = None,
    sim_hours: Annotated[
        float | None, typer.Option(help="Simulated hours to generate (with --speedup 0).")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Write the ground truth (fault episodes) as JSON lines.")
    ] = None,
    register: Annotated[
        bool, typer.Option(help="Register owners, devices and ground truth in the database.")
    ] = True,
    direct: Annotated[
        bool,
        typer.Option(
            help="Write straight to the database through the ingester's write path, "
            "without a broker (fast loading of training history)."
        ),
    ] = False,
    days_ago: Annotated[
        float | None,
        typer.Option(help="Start the simulated span this many days before now (default 2)."),
    ] = None,
    number_from: Annotated[
        int, typer.Option(min=1, help="First device and owner number (keeps fleets apart).")
    ] = 1,
    fault_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of devices that develop a fault.")
    ] = 0.15,
    run_ahead: Annotated[
        bool,
        typer.Option(
            help="Keep the speedup past the present (readings stamped in the future, which an "
            "ingester refuses beyond its clock skew); by default the fleet catches up with now "
            "and then reports live."
        ),
    ] = False,
) -> None:
    """Publish a simulated fleet with injected faults to the configured broker."""
    from cli.demo.run import run_simulate

    settings = _settings()
    with _reported():
        run_simulate(
            settings,
            devices=devices,
            seed=seed,
            speedup=speedup,
            duration=duration,
            sim_hours=sim_hours,
            truth=truth,
            register=register,
            stop=_stop_on_signals(),
            direct=direct,
            days_ago=days_ago,
            number_from=number_from,
            fault_rate=fault_rate,
            run_ahead=run_ahead,
        )


@app.command("demo")
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    devices: Annotated[int, typer.Option(min=1)] = 200,
    seed: Annotated[int, typer.Option()] = 1,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 300.0,
) -> None:
    """Embedded services (unless URLs are set), a simulated fleet and the ingester, live."""
    from cli.demo.run import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    settings = _settings()
    with _reported():
        run_demo(
            settings,
            duration=duration,
            devices=devices,
            seed=seed,
            speedup=speedup,
            stop=_stop_on_signals(),
        )


@app.command("score")
def score_cmd(
    progress_every: Annotated[float, typer.Option(help="Seconds between progress lines.")] = 10.0,
    slices: Annotated[
        int,
        typer.Option(
            min=1,
            max=4096,
            help="Slices of the device hash the scorers share (every scorer must agree).",
        ),
    ] = 64,
    lag: Annotated[
        float,
        typer.Option(
            min=0.1, help="Seconds a reading waits so that every earlier write has committed."
        ),
    ] = 2.0,
    warmup_hours: Annotated[
        float,
        typer.Option(
            min=0.0, help="Hours of readings that rebuild a gained slice without a checkpoint."
        ),
    ] = 24.5,
    checkpoint_seconds: Annotated[
        float,
        typer.Option(
            min=0.0,
            help=(
                "Seconds between two checkpoints of a held slice (its devices' state, from "
                "which a scorer taking it over starts); 0: never save one."
            ),
        ),
    ] = 300.0,
) -> None:
    """Run a streaming scorer until SIGTERM or Ctrl-C; several share the devices' slices."""
    from forewarn.worker import supervise
    from models.sliced import SlicedScorer

    _log_info()
    scorer = SlicedScorer(
        _settings(),
        slices=slices,
        lag_seconds=lag,
        warmup_hours=warmup_hours,
        checkpoint_seconds=checkpoint_seconds,
    )
    stop = _stop_on_signals()
    scorer.start()

    def report() -> None:
        s = scorer.stats()
        err.print(
            f"model v{s.model_version} slices {len(scorer.held)}/{slices} readings {s.readings} "
            f"scored {s.scored} predictions {s.predictions} late {s.late} "
            f"checkpoints {scorer.counts().get('checkpoints', 0)}"
        )

    with _reported():
        supervise([scorer], stop, report=report, every=progress_every)


register_acting(app)
register_learning(app)
register_registry(app)
register_mappings(app)
register_api(app)
register_security(app)


def main() -> None:
    """Entry point for ``python -m cli``."""
    sys.exit(app(prog_name="forewarn"))
