"""SQL for the notification outbox. Keyword-only functions; the caller owns the transaction.

Two clocks meet here. `not_before` and `created_at` are business time (the caller's Clock:
quiet hours, a scaled demo). `next_attempt_at`, `claimed_at` and every attempt's times are
wall time, the database's ``clock_timestamp()``: backoff and leases are about real network
sends, whatever time the business runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from forewarn import vault
from forewarn.db import OUTBOX_CHANNEL
from notifier.types import (
    UNREADABLE_TARGET,
    ClaimedNotification,
    OutboundMessage,
    SendResult,
    Status,
)

Conn = psycopg.Connection[tuple[object, ...]]

# What an interrupted attempt's row says: the request may have reached its endpoint.
INTERRUPTED_ERROR = (
    "interrupted: the dispatcher stopped while sending; the request may have been delivered, "
    "so it is not sent again"
)

_COLUMNS = (
    "key, channel, audience, target, title, body, payload, owner_id, device_id, incident_id, "
    "ticket_id, guide_id, locale, created_at, not_before"
)


def enqueue(conn: Conn, *, message: OutboundMessage) -> int | None:
    """Add a notification to the outbox; None when a row with its key already exists."""
    m = message
    row = conn.execute(
        f"INSERT INTO notifications ({_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (key) DO NOTHING RETURNING notification_id",
        (
            m.key,
            m.channel,
            m.audience,
            vault.seal(m.target) if m.audience == "owner" else m.target,
            m.title,
            m.body,
            Jsonb(dict(m.payload)),
            m.owner_id,
            m.device_id,
            m.incident_id,
            m.ticket_id,
            m.guide_id,
            m.locale,
            m.created_at,
            m.not_before,
        ),
    ).fetchone()
    return None if row is None else cast(int, row[0])


def notify_outbox(conn: Conn) -> None:
    """Wake the dispatchers when this transaction commits (PostgreSQL delivers at commit)."""
    conn.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))


def listen(conn: Conn) -> None:
    """Subscribe this (autocommit) connection to the outbox's wake-ups."""
    conn.execute(f"LISTEN {OUTBOX_CHANNEL}")


def claim(
    conn: Conn, *, worker: str, now: datetime, limit: int, redact: Callable[[str], str]
) -> list[ClaimedNotification]:
    """Claim up to `limit` due rows for one attempt each and open their attempt rows.

    Due: pending, past its backoff (wall time) and past `not_before` (business time `now`).
    Rows another transaction holds are skipped, so dispatchers never claim the same row.
    `redact` turns a target into what the attempt row may store (no secrets).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""
            UPDATE notifications n
               SET status = 'sending', claimed_by = %(worker)s,
                   claimed_at = clock_timestamp(), attempts = n.attempts + 1
              FROM (SELECT notification_id FROM notifications
                     WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
                       AND not_before <= %(now)s
                     ORDER BY next_attempt_at, notification_id
                     LIMIT %(limit)s
                       FOR UPDATE SKIP LOCKED) due
             WHERE n.notification_id = due.notification_id
            RETURNING n.notification_id, n.attempts, {_COLUMNS}
            """,
            {"worker": worker, "now": now, "limit": limit},
        ).fetchall()
    claimed = sorted((_claimed(r) for r in rows), key=lambda c: c.notification_id)
    if claimed:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO notification_attempts (notification_id, attempt, target, started_at)"
                " VALUES (%s, %s, %s, clock_timestamp())",
                [(c.notification_id, c.attempt, redact(c.message.target)) for c in claimed],
            )
    return claimed


def finish(
    conn: Conn,
    *,
    notification_id: int,
    attempt: int,
    result: SendResult,
    retry_in: timedelta | None,
    at: datetime,
) -> Status:
    """Record an attempt's result; returns the row's new status.

    Sent when `result.ok` (``sent_at`` = `at`, business time, like the row's other times);
    otherwise pending again after `retry_in` (wall time), or failed
    when `retry_in` is None. A row marked interrupted meanwhile (its lease ran out while the
    send was slow) takes this result too: the sender knows better than the guess.
    """
    status: Status = "sent" if result.ok else ("pending" if retry_in is not None else "failed")
    conn.execute(
        """
        UPDATE notifications
           SET status = %(status)s,
               sent_at = CASE WHEN %(ok)s THEN %(at)s::timestamptz END,
               next_attempt_at = CASE WHEN %(retry)s::interval IS NULL THEN next_attempt_at
                                      ELSE clock_timestamp() + %(retry)s::interval END,
               last_error = %(error)s
         WHERE notification_id = %(id)s AND attempts = %(attempt)s
           AND status IN ('sending', 'interrupted')
        """,
        {
            "status": status,
            "ok": result.ok,
            "retry": retry_in,
            "error": result.error,
            "at": at,
            "id": notification_id,
            "attempt": attempt,
        },
    )
    conn.execute(
        "UPDATE notification_attempts SET finished_at = clock_timestamp(), ok = %s, error = %s,"
        " target = %s WHERE notification_id = %s AND attempt = %s",
        (result.ok, result.error, result.target_redacted, notification_id, attempt),
    )
    return status


