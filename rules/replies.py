"""What an owner's reply does, in one transaction with its record:

1. The same channel's message id again is a replay (or a relay's retry): nothing is done.
2. The owner is the one the relay names, else the one whose contact is the sender's address;
   no owner matches: the message is kept as unmatched and nothing else happens.
3. The conversation: the ticket whose number the text (or the relay) names, if it is the
   owner's; else what Forewarn last wrote to the owner about within the recurrence window (a
   ticket, or an incident's guide).
4. An open ticket gets the reply on its timeline (waiting for the owner: back in progress).
   A ticket resolved within the recurrence window is reopened. An incident whose guide is
   being tried gets its ticket now. Anything else (no conversation, or an older one) opens a
   ticket from the message itself.
"""

from __future__ import annotations

from datetime import datetime

from forewarn.domain import Segment
from forewarn.settings import Settings
from notifier.notices import repository as owners
from notifier.replies import repository as inbox
from notifier.replies.repository import IncidentState
from notifier.replies.types import Outcome, OwnerReply, ReplyResult, ticket_number
from notifier.tickets import replies as ticket_replies
from notifier.tickets import repository as ticket_repo
from notifier.tickets.types import TicketState
from rules import decide, facts
from rules import repository as repo
from rules.flows import open_incident_ticket
from rules.types import RuleSet

Conn = repo.Conn


def take_reply(
    conn: Conn, settings: Settings, rules: RuleSet, *, reply: OwnerReply, now: datetime
) -> ReplyResult:
    """Match an owner's reply to its conversation and act on it; returns what it did."""
    with conn.transaction():
        repo.lock(conn, key=f"inbound:{reply.channel}:{reply.message_id}")
        earlier = inbox.seen(conn, channel=reply.channel, message_id=reply.message_id)
        if earlier is not None:
            return earlier
        owner_id = inbox.owner_id_for(conn, owner_id=reply.owner_id, sender=reply.sender)
        if owner_id is None:
            result = ReplyResult(Outcome.UNMATCHED)
        else:
            repo.lock(conn, key=f"owner-conversation:{owner_id}")
            result = _act(conn, settings, rules, reply=reply, owner_id=owner_id, now=now)
        inbox.record(conn, reply=reply, result=result, at=now)
        return result


def _act(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    *,
    reply: OwnerReply,
    owner_id: str,
    now: datetime,
) -> ReplyResult:
    window = rules.timing.recurrence_window
    named = reply.ticket_id or ticket_number(reply.text)
    ticket_id = (
        None if named is None else inbox.owners_ticket(conn, owner_id=owner_id, ticket_id=named)
    )
    incident_id = None
    device_id = None
    if ticket_id is None:
        talk = inbox.latest_conversation(conn, owner_id=owner_id, since=now - window)
        if talk is not None:
            ticket_id, incident_id, device_id = talk.ticket_id, talk.incident_id, talk.device_id
    if ticket_id is None and incident_id is not None:
        found = inbox.incident_state(conn, incident_id=incident_id)
        device_id, ticket_id = found.device_id, found.ticket_id
        if ticket_id is None and found.open:
            opened = _incident_ticket(conn, settings, rules, incident_id, found, now)
            if opened is not None:
                _add(conn, settings, opened, owner_id, reply, now)
                return ReplyResult(Outcome.OPENED, owner_id, opened, incident_id)
    if ticket_id is not None:
        row = ticket_repo.ticket_row(conn, ticket_id=ticket_id)
        assert row is not None
        device_id = device_id or row["device_id"]
        if TicketState(str(row["state"])).open:
            _add(conn, settings, ticket_id, owner_id, reply, now)
            return ReplyResult(Outcome.ADDED, owner_id, ticket_id, incident_id)
        resolved = row["resolved_at"] or row["closed_at"]
        if resolved is not None and now - resolved <= window:
            ticket_replies.reopen_by_owner(
                conn,
                settings,
                ticket_id=ticket_id,
                owner_id=owner_id,
                text=reply.text,
                channel=reply.channel,
                now=now,
            )
            return ReplyResult(Outcome.REOPENED, owner_id, ticket_id, incident_id)
    opened = _owner_ticket(
        conn, settings, rules, owner_id, device_id, reply, now, follows=ticket_id
    )
    return ReplyResult(Outcome.OPENED, owner_id, opened, incident_id)


def _add(
    conn: Conn, settings: Settings, ticket_id: int, owner_id: str, reply: OwnerReply, now: datetime
) -> None:
    ticket_replies.add_reply(
        conn,
        settings,
        ticket_id=ticket_id,
        owner_id=owner_id,
        text=reply.text,
        channel=reply.channel,
        now=now,
    )


def _incident_ticket(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    incident_id: int,
    found: IncidentState,
    now: datetime,
) -> int | None:
    """Open an open incident's ticket now (its guide did not help), as its rule says."""
    repo.lock(conn, key=f"incident:{found.device_id}:{found.fault}")
    incident = repo.open_incident(conn, incident_id=incident_id)
    device = facts.device(conn, device_id=found.device_id)
    if incident is None or device is None or incident.ticket_id is not None:
        return None
    history = facts.history(
        conn, device=device, fault=found.fault, now=now, rules=rules, cohort=False
    )
    decision = decide.on_reply(incident, device, history, rules, now)
    assert decision.ticket is not None
    return open_incident_ticket(
        conn, settings, incident=incident, device=device, order=decision.ticket, now=now
    )


def _owner_ticket(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    owner_id: str,
    device_id: str | None,
    reply: OwnerReply,
    now: datetime,
    *,
    follows: int | None,
) -> int:
    """A ticket from the message itself, about the conversation's device (or the owner's only
    device), in the owner's segment."""
    owner = owners.owner(conn, owner_id=owner_id)
    assert owner is not None
    device_id = device_id or inbox.only_device(conn, owner_id=owner_id)
    device = None if device_id is None else facts.device(conn, device_id=device_id)
    if device is not None:
        segment = decide.segment_of(device, now, rules.timing)
    else:
        segment = Segment.ENTERPRISE if owner.enterprise_account else Segment.REGULAR
    return ticket_replies.open_owner_ticket(
        conn,
        settings,
        rules,
        owner=owner,
        segment=segment,
        device=None if device is None else (device.device_id, device.model, device.firmware),
        text=reply.text,
        channel=reply.channel,
        now=now,
        follows=follows,
    )
