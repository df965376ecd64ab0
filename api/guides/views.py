"""Routes: /api/v1/guides, the knowledge base: list, search, read, create and edit guides."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import ConnDep, Editor, Reader
from api.guides.schemas import (
    LOCALE_DESCRIPTION,
    GuideContent,
    GuideDetail,
    GuideItem,
    GuideList,
    NewGuide,
    SearchResults,
)
from api.responses import AUTH, INVALID, NOT_FOUND, ErrorBody, Responses
from forewarn.errors import NotFoundError
from notifier.guides import flows, repository
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


@router.post(
    "",
    response_model=GuideDetail,
    status_code=201,
    summary="Create a guide",
    description=(
        "A new guide in one locale (source `api`), checked as a guide file is when it is "
        "loaded: category, audience, fault and kinds from their lists, a readable firmware "
        "range, non-empty text and steps, only known placeholders. It is indexed for search "
        "at once. The same id in another locale is a translation of it."
    ),
    responses=INVALID | EXISTS,
)
def create_guide(body: NewGuide, conn: ConnDep, who: Editor) -> GuideDetail:
    """Create."""
    guide = flows.create_guide(conn, draft=body.draft(body.guide_id, body.locale))
    return GuideDetail.of(guide)


@router.put(
    "/{guide_id}/{locale}",
    response_model=GuideDetail,
    summary="Edit a guide",
    description=(
        "Replace a guide's content in one locale, with the same checks as creating one, and "
        "index it again. A guide shipped as a Markdown file is overwritten by the next "
        "`forewarn guides load` if its file differs: change the file for those."
    ),
    responses=INVALID | NOT_FOUND,
)
def edit_guide(
    guide_id: GuideId, locale: Locale, body: GuideContent, conn: ConnDep, who: Editor
) -> GuideDetail:
    """Edit."""
    return GuideDetail.of(flows.edit_guide(conn, draft=body.draft(guide_id, locale)))
