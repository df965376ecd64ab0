"""What support staff do to tickets beyond state changes: assign, comment, escalate by hand.
(Feedback on the prediction, which becomes a training label, is ``rules.feedback``.)
Each function runs inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from forewarn.errors import NotFoundError, TicketError
from forewarn.settings import Settings
from notifier.tickets import repository
from notifier.tickets.flows import Conn, hand_over
from notifier.tickets.sla import handed_over
from notifier.tickets.types import Priority, SlaPolicy, TicketState, Tier


def locked_row(conn: Conn, ticket_id: int) -> dict[str, object]:
    """The ticket row, locked for this transaction; NotFoundError if there is none."""
    if repository.state_of(conn, ticket_id=ticket_id) is None:  # also locks the row
        raise NotFoundError(f"no ticket {ticket_id}")
    row = repository.ticket_row(conn, ticket_id=ticket_id)
    assert row is not None
    return row


def assign(conn: Conn, *, ticket_id: int, assignee: str, actor: str, now: datetime) -> None:
    """Give a ticket to someone."""
    if not assignee.strip():
        raise TicketError("assign needs the name of who takes the ticket")
    before = locked_row(conn, ticket_id)["assignee"]
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
    locked_row(conn, ticket_id)
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
    policy: SlaPolicy,
    *,
    ticket_id: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Tier:
    """Hand an open ticket to the next tier now; returns that tier."""
    row = locked_row(conn, ticket_id)
    if not TicketState(str(row["state"])).open:
        raise TicketError(f"ticket {ticket_id} is {row['state']}: reopen it before escalating")
    tier = Tier(str(row["tier"]))
    nxt = tier.next
    if nxt is None:
        raise TicketError(f"ticket {ticket_id} is already at {tier}, the top tier")
    why = f"escalated by {actor}: {reason.strip()}" if reason.strip() else f"escalated by {actor}"
    priority = Priority(str(row["priority"]))
    step = handed_over(policy, priority=priority, to_tier=nxt, now=now, why=why)
    hand_over(
        conn,
        settings,
        ticket_id=ticket_id,
        priority=priority,
        step=step,
        from_tier=tier,
        now=now,
        actor=actor,
    )
    return nxt
