"""Guide governance (standard 5.2: first line views, L2/L3 edit, R&D checks accuracy). An
edit through the API is a draft version, never the live guide; an editor sends it for review;
a reviewer other than its editor publishes it (it becomes the ``guides`` row that owners are
sent and search reads) or rejects it with a note. Every version is kept with its editor, time
and the diff against the guide it replaces. Guide files loaded by ``forewarn guides load``
are reviewed where they are written (the repository) and load as published."""

from __future__ import annotations

import dataclasses
import difflib
from datetime import datetime
from typing import Any

from forewarn.errors import ConflictError, NotFoundError
from notifier.guides import repository
from notifier.guides import versions_repository as versions
from notifier.guides.embedding import shared_embedder
from notifier.guides.flows import EmbedderChoice, GuideExistsError, checked, index_guides
from notifier.guides.repository import Conn
from notifier.guides.types import Guide, GuideDraft, GuideVersion, VersionState

OPEN = (VersionState.DRAFT, VersionState.IN_REVIEW)


def as_text(guide: Guide | None) -> list[str]:
    """A guide as the lines a diff compares (empty for no guide)."""
    if guide is None:
        return []
    firmware = f"{guide.firmware_min or ''}..{guide.firmware_max or ''}"
    return [
        f"title: {guide.title}",
        f"category: {guide.category}; fault: {guide.fault or '-'}; audience: {guide.audience}",
        f"kinds: {', '.join(guide.kinds) or '*'}; models: {', '.join(guide.models) or '*'}; "
        f"firmware: {firmware}",
        "problem:",
        *guide.problem.splitlines(),
        "scenario:",
        *guide.scenario.splitlines(),
        "steps:",
        *(f"{n}. {step}" for n, step in enumerate(guide.steps, 1)),
        "cautions:",
        *(f"- {c}" for c in guide.cautions),
        f"phrases: {' | '.join(guide.phrases)}",
    ]


def diff(before: Guide | None, after: Guide) -> str:
    """The unified diff from `before` (the published guide, or none) to `after`."""
    lines = difflib.unified_diff(
        as_text(before), as_text(after), "published", "this version", lineterm=""
    )
    return "\n".join(lines)


def propose(
    conn: Conn, *, draft: GuideDraft, editor: str, now: datetime, new: bool
) -> GuideVersion:
    """Keep an edit as a draft version (checked as a guide file is). `new`: a guide that must
    not exist yet (GuideExistsError if it is published or already drafted); else a guide that
    must (NotFoundError). A draft without phrases keeps the published ones. An older draft or
    version in review is superseded by this one."""
    guide = checked(draft)  # a bad draft is refused before the database is read
    with conn.transaction():
        published = repository.guide(conn, guide_id=draft.guide_id, locale=draft.locale)
        pending = versions.open_version(conn, guide_id=draft.guide_id, locale=draft.locale)
        where = f"guide {draft.guide_id!r} in {draft.locale}"
        if new and (published is not None or pending is not None):
            raise GuideExistsError(f"{where} already exists; edit it instead")
        known = published is not None or versions.history(
            conn, guide_id=draft.guide_id, locale=draft.locale
        )
        if not new and not known:
            raise NotFoundError(f"no {where}")
        if draft.phrases is None:
            kept = published.phrases if published is not None else ()
            draft = dataclasses.replace(draft, phrases=kept)
            guide = checked(draft)
        versions.supersede(conn, guide_id=draft.guide_id, locale=draft.locale, states=OPEN)
        return versions.insert(
            conn,
            guide_id=draft.guide_id,
            locale=draft.locale,
            content=_content(draft),
            sha256=guide.sha256,
            diff=diff(published, guide),
            editor=editor,
            at=now,
        )


def submit(conn: Conn, *, guide_id: str, locale: str, actor: str, now: datetime) -> GuideVersion:
    """Send the guide's draft for review; ConflictError if it has none."""
    with conn.transaction():
        pending = versions.open_version(conn, guide_id=guide_id, locale=locale)
        if pending is None or pending.state is not VersionState.DRAFT:
            state = "already in review" if pending else "no draft"
            raise ConflictError(f"guide {guide_id!r} in {locale}: {state} to send for review")
        return versions.submit(conn, version_id=pending.version_id, actor=actor, at=now)


def publish(
    conn: Conn,
    *,
    guide_id: str,
    locale: str,
    reviewer: str,
    now: datetime,
    note: str | None = None,
    embedder: EmbedderChoice = "shared",
) -> Guide:
    """Publish the guide's version in review: it becomes the guide owners are sent and search
    finds. ConflictError without a version in review, or when its editor reviews it."""
    with conn.transaction():
        pending = _in_review(conn, guide_id, locale, reviewer)
        guide = checked(_draft(pending))
        versions.supersede(conn, guide_id=guide_id, locale=locale, states=(VersionState.PUBLISHED,))
        versions.review(
            conn,
            version_id=pending.version_id,
            state=VersionState.PUBLISHED,
            reviewer=reviewer,
            at=now,
            note=note,
        )
        repository.upsert_guides(conn, guides=[guide])
        chosen = shared_embedder() if embedder == "shared" else embedder
        if chosen is not None:
            index_guides(conn, chosen)
        stored = repository.guide(conn, guide_id=guide_id, locale=locale)
        assert stored is not None  # written in this transaction
        return stored


def reject(
    conn: Conn, *, guide_id: str, locale: str, reviewer: str, now: datetime, note: str
) -> GuideVersion:
    """Send the version in review back with `note`; the published guide stays as it was."""
    with conn.transaction():
        pending = _in_review(conn, guide_id, locale, reviewer)
        return versions.review(
            conn,
            version_id=pending.version_id,
            state=VersionState.REJECTED,
            reviewer=reviewer,
            at=now,
            note=note,
        )


def history(conn: Conn, *, guide_id: str, locale: str) -> list[GuideVersion]:
    """Every version of the guide in one locale, newest first; NotFoundError if none and the
    guide is not published either."""
    found = versions.history(conn, guide_id=guide_id, locale=locale)
    if not found and repository.guide(conn, guide_id=guide_id, locale=locale) is None:
        raise NotFoundError(f"no guide {guide_id!r} in {locale}")
    return found


def _in_review(conn: Conn, guide_id: str, locale: str, reviewer: str) -> GuideVersion:
    pending = versions.open_version(conn, guide_id=guide_id, locale=locale)
    if pending is None or pending.state is not VersionState.IN_REVIEW:
        raise ConflictError(f"guide {guide_id!r} in {locale} has no version in review")
    if pending.editor == reviewer:
        raise ConflictError(
            f"version {pending.version} was written by {reviewer}; "
            "someone other than its editor reviews it"
        )
    return pending


def _content(draft: GuideDraft) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(draft).items()}


def _draft(version: GuideVersion) -> GuideDraft:
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in dict(version.content).items()
    }
    return GuideDraft(**values)
