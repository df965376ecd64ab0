"""The ``forewarn`` command: one entry point, settings built once and passed down."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.acting import register as register_acting
from cli.common import _log_info, _on_database, _reported, _settings, _stop_on_signals, err
from cli.staff import register as register_api

app = typer.Typer(no_args_is_help=True, help="Forewarn: proactive support for smart products.")
db_app = typer.Typer(no_args_is_help=True, help="Schema migrations, status and maintenance.")
app.add_typer(db_app, name="db")


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
    score: Annotated[
        bool, typer.Option(help="Also run the streaming scorer in this process.")
    ] = False,
) -> None:
    """Run the MQTT ingester until SIGTERM or Ctrl-C."""
    from forewarn.worker import Worker, supervise
    from ingest.service import Ingester
    from models.scorer import Scorer

    _log_info()
    settings = _settings()
    stop = _stop_on_signals()
    ingester = Ingester(settings)
    workers: list[Worker] = [ingester]
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


@app.command("train")
def train_cmd(
    seed: Annotated[int, typer.Option(help="Seed for the models (same data, same models).")] = 0,
    since: Annotated[
        datetime | None, typer.Option(help="Learn from readings at or after this time (UTC).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Learn from readings before this time (UTC).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Activate the new version even if it evaluates worse.")
    ] = False,
    eval_seed: Annotated[
        int, typer.Option(help="Seed of the evaluation fleet (never a training seed).")
    ] = 7,
    eval_devices: Annotated[int, typer.Option(min=10, help="Evaluation fleet size.")] = 800,
    eval_days: Annotated[float, typer.Option(min=1.0, help="Evaluation span, days.")] = 3.0,
    note: Annotated[str | None, typer.Option(help="A note stored with the version.")] = None,
) -> None:
    """Fit the models on the stored history and its labels; store and maybe activate them."""
    from models.flows import train

    settings = _settings()
    with _reported():
        result = train(
            settings,
            since=_utc(since),
            until=_utc(until),
            seed=seed,
            force=force,
            evaluation={"seed": eval_seed, "devices": eval_devices, "days": eval_days},
            note=note,
            say=lambda m: err.print(m),
        )
    table = Table(title=f"model version {result.version}")
    for column in ("fault", "precision", "recall", "F1", "median lead h", "false alarms/1000 dd"):
        table.add_column(column)
    for fault, q in result.evaluation["faults"].items():
        table.add_row(
            fault,
            f"{q['precision']:.3f}",
            f"{q['recall']:.3f}",
            f"{q['f1']:.3f}",
            str(q["median_lead_h"]),
            f"{q['false_alarms_per_1000_device_days']:.2f}",
        )
    Console().print(table)
    state = "activated" if result.activated else "stored, not activated"
    typer.echo(f"version {result.version} {state}: {result.why}")


@app.command("evaluate")
def evaluate_cmd(
    seed: Annotated[int, typer.Option(help="Seed of the fresh fleet to simulate.")] = 7,
    devices: Annotated[int, typer.Option(min=10)] = 800,
    days: Annotated[float, typer.Option(min=1.0)] = 3.0,
    fault_rate: Annotated[float, typer.Option(min=0.01, max=1.0)] = 0.3,
    version: Annotated[
        int | None, typer.Option(help="Model version (default: the active one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Simulate a fleet the model never saw, score it, and print the quality per fault."""
    from models.flows import evaluate, report_json

    settings = _settings()
    with _reported():
        report = evaluate(
            settings,
            seed=seed,
            devices=devices,
            days=days,
            fault_rate=fault_rate,
            version=version,
            say=lambda m: err.print(m),
        )
    if as_json:
        typer.echo(report_json(report))
        return
    table = Table(title=f"model version {report['model_version']} on seed {seed}")
    for column in (
        "fault",
        "episodes",
        "precision",
        "recall",
        "F1",
        "median lead h",
        "false alarms/1000 dd",
    ):
        table.add_column(column)
    for fault, q in report["faults"].items():
        table.add_row(
            fault,
            str(q["episodes"]),
            f"{q['precision']:.3f}",
            f"{q['recall']:.3f}",
            f"{q['f1']:.3f}",
            str(q["median_lead_h"]),
            f"{q['false_alarms_per_1000_device_days']:.2f}",
        )
    Console().print(table)


