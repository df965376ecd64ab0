"""``forewarn demo`` and ``forewarn simulate``: orchestration with live progress."""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.live import Live
from rich.table import Table

from cli.demo import repository as demo_repo
from cli.demo.acting import (
    RESPONDER,
    Acting,
    acting,
    add_live_rows,
    give_owners_targets,
    print_summary,
)
from cli.demo.bootstrap import HISTORY_NUMBER_FROM, ensure_model
from cli.demo.console import console as staff_console
from cli.demo.owners import GuideFeed
from cli.demo.previous import make_room
from cli.embedded import services
from forewarn.db import connect
from forewarn.domain import Prediction
from forewarn.errors import ConfigError
from forewarn.schema.migrate import migrate
from forewarn.settings import Settings
from ingest.metrics import IngestStats
from ingest.repository import StoreCounts, store_counts
from ingest.service import Ingester
from models.repository import latest_predictions, prediction_counts
from models.scorer import Scorer
from notifier import repository as outbox
from simulators import repository as simulated
from simulators.flows import SimProgress, SimSummary, run_simulation

PROGRESS_SECONDS = 1.0  # how often the live view refreshes
PLAIN_PROGRESS_SECONDS = 10.0  # progress lines when the output is not a terminal


def run_simulate(
    settings: Settings,
    *,
    devices: int,
    seed: int,
    speedup: float,
    duration: float | None,
    sim_hours: float | None,
    truth: Path | None,
    register: bool,
    stop: threading.Event,
    direct: bool = False,
    days_ago: float | None = None,
    number_from: int = 1,
    fault_rate: float = 0.15,
    run_ahead: bool = False,
) -> SimSummary:
    """Publish a simulated fleet to the configured broker (or, `direct`, write it to the
    database through the ingester's write path), printing progress."""
    from ingest.direct import DirectWriter

    console = Console(stderr=True)
    last = [0.0]

    def progress(p: SimProgress) -> None:
        if time.monotonic() - last[0] >= PLAIN_PROGRESS_SECONDS:
            console.print(
                f"sim time {p.sim_time:%Y-%m-%d %H:%M} | published {p.messages} "
                f"({p.readings} readings, {p.status_messages} status)"
            )
            last[0] = time.monotonic()

    summary = run_simulation(
        settings,
        devices=devices,
        seed=seed,
        speedup=speedup,
        duration=duration,
        sim_span=timedelta(hours=sim_hours) if sim_hours else None,
        start=None if days_ago is None else _days_ago(days_ago),
        register=register and settings.database_url is not None,
        truth_path=truth,
        on_progress=progress,
        stop=stop,
        sink=DirectWriter(settings) if direct else None,
        number_from=number_from,
        fault_rate=fault_rate,
        not_after=None if run_ahead or direct else (lambda: datetime.now(UTC)),
    )
    console.print(_summary_table(summary))
    return summary


def _days_ago(days: float) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)


def _span(sim: SimSummary) -> str:
    return f"{sim.sim_start:%Y-%m-%d %H:%M} → {sim.sim_end:%Y-%m-%d %H:%M} UTC"


def _faults(sim: SimSummary) -> str:
    return ", ".join(f"{k.value} {v}" for k, v in sorted(sim.faults_by_kind.items())) or "none"


def _summary_table(summary: SimSummary) -> Table:
    table = Table(title=f"simulation {summary.run_id}", show_header=False)
    table.add_row("devices", str(summary.devices))
    table.add_row("simulated span", _span(summary))
    table.add_row(
        "messages published",
        f"{summary.messages} ({summary.readings} readings, {summary.status_messages} status)",
    )
    table.add_row("faults injected", _faults(summary))
    return table


def _live_table(
    elapsed: float, sim: SimProgress | None, stats: IngestStats, store: StoreCounts | None
) -> Table:
    table = Table(title="Forewarn demo (Ctrl-C to stop)", show_header=False, min_width=60)
    table.add_row("running", f"{elapsed:.0f} s")
    if sim is not None:
        table.add_row("simulated time", f"{sim.sim_time:%Y-%m-%d %H:%M} UTC")
        table.add_row("published", f"{sim.messages} messages")
    table.add_row("messages in", str(stats.received))
    table.add_row("rows written", str(stats.written))
    table.add_row("dead letters", str(stats.dead_letters))
    table.add_row("backlog", str(stats.backlog))
    if store is not None:
        table.add_row("devices online / offline", f"{store.online} / {store.offline}")
    return table


