"""Reading the outbox for the API, with every target redacted as the dispatcher redacts it."""

from __future__ import annotations

from dataclasses import asdict

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
    items = [NotificationItem.model_validate(r | {"target": redact(r["target"])}) for r in rows]
    return NotificationPage(total=total, limit=limit, offset=offset, items=items)


def detail(conn: Conn, settings: Settings, *, notification_id: int) -> NotificationDetail:
    """One notification with its attempts; NotFoundError if there is none."""
    row = repository.one(conn, notification_id=notification_id)
    if row is None:
        raise NotFoundError(f"no notification {notification_id}")
    # Attempt targets were redacted when recorded; redacting them again would garble them.
    tries = [
        Attempt.model_validate(asdict(a))
        for a in outbox.attempts(conn, notification_id=notification_id)
    ]
    target = Redactor.for_settings(settings)(row["target"])
    return NotificationDetail.model_validate(row | {"target": target, "attempt_log": tries})
