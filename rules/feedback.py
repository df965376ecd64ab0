"""What staff decide about a ticket reaches the incidents and the models: resolving a ticket
closes the incidents behind it, and staff's verdict on the prediction becomes a training
label. Each function runs inside the caller's transaction and writes every table through
the repository of the package that owns it (tickets: notifier; incidents: rules; labels:
models)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from forewarn.settings import Settings
from models import repository as labels
from notifier.surveys.flows import link_base
from notifier.tickets import actions as tickets
from notifier.tickets import repository as ticket_repo
from notifier.tickets.staff import locked_row
from notifier.tickets.types import TicketAction, TicketState, Verdict
from rules import repository as repo
from rules.types import RuleSet

Conn = ticket_repo.Conn


def outreach(
    settings: Settings, rules: RuleSet, request_base: str | None = None
) -> tickets.Outreach:
    """What telling owners needs: the settings, where survey links point (the configured
    public URL, else the address of the request), and the rule set's recurrence window, in
    which an owner's reply reopens a resolved ticket."""
    return tickets.Outreach(
        settings, link_base(settings, request_base), rules.timing.recurrence_window
    )


def act(
    conn: Conn,
    reach: tickets.Outreach,
    *,
    ticket_id: int,
    action: TicketAction,
    actor: str,
    now: datetime,
    resolution_code: str | None = None,
    note: str | None = None,
) -> TicketState:
    """A staff action on a ticket's state. Resolved means the problem is dealt with: the
    incidents behind the ticket close too, so a new prediction for the device opens a new
    incident (a recurrence) instead of joining a stale one; the owner is told what was done
    and asked to confirm it."""

    def close() -> Mapping[str, Any]:
        closed = repo.close_ticket_incidents(conn, ticket_id=ticket_id, at=now)
        return {"incidents_closed": closed}

    return tickets.act(
        conn,
        reach,
        ticket_id=ticket_id,
        action=action,
        actor=actor,
        now=now,
        resolution_code=resolution_code,
        note=note,
        on_resolved=close,
    )


def feedback(
    conn: Conn,
    reach: tickets.Outreach,
    *,
    ticket_id: int,
    verdict: Verdict,
    actor: str,
    now: datetime,
    note: str | None = None,
) -> int:
    """Record staff's verdict on the prediction and label each incident behind the ticket for
    training (source 'staff'); a false alarm also resolves the ticket if it is open.
    Returns how many labels were written."""
    row = locked_row(conn, ticket_id)
    ticket_repo.set_feedback(conn, ticket_id=ticket_id, verdict=verdict.value, at=now, by=actor)
    detail = {"verdict": verdict.value} | ({"note": note} if note else {})
    ticket_repo.add_event(
        conn, ticket_id=ticket_id, at=now, kind="feedback", actor=actor, detail=detail
    )
    incidents = repo.ticket_incidents(conn, ticket_id=ticket_id)
    for device_id, fault, onset in incidents:
        labels.upsert_staff_label(
            conn,
            device_id=device_id,
            fault=fault,
            onset_at=onset,
            until=max(onset, now),
            verdict=verdict.value,
            ticket_id=ticket_id,
            by=actor,
        )
    if verdict is Verdict.FALSE_ALARM and TicketState(str(row["state"])).open:
        act(
            conn,
            reach,
            ticket_id=ticket_id,
            action=TicketAction.RESOLVE,
            actor=actor,
            now=now,
            resolution_code="false_alarm",
            note=note,
        )
    return len(incidents)
