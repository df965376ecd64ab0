"""``forewarn respond``, ``dispatch``, ``guides``, ``rules``, ``tickets`` and ``snooze``: the
commands that act on predictions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import (
    Conn,
    _log_info,
    _on_database,
    _reported,
    _settings,
    _stop_on_signals,
    err,
)

guides_app = typer.Typer(no_args_is_help=True, help="The knowledge base of self-help guides.")
rules_app = typer.Typer(no_args_is_help=True, help="The rule set that turns predictions into acts.")
tickets_app = typer.Typer(no_args_is_help=True, help="Support tickets opened by Forewarn.")


def register(app: typer.Typer) -> None:
    """Add these commands to the main ``forewarn`` command."""
    app.command("respond")(respond)
    app.command("dispatch")(dispatch)
    app.command("snooze")(snooze)
    app.add_typer(guides_app, name="guides")
    app.add_typer(rules_app, name="rules")
    app.add_typer(tickets_app, name="tickets")


def respond(
    dispatch: Annotated[bool, typer.Option(help="Also send the outbox in this process.")] = True,
    progress_every: Annotated[float, typer.Option(help="Seconds between progress lines.")] = 10.0,
    slices: Annotated[
        int,
        typer.Option(
            min=0,
            max=4096,
            help="Slices of the device hash the responders share (every responder must agree; "
            "0: this one acts on every device).",
        ),
    ] = 64,
) -> None:
    """Act on predictions (incidents, guides, tickets, SLA clocks) until SIGTERM or Ctrl-C."""
    from forewarn.clock import SystemClock
    from forewarn.db import connect
    from forewarn.worker import Worker, supervise
    from notifier.dispatcher import Dispatcher
    from notifier.guides.flows import default_directory, load_directory
    from rules.loader import load_rules
    from rules.responder import Responder

    _log_info()
    settings = _settings()
    with _reported():
        rules = load_rules(settings.rules_path)
        with connect(settings) as conn:
            report = load_directory(conn, settings.guides_dir or default_directory())
    err.print(
        f"rules: {len(rules.rules)} from {rules.source}; guides: {report.files} "
        f"({report.upserted} updated)"
    )
    clock = SystemClock()
    responder = Responder(settings, rules, clock, slices=slices or None)
    dispatcher = Dispatcher(settings, clock) if dispatch else None
    workers: list[Worker] = [responder] if dispatcher is None else [responder, dispatcher]
    stop = _stop_on_signals()
    for worker in workers:
        worker.start()

    def progress() -> None:
        held = f"slices {len(responder.held)}/{slices}  " if slices else ""
        err.print(f"{held}{responder.stats()}  {dispatcher.stats() if dispatcher else ''}")

    with _reported():
        supervise(workers, stop, report=progress, every=progress_every)


def dispatch() -> None:
    """Send the notification outbox (Apprise and the ticket webhook) until SIGTERM or Ctrl-C."""
    from forewarn.clock import SystemClock
    from forewarn.worker import supervise
    from notifier.dispatcher import Dispatcher

    _log_info()
    settings = _settings()
    with _reported():
        dispatcher = Dispatcher(settings, SystemClock())
        dispatcher.start()
        err.print(f"dispatching the outbox as {dispatcher.worker}")
        try:
            supervise([dispatcher], _stop_on_signals())
        finally:
            err.print(f"dispatcher stopped: {dispatcher.stats()}")


def snooze(
    hours: Annotated[float, typer.Option(min=0.01, help="How long, from now.")],
    reason: Annotated[str, typer.Option(help="Why: shown in every decision it holds back.")],
    device: Annotated[str | None, typer.Option(help="One device.")] = None,
    model: Annotated[str | None, typer.Option(help="A firmware cohort: the model...")] = None,
    firmware: Annotated[str | None, typer.Option(help="...and its firmware version.")] = None,
    fault: Annotated[
        str | None, typer.Option(help="Only this fault (default: every fault).")
    ] = None,
) -> None:
    """Snooze a device, or open a maintenance window for a firmware cohort."""
    from rules.repository import add_snooze

    if (device is None) == (model is None or firmware is None):
        err.print("[red]error:[/red] give --device, or --model with --firmware (not both)")
        raise typer.Exit(2)
    settings = _settings()
    now = datetime.now(UTC)

    def work(conn: Conn) -> int:
        with conn.transaction():
            return add_snooze(
                conn,
                starts_at=now,
                ends_at=now + timedelta(hours=hours),
                reason=reason,
                device_id=device,
                model=model,
                firmware=firmware,
                fault=fault,
                created_by="cli",
            )

    number = _on_database(settings, work)
    typer.echo(f"snooze {number} until {now + timedelta(hours=hours):%Y-%m-%d %H:%M} UTC")


@guides_app.command("load")
def guides_load(
    directory: Annotated[Path | None, typer.Argument(help="Folder of Markdown guides.")] = None,
) -> None:
    """Load (or update) the guides from Markdown files into the database."""
    from notifier.guides.flows import default_directory, load_directory

    settings = _settings()
    folder = directory or settings.guides_dir or default_directory()
    report = _on_database(settings, lambda conn: load_directory(conn, folder))
    typer.echo(
        f"{report.files} guides read from {folder}: {report.upserted} new or changed, "
        f"{report.unchanged} unchanged; {report.indexed} embedded for search"
    )


@guides_app.command("list")
def guides_list() -> None:
    """List the guides in the database."""
    from notifier.guides.repository import all_guides

    guides = _on_database(_settings(), lambda conn: all_guides(conn))
    table = Table()
    for column in ("id", "locale", "category", "fault", "audience", "title"):
        table.add_column(column)
    for g in guides:
        table.add_row(g.guide_id, g.locale, g.category, g.fault or "", g.audience, g.title)
    Console().print(table)


@rules_app.command("check")
def rules_check(
    path: Annotated[
        Path | None, typer.Argument(help="Rule file (default: the configured one).")
    ] = None,
) -> None:
    """Validate a rule set and print its rules in matching order."""
    from rules.loader import load_rules

    settings = _settings()
    with _reported():
        rules = load_rules(path or settings.rules_path)
    table = Table(title=f"{rules.source}: valid")
    for column in ("line", "name", "faults", "segments", "action", "priority", "tier", "wait"):
        table.add_column(column)
    for r in rules.rules:
        table.add_row(
            str(r.line),
            r.name,
            ", ".join(sorted(r.faults)) or "any",
            ", ".join(sorted(r.segments)) or "any",
            r.action.value,
            r.priority.value,
            r.tier.value,
            str(r.wait) if r.action.value == "guide_then_ticket" else "",
        )
    Console().print(table)


@tickets_app.command("list")
def tickets_list(
    all_states: Annotated[bool, typer.Option("--all", help="Include resolved and closed.")] = False,
) -> None:
    """List tickets, most urgent first."""
    from notifier.tickets.repository import summaries

    rows = _on_database(_settings(), lambda conn: summaries(conn))
    table = Table()
    for column in (
        "id",
        "kind",
        "device",
        "fault",
        "priority",
        "tier",
        "team",
        "state",
        "opened",
        "escalations",
        "parent",
    ):
        table.add_column(column)
    for t in rows:
        if not all_states and t.state in ("resolved", "closed"):
            continue
        table.add_row(
            str(t.ticket_id),
            t.kind,
            t.device_id or "",
            t.fault,
            t.priority,
            t.tier,
            t.team,
            t.state,
            f"{t.opened_at:%Y-%m-%d %H:%M}",
            str(t.escalations),
            str(t.parent_ticket_id or ""),
        )
    Console().print(table)


@tickets_app.command("act")
def tickets_act(
    ticket_id: Annotated[int, typer.Argument()],
    action: Annotated[
        str, typer.Argument(help="acknowledge, start, wait, resolve, close or reopen.")
    ],
    actor: Annotated[str, typer.Option(help="Who does it.")] = "cli",
    code: Annotated[str | None, typer.Option(help="Resolution code (resolve).")] = None,
    note: Annotated[
        str | None, typer.Option(help="A note; for wait, the question sent to the owner.")
    ] = None,
) -> None:
    """Move a ticket along its states (the owner is told, as from the console)."""
    from notifier.tickets.types import TicketAction
    from rules.feedback import act, outreach
    from rules.loader import load_rules

    try:
        kind = TicketAction(action)
    except ValueError:
        err.print(
            f"[red]error:[/red] unknown action {action!r}; "
            f"use one of {', '.join(a.value for a in TicketAction)}"
        )
        raise typer.Exit(2) from None
    settings = _settings()
    reach = outreach(settings, load_rules(settings.rules_path))

    def work(conn: Conn) -> str:
        with conn.transaction():
            return act(
                conn,
                reach,
                ticket_id=ticket_id,
                action=kind,
                actor=actor,
                now=datetime.now(UTC),
                resolution_code=code,
                note=note,
            ).value

    typer.echo(f"ticket {ticket_id}: {_on_database(settings, work)}")
