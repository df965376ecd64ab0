"""The knowledge base: Markdown guides in ``guides/``, loaded into the ``guides`` table,
chosen for a device's predicted fault and rendered into an owner's notification, and
searched by words and by meaning (``search_guides``)."""

from notifier.guides.flows import (
    GuideExistsError,
    LoadReport,
    create_guide,
    default_directory,
    edit_guide,
    guide_for,
    index_guides,
    load_directory,
    onboarding_for,
    search_guides,
)
from notifier.guides.markdown import parse_guide, read_directory
from notifier.guides.search import SearchHit, SearchResult
from notifier.guides.select import choose, onboarding, render
from notifier.guides.types import Guide, GuideDraft, GuideFacts, RenderedGuide

__all__ = [
    "Guide",
    "GuideDraft",
    "GuideExistsError",
    "GuideFacts",
    "LoadReport",
    "RenderedGuide",
    "SearchHit",
    "SearchResult",
    "choose",
    "create_guide",
    "default_directory",
    "edit_guide",
    "guide_for",
    "index_guides",
    "load_directory",
    "onboarding",
    "onboarding_for",
    "parse_guide",
    "read_directory",
    "render",
    "search_guides",
]
