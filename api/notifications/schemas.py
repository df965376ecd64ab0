"""The notification API's response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["pending", "sending", "sent", "failed", "interrupted", "cancelled"]
Audience = Literal["owner", "staff", "helpdesk"]
Channel = Literal["apprise", "ticket_sink"]
# PostgreSQL text cannot hold NUL: refused as a 422 rather than failing in the query.
NO_NUL = r"^[^\x00]*$"


class NotificationItem(BaseModel):
    """An outbox row as the list shows it."""

    notification_id: int
    key: str = Field(description="What makes a decision taken twice one row")
    channel: Channel = Field(description="apprise (owners, staff) or ticket_sink (helpdesk)")
    audience: Audience
    target: str = Field(
        description="Where it goes, redacted as the dispatcher stores it in its attempts: an "
        "Apprise URL without tokens or passwords, 'tag:<tags>' for staff, or the ticket sink"
    )
    title: str
    owner_id: str | None
    device_id: str | None
    incident_id: int | None
    ticket_id: int | None
    guide_id: str | None = Field(description="The knowledge-base guide it carries, if any")
    locale: str | None
    created_at: datetime = Field(description="Business time it was queued")
    not_before: datetime = Field(description="Held until then (the owner's quiet hours)")
    status: Status
    attempts: int = Field(description="Sends tried so far")
    next_attempt_at: datetime = Field(description="Wall time of the next try (backoff)")
    claimed_by: str | None = Field(description="The dispatcher that last took it")
    claimed_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


class NotificationPage(BaseModel):
    """One page of the outbox."""

    total: int = Field(description="Notifications matching the filters")
    limit: int
    offset: int
    items: list[NotificationItem]


class Attempt(BaseModel):
    """One try at sending."""

    attempt: int = Field(description="1 for the first")
    target: str = Field(description="Where it went, redacted when the attempt was recorded")
    started_at: datetime
    finished_at: datetime | None = Field(description="None while it is being sent")
    ok: bool | None
    error: str | None


class NotificationDetail(NotificationItem):
    """One notification with what it says and every try at sending it."""

    body: str
    payload: dict[str, Any] = Field(description="The ticket, for ticket_sink rows")
    attempt_log: list[Attempt] = Field(description="First to last")
