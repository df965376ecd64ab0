"""Search the knowledge base by words and by meaning, in English and Chinese. Pure: no I/O.

Each guide text (one guide in one locale) gets two scores for a query, both in [0, 1]:

- **words**: the share of the query's terms the text contains, each term weighted by its
  rarity across all guide texts (idf) and by the field it is in (title above problem above
  scenario above steps; a guide's ``phrases``, how owners word its problem, just under the
  title). English terms are lower-cased words, lightly stemmed, stop words dropped; Chinese
  and Japanese, written without spaces, are cut into character bigrams after words of a
  synonym group become the group's term (``notifier.guides.words``).
- **meaning**: the cosine between the query's sentence embedding and the text's (negative
  cosines count as 0), when an embedder is available.

The score is ``(1 - w) * words + w * meaning`` (w = ``Weights.meaning``, tuned with
``bench/search.py``). A guide's score is its best text's: a Chinese query can match the
zh-CN text and an English one the en-US text; the hit is then shown in the caller's locale,
falling back as ``select.locale_rank`` does. Guides the caller cannot read are left out.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from forewarn.errors import GuideError
from notifier.guides.select import locale_rank, render
from notifier.guides.types import KINDS, Guide, GuideFacts
from notifier.guides.words import KIND_PREFIX, is_cjk, query_terms, terms

Vector = npt.NDArray[np.float32]

MAX_QUERY_CHARS = 500  # an owner's question, not a document; longer input is a mistake
MAX_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Weights:
    """How the two scores and the fields combine (tuned on bench/search.py's labelled set)."""

    meaning: float = 0.6  # share of the meaning score for queries in English (Latin script)
    # ... and for Chinese and Japanese ones: all-MiniLM-L6-v2 learnt English sentence pairs,
    # so on Chinese its cosine mostly echoes shared characters, which the bigrams count better.
    meaning_cjk: float = 0.1
    kind: float = 1.0  # a guide's match for the product a query names, when written for it
    any_kind: float = 0.6  # ... when written for every product
    # A guide written only for other products than the one a query names ("空调" and a watch
    # guide) rarely answers it however many words they share: its score is multiplied by this.
    other_kind: float = 0.5
    title: float = 1.0
    # How owners word the problem (set by hand, not tuned): as telling as the title, but a
    # guide has several, which share the common words of its kind of question.
    phrases: float = 0.9
    problem: float = 0.8
    scenario: float = 0.6
    steps: float = 0.4


WEIGHTS = Weights()


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One guide found: shown in ``locale``; the scores are of its best-matching text."""

    guide_id: str
    locale: str
    title: str
    score: float
    word_score: float
    meaning_score: float | None  # None: searched by words only
    fault: str | None
    category: str
    matched_locale: str  # the locale of the text that matched best


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The hits for a query, and whether meaning was used (False: words only)."""

    query: str
    locale: str | None  # None: each hit in the locale of the text that matched
    semantic: bool
    model: str | None  # the embedding model when semantic
    hits: tuple[SearchHit, ...]


@dataclass(frozen=True, slots=True)
class _Text:
    guide: Guide
    terms: Mapping[str, float]  # term -> weight of the best field it appears in
    vector: Vector | None


@dataclass(frozen=True, slots=True)
class Index:
    """Guide texts ready to be searched: their terms, term rarity, and their vectors."""

    texts: tuple[_Text, ...]
    idf: Mapping[str, float]
    rarest: float  # the idf of a term found in one text
    weights: Weights


# Stored with every vector next to the model's name: change it whenever index_text changes,
# so that vectors of the old recipe are made again instead of compared with new ones.
INDEX_RECIPE = "title+phrases+problem+scenario"


def index_text(guide: Guide) -> str:
    """What a guide's embedding is made of: title, phrases, problem and scenario, filled in.

    The steps are left out on purpose: they say how to fix things (charge, restart, update)
    in much the same words in every guide, which pulls the vectors together; the problem and
    scenario say what the guide is about, and the phrases say it as owners do. The phrases
    come second so that the model's 256 tokens cut the scenario, not them, from a long guide.
    """
    parts = (guide.title, *guide.phrases, guide.problem, guide.scenario)
    return "\n".join(_filled(guide, part) for part in parts)


def check_query(query: str, limit: int) -> str:
    """The query, stripped; GuideError when it is empty, too long, or the limit is out of range."""
    cleaned = query.strip()
    if not cleaned:
        raise GuideError("the search query is empty: type a few words about the problem")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise GuideError(
            f"the search query is {len(cleaned)} characters; at most {MAX_QUERY_CHARS}"
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise GuideError(f"the search limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return cleaned


def build_index(
    guides: Sequence[Guide],
    vectors: Mapping[tuple[str, str], Vector] | None = None,
    *,
    weights: Weights = WEIGHTS,
) -> Index:
    """Index guide texts for ``rank``; ``vectors`` by (guide_id, locale), from ``index_text``."""
    texts = []
    documents: Counter[str] = Counter()
    for guide in guides:
        best = _guide_terms(guide, weights)
        documents.update(best.keys())
        vector = None if vectors is None else vectors.get((guide.guide_id, guide.locale))
        texts.append(_Text(guide, best, vector))
    # Smoothed idf: a term in every text still counts a little (log 2), a rare one a lot.
    idf = {term: math.log(1.0 + len(texts) / df) for term, df in documents.items()}
    return Index(tuple(texts), idf, math.log(1.0 + len(texts)), weights)


def rank(
    index: Index,
    query: str,
    *,
    locale: str | None,
    limit: int,
    query_vector: Vector | None = None,
) -> list[SearchHit]:
    """The best ``limit`` guides for the query, best first (ties by guide_id).

    Each is shown in ``locale`` (falling back as ``select.locale_rank`` does), or, with no
    locale, in the locale of the text that matched. Without ``query_vector`` the search is by
    words only and ``meaning_score`` is None.
    """
    query = check_query(query, limit)
    asked = list(dict.fromkeys(query_terms(query)))
    wanted = [t for t in asked if t in index.idf]
    # An English word no guide has counts as the rarest kind (in one text): it matches
    # nothing, but a query that is mostly such words should lean on meaning rather than on its
    # one common word ("smartwatch won't survive a whole day" is not about every text with
    # "day"). A CJK bigram no guide has is usually two characters from two words, not a word.
    unknown = sum(1 for t in asked if t not in index.idf and not is_cjk(t))
    total = sum(index.idf[t] for t in wanted) + unknown * index.rarest
    share = index.weights.meaning_cjk if is_cjk(query) else index.weights.meaning
    share = share if query_vector is not None else 0.0
    named = {t.removeprefix(KIND_PREFIX) for t in asked if t.startswith(KIND_PREFIX)}
    best: dict[str, tuple[float, float, float | None, str]] = {}
    by_id: defaultdict[str, list[Guide]] = defaultdict(list)
    for text in index.texts:
        guide = text.guide
        by_id[guide.guide_id].append(guide)
        other = bool(named and guide.kinds and named.isdisjoint(guide.kinds))
        factor = index.weights.other_kind if other else 1.0  # both scores, so they still add up
        words = sum(index.idf[t] * text.terms.get(t, 0.0) for t in wanted) / total if total else 0.0
        words *= factor
        meaning: float | None = None
        if query_vector is not None:
            cos = float(text.vector @ query_vector) if text.vector is not None else 0.0
            meaning = max(cos, 0.0) * factor
        score = (1.0 - share) * words + share * (meaning or 0.0)
        if guide.guide_id not in best or score > best[guide.guide_id][0]:
            best[guide.guide_id] = (score, words, meaning, guide.locale)
    hits = []
    for guide_id, (score, words, meaning, matched) in best.items():
        versions = by_id[guide_id]
        shown = _readable(versions, locale) if locale else _locale(versions, matched)
        if shown is None or score <= 0.0:
            continue
        hits.append(
            SearchHit(
                guide_id=guide_id,
                locale=shown.locale,
                title=shown.title,
                score=round(score, 4),
                word_score=round(words, 4),
                meaning_score=None if meaning is None else round(meaning, 4),
                fault=shown.fault,
                category=shown.category,
                matched_locale=matched,
            )
        )
    hits.sort(key=lambda h: (-h.score, h.guide_id))
    return hits[:limit]


@functools.lru_cache(maxsize=1024)
def _guide_terms(guide: Guide, weights: Weights) -> Mapping[str, float]:
    """Each term of a guide with the weight of the best field it is in (kinds included).

    Cached: a search reads the same unchanged guides every time (a guide is a frozen value,
    so a changed guide is a new key), and cutting them into terms is most of a words-only
    search's time.
    """
    fields = (
        (weights.title, guide.title),
        (weights.phrases, "\n".join(guide.phrases)),  # a line apart: no pair across two
        (weights.problem, guide.problem),
        (weights.scenario, guide.scenario),
        (weights.steps, " ".join(guide.steps)),
    )
    best: dict[str, float] = {}
    for weight, text in fields:
        for term in terms(_filled(guide, text)):
            best[term] = max(best.get(term, 0.0), weight)
    # A guide written for the product named beats one for every product (as select does).
    for kind in guide.kinds or sorted(KINDS):
        best[KIND_PREFIX + kind] = weights.kind if guide.kinds else weights.any_kind
    return MappingProxyType(best)


def _readable(versions: Sequence[Guide], locale: str) -> Guide | None:
    """The version the caller reads best (``locale_rank``), or None when they read none."""
    ranked = sorted(versions, key=lambda g: (-locale_rank(g.locale, locale), g.locale))
    return ranked[0] if ranked and locale_rank(ranked[0].locale, locale) > 0 else None


def _locale(versions: Sequence[Guide], locale: str) -> Guide:
    return next(g for g in versions if g.locale == locale)


def _filled(guide: Guide, text: str) -> str:
    """The text with placeholders as an owner without facts would read them ("your watch").

    ``render`` fills a title; borrowing it keeps one definition of what a placeholder becomes.
    """
    return render(dataclasses.replace(guide, title=text), GuideFacts()).title
