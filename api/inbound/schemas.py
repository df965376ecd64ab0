"""The body a relay posts for an owner's message, and what the API answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from notifier.replies.types import MAX_TEXT


class InboundMessage(BaseModel):
    """One message from an owner. Name the owner by `owner_id` when the relay knows the
    customer (an app backend does), else give `sender`: their address on the channel, which
    is matched to the owner's stored contact."""

    # A relay may pass its platform's own fields along; they are not read.
    model_config = ConfigDict(extra="ignore")

    text: str = Field(
        min_length=1, max_length=MAX_TEXT, pattern=r"\S", description="What the owner wrote"
    )
    owner_id: str | None = Field(default=None, max_length=200, description="Forewarn's owner id")
    sender: str | None = Field(
        default=None,
        max_length=320,
        description="The sender's address on the channel (e-mail address, WeCom or DingTalk "
        "user id, phone number), as stored in the owner's contact",
    )
    ticket_id: int | None = Field(
        default=None,
        ge=1,
        le=2**62,
        description="The ticket the message answers, when the relay knows it (else a ticket "
        "number in the text, or the owner's latest conversation)",
    )


class InboundResult(BaseModel):
    """What the message did."""

    message_id: str = Field(description="The webhook-id it was posted with")
    outcome: Literal["added", "reopened", "opened", "unmatched", "duplicate"] = Field(
        description="added to an open ticket; reopened a ticket resolved within the "
        "recurrence window; opened a ticket (its incident's, or from the message); unmatched: "
        "no owner has this id or contact (kept, nothing done); duplicate: this webhook-id was "
        "received before (a replay or a retry: nothing done again)"
    )
    owner_id: str | None
    ticket_id: int | None
    incident_id: int | None
