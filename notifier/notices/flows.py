"""Tell an owner about their ticket: render the notice in their language and queue it to each
of their channels, in the caller's transaction (the event that causes it commits with it).

Quiet hours hold a notice until they end, except on a critical ticket. An owner with no
notification target is told nothing; the timeline says so, so staff know to call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from forewarn.settings import Settings
from notifier import repository as outbox
from notifier.guides.select import kind_word
from notifier.notices import repository
from notifier.notices.render import render, when, within
from notifier.notices.templates import library, notices_directory
from notifier.notices.types import NoticeKind, Words
from notifier.quiet import quiet_until, zone_of
from notifier.tickets import repository as tickets
from notifier.types import OutboundMessage, target_key

Conn = repository.Conn


@dataclass(frozen=True, slots=True)
class SurveyLink:
    """The survey a resolved notice asks the owner to answer."""

    url: str
    expires_at: datetime


def tell_owner(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    kind: NoticeKind,
    now: datetime,
    key: str,
    extra: Mapping[str, str] | None = None,
    survey: SurveyLink | None = None,
) -> int:
    """Queue the notice of `kind` about a ticket to its owner's channels; returns how many
    were queued. `key` tells this notice apart from earlier ones of the kind (a second
    hand-over, a second resolution); the same key again queues nothing."""
    row = tickets.ticket_row(conn, ticket_id=ticket_id)
    if row is None:
        return 0
    owner = repository.owner(conn, owner_id=row["customer_id"])
    if owner is None:
        return 0  # a fleet ticket, or a customer we cannot reach: nobody to tell
    lib = library(notices_directory(settings))
    words = lib.words_for(owner.locale)
    zone = zone_of(owner)
    values = _values(conn, row, kind, owner.name, owner.locale, words, zone=zone)
    values |= dict(extra or {})
    if kind is NoticeKind.RESOLVED:
        answer = timedelta(hours=settings.survey_answer_hours)
        values["answer_within"] = within(answer, owner.locale)
        values["survey"] = _survey_line(words, survey, owner.locale, zone, values)
    urgent = row["priority"] == "critical"
    held = None if urgent else quiet_until(owner, now)
    if kind in (NoticeKind.TICKET_OPENED, NoticeKind.HANDED_OVER):
        values["contact"] = _contact_line(words, values, late=(held or now) >= _due(row, kind))
    notice = render(lib, kind, locale=owner.locale, values=values)
    queued = 0
    for target in owner.targets:
        made = outbox.enqueue(
            conn,
            message=OutboundMessage(
                key=f"notice:{ticket_id}:{key}:{target_key(target)}",
                channel="apprise",
                audience="owner",
                target=target,
                title=notice.title,
                body=notice.body,
                payload={"notice": kind.value},
                created_at=now,
                not_before=held or now,
                owner_id=owner.owner_id,
                device_id=row["device_id"],
                ticket_id=ticket_id,
                locale=notice.locale,
            ),
        )
        queued += made is not None
    detail: dict[str, Any] = {"notice": kind.value, "queued": queued, "locale": notice.locale}
    if held is not None and queued:
        detail["not_before"] = held.isoformat()
    if not owner.targets:
        detail["why"] = "the owner has no notification target: call them"
        detail["why_code"] = "no_target"  # for each language to say it
    tickets.add_event(conn, ticket_id=ticket_id, at=now, kind="owner_notified", detail=detail)
    if queued:
        outbox.notify_outbox(conn)
    return queued


def _values(
    conn: Conn,
    row: Mapping[str, Any],
    kind: NoticeKind,
    name: str,
    locale: str,
    words: Words,
    *,
    zone: ZoneInfo,
) -> dict[str, str]:
    """What every notice may name, and when a person takes the ticket up: the SLA's first
    response for a new ticket, the new tier's respond due after a hand-over."""
    product = repository.device_kind(conn, device_id=row["device_id"])
    fault = str(row["fault"])
    code = row["resolution_code"]
    due = _due(row, kind)
    since = row["tier_since"] if kind is NoticeKind.HANDED_OVER else row["opened_at"]
    return {
        "ticket": str(row["ticket_id"]),
        "owner_name": name,
        "device_name": kind_word(product, locale),
        "what_we_saw": words.faults.get(fault, words.faults["anomaly"]),
        "respond_by": when(due, zone, locale),
        "respond_within": within(due - since, locale),
        "team": words.tiers[str(row["tier"])],
        "what_was_done": words.codes.get(str(code), words.codes["other"]) if code else "",
    }


def _due(row: Mapping[str, Any], kind: NoticeKind) -> datetime:
    """When a person takes the ticket up: the SLA's first response for a new ticket, the new
    tier's respond due after a hand-over."""
    due: datetime = row[
        "tier_respond_due" if kind is NoticeKind.HANDED_OVER else "first_response_due"
    ]
    return due


def _contact_line(words: Words, values: Mapping[str, str], *, late: bool) -> str:
    """When to expect a person; "as soon as they can" when the notice could only go out after
    that (quiet hours held it)."""
    text = words.contact_soon if late else words.contact_by
    for name in ("team", "respond_by", "respond_within"):
        text = text.replace("{" + name + "}", values.get(name, ""))
    return text


def _survey_line(
    words: Words,
    survey: SurveyLink | None,
    locale: str,
    zone: ZoneInfo,
    values: Mapping[str, str],
) -> str:
    """The resolved notice's survey line: the link and until when it works, or, without a
    link, what the call-back will do."""
    fill = {k: values.get(k, "") for k in ("reopen_days", "answer_within")}
    text = words.no_survey
    if survey is not None:
        fill |= {"link": survey.url, "expires": when(survey.expires_at, zone, locale)}
        text = words.survey
    for name, value in fill.items():
        text = text.replace("{" + name + "}", value)
    return text
