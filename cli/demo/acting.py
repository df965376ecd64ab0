"""The demo's acting half: rules, guides, the responder and the dispatcher, with the demo
inbox standing in for owners' apps, staff channels and the helpdesk.

The fleet is replayed faster than real time, so the responder and the dispatcher read a
``ScaledClock`` that runs with the simulation: waits, quiet hours and SLA dues pass in step
with the telemetry, and the demo shows escalations within minutes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.table import Table

from cli.demo.inbox import DemoInbox
from forewarn.clock import ScaledClock
from forewarn.db import Conn, connect
from forewarn.settings import Settings
from forewarn.signing import new_secret
from notifier import repository as outbox
from notifier.dispatcher import Dispatcher
from notifier.guides.flows import default_directory, load_directory
from rules.loader import load_rules
from rules.responder import Responder
from simulators import repository as simulated

# After the fleet stops, give the dispatcher this long to send what is already due.
DRAIN_SECONDS = 5.0
# The demo's responder keeps its cursor under this name.
RESPONDER = "demo"


@dataclass(frozen=True, slots=True)
class Acting:
    """The running acting half of the demo."""

    settings: Settings  # with the inbox as staff channel and helpdesk, unless configured
    inbox: DemoInbox
    clock: ScaledClock  # business time: the responder's, the dispatcher's and the console's


@contextlib.contextmanager
def acting(
    settings: Settings, *, origin: datetime, speedup: float, say: Console
) -> Iterator[Acting]:
    """Start the inbox, the responder and the dispatcher; stop them on exit."""
    inbox = DemoInbox()
    inbox.start()
    changes: dict[str, object] = {}
    if settings.notify_config is None:
        config = inbox.write_staff_config(settings.data_dir / "demo-apprise.yaml")
        changes["notify_config"] = str(config)
    if settings.ticket_webhook_url is None:
        # The demo's own helpdesk on this host: plain http, signed like any sink.
        changes["ticket_webhook_url"] = inbox.helpdesk_url()
        changes["ticket_webhook_allow_http"] = True
        changes["ticket_webhook_secret"] = new_secret()
    if settings.survey_secret is None:
        # Survey links need a signing secret: one for this run (links die with it).
        changes["survey_secret"] = new_secret()
    live = settings.with_overrides(**changes) if changes else settings
    rules = load_rules(live.rules_path)
    with connect(live) as conn:
        report = load_directory(conn, live.guides_dir or default_directory())
    say.print(
        f"rules: {len(rules.rules)} from {rules.source}; guides: {report.files} in the "
        f"knowledge base; owners' apps, staff and helpdesk: http://{inbox.base}"
    )
    clock = ScaledClock(origin, speedup)
    responder = Responder(live, rules, clock, name=RESPONDER)
    dispatcher = Dispatcher(live, clock)
    responder.start()
    dispatcher.start()
    try:
        yield Acting(live, inbox, clock)
    finally:
        _drain(live, clock)
        responder.stop()
        dispatcher.stop()
        inbox.stop()


def give_owners_targets(conn: Conn, part: Acting) -> int:
    """Point owners that have no notification target at the demo inbox (their 'app')."""
    with conn.transaction():
        return simulated.default_owner_targets(conn=conn, prefix=part.inbox.owner_target())


def _drain(settings: Settings, clock: ScaledClock) -> None:
    """Wait (a little) until nothing due is left in the outbox."""
    deadline = time.monotonic() + DRAIN_SECONDS
    with connect(settings, autocommit=True) as conn:
        while time.monotonic() < deadline and outbox.due(conn, now=clock.now()):
            time.sleep(0.2)


def add_live_rows(table: Table, counts: dict[str, int]) -> None:
    """The acting figures in the live view."""
    table.add_row("guides queued / sent", f"{counts['guides_queued']} / {counts['guides_sent']}")
    table.add_row(
        "tickets (device / fleet incidents)",
        f"{counts['device_tickets']} / {counts['fleet_incidents']}",
    )
    table.add_row("escalations", str(counts["escalations"]))


def print_summary(
    console: Console, counts: dict[str, int], inbox: dict[str, int], notifications: dict[str, int]
) -> None:
    """The acting half's summary: every figure read from the database, plus what the inbox got."""
    table = Table(title="acting on predictions (from the database)", show_header=False)
    table.add_row("incidents opened", str(counts["incidents"]))
    table.add_row(
        "guides sent to owners",
        f"{counts['guides_sent']} "
        f"(of {counts['guides_queued']} queued; the rest wait for quiet hours to end)",
    )
    # As the self-service KPI counts them: no ticket of their own, nor their fleet's.
    table.add_row("recovered after a guide, no ticket", str(counts["recovered_after_guide"]))
    table.add_row("novices onboarded", str(counts["onboarded"]))
    table.add_row("ticket notices to owners", str(counts["owner_notices"]))
    table.add_row(
        "device tickets opened",
        f"{counts['device_tickets']} ({counts['critical_tickets']} critical)",
    )
    table.add_row(
        "fleet incidents",
        f"{counts['fleet_incidents']} (largest: {counts['fleet_devices']} devices)",
    )
    table.add_row("escalations", str(counts["escalations"]))
    table.add_row("breach warnings", str(counts["breach_warnings"]))
    table.add_row("notifications failed", str(counts["notifications_failed"]))
    table.add_row(
        "outbox by status (all runs)",
        ", ".join(f"{k} {v}" for k, v in sorted(notifications.items())),
    )
    table.add_row(
        "received by the demo inbox",
        ", ".join(f"{k} {v}" for k, v in sorted(inbox.items())) or "nothing",
    )
    console.print(table)
