"""The ``forewarn`` command: one entry point, settings built once and passed down."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from forewarn.errors import ForewarnError
from forewarn.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Forewarn: proactive support for smart products.")
db_app = typer.Typer(no_args_is_help=True, help="Schema migrations, status and maintenance.")
app.add_typer(db_app, name="db")
err = Console(stderr=True)
T = TypeVar("T")
Conn = psycopg.Connection[tuple[object, ...]]


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the variable and the problem
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """A ForewarnError becomes one clear line on stderr and exit status 1."""
    try:
        yield
    except ForewarnError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def _on_database(settings: Settings, work: Callable[[Conn], T]) -> T:
    """Run ``work`` on a fresh connection, reporting Forewarn's errors clearly."""
    from forewarn.db import connect

    with _reported(), connect(settings) as conn:
        return work(conn)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so services stop cleanly instead of dying."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the schema, and apply the retention and compression settings."""
    from forewarn.schema.migrate import migrate

    settings = _settings()
    result = _on_database(settings, lambda conn: migrate(conn, settings=settings))
    applied = ", ".join(map(str, result.applied)) or "none (already up to date)"
    typer.echo(f"schema version {result.version}; applied: {applied}")
    typer.echo(f"storage: {result.storage} ({result.storage_reason})")


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
    """Create partitions ahead and drop expired ones (plain PostgreSQL; TimescaleDB runs jobs)."""
    from forewarn.schema.migrate import maintain

    settings = _settings()
    report = _on_database(settings, lambda conn: maintain(conn, settings=settings))
    if report.storage == "timescaledb":
        typer.echo("TimescaleDB jobs handle compression, retention and rollups; nothing to do")
        return
    dropped = ", ".join(report.partitions_dropped) or "none"
    typer.echo(f"partitions created: {report.partitions_created}; dropped: {dropped}")


@app.command("ingest")
def ingest(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    progress_every: Annotated[float, typer.Option(help="Seconds between progress lines.")] = 10.0,
) -> None:
    """Run the MQTT ingester until SIGTERM or Ctrl-C."""
    from ingest.service import Ingester

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = _settings()
    stop = _stop_on_signals()
    ingester = Ingester(settings)
    with _reported():
        ingester.start()
    port = metrics_port or settings.metrics_port
    if port:
        ingester.metrics.serve(port)
    last = time.monotonic()
    while not stop.wait(0.5):
        if ingester.failure is not None:
            err.print(f"[red]ingester failed:[/red] {ingester.failure}")
            raise typer.Exit(1)
        if time.monotonic() - last >= progress_every:
            s = ingester.stats()
            err.print(
                f"received {s.received} written {s.written} duplicates {s.duplicates} "
                f"dead letters {s.dead_letters} backlog {s.backlog} mqtt up {s.connections_up}"
            )
            last = time.monotonic()
    ingester.stop()
    s = ingester.stats()
    err.print(f"stopped: received {s.received}, written {s.written}, dead letters {s.dead_letters}")


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
) -> None:
    """Publish a simulated fleet with injected faults to the configured broker."""
    from forewarn.demo import run_simulate

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
    from forewarn.demo import run_demo

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


def main() -> None:
    """Entry point for ``python -m forewarn``."""
    sys.exit(app())
