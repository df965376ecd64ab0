"""The knowledge base: Markdown guides in ``guides/``, loaded into the ``guides`` table,
chosen for a device's predicted fault and rendered into an owner's notification."""

from notifier.guides.flows import (
    LoadReport,
    default_directory,
    guide_for,
    load_directory,
    onboarding_for,
)
from notifier.guides.markdown import parse_guide, read_directory
from notifier.guides.select import choose, onboarding, render
from notifier.guides.types import Guide, GuideFacts, RenderedGuide

__all__ = [
    "Guide",
    "GuideFacts",
    "LoadReport",
    "RenderedGuide",
    "choose",
    "default_directory",
    "guide_for",
    "load_directory",
    "onboarding",
    "onboarding_for",
    "parse_guide",
    "read_directory",
    "render",
]
