"""SQL for health and metrics: small counts that are cheap at scrape time."""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[tuple[Any, ...]]


def ping(conn: Conn) -> int:
    """The schema version, proving the database answers and is migrated."""
    row = conn.execute("SELECT max(version) FROM forewarn_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def state(conn: Conn) -> dict[str, dict[str, int]]:
    """Devices by status, open tickets by priority, outbox rows by status, and totals."""
    devices = dict.fromkeys(("online", "offline", "unknown"), 0)
    for status, n in conn.execute(
        "SELECT CASE WHEN online THEN 'online' WHEN NOT online THEN 'offline' "
        "ELSE 'unknown' END, count(*) FROM devices GROUP BY 1"
    ).fetchall():
        devices[str(status)] = int(n)
    tickets = dict.fromkeys(("critical", "major", "minor"), 0)
    for priority, n in conn.execute(
        "SELECT priority, count(*) FROM tickets WHERE state NOT IN ('resolved', 'closed') "
        "GROUP BY 1"
    ).fetchall():
        tickets[str(priority)] = int(n)
    outbox = dict.fromkeys(("pending", "sending", "sent", "failed", "interrupted", "cancelled"), 0)
    for status, n in conn.execute(
        "SELECT status, count(*) FROM notifications GROUP BY 1"
    ).fetchall():
        outbox[str(status)] = int(n)
    row = conn.execute(
        "SELECT (SELECT count(*) FROM tickets WHERE breached_at IS NOT NULL "
        "        AND state NOT IN ('resolved', 'closed')), "
        "       (SELECT count(*) FROM dead_letters)"
    ).fetchone()
    assert row is not None
    totals = {"tickets_breached_open": int(row[0]), "dead_letters": int(row[1])}
    return {"devices": devices, "tickets_open": tickets, "notifications": outbox, "totals": totals}
