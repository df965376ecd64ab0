"""Knowledge-base orchestration: load the guide files into the database, index them for
search by meaning, search them, create and edit guides, find a device's guide."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from forewarn.errors import ConflictError, NotFoundError
from notifier.guides import repository
from notifier.guides.embedding import Embedder, shared_embedder
from notifier.guides.markdown import read_directory
from notifier.guides.repository import Conn
from notifier.guides.search import (
    INDEX_RECIPE,
    WEIGHTS,
    SearchResult,
    Vector,
    Weights,
    build_index,
    check_query,
    index_text,
    rank,
)
from notifier.guides.select import choose, onboarding
from notifier.guides.types import DEFAULT_LOCALE, Guide, GuideDraft, GuideVector
from notifier.guides.validate import build_guide

log = logging.getLogger(__name__)

API_SOURCE = "api"  # source_path of a guide created or edited through the API

# "shared": the process's embedder for the bundled model (None when it is not installed);
# None: no embeddings (words only); or an Embedder of the caller's.
EmbedderChoice = Embedder | None | Literal["shared"]


class GuideExistsError(ConflictError):
    """Creating a guide whose id and locale already exist (edit it instead)."""


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What loading a folder of guides did."""

    files: int
    upserted: int  # rows inserted or changed
    unchanged: int  # rows whose file had the same sha256 as the stored one
    indexed: int = 0  # guide texts (re-)embedded for search by meaning


def default_directory() -> Path:
    """The repository's ``guides/`` folder (next to the ``notifier`` package)."""
    return Path(__file__).resolve().parents[2] / "guides"


def load_directory(
    conn: Conn, directory: Path, *, embedder: EmbedderChoice = "shared"
) -> LoadReport:
    """Parse every guide in the folder (all or nothing), upsert and index them in one transaction."""
    guides = read_directory(directory)
    chosen = _chosen(embedder)
    with conn.transaction():
        upserted = repository.upsert_guides(conn, guides=guides)
        indexed = index_guides(conn, chosen) if chosen is not None else 0
    return LoadReport(
        files=len(guides), upserted=upserted, unchanged=len(guides) - upserted, indexed=indexed
    )


def index_model(embedder: Embedder) -> str:
    """The name stored with each vector: the embedder's model and the text recipe it was fed."""
    return f"{embedder.model}|{INDEX_RECIPE}"


def index_guides(conn: Conn, embedder: Embedder) -> int:
    """Embed the guides whose text (sha256) or model changed since they were last embedded.

    Returns how many were embedded. The text is ``search.index_text``: title, problem and
    scenario (the steps are left out; the reason is there).
    """
    model = index_model(embedder)
    stale = repository.unindexed_guides(conn, model=model)
    if not stale:
        return 0
    matrix = embedder.embed([index_text(g) for g in stale])
    vectors = [
        GuideVector(g.guide_id, g.locale, model, g.sha256, row)
        for g, row in zip(stale, matrix, strict=True)
    ]
    return repository.upsert_embeddings(conn, vectors=vectors)


def search_guides(
    conn: Conn,
    *,
    query: str,
    locale: str | None = DEFAULT_LOCALE,
    limit: int = 10,
    embedder: EmbedderChoice = "shared",
    weights: Weights = WEIGHTS,
) -> SearchResult:
    """The guides that best answer a query, by words and by meaning, shown in ``locale`` (None:
    in the language that matched)."""
    query = check_query(query, limit)  # refuse before any work
    chosen = _chosen(embedder)
    guides = repository.all_guides(conn)
    vectors: dict[tuple[str, str], Vector] | None = None
    query_vector: Vector | None = None
    if chosen is not None:
        model = index_model(chosen)
        vectors = {
            (v.guide_id, v.locale): v.vector for v in repository.embeddings(conn, model=model)
        }
        missing = [g for g in guides if (g.guide_id, g.locale) not in vectors]
        if missing:
            # Loaded without the model, or changed by hand: embed them for this search only (a
            # search does not write); `forewarn guides load` stores them.
            log.info("embedding %d unindexed guide text(s) for this search", len(missing))
            matrix = chosen.embed([index_text(g) for g in missing])
            vectors.update(
                ((g.guide_id, g.locale), row) for g, row in zip(missing, matrix, strict=True)
            )
        query_vector = chosen.embed([query])[0]
    hits = rank(
        build_index(guides, vectors, weights=weights),
        query,
        locale=locale,
        limit=limit,
        query_vector=query_vector,
    )
    return SearchResult(
        query=query,
        locale=locale,
        semantic=chosen is not None,
        model=chosen.model if chosen is not None else None,
        hits=tuple(hits),
    )


