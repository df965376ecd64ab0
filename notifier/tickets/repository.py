"""SQL for tickets and their timelines. Keyword-only functions; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from notifier.tickets.sla import TicketClock
from notifier.tickets.types import Dues, Priority, TicketSummary, Tier, team_tag

Conn = psycopg.Connection[Any]

# Evidence keeps at most this many readings: a ticket should load in a glance.
EVIDENCE_ROWS = 120


def insert_ticket(conn: Conn, *, fields: Mapping[str, Any], dues: Dues, opened_at: datetime) -> int:
    """A new ticket; returns its id. `fields` are column values (evidence as a dict)."""
    values = dict(fields)
    values["evidence"] = Jsonb(values.get("evidence", {}))
    values["phrasing"] = Jsonb(values.get("phrasing", {}))
    values |= {
        "opened_at": opened_at,
        "tier_since": opened_at,
        "first_response_due": dues.first_response_due,
        "resolution_due": dues.resolution_due,
        "tier_respond_due": dues.tier_respond_due,
        "tier_solve_due": dues.tier_solve_due,
    }
    columns = ", ".join(values)
    marks = ", ".join(f"%({k})s" for k in values)
    row = conn.execute(
        f"INSERT INTO tickets ({columns}) VALUES ({marks}) RETURNING ticket_id", values
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_event(
    conn: Conn,
    *,
    ticket_id: int,
    at: datetime,
    kind: str,
    actor: str = "forewarn",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append to a ticket's timeline."""
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, at, kind, actor, detail) VALUES (%s, %s, %s, %s, %s)",
        (ticket_id, at, kind, actor, Jsonb(dict(detail or {}))),
    )


def open_clocks(conn: Conn, *, limit: int = 5000) -> list[TicketClock]:
    """The clock fields of every open ticket, most urgent first."""
    rows = conn.execute(
        """SELECT ticket_id, priority, tier, tier_since, tier_respond_due, tier_solve_due,
                  tier_acknowledged_at, warned_at, breached_at
           FROM tickets WHERE state NOT IN ('resolved', 'closed')
           ORDER BY tier_respond_due LIMIT %s""",
        (limit,),
    ).fetchall()
    return [
        TicketClock(r[0], Priority(r[1]), Tier(r[2]), r[3], r[4], r[5], r[6], r[7], r[8])
        for r in rows
    ]


def escalate(
    conn: Conn,
    *,
    ticket_id: int,
    tier: Tier,
    at: datetime,
    respond_due: datetime,
    solve_due: datetime,
) -> None:
    """Hand a ticket to `tier`: its tier clocks start again and it waits to be taken up.
    Support tickets move to that tier's team; an enterprise's dedicated team keeps them."""
    conn.execute(
        """UPDATE tickets SET tier = %s, tier_since = %s, tier_respond_due = %s,
                  team = CASE WHEN team LIKE 'support-%%' THEN 'support-' || lower(%s)
                              ELSE team END,
                  tier_solve_due = %s, tier_acknowledged_at = NULL, warned_at = NULL,
                  escalations = escalations + 1, updated_at = clock_timestamp()
           WHERE ticket_id = %s""",
        (tier.value, at, respond_due, tier.value, solve_due, ticket_id),
    )


def set_warned(conn: Conn, *, ticket_id: int, at: datetime) -> None:
    """Note that a breach warning was raised."""
    conn.execute(
        "UPDATE tickets SET warned_at = %s, updated_at = clock_timestamp() WHERE ticket_id = %s",
        (at, ticket_id),
    )


def set_breached(conn: Conn, *, ticket_id: int, at: datetime) -> None:
    """Note that a due passed at the top tier."""
    conn.execute(
        "UPDATE tickets SET breached_at = %s, updated_at = clock_timestamp() WHERE ticket_id = %s",
        (at, ticket_id),
    )


