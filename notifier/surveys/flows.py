"""Surveys: one opened at each resolution (a signed link in the resolved notice), answered on
the public page or by phone, and turned into a call-back task in the agents' queue when
nobody answers within ``survey_answer_hours``. Each function runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from forewarn.errors import ConflictError, NotFoundError, TicketError
from forewarn.settings import Settings
from forewarn.signing import Signer
from notifier.notices.flows import SurveyLink
from notifier.surveys import repository
from notifier.surveys.repository import Conn
from notifier.surveys.types import MAX_COMMENT, Answer, Survey
from notifier.tickets import repository as tickets

# Resolutions that fixed nothing the owner had: no survey asks whether they are fixed.
NO_SURVEY_CODES = frozenset({"false_alarm", "duplicate", "withdrawn"})


def link_base(settings: Settings, request_base: str | None = None) -> str:
    """Where owners reach the survey page: the configured public URL, else the address the
    request came to, else the API's own address."""
    base = settings.public_url or request_base or f"http://{settings.api_host}:{settings.api_port}"
    return base.rstrip("/")


def signer(settings: Settings) -> Signer | None:
    """The survey links' signer, when a secret is configured."""
    secret = settings.survey_secret
    return None if secret is None else Signer(secret.get_secret_value())


def open_survey(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    owner_id: str,
    locale: str,
    now: datetime,
    base: str,
) -> tuple[Survey, SurveyLink | None]:
    """A survey for the ticket's resolution, and its link when links can be signed."""
    sign = signer(settings)
    survey = repository.insert(
        conn,
        ticket_id=ticket_id,
        owner_id=owner_id,
        locale=locale,
        linked=sign is not None,
        created_at=now,
        answer_by=now + timedelta(hours=settings.survey_answer_hours),
        expires_at=now + timedelta(days=settings.survey_valid_days),
    )
    if sign is None:
        return survey, None
    token = sign.token(subject=survey.subject, expires=survey.expires_at)
    return survey, SurveyLink(f"{base}/survey/{token}", survey.expires_at)


def from_token(conn: Conn, settings: Settings, *, token: str, now: datetime) -> Survey:
    """The survey a link names; SignatureError for a forged link, ExpiredError for an old one,
    NotFoundError when surveys are not configured or it no longer exists."""
    sign = signer(settings)
    if sign is None:
        raise NotFoundError("surveys are not configured here")
    subject = sign.read_token(token, now=now)
    survey = None
    if subject.startswith("s") and subject[1:].isdigit():
        survey = repository.get(conn, survey_id=int(subject[1:]))
    if survey is None:
        raise NotFoundError("no such survey")
    return survey


def check_answer(given: Answer) -> Answer:
    """The answer with its comment trimmed; TicketError for a rating outside 1-5 or a comment
    that is too long."""
    if not 1 <= given.rating <= 5:
        raise TicketError(f"a rating is 1 to 5, not {given.rating}")
    comment = given.comment.strip()
    if len(comment) > MAX_COMMENT:
        raise TicketError(f"a comment is at most {MAX_COMMENT} characters")
    return Answer(given.fixed, given.rating, comment)


def record(
    conn: Conn, *, survey: Survey, given: Answer, via: str, by: str | None, now: datetime
) -> None:
    """Record an answer to a survey that is still open; ConflictError if it was answered or
    its ticket was reopened meanwhile."""
    current = repository.get(conn, survey_id=survey.survey_id, lock=True)
    assert current is not None
    if current.answered_at is not None:
        raise ConflictError("this survey was already answered; thank you")
    if current.cancelled_at is not None:
        raise ConflictError("the ticket was reopened after this survey was sent")
    checked = check_answer(given)
    repository.answer(conn, survey_id=survey.survey_id, given=checked, via=via, by=by, at=now)
    detail = {"fixed": checked.fixed, "rating": checked.rating, "via": via}
    if checked.comment:
        detail["comment"] = checked.comment
    actor = by or f"owner:{survey.owner_id}"
    tickets.add_event(
        conn, ticket_id=survey.ticket_id, at=now, kind="survey_answered", actor=actor, detail=detail
    )
    if current.callback_at is not None:
        tickets.set_callback(conn, ticket_id=survey.ticket_id, done_at=now)


@dataclass(frozen=True, slots=True)
class CallbackReport:
    """What one pass over the unanswered surveys did."""

    requested: int = 0


def request_callbacks(conn: Conn, *, now: datetime) -> CallbackReport:
    """Every survey still unanswered at its answer time becomes a call-back task on its
    ticket, which the agents' queue shows until someone logs the call."""
    due = repository.due_for_callback(conn, now=now)
    for survey in due:
        repository.mark_callback(conn, survey_id=survey.survey_id, at=now)
        tickets.set_callback(conn, ticket_id=survey.ticket_id, due_at=now)
        why = "the survey was not answered" if survey.linked else "no survey link could be sent"
        tickets.add_event(
            conn,
            ticket_id=survey.ticket_id,
            at=now,
            kind="callback_due",
            detail={"survey_id": survey.survey_id, "why": why},
        )
    return CallbackReport(len(due))
