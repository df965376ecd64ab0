"""Search the knowledge base by words and by meaning, in English and Chinese. Pure: no I/O.

Each guide text (one guide in one locale) gets two scores for a query, both in [0, 1]:

- **words**: the share of the query's terms the text contains, each term weighted by its
  rarity across all guide texts (idf) and by the field it is in (title above problem above
  scenario above steps). English terms are lower-cased words, lightly stemmed, stop words
  dropped; Chinese and Japanese, written without spaces, are cut into character bigrams.
- **meaning**: the cosine between the query's sentence embedding and the text's (negative
  cosines count as 0), when an embedder is available.

The score is ``(1 - w) * words + w * meaning`` (w = ``Weights.meaning``, tuned with
``bench/search.py``). A guide's score is its best text's: a Chinese query can match the
zh-CN text and an English one the en-US text; the hit is then shown in the caller's locale,
falling back as ``select.locale_rank`` does. Guides the caller cannot read are left out.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forewarn.errors import GuideError
from notifier.guides.select import locale_rank, render
from notifier.guides.types import Guide, GuideFacts

Vector = npt.NDArray[np.float32]

MAX_QUERY_CHARS = 500  # an owner's question, not a document; longer input is a mistake
MAX_LIMIT = 50

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and CJK ideographs
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|[a-z0-9]+(?:'[a-z]+)*")

# Words that say nothing about which guide is meant. Negations go too: "won't charge" and
# "charges" are about the same guide, and word matching cannot use the difference anyway.
_STOP_WORDS = """
    a about after again all also am an and any are as at be been before but by can cannot could
    did didnt do does doesnt dont for from get got had has have how i if in into is isnt it its
    just me my no not now of off on or our out so some than that the then there these they this
    those to too up us very was wasnt we were what when where which who why will with wont would
    you your
"""
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True, slots=True)
class Weights:
    """How the two scores and the fields combine (tuned on bench/search.py's labelled set)."""

    meaning: float = 0.5
    title: float = 1.0
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
    locale: str
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


def terms(text: str) -> list[str]:
    """Search terms of a text: stemmed English words without stop words, CJK bigrams."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        run = match.group()
        if match.group("cjk") and len(run) == 1:
            found.append(run)
        elif match.group("cjk"):
            # No spaces between Chinese words: overlapping pairs of characters stand in for
            # words (手表电池 -> 手表, 表电, 电池).
            found.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            word = _stem(run)
            if word not in _STOP:
                found.append(word)
    return found


# Stored with every vector next to the model's name: change it whenever index_text changes,
# so that vectors of the old recipe are made again instead of compared with new ones.
INDEX_RECIPE = "title+problem+scenario"


def index_text(guide: Guide) -> str:
    """What a guide's embedding is made of: title, problem and scenario, filled in.

    The steps are left out on purpose: they say how to fix things (charge, restart, update)
    in much the same words in every guide, which pulls the vectors together; the problem and
    scenario say what the guide is about, in the words an owner would use.
    """
    return "\n".join(_filled(guide, part) for part in (guide.title, guide.problem, guide.scenario))


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
        fields = (
            (weights.title, guide.title),
            (weights.problem, guide.problem),
            (weights.scenario, guide.scenario),
            (weights.steps, " ".join(guide.steps)),
        )
        best: dict[str, float] = {}
        for weight, text in fields:
            for term in terms(_filled(guide, text)):
                best[term] = max(best.get(term, 0.0), weight)
        documents.update(best.keys())
        vector = None if vectors is None else vectors.get((guide.guide_id, guide.locale))
        texts.append(_Text(guide, best, vector))
    # Smoothed idf: a term in every text still counts a little (log 2), a rare one a lot.
    idf = {term: math.log(1.0 + len(texts) / df) for term, df in documents.items()}
    return Index(tuple(texts), idf, math.log(1.0 + len(texts)), weights)


def rank(
    index: Index, query: str, *, locale: str, limit: int, query_vector: Vector | None = None
) -> list[SearchHit]:
    """The best ``limit`` guides for the query, best first (ties by guide_id).

    Without ``query_vector`` the search is by words only and ``meaning_score`` is None.
    """
    query = check_query(query, limit)
    asked = list(dict.fromkeys(terms(query)))
    wanted = [t for t in asked if t in index.idf]
    # A term no guide has counts as the rarest kind (in one text): it matches nothing, but a
    # query that is mostly such terms should lean on meaning rather than on its one common
    # word ("smartwatch won't survive a whole day" is not about every text with "day").
    total = sum(index.idf[t] for t in wanted) + (len(asked) - len(wanted)) * index.rarest
    share = index.weights.meaning if query_vector is not None else 0.0
    best: dict[str, tuple[float, float, float | None, str]] = {}
    by_id: defaultdict[str, list[Guide]] = defaultdict(list)
    for text in index.texts:
        guide = text.guide
        by_id[guide.guide_id].append(guide)
        words = sum(index.idf[t] * text.terms.get(t, 0.0) for t in wanted) / total if total else 0.0
        meaning: float | None = None
        if query_vector is not None:
            cos = float(text.vector @ query_vector) if text.vector is not None else 0.0
            meaning = max(cos, 0.0)
        score = (1.0 - share) * words + share * (meaning or 0.0)
        if guide.guide_id not in best or score > best[guide.guide_id][0]:
            best[guide.guide_id] = (score, words, meaning, guide.locale)
    hits = []
    for guide_id, (score, words, meaning, matched) in best.items():
        shown = _readable(by_id[guide_id], locale)
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


def _readable(versions: Sequence[Guide], locale: str) -> Guide | None:
    """The version the caller reads best (``locale_rank``), or None when they read none."""
    ranked = sorted(versions, key=lambda g: (-locale_rank(g.locale, locale), g.locale))
    return ranked[0] if ranked and locale_rank(ranked[0].locale, locale) > 0 else None


def _filled(guide: Guide, text: str) -> str:
    """The text with placeholders as an owner without facts would read them ("your watch").

    ``render`` fills a title; borrowing it keeps one definition of what a placeholder becomes.
    """
    return render(dataclasses.replace(guide, title=text), GuideFacts()).title


def _stem(word: str) -> str:
    """A light English stemmer: enough that battery/batteries, restart/restarting/restarted,
    charge/charging/charged meet. Both sides of the match go through it, so what matters is
    consistency, not producing real words."""
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "")
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # running -> run, stopped -> stop
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]  # charge / charging / charged -> charg
    return word
