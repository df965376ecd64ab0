"""The knowledge-base API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from notifier.guides.search import SearchHit as DomainHit
from notifier.guides.search import SearchResult
from notifier.guides.types import Guide, GuideDraft, GuideVersion

LOCALE_DESCRIPTION = "A locale tag such as en-US or zh-CN"


class GuideItem(BaseModel):
    """A guide as a list shows it."""

    guide_id: str = Field(description="Same in every language")
    locale: str = Field(description=LOCALE_DESCRIPTION)
    category: str = Field(description="basic, troubleshooting, technical or after_sales")
    fault: str | None = Field(description="The fault it is about; null for guides about none")
    audience: str = Field(description="all, novice or senior")
    title: str = Field(description="May hold placeholders such as {device_name}")
    source_path: str = Field(description="The Markdown file it was loaded from, or 'api'")
    updated_at: datetime | None = Field(description="When its content last changed")

    @classmethod
    def of(cls, guide: Guide) -> GuideItem:
        """The list item for a guide."""
        return cls(
            guide_id=guide.guide_id,
            locale=guide.locale,
            category=guide.category,
            fault=guide.fault,
            audience=guide.audience,
            title=guide.title,
            source_path=guide.source_path,
            updated_at=guide.updated_at,
        )


class GuideList(BaseModel):
    """Guides by id and locale."""

    items: list[GuideItem]
    total: int


class GuideDetail(GuideItem):
    """One guide in one locale, whole."""

    kinds: list[str] = Field(description="Device kinds it is for; empty: every kind")
    models: list[str] = Field(description="Models it is for; empty: every model")
    firmware_min: str | None = Field(description="Lowest firmware it is for (inclusive)")
    firmware_max: str | None = Field(description="Firmware it is no longer for (exclusive)")
    problem: str
    scenario: str = Field(description="Which devices and firmware it applies to (for staff)")
    steps: list[str] = Field(description="What the owner does, in order")
    cautions: list[str]
    sha256: str = Field(description="Of the file, or of the content for guides made by the API")

    @classmethod
    def of(cls, guide: Guide) -> GuideDetail:
        """The whole guide."""
        return cls(
            **GuideItem.of(guide).model_dump(),
            kinds=list(guide.kinds),
            models=list(guide.models),
            firmware_min=guide.firmware_min,
            firmware_max=guide.firmware_max,
            problem=guide.problem,
            scenario=guide.scenario,
            steps=list(guide.steps),
            cautions=list(guide.cautions),
            sha256=guide.sha256,
        )


class GuideContent(BaseModel):
    """A guide's content, checked as a guide file is when it is loaded."""

    category: str = Field(description="basic, troubleshooting, technical or after_sales")
    fault: str | None = Field(None, description="A fault kind, or null for no fault")
    audience: str = Field("all", description="all, novice or senior")
    kinds: list[str] = Field(default_factory=list, description="Device kinds; empty: every kind")
    models: list[str] = Field(default_factory=list, description="Models; empty: every model")
    firmware: str | None = Field(
        None, description='A firmware range such as ">=3.0.0,<3.1.1" or "==3.1.0"; null: all'
    )
    title: str = Field(max_length=300, description="Placeholders allowed: {device_name}, ...")
    problem: str = Field(max_length=5000)
    scenario: str = Field(max_length=5000, description="Which devices and firmware it is for")
    steps: list[str] = Field(min_length=1, max_length=30, description="One action each, in order")
    cautions: list[str] = Field(default_factory=list, max_length=30)

    def draft(self, guide_id: str, locale: str) -> GuideDraft:
        """The domain's draft of this content for a guide id and locale."""
        return GuideDraft(
            guide_id=guide_id,
            locale=locale,
            category=self.category,
            fault=self.fault or None,
            audience=self.audience,
            kinds=tuple(self.kinds),
            models=tuple(self.models),
            firmware=self.firmware or None,
            title=self.title,
            problem=self.problem,
            scenario=self.scenario,
            steps=tuple(self.steps),
            cautions=tuple(self.cautions),
        )


