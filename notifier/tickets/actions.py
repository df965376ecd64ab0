"""What staff (and owners) do to a ticket, and what the owner is told about it: state changes
(resolving asks for confirmation with a survey; waiting asks the owner a question), a person's
message or call to the owner (the first response), and the owner's survey answer ("not fixed"
reopens the ticket). Each function runs in the caller's transaction; the notices go to the
outbox in that same transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from forewarn.errors import NotFoundError, TicketError
from forewarn.settings import Settings
from notifier.notices import repository as owners
from notifier.notices.flows import tell_owner
from notifier.notices.types import NoticeKind
from notifier.surveys import flows as surveys
from notifier.surveys import repository as survey_rows
from notifier.surveys.types import Answer, Survey
from notifier.tickets import repository
from notifier.tickets.flows import Conn, tell_staff
from notifier.tickets.staff import locked_row
from notifier.tickets.types import ContactHow, TicketAction, TicketState, next_state

DEFAULT_REOPEN_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Outreach:
    """What telling the owner needs beyond the ticket: the settings, where survey links point,
    and how long after a resolution the owner's reply reopens the ticket (the rule set's
    recurrence window)."""

    settings: Settings
    link_base: str
    reopen_window: timedelta = DEFAULT_REOPEN_WINDOW


def act(
    conn: Conn,
    outreach: Outreach,
    *,
    ticket_id: int,
    action: TicketAction,
    actor: str,
    now: datetime,
    resolution_code: str | None = None,
    note: str | None = None,
    on_resolved: Callable[[], Mapping[str, Any]] | None = None,
) -> TicketState:
    """Apply an action to a ticket's state; TicketError if the state does not allow it.
    `on_resolved` runs when the ticket becomes resolved; what it returns joins the timeline
    entry (``rules.feedback.act`` closes the incidents behind the ticket there). Resolving
    tells the owner what was done and asks them to confirm; waiting asks them `note`;
    reopening tells them it is open again."""
    current = repository.state_of(conn, ticket_id=ticket_id)
    if current is None:
        raise NotFoundError(f"no ticket {ticket_id}")
    if action is TicketAction.RESOLVE and not resolution_code:
        raise TicketError("resolving a ticket needs a resolution code")
    if action is TicketAction.WAIT and not (note and note.strip()):
        raise TicketError("waiting for the owner needs the question to ask them (the note)")
    state = next_state(TicketState(current), action)
    repository.set_state(
        conn,
        ticket_id=ticket_id,
        state=state.value,
        at=now,
        actor=actor,
        resolution_code=resolution_code,
    )
    detail: dict[str, Any] = {
        "from": current,
        "to": state.value,
        "code": resolution_code,
        "note": note,
    }
    if state is TicketState.RESOLVED and on_resolved is not None:
        detail |= on_resolved()
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind=action.value,
        actor=actor,
        detail={k: v for k, v in detail.items() if v is not None},
    )
    if action is TicketAction.RESOLVE:
        _resolved(
            conn, outreach, ticket_id=ticket_id, code=str(resolution_code), note=note, now=now
        )
    elif action is TicketAction.WAIT:
        _ask(conn, outreach.settings, ticket_id=ticket_id, question=str(note), actor=actor, now=now)
    elif action is TicketAction.REOPEN:
        reopened(conn, outreach.settings, ticket_id=ticket_id, now=now, by_owner=False)
    return state


def contact(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    how: ContactHow,
    text: str,
    actor: str,
    now: datetime,
    answer: Answer | None = None,
) -> None:
    """A person reached the owner: a message sent through the owner's channels, or a call
    logged (with the survey's answers when the call was the call-back). The first contact is
    the ticket's first response; a new ticket is thereby acknowledged."""
    text = text.strip()
    if not text:
        raise TicketError("a contact needs its text: the message, or notes of the call")
    if answer is not None and how is not ContactHow.CALL:
        raise TicketError("survey answers are taken on a call; a message cannot carry them")
    locked_row(conn, ticket_id)
    queued = 0
    if how is ContactHow.MESSAGE:
        queued = tell_owner(
            conn,
            settings,
            ticket_id=ticket_id,
            kind=NoticeKind.STAFF_MESSAGE,
            now=now,
            key=f"message:{now.isoformat()}",
            extra={"text": text, "agent": actor},
        )
        if not queued:
            raise TicketError(
                "the owner has no channel to send a message to: call them and log the call"
            )
    repository.mark_contact(conn, ticket_id=ticket_id, at=now, actor=actor)
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="contact",
        actor=actor,
        detail={"how": how.value, "text": text} | ({"queued": queued} if queued else {}),
    )
    if answer is not None:
        survey = survey_rows.open_for_ticket(conn, ticket_id=ticket_id)
        if survey is None:
            raise TicketError(f"ticket {ticket_id} has no survey waiting for an answer")
        take_answer(conn, settings, survey=survey, given=answer, via="call", by=actor, now=now)
    if how is ContactHow.CALL:
        row = repository.ticket_row(conn, ticket_id=ticket_id)
        if row is not None and row["callback_due_at"] is not None and not row["callback_done_at"]:
            # The call-back was made, whether or not the owner wanted to rate us.
            repository.set_callback(conn, ticket_id=ticket_id, done_at=now)