def run_demo(
    settings: Settings,
    *,
    duration: float | None,
    devices: int,
    seed: int,
    speedup: float,
    stop: threading.Event,
) -> None:
    """Run services, schema, ingester and simulator together until stopped; print a summary."""
    console = Console()
    err = Console(stderr=True)
    if settings.database_url is None or settings.mqtt_url is None:
        err.print("starting embedded services (no FOREWARN_DATABASE_URL / FOREWARN_MQTT_URL set)…")
        if settings.mqtt_url is None:
            err.print(
                "note: the embedded broker is for demos; it does not keep sessions across "
                "restarts, so use Mosquitto (FOREWARN_MQTT_URL) for the lossless guarantee"
            )
    with services(settings) as started:
        # The demo's fleet is simulated: its devices may report before the registry is read.
        live_settings = started.with_overrides(auto_register=True)
        err.print(
            f"database: {_redact(live_settings.database_url)}  broker: {live_settings.mqtt_url}"
        )
        with connect(live_settings) as conn:
            result = migrate(conn, settings=live_settings)
        err.print(f"schema v{result.version}, storage: {result.storage} ({result.storage_reason})")
        version = ensure_model(live_settings, say=err.print)
        err.print(f"scoring with model version {version}")
        previous = make_room(live_settings, at=datetime.now(UTC), responder=RESPONDER)
        if previous.number_from + devices > HISTORY_NUMBER_FROM:
            raise ConfigError(
                f"no device numbers left for {devices} more demo devices in this database "
                f"(numbers from {HISTORY_NUMBER_FROM} hold the first model's history); "
                "use a fresh database"
            )
        err.print(previous.describe(devices))
        # The fleet starts two days back and runs `speedup` times faster than real time; the
        # responder's clock runs with it.
        origin = _days_ago(2)
        with connect(live_settings, autocommit=True) as conn:
            before = demo_repo.marks(conn)
        with acting(live_settings, origin=origin, speedup=speedup, say=err) as part:
            _run_live(
                console,
                part,
                duration=duration,
                devices=devices,
                seed=seed,
                speedup=speedup,
                stop=stop,
                origin=origin,
                before=before,
                number_from=previous.number_from,
            )
            inbox = part.inbox
        with connect(live_settings, autocommit=True) as watch:
            counts = demo_repo.summary_counts(watch, after=before)
            by_status = outbox.counts(watch)
        print_summary(console, counts, inbox.counts(), by_status)


def _run_live(
    console: Console,
    part: Acting,
    *,
    duration: float | None,
    devices: int,
    seed: int,
    speedup: float,
    stop: threading.Event,
    origin: datetime,
    before: demo_repo.Marks,
    number_from: int,
) -> None:
    """Ingester, scorer and simulator with the live view, until the duration or a stop."""
    live_settings = part.settings
    ingester = Ingester(live_settings, clock=part.clock)
    ingester.start()
    scorer = Scorer(live_settings, warmup_hours=0)
    scorer.start()
    with staff_console(
        live_settings,
        clock=part.clock,
        registries=[ingester.metrics.registry],
        say=Console(stderr=True),
    ):
        _watch(
            console,
            part,
            ingester,
            scorer,
            duration=duration,
            devices=devices,
            seed=seed,
            speedup=speedup,
            stop=stop,
            origin=origin,
            before=before,
            number_from=number_from,
        )