@app.command("score")
def score_cmd(
    progress_every: Annotated[float, typer.Option(help="Seconds between progress lines.")] = 10.0,
) -> None:
    """Run the streaming scorer beside the ingesters until SIGTERM or Ctrl-C."""
    from forewarn.worker import supervise
    from models.scorer import Scorer

    _log_info()
    scorer = Scorer(_settings())
    stop = _stop_on_signals()
    scorer.start()

    def report() -> None:
        s = scorer.stats()
        err.print(
            f"model v{s.model_version} readings {s.readings} scored {s.scored} "
            f"predictions {s.predictions} late {s.late}"
        )

    with _reported():
        supervise([scorer], stop, report=report, every=progress_every)


def _utc(value: datetime | None) -> datetime | None:
    """A command-line time as UTC (a time without a zone is taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@app.command("backtest")
def backtest_cmd(
    csv_path: Annotated[
        Path,
        typer.Option(
            "--csv", help="CSV to score: a time column and numeric metrics, maybe a device."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: <input>.scored.csv beside it).")
    ] = None,
    time_column: Annotated[
        str | None,
        typer.Option(
            help="Time column (default: ts, timestamp or time). ISO 8601 times without a "
            "zone are UTC; numbers are epoch seconds or milliseconds."
        ),
    ] = None,
    device_column: Annotated[
        str | None,
        typer.Option(help="Device column (default: device_id or device; else one device)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Metric column to score; repeatable (default: every numeric column)."),
    ] = None,
    signal_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COL=SIGNAL: a column carrying signal_dbm, battery_pct, battery_v, "
            "temperature_c, uptime_s or reconnects, for the fault predictors; repeatable. "
            "Columns named like a signal map to it by themselves.",
        ),
    ] = None,
    learn_hours: Annotated[
        float,
        typer.Option(min=0.0, help="History learned per device before scoring (and 50 rows)."),
    ] = 24.0,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Anomaly score at which a row alerts.")
    ] = 0.99,
    device_model: Annotated[
        str, typer.Option(help="Device model of the rows, for the trained model's anomaly score.")
    ] = "unknown",
) -> None:
    """Score a CSV row by row as the live scorer would have, and write scores and alerts."""
    from forewarn.errors import ConfigError
    from models.backtest import BacktestOptions, backtest, faults_skipped
    from models.bundle import ModelBundle
    from models.csvfile import Columns, read_table

    settings = _settings()
    target = out or csv_path.with_name(f"{csv_path.stem}.scored.csv")
    last = [time.monotonic()]

    def progress(done: int, total: int) -> None:
        if total >= 20_000 and (done == total or time.monotonic() - last[0] >= 2.0):
            err.print(f"scored {done:,} of {total:,} rows")
            last[0] = time.monotonic()

    with _reported():
        pairs = [m.partition("=") for m in signal_map or []]
        if any(not col or not sig for col, _, sig in pairs):
            raise ConfigError("--map takes COL=SIGNAL, for example --map rssi=signal_dbm")
        columns = Columns(
            time=time_column,
            device=device_column,
            metrics=tuple(metric or ()),
            signals=tuple((c.strip(), s.strip()) for c, _, s in pairs),
        )
        options = BacktestOptions(
            columns=columns, learn_hours=learn_hours, threshold=threshold, device_model=device_model
        )
        table = read_table(csv_path, columns)
        bundle: ModelBundle | None = None
        if not table.signals:
            why = "no column maps to a known signal (use --map COL=SIGNAL)"
        elif settings.database_url is None:
            why = "no database is configured (FOREWARN_DATABASE_URL), so no trained model"
        else:
            from models.repository import load_active

            bundle = _on_database(settings, load_active)
            why = "the database has no active model (run forewarn train)" if bundle is None else ""
            why = why or faults_skipped(table, bundle)
        if why:
            typer.echo(f"fault predictors skipped: {why}; scoring anomalies only")
        result = backtest(table, target, options, bundle=bundle, on_progress=progress)
    typer.echo(
        f"{result.rows:,} rows of {result.devices:,} device(s); {result.learning_rows:,} in "
        f"the learning phase (each device's first {learn_hours:g} h and {options.learn_rows} rows)"
    )
    kinds = [f"anomaly {result.anomaly_alerts:,}"]
    kinds += [f"{fault} {n:,}" for fault, n in result.fault_alerts.items()]
    typer.echo(f"rows with an alert: {result.alerts:,} ({', '.join(kinds)})")
    if result.dropped:
        typer.echo(f"dropped {result.dropped:,} rows repeating a device's timestamp")
    if result.reordered:
        typer.echo("the file was not in device and time order; the output is sorted that way")
    if result.unscored_devices:
        typer.echo(f"{result.unscored_devices:,} device(s) never left the learning phase")
    typer.echo(f"wrote {result.output}")


register_acting(app)
register_api(app)


def main() -> None:
    """Entry point for ``python -m cli``."""
    sys.exit(app())
