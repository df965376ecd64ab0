"""Reading the outbox for the API, with every target redacted as the dispatcher redacts it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from api.notifications import repository
from api.notifications.repository import Conn, OutboxFilter
from api.notifications.schemas import (
    Attempt,
    NotificationDetail,
    NotificationItem,
    NotificationPage,
)
from forewarn.errors import NotFoundError
from forewarn.settings import Settings
from notifier import repository as outbox
from notifier.channels import Redactor


def page(
    conn: Conn, settings: Settings, *, where: OutboxFilter, limit: int, offset: int
) -> NotificationPage:
    """One page of the outbox, newest first."""
    total, rows = repository.page(conn, where=where, limit=limit, offset=offset)
    redact = Redactor.for_settings(settings)
    items = [NotificationItem.model_validate(_shown(r, redact)) for r in rows]
    return NotificationPage(total=total, limit=limit, offset=offset, items=items)


def detail(conn: Conn, settings: Settings, *, notification_id: int) -> NotificationDetail:
    """One notification with its attempts; NotFoundError if there is none."""
    row = repository.one(conn, notification_id=notification_id)
    if row is None:
        raise NotFoundError(f"no notification {notification_id}")
    # Attempt targets were redacted when recorded; redacting them again would garble them.
    redact = Redactor.for_settings(settings)
    tries = [
        Attempt.model_validate(asdict(a) | {"error": redact.error(a.error)})
        for a in outbox.attempts(conn, notification_id=notification_id)
    ]
    return NotificationDetail.model_validate(_shown(row, redact) | {"attempt_log": tries})


def _shown(row: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    """A row with its target decrypted and redacted, and its error scrubbed (rows written
    before errors were redacted may still name a token)."""
    target = redact(outbox.stored_target(row["target"]))
    return row | {"target": target, "last_error": redact.error(row.get("last_error"))}
