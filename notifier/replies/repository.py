"""SQL for owners' replies: the record of each one (its id is the replay guard), the owner who
sent it, and the conversation it answers. Keyword-only; the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from notifier.replies.types import Outcome, OwnerReply, ReplyResult

Conn = psycopg.Connection[Any]


def seen(conn: Conn, *, channel: str, message_id: str) -> ReplyResult | None:
    """What an earlier post of this message did, if it was received before."""
    row = conn.execute(
        "SELECT owner_id, ticket_id, incident_id FROM inbound_messages "
        "WHERE channel = %s AND message_id = %s",
        (channel, message_id),
    ).fetchone()
    return None if row is None else ReplyResult(Outcome.DUPLICATE, row[0], row[1], row[2])


def record(conn: Conn, *, reply: OwnerReply, result: ReplyResult, at: datetime) -> bool:
    """Keep the reply and what it did; False if the same message got in first (a replay
    racing this one)."""
    row = conn.execute(
        """INSERT INTO inbound_messages (channel, message_id, at, signed_at, owner_id, sender,
               text, ticket_id, incident_id, outcome)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (channel, message_id) DO NOTHING RETURNING inbound_id""",
        (
            reply.channel,
            reply.message_id,
            at,
            reply.signed_at,
            result.owner_id,
            reply.sender,
            reply.text,
            result.ticket_id,
            result.incident_id,
            result.outcome.value,
        ),
    ).fetchone()
    return row is not None


def owner_id_for(conn: Conn, *, owner_id: str | None, sender: str | None) -> str | None:
    """The owner a reply comes from: the id the relay gave, else the owner whose contact is
    the sender's address (case and surrounding spaces ignored)."""
    if owner_id:
        row = conn.execute(
            "SELECT owner_id FROM owners WHERE owner_id = %s", (owner_id,)
        ).fetchone()
        return None if row is None else str(row[0])
    if not sender or not sender.strip():
        return None
    rows = conn.execute(
        "SELECT owner_id FROM owners WHERE lower(trim(contact)) = lower(trim(%s)) LIMIT 2",
        (sender,),
    ).fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None  # two owners share it: cannot tell


@dataclass(frozen=True, slots=True)
class Conversation:
    """The ticket or incident an owner's message answers."""

    ticket_id: int | None
    incident_id: int | None
    device_id: str | None


def owners_ticket(conn: Conn, *, owner_id: str, ticket_id: int) -> int | None:
    """The ticket if it is this owner's (a number quoted by someone else's owner is ignored)."""
    row = conn.execute(
        "SELECT ticket_id FROM tickets WHERE ticket_id = %s AND customer_id = %s",
        (ticket_id, owner_id),
    ).fetchone()
    return None if row is None else int(row[0])


def latest_conversation(conn: Conn, *, owner_id: str, since: datetime) -> Conversation | None:
    """The conversation the owner most likely answers: what happened last, since `since`,
    between a notification to them naming a ticket or an incident (what they read) and any
    activity on one of their tickets (an agent's call is not in the outbox)."""
    row = conn.execute(
        """SELECT ticket_id, incident_id, device_id FROM (
               SELECT ticket_id, incident_id, device_id, created_at AS at, notification_id AS n
               FROM notifications
               WHERE owner_id = %(owner)s AND audience = 'owner' AND created_at >= %(since)s
                 AND (ticket_id IS NOT NULL OR incident_id IS NOT NULL)
               UNION ALL
               SELECT t.ticket_id, t.incident_id, t.device_id, max(e.at), 0
               FROM tickets t JOIN ticket_events e USING (ticket_id)
               WHERE t.customer_id = %(owner)s AND e.at >= %(since)s
               GROUP BY t.ticket_id) c
           ORDER BY at DESC, n DESC LIMIT 1""",
        {"owner": owner_id, "since": since},
    ).fetchone()
    return None if row is None else Conversation(row[0], row[1], row[2])


def only_device(conn: Conn, *, owner_id: str) -> str | None:
    """The owner's device when they have exactly one."""
    rows = conn.execute(
        "SELECT device_id FROM devices WHERE owner_id = %s LIMIT 2", (owner_id,)
    ).fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None


@dataclass(frozen=True, slots=True)
class IncidentState:
    """Where an incident a reply may be about stands."""

    device_id: str
    fault: str
    open: bool
    ticket_id: int | None


def incident_state(conn: Conn, *, incident_id: int) -> IncidentState:
    """Device, fault, whether it is open, and its ticket."""
    row = conn.execute(
        "SELECT device_id, fault, closed_at IS NULL, ticket_id FROM incidents "
        "WHERE incident_id = %s",
        (incident_id,),
    ).fetchone()
    assert row is not None
    return IncidentState(str(row[0]), str(row[1]), bool(row[2]), row[3])
