"""Routes: /api/v1/notifications, the outbox of guides, staff alerts and helpdesk tickets.

Both routes read, so every role may call them (Reader). Targets are shown redacted: owners'
Apprise URLs may hold tokens.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ConnDep, Reader, SettingsDep
from api.notifications import flows
from api.notifications.repository import OutboxFilter
from api.notifications.schemas import (
    NO_NUL,
    Audience,
    Channel,
    NotificationDetail,
    NotificationPage,
    Status,
)
from api.responses import AUTH, NOT_FOUND

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"], responses=AUTH)


@router.get(
    "",
    response_model=NotificationPage,
    summary="The notification outbox",
    description=(
        "Notifications matching the filters, newest first: owners' guides, staff alerts and "
        "tickets handed to the helpdesk, with where each stands (pending, sending, sent, "
        "failed, interrupted, cancelled). Targets are redacted as the dispatcher records them: no tokens "
        "or passwords."
    ),
)
def outbox(
    conn: ConnDep,
    settings: SettingsDep,
    who: Reader,
    status: Annotated[Status | None, Query()] = None,
    audience: Annotated[Audience | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    ticket_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    device_id: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> NotificationPage:
    """The outbox."""
    where = OutboxFilter(status, audience, channel, ticket_id, device_id, incident_id)
    return flows.page(conn, settings, where=where, limit=limit, offset=offset)


@router.get(
    "/{notification_id}",
    response_model=NotificationDetail,
    summary="One notification",
    description=(
        "The notification with its body, its payload (the ticket, for the helpdesk) and every "
        "attempt to send it: when, to which (redacted) target, and the error if it failed."
    ),
    responses=NOT_FOUND,
)
def get_notification(
    notification_id: int, conn: ConnDep, settings: SettingsDep, who: Reader
) -> NotificationDetail:
    """One notification."""
    return flows.detail(conn, settings, notification_id=notification_id)
