"""Routes: the public survey page (/survey/{token}), its data and its answer. No API key: the
token in the link is signed (FOREWARN_SURVEY_SECRET) and expires. The page is plain HTML and
one script, served from here with a strict Content-Security-Policy and no referrer, so the
token in the address never leaves this site."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from api.deps import ClockDep, ConnDep, SettingsDep
from api.responses import CONFLICT, Responses, error
from api.surveys import flows
from api.surveys.schemas import SurveyAnswer, SurveyInfo, SurveyThanks

router = APIRouter(prefix="/survey", tags=["survey"])

PAGE = FilePath(__file__).parent / "page"
# The page may load only its own script and style, and talk only to this site.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
LINK: Responses = {
    401: error("The link's signature does not match: not a link Forewarn sent"),
    404: error("No such survey, or surveys are not configured"),
    410: error("The link has expired"),
}
_TOKEN = Path(max_length=200, description="The token of the survey link")


@router.get("/{token}", include_in_schema=False)
def page(token: Annotated[str, _TOKEN]) -> FileResponse:
    """The survey page; its script reads the token from the address."""
    return FileResponse(PAGE / "index.html", headers=HEADERS)


@router.get("/assets/{name}", include_in_schema=False)
def asset(name: Annotated[str, Path(pattern=r"^survey\.(js|css)$")]) -> FileResponse:
    """The page's script and stylesheet."""
    return FileResponse(PAGE / name, headers=HEADERS)


@router.get(
    "/{token}/info",
    response_model=SurveyInfo,
    summary="What a survey asks about",
    description="The ticket, the resolution in the owner's words and language, and whether "
    "it was answered. No API key: the token is the link's signature.",
    responses=LINK,
)
def survey_info(
    token: Annotated[str, _TOKEN], conn: ConnDep, clock: ClockDep, settings: SettingsDep
) -> SurveyInfo:
    """The survey's facts."""
    return flows.info(conn, settings, token=token, now=clock.now())


@router.post(
    "/{token}",
    response_model=SurveyThanks,
    summary="Answer a survey",
    description="The owner's answers: is it fixed (false reopens the ticket and tells its "
    "team), a rating from 1 to 5 and a comment. 409 when it was answered already or the "
    "ticket was reopened since.",
    responses=LINK | CONFLICT,
)
def survey_answer(
    token: Annotated[str, _TOKEN],
    body: SurveyAnswer,
    conn: ConnDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SurveyThanks:
    """Answer."""
    return flows.answer(conn, settings, token=token, given=body, now=clock.now())
