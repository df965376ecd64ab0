"""SQL for the ticket queue and a ticket's detail page (read models for the API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Conn = psycopg.Connection[tuple[Any, ...]]

OPEN_STATES = ("new", "acknowledged", "in_progress", "waiting")
# A resolved ticket whose survey went unanswered: an agent is to call the owner back.
_CALLBACK = "(t.callback_due_at IS NOT NULL AND t.callback_done_at IS NULL)"

# The due a ticket is working to now: answering at its tier until acknowledged, then solving.
# The same rule as rules.sla._current_due, so the queue and the escalations agree. The index
# tickets_queue_urgency (forewarn/schema/console.py) repeats this expression: change both.
_DUE = """CASE WHEN t.tier_acknowledged_at IS NULL
               THEN least(t.tier_respond_due, t.tier_solve_due) ELSE t.tier_solve_due END"""

QUEUE_COLUMNS = f"""
    t.ticket_id, t.kind, t.device_id, t.model, t.firmware, t.fault, t.symptom, t.customer_id,
    t.segment, t.priority, t.tier, t.team, t.state, t.assignee, t.opened_at, t.guide_sent,
    t.escalations, t.reopened, t.parent_ticket_id, t.recurrence_of, t.feedback,
    t.first_response_due, t.resolution_due, t.first_response_at, t.resolved_at,
    t.warned_at, t.breached_at, t.tier_since, t.opened_tier, t.callback_due_at,
    t.callback_done_at, t.ticket_type, t.urgent, t.feedback_due, t.follow_up_due, t.phrasing,
    CASE WHEN t.state IN ('resolved', 'closed') THEN NULL ELSE {_DUE} END AS due_at,
    CASE WHEN t.state IN ('resolved', 'closed') THEN
             CASE WHEN {_CALLBACK} THEN 'callback' END
         WHEN t.tier_acknowledged_at IS NULL THEN 'respond' ELSE 'solve' END AS due_kind
"""

SORTS = {
    "urgency": sql.SQL("(t.state IN ('resolved', 'closed')), due_at NULLS LAST, t.ticket_id"),
    "opened": sql.SQL("t.opened_at, t.ticket_id"),
    "-opened": sql.SQL("t.opened_at DESC, t.ticket_id DESC"),
    "priority": sql.SQL(
        "array_position(ARRAY['critical','major','minor'], t.priority), due_at NULLS LAST, "
        "t.ticket_id"
    ),
}


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue is narrowed to; None means any."""

    states: tuple[str, ...] | None = OPEN_STATES
    callbacks: bool = True  # also resolved tickets with a call-back due (only: states=())
    priority: str | None = None
    tier: str | None = None
    team: str | None = None
    kind: str | None = None
    device_id: str | None = None
    fault: str | None = None
    assignee: str | None = None


def queue(
    conn: Conn, *, where: QueueFilter, sort: str, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page of them) in the chosen order."""
    conds, args = _conditions(where)
    cond = sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")
    with conn.cursor(row_factory=dict_row) as cur:
        counted = cur.execute(
            sql.SQL("SELECT count(*) AS n FROM tickets t WHERE {}").format(cond), args
        ).fetchone()
        rows = cur.execute(
            sql.SQL("SELECT {} FROM tickets t WHERE {} ORDER BY {} LIMIT %s OFFSET %s").format(
                sql.SQL(QUEUE_COLUMNS), cond, SORTS[sort]
            ),
            [*args, limit, offset],
        ).fetchall()
    return (int(counted["n"]) if counted else 0), rows


def _conditions(where: QueueFilter) -> tuple[list[sql.Composable], list[object]]:
    conds: list[sql.Composable] = []
    args: list[object] = []
    if where.states is not None:
        state = sql.SQL("t.state = ANY(%s)")
        conds.append(
            sql.SQL("({} OR {})").format(state, sql.SQL(_CALLBACK)) if where.callbacks else state
        )
        args.append(list(where.states))
    for column in ("priority", "tier", "team", "kind", "device_id", "fault", "assignee"):
        value = getattr(where, column)
        if value is not None:
            conds.append(sql.SQL("t.{} = %s").format(sql.Identifier(column)))
            args.append(value)
    return conds, args


def detail(conn: Conn, *, ticket_id: int) -> dict[str, Any] | None:
    """One ticket with its queue columns, its trigger, scope, contact and evidence."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {QUEUE_COLUMNS}, t.trigger, t.scope, t.contact, t.evidence, t.incident_id, "
            "t.fleet_incident_id, t.resolution_code, t.closed_at, t.tier_acknowledged_at, "
            "t.recovery_suggested_at, t.recurrences, t.feedback_at, t.feedback_by, "
            "t.contact_person, t.department, t.created_by, t.channel "
            "FROM tickets t WHERE t.ticket_id = %s",
            (ticket_id,),
        ).fetchone()


