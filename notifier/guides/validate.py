"""What every guide must be, however it was written (a Markdown file or an API request).

``build_guide`` turns a ``GuideDraft`` into a ``Guide`` or raises ``GuideError`` naming where
the draft came from (a file path, "guide 'x' in en-US").
"""

from __future__ import annotations

import re

from forewarn.domain import FaultKind
from forewarn.errors import GuideError
from notifier.guides.select import compare_versions, parse_version
from notifier.guides.types import (
    AUDIENCES,
    CATEGORIES,
    KINDS,
    PLACEHOLDERS,
    Guide,
    GuideDraft,
    language_of,
)
from notifier.guides.words import has_cjk, normalise

_FAULTS = frozenset(f.value for f in FaultKind)
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_LOCALE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
_BOUND = re.compile(r"^(>=|<=|==|=|>|<)?\s*(\S+)$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Phrases are a few of the ways owners put the problem, not a second body: a guide with
# dozens would outweigh every other in the word score, and a long one is not how anyone asks.
MAX_PHRASES = 20
MAX_PHRASE_CHARS = 120
_CJK_LANGUAGES = frozenset({"zh", "ja"})  # written without spaces; search cuts them into pairs


def check_identity(where: str, guide_id: str, locale: str) -> None:
    """Refuse an id that is not lower-case letters, digits, _ or -, or a locale unlike en-US."""
    if not _ID.match(guide_id):
        raise GuideError(f"{where}: id {guide_id!r} must be lower-case letters, digits, _ or -")
    if not _LOCALE.match(locale):
        raise GuideError(f"{where}: locale {locale!r} must look like en-US or zh-CN")


def build_guide(where: str, draft: GuideDraft, *, source_path: str, sha256: str) -> Guide:
    """Check a draft (from a file or the API) and make it a Guide; GuideError naming ``where``.

    The checks every guide needs, whatever it was written in: id and locale, category,
    audience, fault and kinds from their lists, a readable firmware range, non-empty text and
    steps, only known placeholders, and phrases (see ``check_phrases``).
    """
    check_identity(where, draft.guide_id, draft.locale)
    _one_of(where, "category", draft.category, CATEGORIES)
    _one_of(where, "audience", draft.audience, AUDIENCES)
    if draft.fault is not None:
        _one_of(where, "fault", draft.fault, _FAULTS)
    for kind in draft.kinds:
        _one_of(where, "kind", kind, KINDS)
    if not all(model.strip() for model in draft.models):
        raise GuideError(f"{where}: 'models' must be a list of names, not {list(draft.models)!r}")
    try:
        low, high = parse_firmware_range(draft.firmware) if draft.firmware else (None, None)
    except ValueError as exc:
        raise GuideError(f"{where}: bad firmware range {draft.firmware!r}: {exc}") from exc
    texts = {"title": draft.title, "problem": draft.problem, "scenario": draft.scenario}
    for name, value in texts.items():
        if not value.strip():
            raise GuideError(f"{where}: the {name} is empty")
    if not draft.steps:
        raise GuideError(f"{where}: a guide needs at least one step")
    for what, items in (("step", draft.steps), ("caution", draft.cautions)):
        for n, item in enumerate(items, start=1):
            if not item.strip():
                raise GuideError(f"{where}: {what} {n} is empty")
    phrases = check_phrases(where, draft.locale, draft.phrases or ())
    guide = Guide(
        guide_id=draft.guide_id,
        locale=draft.locale,
        category=draft.category,
        fault=draft.fault,
        audience=draft.audience,
        kinds=tuple(kind.strip() for kind in draft.kinds),
        models=tuple(model.strip() for model in draft.models),
        firmware_min=low,
        firmware_max=high,
        title=draft.title.strip(),
        problem=draft.problem.strip(),
        scenario=draft.scenario.strip(),
        steps=tuple(step.strip() for step in draft.steps),
        cautions=tuple(caution.strip() for caution in draft.cautions),
        source_path=source_path,
        sha256=sha256,
        phrases=phrases,
    )
    for text_ in (guide.title, guide.problem, guide.scenario, *guide.steps, *guide.cautions):
        check_placeholders(where, text_)
    return guide


def check_phrases(where: str, locale: str, phrases: tuple[str, ...]) -> tuple[str, ...]:
    """The phrases stripped; GuideError for a blank, long, repeated or other-language one.

    A phrase is how an owner would describe the problem ("lock keeps going offline"), in the
    guide's own language: search matches a question against the texts of its language, so a
    Chinese phrase in an English guide would never be compared with a Chinese question. No
    placeholders: owners do not write them.
    """
    if len(phrases) > MAX_PHRASES:
        raise GuideError(f"{where}: {len(phrases)} phrases; at most {MAX_PHRASES}")
    cjk = language_of(locale) in _CJK_LANGUAGES
    seen: set[str] = set()
    cleaned: list[str] = []
    for n, raw in enumerate(phrases, start=1):
        phrase = raw.strip()
        if not phrase:
            raise GuideError(f"{where}: phrase {n} is empty")
        if len(phrase) > MAX_PHRASE_CHARS:
            raise GuideError(f"{where}: phrase {n} is over {MAX_PHRASE_CHARS} characters")
        if "{" in phrase or "}" in phrase:
            raise GuideError(f"{where}: phrase {n} has a brace; phrases are owners' words")
        if has_cjk(phrase) != cjk:
            # Names such as "App" or "Wi-Fi" are fine in a Chinese phrase; a Chinese
            # character in an English one, or a Chinese phrase without one, is the wrong file.
            need = "a Chinese or Japanese character" if cjk else "no Chinese or Japanese"
            raise GuideError(f"{where}: phrase {n} {phrase!r} is not in {locale} (needs {need})")
        key = normalise(phrase)
        if key in seen:
            raise GuideError(f"{where}: phrase {n} {phrase!r} is there twice")
        seen.add(key)
        cleaned.append(phrase)
    return tuple(cleaned)


def parse_firmware_range(spec: str) -> tuple[str | None, str | None]:
    """(inclusive min, exclusive max) from ">=3.0.0,<3.1.1"; ValueError saying what is wrong.

    Bounds may use >=, >, <, <= and == (a bare version means ==). A version names itself and
    its sub-releases: "==3.1.0" is ">=3.1.0,<3.1.1", "<=3.1.0" is "<3.1.1".
    """
    low: str | None = None
    high: str | None = None
    for part in spec.split(","):
        found = _BOUND.match(part.strip())
        if found is None:
            raise ValueError(f"cannot read the bound {part.strip()!r}")
        op, text = found.group(1) or "==", found.group(2)
        version = parse_version(text)
        if version is None:
            raise ValueError(f"{text!r} is not a dotted version such as 3.1.0")
        new_low = text if op in (">=", "==", "=") else _next(version) if op == ">" else None
        new_high = _next(version) if op in ("<=", "==", "=") else text if op == "<" else None
        if (new_low and low) or (new_high and high):
            raise ValueError("a bound is given twice")
        low, high = new_low or low, new_high or high
    if low and high and compare_versions(_version(low), _version(high)) >= 0:
        raise ValueError("no version can be inside it")
    return low, high


def _next(version: tuple[int, ...]) -> str:
    return ".".join(str(n) for n in (*version[:-1], version[-1] + 1))


def _version(text: str) -> tuple[int, ...]:
    version = parse_version(text)
    assert version is not None  # only called on bounds parse_firmware_range has checked
    return version


def _one_of(where: str, what: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise GuideError(f"{where}: unknown {what} {value!r}; one of {', '.join(sorted(allowed))}")


def check_placeholders(where: str, text: str, allowed: frozenset[str] = PLACEHOLDERS) -> None:
    """GuideError for a placeholder outside `allowed` or a stray brace (guides and the owner
    notices that live with them)."""
    for name in _PLACEHOLDER.findall(text):
        if name not in allowed:
            raise GuideError(
                f"{where}: unknown placeholder {{{name}}}; use {', '.join(sorted(allowed))}"
            )
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        raise GuideError(f"{where}: stray brace in {text[:60]!r}; placeholders look like {{model}}")