def mark_interrupted(conn: Conn, *, lease: timedelta) -> int:
    """Mark rows left 'sending' for longer than `lease` as interrupted; returns how many.

    Their dispatcher died mid-send and the request may have reached the endpoint, so they
    are never sent again: the outbox promises at most once after a crash.
    """
    row = conn.execute(
        """
        WITH gone AS (
            UPDATE notifications
               SET status = 'interrupted', last_error = %(error)s
             WHERE status = 'sending' AND claimed_at < clock_timestamp() - %(lease)s::interval
            RETURNING notification_id, attempts
        ), noted AS (
            UPDATE notification_attempts a
               SET finished_at = clock_timestamp(), ok = false, error = %(error)s
              FROM gone
             WHERE a.notification_id = gone.notification_id AND a.attempt = gone.attempts
        )
        SELECT count(*) FROM gone
        """,
        {"error": INTERRUPTED_ERROR, "lease": lease},
    ).fetchone()
    assert row is not None
    return cast(int, row[0])


def due(conn: Conn, *, now: datetime) -> int:
    """How many pending rows a dispatcher would claim now (business time `now`)."""
    row = conn.execute(
        "SELECT count(*) FROM notifications WHERE status = 'pending'"
        " AND next_attempt_at <= clock_timestamp() AND not_before <= %s",
        (now,),
    ).fetchone()
    assert row is not None
    return cast(int, row[0])


def counts(conn: Conn) -> dict[str, int]:
    """How many notifications are in each status (statuses with none are left out)."""
    rows = conn.execute("SELECT status, count(*) FROM notifications GROUP BY status").fetchall()
    return {cast(str, s): cast(int, n) for s, n in rows}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One row of notification_attempts."""

    attempt: int
    target: str
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    error: str | None


def attempts(conn: Conn, *, notification_id: int) -> list[Attempt]:
    """A notification's attempts, first to last."""
    rows = conn.execute(
        "SELECT attempt, target, started_at, finished_at, ok, error FROM notification_attempts"
        " WHERE notification_id = %s ORDER BY attempt",
        (notification_id,),
    ).fetchall()
    return [Attempt(*cast(tuple[Any, ...], r)) for r in rows]


@dataclass(frozen=True, slots=True)
class Row:
    """A notification's delivery state, as tests and the demo read it."""

    notification_id: int
    key: str
    status: Status
    attempts: int
    claimed_by: str | None
    sent_at: datetime | None
    last_error: str | None


def get(conn: Conn, *, key: str) -> Row | None:
    """The delivery state of the notification with this key, if there is one."""
    row = conn.execute(
        "SELECT notification_id, key, status, attempts, claimed_by, sent_at, last_error"
        " FROM notifications WHERE key = %s",
        (key,),
    ).fetchone()
    return None if row is None else Row(*cast(tuple[Any, ...], row))


def stored_target(stored: str) -> str:
    """A row's target as sent (owners' are encrypted at rest); UNREADABLE_TARGET when no
    configured key opens it."""
    try:
        return vault.open_value(stored)
    except vault.SealError:
        return UNREADABLE_TARGET


def _claimed(r: dict[str, Any]) -> ClaimedNotification:
    message = OutboundMessage(
        key=r["key"],
        channel=r["channel"],
        audience=r["audience"],
        target=stored_target(r["target"]),
        title=r["title"],
        body=r["body"],
        payload=r["payload"],
        owner_id=r["owner_id"],
        device_id=r["device_id"],
        incident_id=r["incident_id"],
        ticket_id=r["ticket_id"],
        guide_id=r["guide_id"],
        locale=r["locale"],
        created_at=r["created_at"],
        not_before=r["not_before"],
    )
    return ClaimedNotification(r["notification_id"], r["attempts"], message)


def cancel_pending(conn: Conn, *, registered_by: str, reason: str) -> int:
    """Cancel unsent notifications about devices registered by `registered_by` or about
    withdrawn tickets; the reason goes in `last_error`. Returns how many were cancelled."""
    return conn.execute(
        """UPDATE notifications SET status = 'cancelled', last_error = %(reason)s
           WHERE status = 'pending'
             AND (device_id IN (SELECT device_id FROM devices WHERE registered_by = %(by)s)
                  OR ticket_id IN (SELECT ticket_id FROM tickets
                                   WHERE resolution_code = 'withdrawn'))""",
        {"by": registered_by, "reason": f"cancelled: {reason}"},
    ).rowcount


def reseal_targets(conn: Conn, *, reseal: Callable[[str], str]) -> int:
    """Rewrite owners' notification targets through `reseal` (key rotation); returns how many
    rows changed. Staff tags and the webhook are not secret and stay as they are."""
    rows = conn.execute(
        "SELECT notification_id, target FROM notifications WHERE audience = 'owner' FOR UPDATE"
    ).fetchall()
    changed = [(new, nid) for nid, old in rows if (new := reseal(cast(str, old))) != old]
    with conn.cursor() as cur:
        cur.executemany("UPDATE notifications SET target = %s WHERE notification_id = %s", changed)
    return len(changed)