def _watch(
    console: Console,
    part: Acting,
    ingester: Ingester,
    scorer: Scorer,
    *,
    duration: float | None,
    devices: int,
    seed: int,
    speedup: float,
    stop: threading.Event,
    origin: datetime,
    before: demo_repo.Marks,
    number_from: int,
) -> None:
    """Run the simulator and show the live view until the duration or a stop; then stop the
    ingester and scorer and print what happened."""
    live_settings = part.settings
    since = datetime.now(UTC)
    latest: deque[SimProgress] = deque(maxlen=1)  # the newest progress report
    outcome: list[SimSummary | BaseException] = []
    feed = GuideFeed(after=before.notification)  # owners reading their guides

    def simulate() -> None:
        try:
            outcome.append(
                run_simulation(
                    live_settings,
                    devices=devices,
                    seed=seed,
                    speedup=speedup,
                    duration=None,
                    start=origin,
                    sim_span=timedelta(seconds=duration * speedup) if duration else None,
                    on_progress=latest.append,
                    stop=stop,
                    number_from=number_from,
                    guides_read=feed.drain,
                )
            )
        except BaseException as exc:
            outcome.append(exc)
            stop.set()

    sim_thread = threading.Thread(target=simulate, name="simulator", daemon=True)
    sim_thread.start()
    started = time.monotonic()
    store: StoreCounts | None = None
    with connect(live_settings, autocommit=True) as watch:
        live = (
            Live(console=console, refresh_per_second=2, transient=False)
            if console.is_terminal
            else None
        )
        if live:
            live.start()
        last_plain = 0.0
        try:
            while not stop.wait(PROGRESS_SECONDS):
                elapsed = time.monotonic() - started
                give_owners_targets(watch, part)
                feed.poll(watch)
                store = store_counts(watch)
                view = _live_table(elapsed, latest[-1] if latest else None, ingester.stats(), store)
                _add_predictions(view, prediction_counts(watch, since=since))
                add_live_rows(view, demo_repo.summary_counts(watch, after=before))
                if live:
                    live.update(view)
                elif elapsed - last_plain >= PLAIN_PROGRESS_SECONDS:
                    console.print(view)
                    last_plain = elapsed
                if duration is not None and elapsed >= duration:
                    stop.set()
        finally:
            stop.set()
            sim_thread.join(30)
            _settle(ingester, outcome)
            ingester.stop()
            scorer.stop()
            if live:
                live.stop()
        store = store_counts(watch)
        counts = prediction_counts(watch, since=since)
        top = latest_predictions(watch, limit=8, since=since)
    summary: SimSummary | None = None
    if outcome:
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        summary = outcome[0]
        with connect(live_settings, autocommit=True) as conn:
            simulated.record_owner_fixes(conn=conn, fixes=summary.owner_fixes)
    _print_summary(console, time.monotonic() - started, summary, ingester.stats(), store)
    _print_predictions(console, counts, top)


SETTLE_SECONDS = 10.0  # the broker forwards the simulator's last messages in milliseconds


def _settle(ingester: Ingester, outcome: list[SimSummary | BaseException]) -> None:
    """Let the ingester receive what the simulator published before stopping it.

    Messages still on their way would not be lost (they wait in the ingester's broker
    session), but the summary should describe a settled pipeline.
    """
    if not outcome or isinstance(outcome[0], BaseException):
        return
    published = outcome[0].messages
    deadline = time.monotonic() + SETTLE_SECONDS
    while ingester.stats().received < published and time.monotonic() < deadline:
        time.sleep(0.05)


def _print_summary(
    console: Console, elapsed: float, sim: SimSummary | None, stats: IngestStats, store: StoreCounts
) -> None:
    table = Table(title="demo summary", show_header=False)
    table.add_row("ran for", f"{elapsed:.0f} s")
    if sim is not None:
        table.add_row("simulated", _span(sim))
        table.add_row("published", f"{sim.messages} messages from {sim.devices} devices")
        table.add_row("faults injected", _faults(sim))
        table.add_row("faults owners fixed after a guide", str(len(sim.owner_fixes)))
    table.add_row("messages ingested", str(stats.received))
    table.add_row("readings written (this run)", str(stats.written))
    table.add_row("dead letters (this run)", str(stats.dead_letters))
    table.add_row("readings stored (all runs)", str(store.readings))
    table.add_row(
        "devices online / offline", f"{store.online} / {store.offline} of {store.devices}"
    )
    console.print(table)


def _add_predictions(table: Table, counts: dict[str, int]) -> None:
    text = ", ".join(f"{fault} {n}" for fault, n in counts.items()) or "none yet"
    table.add_row("devices predicted to fail", text)


def _print_predictions(console: Console, counts: dict[str, int], top: list[Prediction]) -> None:
    table = Table(title="predictions this run (devices per fault)", show_header=False)
    for fault, n in counts.items():
        table.add_row(fault, str(n))
    if not counts:
        table.add_row("none", "no device crossed a threshold while the demo ran")
    console.print(table)
    if top:
        detail = Table(title="most probable predictions")
        for column in ("device", "fault", "p", "within", "model", "why"):
            detail.add_column(column)
        for p in top:
            within = f"{p.hours_to_empty:.0f} h" if p.hours_to_empty else f"{p.horizon_h:.0f} h"
            detail.add_row(
                p.device_id,
                p.fault,
                f"{p.probability:.2f}",
                within,
                f"v{p.model_version}" if p.model_version is not None else "detector",
                "; ".join(p.reasons),
            )
        console.print(detail)


def _redact(url: str | None) -> str:
    """A URL fit for printing: no password."""
    if url is None:
        return "none"
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
