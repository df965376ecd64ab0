"""Routes: /api/v1/guides, the knowledge base: list, search, read; drafts, review, publishing
and each guide's history."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import ClockDep, ConnDep, Editor, Reader, Reviewer
from api.guides.schemas import (
    LOCALE_DESCRIPTION,
    GuideContent,
    GuideDetail,
    GuideItem,
    GuideList,
    NewGuide,
    Rejection,
    ReviewStep,
    SearchResults,
    VersionList,
    VersionOut,
)
from api.responses import AUTH, CONFLICT, INVALID, NOT_FOUND, ErrorBody, Responses
from forewarn.errors import NotFoundError
from notifier.guides import flows, repository, review
from notifier.guides.search import MAX_LIMIT, MAX_QUERY_CHARS

router = APIRouter(prefix="/api/v1/guides", tags=["guides"], responses=AUTH)

EXISTS: Responses = {
    409: {"model": ErrorBody, "description": "A guide with this id and locale already exists"}
}
GuideId = Annotated[str, Path(max_length=100, description="The guide's id")]
Locale = Annotated[str, Path(max_length=20, description=LOCALE_DESCRIPTION)]
Category = Literal["basic", "troubleshooting", "technical", "after_sales"]


@router.get(
    "",
    response_model=GuideList,
    summary="List guides",
    description="Every guide in every locale, by id and locale; narrowed by fault, locale "
    "(exact) and category.",
    responses=INVALID,
)
def list_guides(
    conn: ConnDep,
    who: Reader,
    fault: Annotated[str | None, Query(max_length=100, description="A fault kind")] = None,
    locale: Annotated[str | None, Query(max_length=20, description=LOCALE_DESCRIPTION)] = None,
    category: Annotated[Category | None, Query()] = None,
) -> GuideList:
    """Guides, filtered."""
    # An empty parameter (the console's "any language") means no filter, not "locale ''".
    guides = repository.list_guides(
        conn, fault=fault or None, locale=locale or None, category=category
    )
    return GuideList(items=[GuideItem.of(g) for g in guides], total=len(guides))


@router.get(
    "/search",
    response_model=SearchResults,
    summary="Search guides by meaning and words",
    description=(
        "The guides that best answer an owner's question, in Chinese or English: each guide "
        "scores by the share of the question's words it has (English words, Chinese character "
        "pairs) and by the cosine of the question's and the guide's sentence embeddings "
        "(all-MiniLM-L6-v2), combined. A guide is shown in `locale` when it exists there "
        "(else the same language, else English); without `locale`, in the language that "
        "matched. `semantic` is false when the embedding model is not installed and the "
        "search used words only. An empty question is a 422."
    ),
    responses=INVALID,
)
def search(
    conn: ConnDep,
    who: Reader,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="The question, as asked")],
    locale: Annotated[
        str | None, Query(max_length=20, description="Show guides in this locale if they exist")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many hits")] = 10,
) -> SearchResults:
    """Search."""
    return SearchResults.of(flows.search_guides(conn, query=q, locale=locale or None, limit=limit))


@router.get(
    "/{guide_id}/{locale}",
    response_model=GuideDetail,
    summary="One guide",
    description="A guide in one locale, with its steps, cautions and the devices it is for.",
    responses=INVALID | NOT_FOUND,
)
def get_guide(guide_id: GuideId, locale: Locale, conn: ConnDep, who: Reader) -> GuideDetail:
    """One guide."""
    guide = repository.guide(conn, guide_id=guide_id, locale=locale)
    if guide is None:
        raise NotFoundError(f"no guide {guide_id!r} in {locale}")
    return GuideDetail.of(guide)


@router.get(
    "/{guide_id}/{locale}/versions",
    response_model=VersionList,
    summary="A guide's history",
    description="Every version of the guide in one locale, newest first: its content, "
    "editor, time, the diff against the guide published when it was written, and its review.",
    responses=INVALID | NOT_FOUND,
)
def versions(guide_id: GuideId, locale: Locale, conn: ConnDep, who: Reader) -> VersionList:
    """History."""
    return VersionList(
        items=[VersionOut.of(v) for v in review.history(conn, guide_id=guide_id, locale=locale)]
    )


@router.post(
    "",
    response_model=VersionOut,
    status_code=201,
    summary="Draft a new guide",
    description=(
        "A new guide in one locale, as a **draft** (version 1): owners are not sent it and "
        "search does not find it until a reviewer publishes it. Checked as a guide file is "
        "when it is loaded: category, audience, fault and kinds from their lists, a readable "
        "firmware range, non-empty text and steps, only known placeholders. The same id in "
        "another locale is a translation of it. Editors: agent (L2/L3), reviewer, admin; "
        "first-line keys may only read guides."
    ),
    responses=INVALID | EXISTS,
)
def create_guide(body: NewGuide, conn: ConnDep, clock: ClockDep, who: Editor) -> VersionOut:
    """Draft a new guide."""
    draft = body.draft(body.guide_id, body.locale)
    return VersionOut.of(
        review.propose(conn, draft=draft, editor=who.name, now=clock.now(), new=True)
    )


@router.put(
    "/{guide_id}/{locale}",
    response_model=VersionOut,
    summary="Edit a guide (a draft)",
    description=(
        "A new draft version of a guide in one locale, with the same checks as creating one "
        "and the diff against the published guide; the published guide is unchanged until a "
        "reviewer publishes the draft. An older draft or version in review is superseded. A "
        "guide shipped as a Markdown file is overwritten by the next `forewarn guides load` "
        "if its file differs: change the file for those."
    ),
    responses=INVALID | NOT_FOUND,
)
def edit_guide(
    guide_id: GuideId,
    locale: Locale,
    body: GuideContent,
    conn: ConnDep,
    clock: ClockDep,
    who: Editor,
) -> VersionOut:
    """Edit: a draft."""
    draft = body.draft(guide_id, locale)
    return VersionOut.of(
        review.propose(conn, draft=draft, editor=who.name, now=clock.now(), new=False)
    )


@router.post(
    "/{guide_id}/review",
    response_model=VersionOut,
    summary="Send a draft for review",
    description="The guide's draft in `locale` goes to the reviewers (state in_review). 409 "
    "without a draft.",
    responses=INVALID | CONFLICT,
)
def send_for_review(
    guide_id: GuideId, body: ReviewStep, conn: ConnDep, clock: ClockDep, who: Editor
) -> VersionOut:
    """Send for review."""
    version = review.submit(
        conn, guide_id=guide_id, locale=body.locale, actor=who.name, now=clock.now()
    )
    return VersionOut.of(version)


@router.post(
    "/{guide_id}/publish",
    response_model=GuideDetail,
    summary="Publish the version in review",
    description=(
        "A reviewer (R&D; role reviewer or admin) publishes the guide's version in review in "
        "`locale`: it becomes the guide owners are sent and search finds, and is indexed. 409 "
        "without a version in review, or when the reviewer is its editor (someone else checks "
        "a guide's accuracy)."
    ),
    responses=INVALID | CONFLICT,
)
def publish(
    guide_id: GuideId, body: ReviewStep, conn: ConnDep, clock: ClockDep, who: Reviewer
) -> GuideDetail:
    """Publish."""
    guide = review.publish(
        conn,
        guide_id=guide_id,
        locale=body.locale,
        reviewer=who.name,
        now=clock.now(),
        note=body.note,
    )
    return GuideDetail.of(guide)


@router.post(
    "/{guide_id}/reject",
    response_model=VersionOut,
    summary="Send the version in review back",
    description="A reviewer rejects the version in review with a note saying what to change; "
    "the published guide stays as it was. 409 as for publishing.",
    responses=INVALID | CONFLICT,
)
def reject(
    guide_id: GuideId, body: Rejection, conn: ConnDep, clock: ClockDep, who: Reviewer
) -> VersionOut:
    """Reject."""
    version = review.reject(
        conn,
        guide_id=guide_id,
        locale=body.locale,
        reviewer=who.name,
        now=clock.now(),
        note=body.note,
    )
    return VersionOut.of(version)
