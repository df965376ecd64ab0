"""What a knowledge-base guide is, what the caller knows about a device, and what gets sent.

All frozen, slotted values. ``notifier.guides.markdown`` builds ``Guide`` from a file,
``notifier.guides.repository`` from a ``guides`` row; ``notifier.guides.select`` picks one
and renders it with ``GuideFacts`` into a ``RenderedGuide``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

CATEGORIES = frozenset({"basic", "troubleshooting", "technical", "after_sales"})
AUDIENCES = frozenset({"all", "novice", "senior"})

# The product kinds guides may name; a kind outside this set in a file is a typo.
KINDS = frozenset({"lock", "air_conditioner", "watch", "camera", "temperature_sensor"})

PLACEHOLDERS = frozenset(
    {"device_name", "days_left", "hours_left", "owner_name", "model", "firmware"}
)
"""The only ``{name}`` placeholders a title or body may use."""

DEFAULT_LOCALE = "en-US"


@dataclass(frozen=True, slots=True)
class Guide:
    """One guide in one locale: a row of the ``guides`` table.

    ``firmware_min`` is inclusive and ``firmware_max`` exclusive (dotted numbers; ``None``:
    no bound). Empty ``kinds`` or ``models`` means every kind or model.
    """

    guide_id: str
    locale: str
    category: str
    fault: str | None
    audience: str
    kinds: tuple[str, ...]
    models: tuple[str, ...]
    firmware_min: str | None
    firmware_max: str | None
    title: str
    problem: str
    scenario: str
    steps: tuple[str, ...]
    cautions: tuple[str, ...]
    source_path: str
    sha256: str
    updated_at: datetime | None = None  # set by the database; None for a guide read from a file
    # How owners word the problem, in the guide's language: read by search, never shown.
    phrases: tuple[str, ...] = ()

    @property
    def language(self) -> str:
        """The language part of the locale ("zh" for "zh-CN")."""
        return language_of(self.locale)

    @property
    def has_firmware_range(self) -> bool:
        """Whether the guide applies to a firmware range rather than every version."""
        return self.firmware_min is not None or self.firmware_max is not None


@dataclass(frozen=True, slots=True)
class GuideDraft:
    """A guide as written (a Markdown file, an API request) before it is checked.

    ``firmware`` is the range as written (">=3.0.0,<3.1.1"); ``markdown.build_guide`` checks
    everything and turns a draft into a ``Guide``. ``phrases`` None means "not given": a new
    guide has none, an edited one keeps those it had (so a client that does not know the
    field cannot erase them).
    """

    guide_id: str
    locale: str
    category: str
    title: str
    problem: str
    scenario: str
    steps: tuple[str, ...]
    cautions: tuple[str, ...] = ()
    fault: str | None = None
    audience: str = "all"
    kinds: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    firmware: str | None = None
    phrases: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class GuideVector:
    """A guide text's sentence embedding: a row of ``guide_embeddings``.

    ``sha256`` is the guide's when it was embedded, so a vector of an older text is known as
    such; ``model`` names the embedder and the text recipe that made it.
    """

    guide_id: str
    locale: str
    model: str
    sha256: str
    vector: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class GuideFacts:
    """What the caller knows about the device and owner, to fill a guide's placeholders."""

    device_name: str | None = None
    kind: str | None = None
    model: str | None = None
    firmware: str | None = None
    owner_name: str | None = None
    hours_to_empty: float | None = None


@dataclass(frozen=True, slots=True)
class RenderedGuide:
    """A guide with its placeholders filled: a notification title and a plain-text body."""

    guide_id: str
    locale: str
    title: str
    body: str


def language_of(locale: str) -> str:
    """The lower-case language part of a locale tag ("zh" for "zh-TW", "en" for "en_US")."""
    return locale.replace("_", "-").split("-", 1)[0].strip().lower()


class VersionState(enum.StrEnum):
    """Where a version of a guide is in its review (standard 5.2: R&D checks accuracy)."""

    DRAFT = "draft"  # written by an editor; not sent to anyone
    IN_REVIEW = "in_review"  # sent for review; a reviewer publishes or rejects it
    PUBLISHED = "published"  # the content owners are sent and search finds
    SUPERSEDED = "superseded"  # a newer version replaced it
    REJECTED = "rejected"  # the reviewer sent it back, with a note


@dataclass(frozen=True, slots=True)
class GuideVersion:
    """One version of a guide in one locale: its content as written, who wrote it and when,
    the diff against the version it replaces, and its review."""

    version_id: int
    guide_id: str
    locale: str
    version: int
    state: VersionState
    content: Mapping[str, Any]  # the GuideDraft's fields
    sha256: str
    diff: str
    editor: str
    edited_at: datetime
    submitted_by: str | None = None
    submitted_at: datetime | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    note: str | None = None
