"""The survey page's two calls: what it asks about, and the owner's answers."""

from __future__ import annotations

from datetime import datetime

from api.surveys.schemas import SurveyAnswer, SurveyInfo, SurveyThanks
from forewarn.settings import Settings
from notifier.guides.select import kind_word
from notifier.notices import repository as owners
from notifier.notices.templates import library, notices_directory
from notifier.surveys import flows as surveys
from notifier.surveys.repository import Conn
from notifier.surveys.types import Answer
from notifier.tickets import actions
from notifier.tickets import repository as tickets


def info(conn: Conn, settings: Settings, *, token: str, now: datetime) -> SurveyInfo:
    """What the survey asks about; SignatureError, ExpiredError or NotFoundError for a link
    that is forged, old or gone."""
    survey = surveys.from_token(conn, settings, token=token, now=now)
    row = tickets.ticket_row(conn, ticket_id=survey.ticket_id)
    assert row is not None  # surveys reference their ticket
    words = library(notices_directory(settings)).words_for(survey.locale)
    code = str(row["resolution_code"] or "other")
    return SurveyInfo(
        ticket_id=survey.ticket_id,
        locale=survey.locale,
        device=kind_word(owners.device_kind(conn, device_id=row["device_id"]), survey.locale),
        what_was_done=words.codes.get(code, words.codes["other"]),
        expires_at=survey.expires_at,
        answered=survey.answered_at is not None,
        cancelled=survey.cancelled_at is not None,
    )


def answer(
    conn: Conn, settings: Settings, *, token: str, given: SurveyAnswer, now: datetime
) -> SurveyThanks:
    """Record the owner's answers; "not fixed" reopens the ticket. ConflictError when the
    survey was answered already or the ticket reopened meanwhile."""
    with conn.transaction():
        survey = surveys.from_token(conn, settings, token=token, now=now)
        state = actions.take_answer(
            conn,
            settings,
            survey=survey,
            given=Answer(given.fixed, given.rating, given.comment),
            via="survey",
            by=None,
            now=now,
        )
    return SurveyThanks(reopened=state is not None)