def incident(conn: Conn, *, incident_id: int) -> dict[str, Any] | None:
    """The incident behind a device ticket: the prediction's figures and reasons."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT incident_id, device_id, fault, state, rule, segment, opened_at, "
            "last_predicted_at, probability, max_probability, hours_to_empty, reasons, "
            "model_version, guide_id, guide_sent_at, recovered_at, closed_at, outcome "
            "FROM incidents WHERE incident_id = %s",
            (incident_id,),
        ).fetchone()


def guides_sent(conn: Conn, *, ticket_id: int, incident_id: int | None) -> list[dict[str, Any]]:
    """Owner guides queued for the ticket's incident, with their delivery status."""
    if incident_id is None:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT notification_id, guide_id, locale, title, status, created_at, not_before, "
            "sent_at, attempts, last_error FROM notifications "
            "WHERE incident_id = %s AND guide_id IS NOT NULL ORDER BY notification_id",
            (incident_id,),
        ).fetchall()


def children(conn: Conn, *, ticket_id: int) -> list[int]:
    """Device tickets linked under a fleet ticket."""
    rows = conn.execute(
        "SELECT ticket_id FROM tickets WHERE parent_ticket_id = %s ORDER BY ticket_id",
        (ticket_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def timeline(conn: Conn, *, ticket_id: int) -> list[dict[str, Any]]:
    """A ticket's events, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT event_id, at, kind, actor, detail FROM ticket_events WHERE ticket_id = %s "
            "ORDER BY at, event_id",
            (ticket_id,),
        ).fetchall()


def exists(conn: Conn, *, ticket_id: int) -> bool:
    """Whether there is such a ticket."""
    return (
        conn.execute("SELECT 1 FROM tickets WHERE ticket_id = %s", (ticket_id,)).fetchone()
        is not None
    )


def when(row: dict[str, Any], key: str) -> datetime | None:
    """A timestamp column of a row, typed."""
    value = row.get(key)
    return value if isinstance(value, datetime) else None


def survey(conn: Conn, *, ticket_id: int) -> dict[str, Any] | None:
    """The ticket's newest survey: sent, answered, or become a call-back."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT survey_id, linked, created_at, answer_by, expires_at, answered_at, "
            "answered_via, answered_by, fixed, rating, comment, callback_at, cancelled_at "
            "FROM surveys WHERE ticket_id = %s ORDER BY survey_id DESC LIMIT 1",
            (ticket_id,),
        ).fetchone()


def notices(conn: Conn, *, ticket_id: int) -> list[dict[str, Any]]:
    """What the owner was told about the ticket (notices and staff messages), with delivery."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT notification_id, payload->>'notice' AS notice, locale, title, body, status, "
            "created_at, not_before, sent_at, attempts, last_error FROM notifications "
            "WHERE ticket_id = %s AND audience = 'owner' ORDER BY notification_id",
            (ticket_id,),
        ).fetchall()
