"""``forewarn train``, ``evaluate`` and ``backtest``: the commands that fit, judge and try the
fault models."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import _on_database, _reported, _settings, err


def register(app: typer.Typer) -> None:
    """Add these commands to the main ``forewarn`` command."""
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.command("backtest")(backtest_cmd)
    app.command("calibrate")(calibrate_cmd)


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


def evaluate_cmd(
    seed: Annotated[int, typer.Option(help="Seed of the fresh fleet to simulate.")] = 7,
    devices: Annotated[int, typer.Option(min=10)] = 800,
    days: Annotated[float, typer.Option(min=1.0)] = 3.0,
    fault_rate: Annotated[float, typer.Option(min=0.01, max=1.0)] = 0.3,
    outages_per_day: Annotated[
        float,
        typer.Option(min=0.0, help="Network outages a day, each silencing a time zone's devices."),
    ] = 0.5,
    version: Annotated[
        int | None, typer.Option(help="Model version (default: the active one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Simulate a fleet the model never saw; print the quality per fault of the model (if
    one is stored) and of the label-free detectors beside it."""
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
            outages_per_day=outages_per_day,
            say=lambda m: err.print(m),
        )
    if as_json:
        typer.echo(report_json(report))
        return
    version = report["model_version"]
    title = f"model version {version}" if version is not None else "no trained model"
    table = Table(title=f"{title} and the label-free detectors on seed {seed}")
    for column in (
        "fault",
        "by",
        "episodes",
        "precision",
        "recall",
        "F1",
        "median lead h",
        "false alarms/1000 dd",
    ):
        table.add_column(column)
    for by, faults in (("model", report["faults"]), ("detectors", report["detectors"])):
        for fault, q in faults.items():
            table.add_row(
                fault,
                by,
                str(q["episodes"]),
                f"{q['precision']:.3f}",
                f"{q['recall']:.3f}",
                f"{q['f1']:.3f}",
                str(q["median_lead_h"]),
                f"{q['false_alarms_per_1000_device_days']:.2f}",
            )
    Console().print(table)


def calibrate_cmd(
    since: Annotated[
        datetime | None, typer.Option(help="Use readings at or after this time (UTC).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Use readings before this time (UTC).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the thresholds without storing them.")
    ] = False,
) -> None:
    """Set the detectors' alert thresholds from the fleet's stored telemetry (no labels), so
    that its history raises at most FOREWARN_FALSE_ALARM_BUDGET alerts per 1,000 device-days."""
    from models.calibrate import calibrate

    settings = _settings()
    with _reported():
        found = calibrate(
            settings,
            since=_utc(since),
            until=_utc(until),
            save=not dry_run,
            say=lambda m: err.print(m),
        )
    table = Table(title=f"detector thresholds (budget {settings.false_alarm_budget:g} / 1000 dd)")
    for column in ("fault", "threshold", "alerts/1000 dd at it", "device-days"):
        table.add_column(column)
    for c in found:
        table.add_row(
            c.fault,
            f"{c.threshold:.4f}",
            f"{c.alerts_per_1000_device_days:.2f}",
            f"{c.device_days:.1f}",
        )
    Console().print(table)
    over = [c.fault for c in found if c.alerts_per_1000_device_days > c.budget]
    if over:
        typer.echo(f"over budget even at the highest threshold: {', '.join(over)}")
    typer.echo("not stored (--dry-run)" if dry_run else "stored: the scorer uses them within 15 s")


