"""Personal data in the notifier's tables: erased when an owner is forgotten, and when a
finished ticket passes its retention. SQL only; the caller owns the transaction.

What an owner's personal data is, here: the contact copied into their tickets and the
evidence gathered then; what they wrote (replies, survey comments) and what was written to
them (notification bodies, the addresses they went to, the redacted addresses of attempts);
the sender address of their replies. Tickets, surveys' ratings and the timeline's shape stay,
so the KPIs still count them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]

ERASED = "(erased)"
# What a timeline entry's detail may hold in words (to or from the owner, or staff's notes).
_WORDS = ("text", "request", "note", "comment", "sender")


def forget_owner(conn: Conn, *, owner_id: str) -> dict[str, int]:
    """Erase an owner's personal data from tickets, their timelines, the outbox, replies and
    surveys; returns rows changed per table."""
    tickets = [
        r[0]
        for r in conn.execute(
            "SELECT ticket_id FROM tickets WHERE customer_id = %s FOR UPDATE", (owner_id,)
        )
    ]
    changed = erase_tickets(conn, ticket_ids=tickets)
    changed["notifications"] = (
        changed.get("notifications", 0)
        + conn.execute(
            f"""UPDATE notifications SET body = '{ERASED}', payload = '{{}}',
                target = CASE WHEN audience = 'owner' THEN '{ERASED}' ELSE target END,
                status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
                last_error = CASE WHEN status = 'pending' THEN 'cancelled: the owner was forgotten'
                                  ELSE last_error END
            WHERE owner_id = %s AND body <> '{ERASED}'""",
            (owner_id,),
        ).rowcount
    )
    changed["notification_attempts"] = conn.execute(
        f"""UPDATE notification_attempts a SET target = '{ERASED}'
              FROM notifications n
             WHERE a.notification_id = n.notification_id AND n.owner_id = %s
               AND n.audience = 'owner' AND a.target <> '{ERASED}'""",
        (owner_id,),
    ).rowcount
    changed["inbound_messages"] = (
        changed.get("inbound_messages", 0)
        + conn.execute(
            f"UPDATE inbound_messages SET text = '{ERASED}', sender = NULL "
            f"WHERE owner_id = %s AND text <> '{ERASED}'",
            (owner_id,),
        ).rowcount
    )
    changed["surveys"] = (
        changed.get("surveys", 0)
        + conn.execute(
            "UPDATE surveys SET comment = NULL WHERE owner_id = %s AND comment IS NOT NULL",
            (owner_id,),
        ).rowcount
    )
    return changed


def erase_tickets(conn: Conn, *, ticket_ids: list[int]) -> dict[str, int]:
    """Erase the personal data of these tickets (see the module); returns rows changed per
    table."""
    if not ticket_ids:
        return {"tickets": 0}
    ids = (ticket_ids,)
    return {
        "tickets": conn.execute(
            "UPDATE tickets SET contact = NULL, contact_person = NULL, evidence = '{}', "
            "personal_data_erased_at = clock_timestamp() WHERE ticket_id = ANY(%s)",
            ids,
        ).rowcount,
        "ticket_events": conn.execute(
            "UPDATE ticket_events SET detail = (detail - %s::text[]) || '{\"erased\": true}' "
            "WHERE ticket_id = ANY(%s) AND detail ?| %s::text[]",
            (list(_WORDS), ticket_ids, list(_WORDS)),
        ).rowcount,
        "notifications": conn.execute(
            f"UPDATE notifications SET body = '{ERASED}', payload = '{{}}' "
            f"WHERE ticket_id = ANY(%s) AND audience = 'owner' AND body <> '{ERASED}'",
            ids,
        ).rowcount,
        "inbound_messages": conn.execute(
            f"UPDATE inbound_messages SET text = '{ERASED}', sender = NULL "
            f"WHERE ticket_id = ANY(%s) AND text <> '{ERASED}'",
            ids,
        ).rowcount,
        "surveys": conn.execute(
            "UPDATE surveys SET comment = NULL WHERE ticket_id = ANY(%s) AND comment IS NOT NULL",
            ids,
        ).rowcount,
    }


def expire(
    conn: Conn, *, tickets_before: datetime, notifications_before: datetime
) -> dict[str, int]:
    """Retention: erase the personal data of tickets finished before `tickets_before`; delete
    notifications (and their attempts) no longer pending created before
    `notifications_before`. Returns rows changed per table."""
    finished = [
        r[0]
        for r in conn.execute(
            "SELECT ticket_id FROM tickets WHERE state IN ('resolved', 'closed') "
            "AND personal_data_erased_at IS NULL AND coalesce(closed_at, resolved_at) < %s",
            (tickets_before,),
        )
    ]
    changed = erase_tickets(conn, ticket_ids=finished) if finished else {"tickets": 0}
    old = (
        "SELECT notification_id FROM notifications WHERE created_at < %s "
        "AND status NOT IN ('pending', 'sending')"
    )
    changed["notification_attempts"] = conn.execute(
        f"DELETE FROM notification_attempts WHERE notification_id IN ({old})",
        (notifications_before,),
    ).rowcount
    changed["notifications deleted"] = conn.execute(
        "DELETE FROM notifications WHERE created_at < %s AND status NOT IN ('pending', 'sending')"
        " AND notification_id NOT IN (SELECT notification_id FROM notification_attempts)",
        (notifications_before,),
    ).rowcount
    return changed
