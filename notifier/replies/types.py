"""An owner's reply as a relay posted it, and what became of it. Frozen, slotted values."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

MAX_TEXT = 5000

# "#123", "ticket 123", "ticket no. 123", "工单 123", "工单#123", and 工单号 with an ASCII
# or a full-width colon (\uff1a).
_NUMBER = re.compile(
    r"(?:#|\bticket\s*(?:no\.?|number)?\s*[:#]?\s*|工单号?\s*[:\uff1a#]?\s*)(\d{1,12})\b",
    re.IGNORECASE,
)


class Outcome(enum.StrEnum):
    """What a reply did."""

    ADDED = "added"  # added to an open ticket's timeline
    REOPENED = "reopened"  # reopened a ticket resolved within the recurrence window
    OPENED = "opened"  # opened a ticket (for its incident, or from the message itself)
    UNMATCHED = "unmatched"  # no owner matches the sender: kept, nothing else done
    DUPLICATE = "duplicate"  # this channel's message id was already received: nothing done


@dataclass(frozen=True, slots=True)
class OwnerReply:
    """One message from an owner, as the relay posted it (signature checked)."""

    channel: str
    message_id: str  # the relay's webhook-id: a second post of it is a replay
    signed_at: datetime
    text: str
    owner_id: str | None = None  # the relay knows the customer (an app backend does)
    sender: str | None = None  # else their address on the channel, matched to owners' contact
    ticket_id: int | None = None  # the relay knows the ticket (a reply-to header, a deep link)


@dataclass(frozen=True, slots=True)
class ReplyResult:
    """What taking a reply did."""

    outcome: Outcome
    owner_id: str | None = None
    ticket_id: int | None = None
    incident_id: int | None = None


def ticket_number(text: str) -> int | None:
    """The first ticket number the text names ("#123", "ticket 123", "工单 123"), if any."""
    found = _NUMBER.search(text)
    return None if found is None else int(found.group(1))