def _utc(value: datetime | None) -> datetime | None:
    """A command-line time as UTC (a time without a zone is taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


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
    battery: Annotated[
        str | None,
        typer.Option(
            help="Battery pack of the devices: li-ion, 1xaa, 2xaa, 4xaa, cr2032 or cr123a "
            "(default: guessed from the first voltage)."
        ),
    ] = None,
    temperature_limit: Annotated[
        float | None, typer.Option(help="Highest safe temperature of the devices, °C.")
    ] = None,
    calibrate_until: Annotated[
        datetime | None,
        typer.Option(
            help="Set the detectors' thresholds as forewarn calibrate would, from the file's "
            "own rows before this time (UTC; no labels), within FOREWARN_FALSE_ALARM_BUDGET; "
            "then score every row with them. Default: the detectors' own bars."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write one self-contained HTML page: charts, alerts, reasons."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            help="CSV of known failures (device, fault, time): adds precision, recall, lead."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")
    ] = False,
) -> None:
    """Score a CSV row by row as the live scorer would have, and write scores and alerts.

    The label-free detectors always run (no model, no labels needed); the trained model's
    fault predictors too when a database has an active one."""
    from forewarn.errors import ConfigError
    from models.backtest import BacktestOptions, backtest, faults_skipped
    from models.backtest_html import report_html
    from models.backtest_report import read_events, summarize, summary_json
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
        from models.detect import Profile
        from models.detectors.chemistry import chemistry

        try:
            pack = chemistry(battery) if battery else None
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        options = BacktestOptions(
            columns=columns,
            learn_hours=learn_hours,
            threshold=threshold,
            device_model=device_model,
            profile=Profile(pack, temperature_limit),
            calibrate_until=None if (until := _utc(calibrate_until)) is None else until.timestamp(),
            budget=settings.false_alarm_budget,
        )
        known = read_events(events) if events is not None else []
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
        if why and not as_json:
            typer.echo(f"fault predictors skipped: {why}; label-free detectors and anomalies only")
        result = backtest(table, target, options, bundle=bundle, on_progress=progress)
        summary = summarize(table, result.scores, known)
        if report is not None:
            try:
                report.write_text(
                    report_html(table, summary, title=f"Forewarn backtest of {csv_path.name}"),
                    encoding="utf-8",
                )
            except OSError as exc:
                raise ConfigError(f"{report}: cannot write: {exc.strerror or exc}") from exc
    if as_json:
        typer.echo(summary_json(summary))
        return
    typer.echo(
        f"{result.rows:,} rows of {result.devices:,} device(s); {result.learning_rows:,} in "
        f"the learning phase (each device's first {learn_hours:g} h and {options.learn_rows} rows)"
    )
    kinds = [f"anomaly {result.anomaly_alerts:,}"]
    kinds += [f"{fault} {n:,}" for fault, n in result.fault_alerts.items()]
    kinds += [f"detected {fault} {n:,}" for fault, n in result.detector_alerts.items() if n]
    typer.echo(f"rows with an alert: {result.alerts:,} ({', '.join(kinds)})")
    if result.dropped:
        typer.echo(f"dropped {result.dropped:,} rows repeating a device's timestamp")
    if result.reordered:
        typer.echo("the file was not in device and time order; the output is sorted that way")
    if result.unscored_devices:
        typer.echo(f"{result.unscored_devices:,} device(s) never left the learning phase")
    if result.scores.calibration:
        cuts = ", ".join(f"{c.fault} {c.threshold:.4f}" for c in result.scores.calibration)
        typer.echo(
            f"detector thresholds from the rows before {calibrate_until:%Y-%m-%d %H:%M} "
            f"({result.scores.calibration[0].device_days:.1f} device-days, budget "
            f"{settings.false_alarm_budget:g} / 1000): {cuts}"
        )
    _print_summary(summary)
    typer.echo(f"wrote {result.output}" + (f" and {report}" if report is not None else ""))


def _print_summary(summary: Any) -> None:
    """Alerts per fault, per device, and the known failures, as tables."""
    rates = Table(title=f"alerts over {summary.device_days:,.1f} device-days")
    for column in ("fault", "alerts", "per 1,000 device-days"):
        rates.add_column(column)
    for fault, q in summary.per_fault.items():
        rates.add_row(fault, f"{q['alerts']:.0f}", f"{q['per_1000_device_days']:.2f}")
    devices = Table(title="devices with alerts")
    for column in ("device", "days", "alerts", "first alert"):
        devices.add_column(column)
    shown = 0
    for device, d in summary.devices.items():
        if d["alerts"] and shown < 40:
            first = next(a for a in summary.alerts if a.device == device)
            alerts = ", ".join(f"{f} {n}" for f, n in d["alerts"].items())
            devices.add_row(
                device or "-", f"{d['days']:.1f}", alerts, f"{first.fault}: {first.reason}"
            )
            shown += 1
    console = Console(width=200)
    console.print(rates)
    if shown:
        console.print(devices)
    if summary.events:
        known = Table(title="known failures")
        for column in (
            "fault",
            "failures",
            "warned",
            "false alarms",
            "precision",
            "recall",
            "median lead h",
        ):
            known.add_column(column)
        for fault, q in summary.events["faults"].items():
            known.add_row(
                fault,
                str(q["failures"]),
                str(q["warned"]),
                str(q["false_alarms"]),
                f"{q['precision']:.2f}",
                f"{q['recall']:.2f}",
                str(q["median_lead_h"]),
            )
        console.print(known)