def create_guide(conn: Conn, *, draft: GuideDraft, embedder: EmbedderChoice = "shared") -> Guide:
    """Check and store a new guide (source ``api``) and index it; GuideExistsError if it exists."""
    guide = checked(draft)
    with conn.transaction():
        if not repository.insert_guide(conn, guide=guide):
            raise GuideExistsError(
                f"guide {guide.guide_id!r} in {guide.locale} already exists; edit it instead"
            )
        return _indexed(conn, guide, embedder)


def edit_guide(conn: Conn, *, draft: GuideDraft, embedder: EmbedderChoice = "shared") -> Guide:
    """Check and store a guide's new content and re-index it; NotFoundError if it is missing.

    A draft without phrases (None) keeps the stored ones. A guide shipped as a file is
    overwritten again by the next ``forewarn guides load`` if the file differs: edit the file
    for those.
    """
    guide = checked(draft)  # a bad draft is refused before the database is read
    with conn.transaction():
        if draft.phrases is None:
            stored = repository.guide(conn, guide_id=draft.guide_id, locale=draft.locale)
            if stored is not None and stored.phrases:
                guide = checked(dataclasses.replace(draft, phrases=stored.phrases))
        if not repository.update_guide(conn, guide=guide):
            raise NotFoundError(f"no guide {guide.guide_id!r} in {guide.locale}")
        return _indexed(conn, guide, embedder)


def guide_for(
    conn: Conn,
    *,
    fault: str | None,
    kind: str | None,
    model: str | None,
    firmware: str | None,
    locale: str,
    audience: str = "all",
) -> Guide | None:
    """The stored guide that best fits this fault and device (see ``select.choose``)."""
    return choose(
        repository.guides_for(conn, fault=fault),
        fault=fault,
        kind=kind,
        model=model,
        firmware=firmware,
        locale=locale,
        audience=audience,
    )


def onboarding_for(conn: Conn, *, kind: str | None, locale: str) -> Guide | None:
    """The stored novices' onboarding guide for a kind of product (see ``select.onboarding``)."""
    return onboarding(repository.guides_for(conn, fault=None), kind=kind, locale=locale)


def _chosen(embedder: EmbedderChoice) -> Embedder | None:
    return shared_embedder() if embedder == "shared" else embedder


def checked(draft: GuideDraft) -> Guide:
    """The draft checked as a file would be, with the sha256 of its content."""
    guide = build_guide(
        f"guide {draft.guide_id!r} in {draft.locale}", draft, source_path=API_SOURCE, sha256=""
    )
    content = dataclasses.asdict(guide)
    for key in ("source_path", "sha256", "updated_at"):
        del content[key]
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
    return dataclasses.replace(guide, sha256=digest.hexdigest())


def _indexed(conn: Conn, guide: Guide, embedder: EmbedderChoice) -> Guide:
    """Index what changed, and the guide as stored (with its updated_at)."""
    chosen = _chosen(embedder)
    if chosen is not None:
        index_guides(conn, chosen)
    stored = repository.guide(conn, guide_id=guide.guide_id, locale=guide.locale)
    assert stored is not None  # written in this transaction
    return stored