def take_answer(
    conn: Conn,
    settings: Settings,
    *,
    survey: Survey,
    given: Answer,
    via: str,
    by: str | None,
    now: datetime,
) -> TicketState | None:
    """Record a survey answer; "not fixed" reopens a resolved or closed ticket (and tells the
    owner and the ticket's team). Returns the ticket's new state when it changed."""
    surveys.record(conn, survey=survey, given=given, via=via, by=by, now=now)
    if given.fixed:
        return None
    current = TicketState(str(repository.state_of(conn, ticket_id=survey.ticket_id)))
    if current.open:
        return None
    actor = by or f"owner:{survey.owner_id}"
    repository.set_state(conn, ticket_id=survey.ticket_id, state="new", at=now, actor=actor)
    repository.add_event(
        conn,
        ticket_id=survey.ticket_id,
        at=now,
        kind="reopen",
        actor=actor,
        detail={"from": current.value, "to": "new", "note": "the owner says it is not fixed"},
    )
    reopened(conn, settings, ticket_id=survey.ticket_id, now=now, by_owner=True)
    return TicketState.NEW


def _resolved(
    conn: Conn, outreach: Outreach, *, ticket_id: int, code: str, note: str | None, now: datetime
) -> None:
    """Tell the owner what was done, and open the survey that asks whether it is fixed."""
    row = repository.ticket_row(conn, ticket_id=ticket_id)
    assert row is not None
    owner_id = row["customer_id"]
    if owner_id is None or row["kind"] == "fleet":
        return
    link, key = None, f"resolved:{now.isoformat()}"
    if code not in surveys.NO_SURVEY_CODES:
        survey, link = surveys.open_survey(
            conn,
            outreach.settings,
            ticket_id=ticket_id,
            owner_id=str(owner_id),
            locale=_locale(conn, str(owner_id)),
            now=now,
            base=outreach.link_base,
        )
        key = f"resolved:{survey.survey_id}"
    days = str(max(1, round(outreach.reopen_window / timedelta(days=1))))
    tell_owner(
        conn,
        outreach.settings,
        ticket_id=ticket_id,
        kind=NoticeKind.RESOLVED,
        now=now,
        key=key,
        extra={"note": (note or "").strip(), "reopen_days": days},
        survey=link,
    )


def _ask(
    conn: Conn, settings: Settings, *, ticket_id: int, question: str, actor: str, now: datetime
) -> None:
    """Send the owner staff's question; sent, it is a contact (the first response)."""
    queued = tell_owner(
        conn,
        settings,
        ticket_id=ticket_id,
        kind=NoticeKind.WAITING,
        now=now,
        key=f"waiting:{now.isoformat()}",
        extra={"request": question.strip(), "agent": actor},
    )
    if queued:
        repository.mark_contact(conn, ticket_id=ticket_id, at=now, actor=actor)


def reopened(
    conn: Conn, settings: Settings, *, ticket_id: int, now: datetime, by_owner: bool
) -> None:
    """A reopened ticket: its unanswered surveys no longer apply; the owner and, when the
    owner reopened it, the ticket's team are told."""
    survey_rows.cancel_open(conn, ticket_id=ticket_id, at=now)
    row = repository.ticket_row(conn, ticket_id=ticket_id)
    assert row is not None
    tell_owner(
        conn,
        settings,
        ticket_id=ticket_id,
        kind=NoticeKind.REOPENED,
        now=now,
        key=f"reopened:{row['reopened']}",
    )
    if by_owner:
        tag = repository.team_tag_of(conn, ticket_id=ticket_id)
        tell_staff(
            conn,
            settings,
            ticket_id=ticket_id,
            tag=tag,
            now=now,
            title=f"ticket {ticket_id} reopened by its owner",
            body="The owner says the problem is not fixed.",
            key=f"ticket:{ticket_id}:reopened:{row['reopened']}",
        )


def _locale(conn: Conn, owner_id: str) -> str:
    owner = owners.owner(conn, owner_id=owner_id)
    return "en-US" if owner is None else owner.locale
