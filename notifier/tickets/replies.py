"""An owner's message on a ticket: added to its timeline (a ticket waiting for the owner goes
back in progress), reopening a recently resolved one, or opening a ticket of its own. The
ticket's team is told; each function runs in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from forewarn.domain import Owner, Segment
from forewarn.settings import Settings
from notifier.notices.flows import tell_owner
from notifier.notices.templates import OWNER_MESSAGE
from notifier.notices.types import NoticeKind
from notifier.tickets import repository
from notifier.tickets.actions import reopened
from notifier.tickets.flows import Conn, tell_staff, to_helpdesk
from notifier.tickets.sla import dues
from notifier.tickets.types import Priority, SlaPolicy, TicketState, Tier

# An owner's own message is advice or a question until staff say otherwise: P3 at L1 (the
# manual's "how-to question"), with an enterprise's dedicated team and first response.
OWNER_PRIORITY, OWNER_TIER = Priority.MINOR, Tier.L1
SYMPTOM_CHARS = 300


def add_reply(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    owner_id: str,
    text: str,
    channel: str,
    now: datetime,
) -> None:
    """The owner's message joins the ticket's timeline; a ticket waiting for them goes back in
    progress; the ticket's team is told."""
    state = repository.state_of(conn, ticket_id=ticket_id)
    actor = f"owner:{owner_id}"
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="owner_reply",
        actor=actor,
        detail={"text": text, "channel": channel},
    )
    if state == TicketState.WAITING.value:
        repository.set_state(conn, ticket_id=ticket_id, state="in_progress", at=now, actor=actor)
        repository.add_event(
            conn,
            ticket_id=ticket_id,
            at=now,
            kind="start",
            actor=actor,
            detail={"from": "waiting", "to": "in_progress", "note": "the owner replied"},
        )
    _tell_team(
        conn,
        settings,
        ticket_id=ticket_id,
        now=now,
        title=f"ticket {ticket_id}: the owner replied",
        body=text,
    )


def reopen_by_owner(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    owner_id: str,
    text: str,
    channel: str,
    now: datetime,
) -> None:
    """The owner wrote about a resolved ticket: it is open again, with their message."""
    actor = f"owner:{owner_id}"
    current = repository.state_of(conn, ticket_id=ticket_id)
    repository.set_state(conn, ticket_id=ticket_id, state="new", at=now, actor=actor)
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="reopen",
        actor=actor,
        detail={"from": current, "to": "new", "note": "the owner wrote after the resolution"},
    )
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="owner_reply",
        actor=actor,
        detail={"text": text, "channel": channel},
    )
    reopened(conn, settings, ticket_id=ticket_id, now=now, by_owner=True)


def open_owner_ticket(
    conn: Conn,
    settings: Settings,
    policy: SlaPolicy,
    *,
    owner: Owner,
    segment: Segment,
    device: tuple[str, str | None, str | None] | None,
    text: str,
    channel: str,
    now: datetime,
    follows: int | None = None,
) -> int:
    """A ticket from the owner's message (no open ticket or incident to add it to); `device`
    is (id, model, firmware) when the conversation was about one, `follows` an older ticket
    it comes after. Returns its id; the owner is told its number and when a person answers."""
    enterprise = segment is Segment.ENTERPRISE and owner.enterprise_account
    team = f"enterprise:{owner.enterprise_account}" if enterprise else OWNER_TIER.team
    device_id, model, firmware = device if device is not None else (None, None, None)
    trigger = f"message from the owner on {channel}"
    if follows is not None:
        trigger += f", after ticket {follows} was resolved"
    fields = {
        "kind": "owner",
        "customer_id": owner.owner_id,
        "contact": owner.contact,
        "device_id": device_id,
        "model": model,
        "firmware": firmware,
        "fault": OWNER_MESSAGE,
        "symptom": " ".join(text.split())[:SYMPTOM_CHARS],
        "trigger": trigger,
        "scope": f"1 device ({device_id})" if device_id else "the owner's message",
        "evidence": {"message": text, "channel": channel},
        "segment": segment.value,
        "priority": OWNER_PRIORITY.value,
        "tier": OWNER_TIER.value,
        "team": team,
        "recurrence_of": follows,
        "phrasing": (
            {"trigger": {"code": "owner_message", "channel": channel, "follows": follows}}
        ),
    }
    d = dues(policy, priority=OWNER_PRIORITY, tier=OWNER_TIER, segment=segment, opened_at=now)
    ticket_id = repository.insert_ticket(conn, fields=fields, dues=d, opened_at=now)
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="opened",
        detail={"priority": OWNER_PRIORITY.value, "tier": OWNER_TIER.value, "team": team},
    )
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="owner_reply",
        actor=f"owner:{owner.owner_id}",
        detail={"text": text, "channel": channel},
    )
    _tell_team(
        conn,
        settings,
        ticket_id=ticket_id,
        now=now,
        title=f"[{OWNER_PRIORITY.label}][{OWNER_TIER}] message from {owner.owner_id}",
        body=text,
        key=f"ticket:{ticket_id}:opened",
    )
    to_helpdesk(conn, settings, ticket_id=ticket_id, now=now, key=f"ticket:{ticket_id}:sink")
    tell_owner(
        conn, settings, ticket_id=ticket_id, kind=NoticeKind.TICKET_OPENED, now=now, key="opened"
    )
    return ticket_id


def _tell_team(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    now: datetime,
    title: str,
    body: str,
    key: str | None = None,
) -> None:
    row = repository.ticket_row(conn, ticket_id=ticket_id)
    assert row is not None
    tag = repository.team_tag_of(conn, ticket_id=ticket_id)
    tell_staff(
        conn,
        settings,
        ticket_id=ticket_id,
        tag=tag,
        now=now,
        title=title,
        body=body[:1000],
        key=key or f"ticket:{ticket_id}:reply:{now.isoformat()}",
    )
