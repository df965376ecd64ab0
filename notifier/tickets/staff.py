"""What support staff do to tickets beyond state changes: assign, comment, escalate by hand,
and give feedback on the prediction, which becomes a training label for ``forewarn train``.
Each function runs inside the caller's transaction."""

from __future__ import annotations

import enum
from datetime import datetime

from forewarn.errors import NotFoundError, TicketError
from forewarn.settings import Settings
from notifier.tickets import repository
from notifier.tickets.flows import Conn, act, hand_over
from notifier.tickets.sla import Escalate
from notifier.tickets.types import Priority, TicketAction, TicketState, Tier
from rules.types import RuleSet


class Verdict(enum.StrEnum):
    """Staff's judgement of the prediction behind a ticket."""

    CONFIRMED = "confirmed"
    FALSE_ALARM = "false_alarm"


def _row(conn: Conn, ticket_id: int) -> dict[str, object]:
    if repository.state_of(conn, ticket_id=ticket_id) is None:  # also locks the row
        raise NotFoundError(f"no ticket {ticket_id}")
    row = repository.ticket_row(conn, ticket_id=ticket_id)
    assert row is not None
    return row


def assign(conn: Conn, *, ticket_id: int, assignee: str, actor: str, now: datetime) -> None:
    """Give a ticket to someone."""
    if not assignee.strip():
        raise TicketError("assign needs the name of who takes the ticket")
    before = _row(conn, ticket_id)["assignee"]
    repository.set_assignee(conn, ticket_id=ticket_id, assignee=assignee.strip())
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="assigned",
        actor=actor,
        detail={"from": before, "to": assignee.strip()},
    )


def comment(conn: Conn, *, ticket_id: int, text: str, actor: str, now: datetime) -> None:
    """Add a note to a ticket's timeline."""
    if not text.strip():
        raise TicketError("a comment needs some text")
    _row(conn, ticket_id)
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="comment",
        actor=actor,
        detail={"text": text.strip()},
    )


def escalate(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    *,
    ticket_id: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Tier:
    """Hand an open ticket to the next tier now; returns that tier."""
    row = _row(conn, ticket_id)
    if not TicketState(str(row["state"])).open:
        raise TicketError(f"ticket {ticket_id} is {row['state']}: reopen it before escalating")
    tier = Tier(str(row["tier"]))
    nxt = tier.next
    if nxt is None:
        raise TicketError(f"ticket {ticket_id} is already at {tier}, the top tier")
    times = rules.tiers[nxt]
    why = f"escalated by {actor}: {reason.strip()}" if reason.strip() else f"escalated by {actor}"
    step = Escalate(nxt, now + times.respond, now + times.solve, why)
    hand_over(
        conn,
        settings,
        ticket_id=ticket_id,
        priority=Priority(str(row["priority"])),
        step=step,
        from_tier=tier,
        now=now,
        actor=actor,
    )
    return nxt


def feedback(
    conn: Conn,
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
    row = _row(conn, ticket_id)
    repository.set_feedback(conn, ticket_id=ticket_id, verdict=verdict.value, at=now, by=actor)
    detail = {"verdict": verdict.value} | ({"note": note} if note else {})
    repository.add_event(
        conn, ticket_id=ticket_id, at=now, kind="feedback", actor=actor, detail=detail
    )
    labels = repository.labelled_incidents(conn, ticket_id=ticket_id)
    for device_id, fault, onset in labels:
        repository.upsert_staff_label(
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
            ticket_id=ticket_id,
            action=TicketAction.RESOLVE,
            actor=actor,
            now=now,
            resolution_code="false_alarm",
            note=note,
        )
    return len(labels)