def set_state(
    conn: Conn,
    *,
    ticket_id: int,
    state: str,
    at: datetime,
    actor: str,
    resolution_code: str | None = None,
) -> None:
    """Move a ticket to `state`, stamping the times that state change means. (The first
    response is the first contact with the customer, ``mark_contact``, not a state change.)
    Reopening clears the resolution and any call-back task."""
    conn.execute(
        """UPDATE tickets SET state = %(state)s,
               tier_acknowledged_at = CASE
                   WHEN %(state)s IN ('acknowledged', 'in_progress', 'waiting')
                   THEN coalesce(tier_acknowledged_at, %(at)s) ELSE tier_acknowledged_at END,
               assignee = CASE WHEN %(state)s IN ('acknowledged', 'in_progress', 'waiting')
                   THEN coalesce(assignee, %(actor)s) ELSE assignee END,
               callback_due_at = CASE WHEN %(state)s = 'new' THEN NULL ELSE callback_due_at END,
               callback_done_at = CASE WHEN %(state)s = 'new' THEN NULL ELSE callback_done_at END,
               resolved_at = CASE WHEN %(state)s = 'resolved' THEN %(at)s
                   WHEN %(state)s = 'new' THEN NULL ELSE resolved_at END,
               resolution_code = CASE WHEN %(state)s = 'resolved' THEN %(code)s
                   WHEN %(state)s = 'new' THEN NULL ELSE resolution_code END,
               closed_at = CASE WHEN %(state)s = 'closed' THEN %(at)s
                   WHEN %(state)s = 'new' THEN NULL ELSE closed_at END,
               reopened = reopened + CASE WHEN %(state)s = 'new' THEN 1 ELSE 0 END,
               updated_at = clock_timestamp()
           WHERE ticket_id = %(id)s""",
        {"state": state, "at": at, "actor": actor, "code": resolution_code, "id": ticket_id},
    )


def mark_contact(conn: Conn, *, ticket_id: int, at: datetime, actor: str) -> None:
    """A person contacted the customer (a message sent or a call made): the first response,
    if it is the first; a new ticket is thereby taken up (acknowledged)."""
    conn.execute(
        """UPDATE tickets SET first_response_at = coalesce(first_response_at, %(at)s),
                  tier_acknowledged_at = CASE WHEN state IN ('resolved', 'closed')
                      THEN tier_acknowledged_at ELSE coalesce(tier_acknowledged_at, %(at)s) END,
                  assignee = coalesce(assignee, %(actor)s),
                  state = CASE WHEN state = 'new' THEN 'acknowledged' ELSE state END,
                  updated_at = clock_timestamp()
           WHERE ticket_id = %(id)s""",
        {"at": at, "actor": actor, "id": ticket_id},
    )


def set_callback(
    conn: Conn, *, ticket_id: int, due_at: datetime | None = None, done_at: datetime | None = None
) -> None:
    """Put a call-back task on a ticket (`due_at`) or mark it done (`done_at`)."""
    conn.execute(
        """UPDATE tickets SET callback_due_at = coalesce(%s, callback_due_at),
                  callback_done_at = CASE WHEN %s::timestamptz IS NULL THEN NULL
                                          ELSE %s::timestamptz END,
                  updated_at = clock_timestamp()
           WHERE ticket_id = %s""",
        (due_at, done_at, done_at, ticket_id),
    )


