"""The notifier's messages: what a decision puts in the outbox, and what a send returns."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ChannelName = Literal["apprise", "ticket_sink"]
Audience = Literal["owner", "staff", "helpdesk"]
Status = Literal["pending", "sending", "sent", "failed", "interrupted", "cancelled"]

# Targets of staff rows start with this; the rest is a comma-separated list of Apprise tags.
TAG_PREFIX = "tag:"
# The one target of ticket_sink rows: the configured webhook sink.
WEBHOOK_TARGET = "webhook"
# What a row's target reads as when it is encrypted with a key that is not configured.
UNREADABLE_TARGET = "sealed://(encrypted with a key not in FOREWARN_TARGET_KEYS)"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One notification a decision enqueues; `key` makes a decision taken twice one row.

    `target` is an Apprise URL (owners), ``tag:<tag>[,<tag>]`` resolved against the Apprise
    configuration (staff), or ``webhook`` (the ticket sink, whose ticket is `payload`).
    `created_at` and `not_before` are business time; quiet hours push `not_before` later.
    """

    key: str
    channel: ChannelName
    audience: Audience
    target: str
    title: str
    body: str
    created_at: datetime
    not_before: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    owner_id: str | None = None
    device_id: str | None = None
    incident_id: int | None = None
    ticket_id: int | None = None
    guide_id: str | None = None
    locale: str | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        """The Apprise tags of a ``tag:`` target (empty for any other target)."""
        if not self.target.startswith(TAG_PREFIX):
            return ()
        rest = self.target.removeprefix(TAG_PREFIX)
        return tuple(t.strip() for t in rest.split(",") if t.strip())


@dataclass(frozen=True, slots=True)
class ClaimedNotification:
    """An outbox row claimed for one attempt (its status is now 'sending')."""

    notification_id: int
    attempt: int  # 1 for the first attempt
    message: OutboundMessage


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one send. Failures are values: channels never raise.

    `permanent` marks a failure that retrying cannot fix (a 4xx refusal, an invalid URL);
    the dispatcher fails such a row at once instead of spending its remaining attempts.
    """

    ok: bool
    error: str | None
    target_redacted: str  # no tokens or passwords: it is stored in notification_attempts
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class DispatchStats:
    """Counters of a dispatcher since it was built."""

    attempts: int  # sends tried
    sent: int
    retried: int  # failed attempts that will be tried again
    failed: int  # rows given up on
    interrupted: int  # rows this dispatcher found abandoned mid-send and marked
    database_errors: int


def target_key(target: str) -> str:
    """A stable short name for a target URL, for outbox keys (the URL itself may hold a token)."""
    return hashlib.sha256(target.encode()).hexdigest()[:12]