class NewGuide(GuideContent):
    """A new guide: its id and locale, and its content."""

    guide_id: str = Field(max_length=100, description="Lower-case letters, digits, _ and -")
    locale: str = Field(max_length=20, description=LOCALE_DESCRIPTION)


class SearchHit(BaseModel):
    """A guide found by a search, with how well it matched."""

    guide_id: str
    locale: str = Field(description="The locale it is shown in")
    title: str
    category: str
    fault: str | None
    score: float = Field(description="The ranking score: words and meaning combined, 0 to 1")
    word_score: float = Field(
        description="Share of the query's words the guide has, 0 to 1 (both scores are halved "
        "for a guide written only for another product than the one the query names)"
    )
    meaning_score: float | None = Field(
        description="Cosine of the query's and the guide's sentence embeddings (0 to 1); "
        "null when searching by words only"
    )
    matched_locale: str = Field(description="The locale of the text that matched best")

    @classmethod
    def of(cls, hit: DomainHit) -> SearchHit:
        """The response item for a hit."""
        return cls(
            guide_id=hit.guide_id,
            locale=hit.locale,
            title=hit.title,
            category=hit.category,
            fault=hit.fault,
            score=hit.score,
            word_score=hit.word_score,
            meaning_score=hit.meaning_score,
            matched_locale=hit.matched_locale,
        )


class SearchResults(BaseModel):
    """The best guides for a query."""

    query: str
    locale: str | None = Field(description="The locale asked for; null: each hit as matched")
    semantic: bool = Field(
        description="Whether meaning was used; false: the embedding model is not installed "
        "and the search was by words only"
    )
    model: str | None = Field(description="The embedding model, when semantic")
    hits: list[SearchHit]

    @classmethod
    def of(cls, result: SearchResult) -> SearchResults:
        """The response for a search."""
        return cls(
            query=result.query,
            locale=result.locale,
            semantic=result.semantic,
            model=result.model,
            hits=[SearchHit.of(hit) for hit in result.hits],
        )


class VersionOut(BaseModel):
    """One version of a guide: its content, editor, time, diff and review."""

    version_id: int
    guide_id: str
    locale: str
    version: int = Field(description="1 for the first version of this guide in this locale")
    state: str = Field(
        description="draft, in_review, published (owners get it), superseded or rejected"
    )
    title: str
    content: dict[str, Any] = Field(description="The guide as written in this version")
    diff: str = Field(description="Unified diff against the guide published when it was written")
    editor: str = Field(description="The API key's name that wrote it")
    edited_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    reviewer: str | None = Field(description="Who published or rejected it")
    reviewed_at: datetime | None
    note: str | None = Field(description="The reviewer's note")

    @classmethod
    def of(cls, v: GuideVersion) -> VersionOut:
        """The response for a version."""
        return cls(
            version_id=v.version_id,
            guide_id=v.guide_id,
            locale=v.locale,
            version=v.version,
            state=v.state.value,
            title=str(v.content.get("title", "")),
            content=dict(v.content),
            diff=v.diff,
            editor=v.editor,
            edited_at=v.edited_at,
            submitted_by=v.submitted_by,
            submitted_at=v.submitted_at,
            reviewer=v.reviewer,
            reviewed_at=v.reviewed_at,
            note=v.note,
        )


class VersionList(BaseModel):
    """Every version of a guide in one locale, newest first."""

    items: list[VersionOut]


class ReviewStep(BaseModel):
    """Which locale of the guide a review step is about."""

    locale: str = Field(max_length=20, description=LOCALE_DESCRIPTION)
    note: str | None = Field(default=None, max_length=2000, description="Kept with the version")


class Rejection(ReviewStep):
    """Send a version in review back: the note says why."""

    note: str = Field(min_length=1, max_length=2000, description="What to change")