def state_of(conn: Conn, *, ticket_id: int) -> str | None:
    """A ticket's state, locking its row for the caller's transaction (None: no such ticket)."""
    row = conn.execute(
        "SELECT state FROM tickets WHERE ticket_id = %s FOR UPDATE", (ticket_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def suggest_recovery(conn: Conn, *, ticket_id: int, at: datetime) -> bool:
    """Flag an open ticket whose device recovered; False if it was closed or already flagged."""
    row = conn.execute(
        """UPDATE tickets SET recovery_suggested_at = %s, updated_at = clock_timestamp()
           WHERE ticket_id = %s AND recovery_suggested_at IS NULL
             AND state NOT IN ('resolved', 'closed')
           RETURNING ticket_id""",
        (at, ticket_id),
    ).fetchone()
    return row is not None


def set_parent(conn: Conn, *, ticket_ids: list[int], parent_ticket_id: int) -> int:
    """Link device tickets to their fleet ticket; returns how many were linked."""
    if not ticket_ids:
        return 0
    cur = conn.execute(
        "UPDATE tickets SET parent_ticket_id = %s, updated_at = clock_timestamp() "
        "WHERE ticket_id = ANY(%s) AND parent_ticket_id IS NULL",
        (parent_ticket_id, ticket_ids),
    )
    return cur.rowcount


def raise_priority(
    conn: Conn,
    *,
    ticket_id: int,
    priority: Priority,
    resolution_due: datetime,
    first_response_due: datetime,
) -> None:
    """A more urgent priority, with the SLA dues it carries from the opening time."""
    conn.execute(
        """UPDATE tickets SET priority = %s, resolution_due = least(resolution_due, %s),
                  first_response_due = least(first_response_due, %s),
                  updated_at = clock_timestamp()
           WHERE ticket_id = %s""",
        (priority.value, resolution_due, first_response_due, ticket_id),
    )


@dataclass(frozen=True, slots=True)
class ComplaintDue:
    """A complaint's feedback or follow-up due that has come and was not reminded yet."""

    ticket_id: int
    which: str  # "feedback" or "follow_up"
    due: datetime
    tier: Tier


def complaint_dues(conn: Conn, *, now: datetime, limit: int = 1000) -> list[ComplaintDue]:
    """Complaints (not withdrawn) whose feedback or follow-up due is at or before `now` and
    that have no reminder of it on their timeline yet, oldest due first."""
    rows = conn.execute(
        """SELECT t.ticket_id, w.which, w.due, t.tier
           FROM tickets t
           CROSS JOIN LATERAL (VALUES ('feedback', t.feedback_due),
                                      ('follow_up', t.follow_up_due)) AS w(which, due)
           WHERE t.ticket_type = 'complaint' AND w.due <= %s
             AND t.resolution_code IS DISTINCT FROM 'withdrawn'
             AND NOT EXISTS (SELECT 1 FROM ticket_events e
                             WHERE e.ticket_id = t.ticket_id
                               AND e.kind = 'complaint_' || w.which || '_due')
           ORDER BY w.due, t.ticket_id LIMIT %s""",
        (now, limit),
    ).fetchall()
    return [ComplaintDue(int(r[0]), str(r[1]), r[2], Tier(r[3])) for r in rows]


def team_tag_of(conn: Conn, *, ticket_id: int, tier: Tier | None = None) -> str:
    """The Apprise tag of the team working a ticket (an enterprise account's own team); at
    `tier` instead of the ticket's current one, when given."""
    row = conn.execute(
        """SELECT t.team, t.tier, o.enterprise_team FROM tickets t
           LEFT JOIN owners o ON o.owner_id = t.customer_id WHERE t.ticket_id = %s""",
        (ticket_id,),
    ).fetchone()
    if row is None:
        return Tier.L1.team
    return team_tag(str(row[0]), tier or Tier(row[1]), row[2])


@dataclass(frozen=True, slots=True)
class DeviceOfTicket:
    """What a person-made ticket copies from the device it is about."""

    owner_id: str | None
    model: str | None
    firmware: str | None


@dataclass(frozen=True, slots=True)
class OwnerOfTicket:
    """What a person-made ticket copies from the owner it is for."""

    contact: str | None
    contact_person: str | None
    department: str | None
    enterprise_account: str | None


def device_of(conn: Conn, *, device_id: str) -> DeviceOfTicket | None:
    """The device's owner, model and firmware; None if there is no such device."""
    row = conn.execute(
        "SELECT owner_id, model, firmware FROM devices WHERE device_id = %s", (device_id,)
    ).fetchone()
    return None if row is None else DeviceOfTicket(row[0], row[1], row[2])


def owner_of(conn: Conn, *, owner_id: str) -> OwnerOfTicket | None:
    """The owner's contact, contact person, department and enterprise account (when an
    enterprise); None if there is no such owner (or they were forgotten)."""
    row = conn.execute(
        """SELECT contact, contact_person, department,
                  CASE WHEN account_type = 'enterprise'
                       THEN coalesce(enterprise_account, owner_id) END
           FROM owners WHERE owner_id = %s""",
        (owner_id,),
    ).fetchone()
    return None if row is None else OwnerOfTicket(row[0], row[1], row[2], row[3])


def ticket_row(conn: Conn, *, ticket_id: int) -> dict[str, Any] | None:
    """Every column of one ticket."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM tickets WHERE ticket_id = %s", (ticket_id,)).fetchone()


def events(conn: Conn, *, ticket_id: int) -> list[tuple[datetime, str, str, dict[str, Any]]]:
    """A ticket's timeline, oldest first: (at, kind, actor, detail)."""
    rows = conn.execute(
        "SELECT at, kind, actor, detail FROM ticket_events WHERE ticket_id = %s "
        "ORDER BY at, event_id",
        (ticket_id,),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def summaries(conn: Conn, *, since: datetime | None = None) -> list[TicketSummary]:
    """Every ticket (opened at or after `since`), oldest first."""
    rows = conn.execute(
        """SELECT ticket_id, kind, device_id, fault, priority, tier, team, state, opened_at,
                  escalations, guide_sent, parent_ticket_id, recurrence_of
           FROM tickets WHERE %(since)s::timestamptz IS NULL OR opened_at >= %(since)s
           ORDER BY ticket_id""",
        {"since": since},
    ).fetchall()
    return [TicketSummary(*r) for r in rows]


def evidence_readings(
    conn: Conn, *, device_id: str, until: datetime, span: timedelta
) -> list[dict[str, Any]]:
    """The device's readings in the window before `until` (newest `EVIDENCE_ROWS`), oldest
    first, as JSON-ready dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT * FROM (
                   SELECT ts, firmware, signal_dbm, link_quality, battery_pct, battery_v,
                          temperature_c, uptime_s, reconnects, error_codes
                   FROM telemetry WHERE device_id = %s AND ts > %s AND ts <= %s
                   ORDER BY ts DESC LIMIT %s) w
               ORDER BY ts""",
            (device_id, until - span, until, EVIDENCE_ROWS),
        ).fetchall()
    for r in rows:
        r["ts"] = r["ts"].isoformat()
    return rows


def set_assignee(conn: Conn, *, ticket_id: int, assignee: str) -> None:
    """Give a ticket to a named person or team member."""
    conn.execute(
        "UPDATE tickets SET assignee = %s, updated_at = clock_timestamp() WHERE ticket_id = %s",
        (assignee, ticket_id),
    )


def set_feedback(conn: Conn, *, ticket_id: int, verdict: str, at: datetime, by: str) -> None:
    """Record staff's verdict on the ticket's prediction."""
    conn.execute(
        "UPDATE tickets SET feedback = %s, feedback_at = %s, feedback_by = %s, "
        "updated_at = clock_timestamp() WHERE ticket_id = %s",
        (verdict, at, by, ticket_id),
    )


def withdraw(conn: Conn, *, registered_by: str, at: datetime, note: str) -> int:
    """Close the open tickets about devices registered by `registered_by` without resolving
    them (resolution code 'withdrawn', a 'withdrawn' event with the note): a device ticket of
    such a device, a fleet ticket whose devices all are. Returns how many."""
    rows = conn.execute(
        """UPDATE tickets t SET state = 'closed', closed_at = greatest(%(at)s, t.opened_at),
                  resolution_code = 'withdrawn', updated_at = clock_timestamp()
           WHERE t.state NOT IN ('resolved', 'closed')
             AND CASE WHEN t.kind = 'device'
                      THEN t.device_id IN (SELECT device_id FROM devices
                                           WHERE registered_by = %(by)s)
                      ELSE t.fleet_incident_id IN (
                               SELECT i.fleet_incident_id FROM incidents i
                               JOIN devices d USING (device_id)
                               GROUP BY i.fleet_incident_id
                               HAVING bool_and(d.registered_by = %(by)s)) END
           RETURNING t.ticket_id, t.closed_at""",
        {"at": at, "by": registered_by},
    ).fetchall()
    for ticket_id, closed_at in rows:
        add_event(conn, ticket_id=ticket_id, at=closed_at, kind="withdrawn", detail={"note": note})
    return len(rows)
