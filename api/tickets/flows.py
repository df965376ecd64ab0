"""Reading tickets for the API: urgency on the business clock, and the detail page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api import privacy
from api.keys.types import Principal
from api.tickets import repository
from api.tickets.repository import Conn, QueueFilter
from api.tickets.schemas import (
    GuideSent,
    Prediction,
    TicketDetail,
    TicketEvent,
    TicketItem,
    TicketPage,
    Urgency,
)
from forewarn.errors import NotFoundError


def urgency(row: dict[str, Any], *, now: datetime, warn_at: float) -> tuple[float | None, Urgency]:
    """(seconds left to the current due, how urgent): breached past it; near once `warn_at`
    of the time from the tier's start to the due has passed, as the breach warnings are."""
    due = repository.when(row, "due_at")
    if due is None:
        return None, "callback" if row.get("due_kind") == "callback" else "done"
    left = (due - now).total_seconds()
    if left <= 0:
        return left, "breached"
    since = repository.when(row, "tier_since") or due
    warn_from = since + (due - since) * warn_at
    return left, "near" if now >= warn_from else "ok"


def item(row: dict[str, Any], *, now: datetime, warn_at: float) -> TicketItem:
    """A queue row as the API shows it."""
    left, level = urgency(row, now=now, warn_at=warn_at)
    return TicketItem.model_validate(row | {"seconds_left": left, "urgency": level})


def page(
    conn: Conn,
    *,
    where: QueueFilter,
    sort: str,
    limit: int,
    offset: int,
    now: datetime,
    warn_at: float,
) -> TicketPage:
    """One page of the queue."""
    total, rows = repository.queue(conn, where=where, sort=sort, limit=limit, offset=offset)
    items = [item(r, now=now, warn_at=warn_at) for r in rows]
    return TicketPage(now=now, total=total, limit=limit, offset=offset, items=items)


def detail(
    conn: Conn, *, ticket_id: int, now: datetime, warn_at: float, who: Principal | None = None
) -> TicketDetail:
    """Everything about a ticket; NotFoundError if there is none. The owner's contact is
    hidden unless `who` may see contacts."""
    row = repository.detail(conn, ticket_id=ticket_id)
    if row is None:
        raise NotFoundError(f"no ticket {ticket_id}")
    if who is not None:
        row = row | {name: privacy.contact(row.get(name), who) for name in privacy.CONTACT_FIELDS}
    left, level = urgency(row, now=now, warn_at=warn_at)
    incident_id = row["incident_id"]
    found = None if incident_id is None else repository.incident(conn, incident_id=incident_id)
    return TicketDetail.model_validate(
        row
        | {
            "seconds_left": left,
            "urgency": level,
            "now": now,
            "prediction": None if found is None else Prediction.model_validate(found),
            "guides": [
                GuideSent.model_validate(g)
                for g in repository.guides_sent(conn, ticket_id=ticket_id, incident_id=incident_id)
            ],
            "children": repository.children(conn, ticket_id=ticket_id),
            "survey": repository.survey(conn, ticket_id=ticket_id),
            "notices": repository.notices(conn, ticket_id=ticket_id),
            "timeline": [
                TicketEvent.model_validate(e)
                for e in repository.timeline(conn, ticket_id=ticket_id)
            ],
        }
    )
