"""The words of guide search: how a query or a guide text becomes search terms. Pure.

- English: lower-cased words, lightly stemmed, stop words dropped.
- Chinese and Japanese, written without spaces: overlapping character pairs (bigrams).
- A product named in the text (门锁, "air conditioners") becomes a ``kind:<kind>`` term: it
  says which devices the question is about, not which problem, so ``search`` matches it
  against the kinds a guide applies to rather than against the guide's words.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and CJK ideographs
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|[a-z0-9]+(?:'[a-z]+)*")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_LATIN_LETTER = re.compile(r"[a-z]")

KIND_PREFIX = "kind:"

# How owners name each kind: the words select.render puts for {device_name} (a test checks
# they agree), in English (plurals too) and Chinese.
KIND_NAMES: dict[str, tuple[str, str]] = {
    "lock": ("lock", "门锁"),
    "watch": ("watch", "手表"),
    "camera": ("camera", "摄像头"),
    "air_conditioner": ("air conditioner", "空调"),
    "temperature_sensor": ("temperature sensor", "温度传感器"),
}
_KIND_PATTERNS = tuple(
    (kind, re.compile(rf"\b{english}(?:e?s)?\b|{chinese}"))
    for kind, (english, chinese) in KIND_NAMES.items()
)

# Words that say nothing about which guide is meant: the usual English list (NLTK's, with
# contractions as they read without the apostrophe), and common Chinese function words as
# the bigrams they become. Negations go too: "won't charge" and "charges" are about the same
# guide, and word matching cannot use the difference anyway.
_STOP_WORDS = """
    a about above after again against all also am an and any are aren arent as at be because
    been before being below between both but by can cannot cant could couldn couldnt did didn
    didnt do does doesn doesnt doing don dont down during each few for from further get gets got
    had hadn hadnt has hasn hasnt have haven havent having he her here hers herself him himself
    his how i if in into is isn isnt it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should shouldn shouldnt
    so some such than that the their theirs them themselves then there these they this those
    through to too under until up us very was wasn wasnt we were weren werent what when where
    which while who whom why will with won wont would wouldn wouldnt you your yours yourself
    yourselves
    什么 怎么 怎样 如何 为何 哪里 哪儿 可以 可能 我们 你们 他们 您的 我的 你的 自己 这个 那个
    这样 那样 一下 一个 已经 还是 就是 但是 因为 所以 如果 没有 非常 起来 时候 现在 应该
"""
_STOP = frozenset(_STOP_WORDS.split())


def normalise(text: str) -> str:
    """Lower case, full-width letters and digits folded to ASCII, curly apostrophes straight."""
    return unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")


def terms(text: str) -> list[str]:
    """Search terms of a text: stemmed English words without stop words, CJK bigrams."""
    found: list[str] = []
    for match in _TOKEN.finditer(normalise(text)):
        run = match.group()
        if match.group("cjk") and len(run) == 1:
            found.append(run)
        elif match.group("cjk"):
            # No spaces between Chinese words: overlapping pairs of characters stand in for
            # words (手表电池 -> 手表, 表电, 电池).
            pairs = (run[i : i + 2] for i in range(len(run) - 1))
            found.extend(pair for pair in pairs if pair not in _STOP)
        else:
            word = run.removesuffix("'s").replace("'", "")
            if word not in _STOP and stem(word) not in _STOP:
                found.append(stem(word))
    return found


def query_terms(query: str) -> list[str]:
    """A query's terms: ``kind:<kind>`` for each product it names, the rest as ``terms``."""
    text = normalise(query)
    kinds: list[str] = []
    for kind, pattern in _KIND_PATTERNS:
        text, named = pattern.subn(" ", text)  # a space: the words around it stay apart
        if named:
            kinds.append(KIND_PREFIX + kind)
    return kinds + terms(text)


def is_cjk(text: str) -> bool:
    """Whether a text is mostly Chinese or Japanese (more such characters than Latin letters)."""
    folded = normalise(text)
    return len(_CJK_CHAR.findall(folded)) > len(_LATIN_LETTER.findall(folded))


def stem(word: str) -> str:
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
