"""SQL for the weekly ticket audit (``ticket_audits``). Keyword-only functions; the caller owns
the transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

Conn = psycopg.Connection[Any]

_COLUMNS = """a.audit_id, a.week, a.ticket_id, a.seed, a.drawn_at, a.drawn_by, a.outcome,
    a.info_complete, a.steps_standard, a.feedback_recorded, a.notes, a.audited_by,
    a.audited_at, t.priority, t.tier, t.assignee, t.ticket_type, t.closed_at"""


def closed_tickets(conn: Conn, *, since: datetime, until: datetime, now: datetime) -> list[int]:
    """Tickets closed in [since, until) and by `now` (withdrawn ones left out), by id."""
    rows = conn.execute(
        """SELECT ticket_id FROM tickets
           WHERE closed_at >= %s AND closed_at < %s AND closed_at <= %s
             AND resolution_code IS DISTINCT FROM 'withdrawn'
           ORDER BY ticket_id""",
        (since, until, now),
    ).fetchall()
    return [int(r[0]) for r in rows]


def insert_sample(
    conn: Conn, *, week: date, ticket_ids: list[int], seed: int, at: datetime, by: str
) -> None:
    """Record a week's sample (a ticket already drawn for the week is left as it is)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ticket_audits (week, ticket_id, seed, drawn_at, drawn_by) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (week, ticket_id) DO NOTHING",
            [(week, tid, seed, at, by) for tid in ticket_ids],
        )


def week_rows(conn: Conn, *, week: date) -> list[dict[str, Any]]:
    """The week's audited tickets with their outcome, by ticket id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM ticket_audits a JOIN tickets t USING (ticket_id) "
            "WHERE a.week = %s ORDER BY a.ticket_id",
            (week,),
        ).fetchall()


def audit_row(conn: Conn, *, audit_id: int, lock: bool = False) -> dict[str, Any] | None:
    """One audit with its ticket's facts."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM ticket_audits a JOIN tickets t USING (ticket_id) "
            f"WHERE a.audit_id = %s{' FOR UPDATE OF a' if lock else ''}",
            (audit_id,),
        ).fetchone()


def record(
    conn: Conn,
    *,
    audit_id: int,
    checks: tuple[bool, bool, bool],
    notes: str | None,
    by: str,
    at: datetime,
) -> None:
    """The checklist's answers; passed when every item holds."""
    conn.execute(
        """UPDATE ticket_audits SET info_complete = %s, steps_standard = %s,
                  feedback_recorded = %s, outcome = %s, notes = %s, audited_by = %s,
                  audited_at = %s
           WHERE audit_id = %s""",
        (*checks, "passed" if all(checks) else "failed", notes, by, at, audit_id),
    )
