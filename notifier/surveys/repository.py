"""SQL for surveys. Keyword-only functions; the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from notifier.surveys.types import Answer, Survey

Conn = psycopg.Connection[Any]

_COLUMNS = (
    "survey_id, ticket_id, owner_id, locale, linked, created_at, answer_by, expires_at, "
    "answered_at, answered_via, fixed, rating, comment, callback_at, cancelled_at"
)


def insert(
    conn: Conn,
    *,
    ticket_id: int,
    owner_id: str | None,
    locale: str,
    linked: bool,
    created_at: datetime,
    answer_by: datetime,
    expires_at: datetime,
) -> Survey:
    """A new survey for a ticket's resolution."""
    row = conn.execute(
        f"""INSERT INTO surveys (ticket_id, owner_id, locale, linked, created_at, answer_by,
               expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
        (ticket_id, owner_id, locale, linked, created_at, answer_by, expires_at),
    ).fetchone()
    assert row is not None
    return Survey(*row)


def get(conn: Conn, *, survey_id: int, lock: bool = False) -> Survey | None:
    """One survey (locked for the transaction when `lock`)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM surveys WHERE survey_id = %s" + (" FOR UPDATE" if lock else ""),
        (survey_id,),
    ).fetchone()
    return None if row is None else Survey(*row)


def open_for_ticket(conn: Conn, *, ticket_id: int) -> Survey | None:
    """The ticket's newest survey that is neither answered nor cancelled, locked."""
    row = conn.execute(
        f"""SELECT {_COLUMNS} FROM surveys WHERE ticket_id = %s AND answered_at IS NULL
              AND cancelled_at IS NULL ORDER BY survey_id DESC LIMIT 1 FOR UPDATE""",
        (ticket_id,),
    ).fetchone()
    return None if row is None else Survey(*row)


def latest(conn: Conn, *, ticket_id: int) -> Survey | None:
    """The ticket's newest survey, whatever became of it."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM surveys WHERE ticket_id = %s ORDER BY survey_id DESC LIMIT 1",
        (ticket_id,),
    ).fetchone()
    return None if row is None else Survey(*row)


def answer(
    conn: Conn, *, survey_id: int, given: Answer, via: str, by: str | None, at: datetime
) -> None:
    """Record the owner's answer."""
    conn.execute(
        """UPDATE surveys SET answered_at = %s, answered_via = %s, answered_by = %s, fixed = %s,
                  rating = %s, comment = %s WHERE survey_id = %s""",
        (at, via, by, given.fixed, given.rating, given.comment or None, survey_id),
    )


def cancel_open(conn: Conn, *, ticket_id: int, at: datetime) -> int:
    """Cancel the ticket's unanswered surveys (it was reopened: they ask about a resolution
    that no longer stands); returns how many."""
    return conn.execute(
        """UPDATE surveys SET cancelled_at = %s WHERE ticket_id = %s AND answered_at IS NULL
              AND cancelled_at IS NULL""",
        (at, ticket_id),
    ).rowcount


def due_for_callback(conn: Conn, *, now: datetime, limit: int = 500) -> list[Survey]:
    """Unanswered surveys past their answer time with no call-back yet, locked and skipping
    rows another responder holds."""
    rows = conn.execute(
        f"""SELECT {_COLUMNS} FROM surveys
            WHERE answered_at IS NULL AND callback_at IS NULL AND cancelled_at IS NULL
              AND answer_by <= %s
            ORDER BY answer_by LIMIT %s FOR UPDATE SKIP LOCKED""",
        (now, limit),
    ).fetchall()
    return [Survey(*r) for r in rows]


def mark_callback(conn: Conn, *, survey_id: int, at: datetime) -> None:
    """Note that the survey became a call-back task."""
    conn.execute("UPDATE surveys SET callback_at = %s WHERE survey_id = %s", (at, survey_id))
