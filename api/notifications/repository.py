"""SQL for reading the notification outbox (attempts come from notifier.repository)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Conn = psycopg.Connection[Any]

COLUMNS = """
    notification_id, key, channel, audience, target, title, owner_id, device_id, incident_id,
    ticket_id, guide_id, locale, created_at, not_before, status, attempts, next_attempt_at,
    claimed_by, claimed_at, sent_at, last_error
"""


@dataclass(frozen=True, slots=True)
class OutboxFilter:
    """What the outbox list is narrowed to; None means any."""

    status: str | None = None
    audience: str | None = None
    channel: str | None = None
    ticket_id: int | None = None
    device_id: str | None = None
    incident_id: int | None = None


def page(
    conn: Conn, *, where: OutboxFilter, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page of them, newest first)."""
    conds: list[sql.Composable] = []
    args: list[object] = []
    for column in ("status", "audience", "channel", "ticket_id", "device_id", "incident_id"):
        value = getattr(where, column)
        if value is not None:
            conds.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            args.append(value)
    cond = sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")
    with conn.cursor(row_factory=dict_row) as cur:
        counted = cur.execute(
            sql.SQL("SELECT count(*) AS n FROM notifications WHERE {}").format(cond), args
        ).fetchone()
        rows = cur.execute(
            sql.SQL(
                "SELECT {} FROM notifications WHERE {} "
                "ORDER BY created_at DESC, notification_id DESC LIMIT %s OFFSET %s"
            ).format(sql.SQL(COLUMNS), cond),
            [*args, limit, offset],
        ).fetchall()
    return (int(counted["n"]) if counted else 0), rows


def one(conn: Conn, *, notification_id: int) -> dict[str, Any] | None:
    """One notification with its body and payload, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {COLUMNS}, body, payload FROM notifications WHERE notification_id = %s",
            (notification_id,),
        ).fetchone()
