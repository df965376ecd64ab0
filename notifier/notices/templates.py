"""Owner notices as files, kept with the guides: ``guides/notices/<kind>.<lang>.md`` (a YAML
header with ``id``, ``locale`` and ``title``, then the body as paragraphs) and
``guides/notices/words.<lang>.yaml`` (what notices call faults, resolution codes, tiers, and
the survey lines).

They are checked as guides are (``notifier.guides.validate``): the id and locale, the file
name, only the placeholders the kind may use and no stray braces; and beyond that, every kind
and every word in English and Chinese (each language complete), Chinese text in Chinese files.
Every problem is a ``GuideError`` naming the file. Nothing is used until all of it is valid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path

import frontmatter
import yaml

from forewarn.domain import ANOMALY, FaultKind
from forewarn.errors import GuideError
from forewarn.settings import Settings
from notifier.guides.flows import default_directory as guides_directory
from notifier.guides.types import language_of
from notifier.guides.validate import check_identity, check_placeholders
from notifier.guides.words import has_cjk
from notifier.notices.types import (
    CONTACT_PLACEHOLDERS,
    PLACEHOLDERS,
    SURVEY_PLACEHOLDERS,
    WORD_SECTIONS,
    Library,
    NoticeKind,
    Template,
    Words,
)
from notifier.tickets.types import ResolutionCode, TicketType, Tier

LANGUAGES = ("en", "zh")  # every notice and every word exists in these
# The faults notices may have to name: the predicted ones, the models' hint, a ticket an
# owner opened by writing to us, and the types of tickets staff make (their `fault`).
OWNER_MESSAGE = "owner_message"
FAULTS = frozenset(
    {*(f.value for f in FaultKind), ANOMALY, OWNER_MESSAGE, *(t.value for t in TicketType)}
)
CODES = frozenset(c.value for c in ResolutionCode) | {"withdrawn"}
TIERS = frozenset(t.value for t in Tier)
_FIELDS = frozenset({"id", "locale", "title"})
_LINES = {
    "survey": SURVEY_PLACEHOLDERS,
    "no_survey": SURVEY_PLACEHOLDERS,
    "contact_by": CONTACT_PLACEHOLDERS,
    "contact_soon": CONTACT_PLACEHOLDERS,
}
_WORD_KEYS = frozenset({"locale", *WORD_SECTIONS, *_LINES})
_WIDE = re.compile(r"[\u2e80-\U0002ffff]")


def notices_directory(settings: Settings) -> Path:
    """``notices/`` in the configured guides folder if it has one, else the shipped one."""
    if settings.guides_dir is not None and (settings.guides_dir / "notices").is_dir():
        return settings.guides_dir / "notices"
    return guides_directory() / "notices"


@functools.lru_cache(maxsize=8)
def library(directory: Path) -> Library:
    """The checked templates and words of a folder, read once per process."""
    return read_library(directory)


def read_library(directory: Path) -> Library:
    """Every notice template and words file in the folder; GuideError for the first problem."""
    if not directory.is_dir():
        raise GuideError(f"{directory}: not a folder of notice templates")
    templates = [_template(p) for p in sorted(directory.glob("*.md"))]
    words = [_words(p) for p in sorted(directory.glob("words.*.yaml"))]
    seen: dict[tuple[NoticeKind, str], str] = {}
    for t in templates:
        if (t.kind, t.locale) in seen:
            raise GuideError(
                f"{t.source_path}: {t.kind} in {t.locale} is also in {seen[t.kind, t.locale]}"
            )
        seen[t.kind, t.locale] = t.source_path
    for lang in LANGUAGES:
        have = {k for k, locale in seen if language_of(locale) == lang}
        missing = sorted(k.value for k in set(NoticeKind) - have)
        if missing:
            raise GuideError(f"{directory}: no {lang} template for {', '.join(missing)}")
        if not any(language_of(w.locale) == lang for w in words):
            raise GuideError(f"{directory}: no words.{lang}.yaml")
    return Library(tuple(templates), tuple(words))


def _template(path: Path) -> Template:
    where = str(path)
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as exc:
        raise GuideError(f"{where}: cannot read the notice: {exc}") from exc
    meta: Mapping[str, object] = post.metadata
    unknown = sorted(set(meta) - _FIELDS)
    if unknown:
        raise GuideError(f"{where}: unknown front-matter field(s) {', '.join(unknown)}")
    values = {k: meta.get(k) for k in _FIELDS}
    for key, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise GuideError(f"{where}: front matter needs {key!r} as text")
    notice_id, locale, title = (str(values[k]).strip() for k in ("id", "locale", "title"))
    check_identity(where, notice_id, locale)
    try:
        kind = NoticeKind(notice_id)
    except ValueError as exc:
        kinds = ", ".join(k.value for k in NoticeKind)
        raise GuideError(f"{where}: unknown notice {notice_id!r}; one of {kinds}") from exc
    if path.name not in (f"{notice_id}.{language_of(locale)}.md", f"{notice_id}.{locale}.md"):
        raise GuideError(
            f"{where}: id {notice_id!r} and locale {locale!r} need the file name "
            f"{notice_id}.{language_of(locale)}.md"
        )
    body = _paragraphs(post.content)
    if not body:
        raise GuideError(f"{where}: the body is empty")
    for text in (title, body):
        check_placeholders(where, text, PLACEHOLDERS[kind])
        _check_language(where, locale, text)
    return Template(kind, locale, title, body, where)


def _words(path: Path) -> Words:
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GuideError(f"{where}: cannot read the words: {exc}") from exc
    if not isinstance(raw, dict):
        raise GuideError(f"{where}: expected a mapping of locale, {', '.join(WORD_SECTIONS)}")
    unknown = sorted(set(raw) - _WORD_KEYS)
    if unknown:
        raise GuideError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    locale = raw.get("locale")
    if not isinstance(locale, str):
        raise GuideError(f"{where}: 'locale' must be text such as en-US")
    check_identity(where, "words", locale)
    if path.name != f"words.{language_of(locale)}.yaml":
        raise GuideError(
            f"{where}: locale {locale!r} needs the name words.{language_of(locale)}.yaml"
        )
    sections: dict[str, dict[str, str]] = {}
    for section, needed in (("faults", FAULTS), ("codes", CODES), ("tiers", TIERS)):
        entries = raw.get(section)
        if not isinstance(entries, dict):
            raise GuideError(f"{where}: {section!r} must map names to words")
        missing, extra = sorted(needed - set(entries)), sorted(set(entries) - needed)
        if missing or extra:
            raise GuideError(
                f"{where}: {section}: missing {missing or 'none'}, unknown {extra or 'none'}"
            )
        sections[section] = {
            k: _word(where, f"{section}.{k}", locale, v) for k, v in entries.items()
        }
    lines = {k: _word(where, k, locale, raw.get(k), allowed) for k, allowed in _LINES.items()}
    if "{link}" not in lines["survey"]:
        raise GuideError(f"{where}: 'survey' must hold the {{link}}")
    return Words(
        locale,
        sections["faults"],
        sections["codes"],
        sections["tiers"],
        lines["survey"],
        lines["no_survey"],
        lines["contact_by"],
        lines["contact_soon"],
        where,
    )


def _word(
    where: str, name: str, locale: str, value: object, allowed: frozenset[str] = frozenset()
) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GuideError(f"{where}: {name} must be text")
    check_placeholders(f"{where}: {name}", value, allowed)
    _check_language(f"{where}: {name}", locale, value)
    return value.strip()


def _check_language(where: str, locale: str, text: str) -> None:
    """A Chinese file's text has Chinese in it; an English one has none (names such as App
    and Wi-Fi are fine in Chinese)."""
    cjk = language_of(locale) in ("zh", "ja")
    if cjk and not has_cjk(text):
        raise GuideError(f"{where}: {text[:40]!r} is not in {locale}")
    if not cjk and has_cjk(text):
        raise GuideError(f"{where}: {text[:40]!r} has Chinese or Japanese in an {locale} file")


def _paragraphs(content: str) -> str:
    """Paragraphs separated by blank lines; wrapped lines joined with a space in English and
    without one next to Chinese characters (as guides are)."""
    paragraphs: list[str] = []
    current = ""
    for line in [*content.splitlines(), ""]:
        text = line.strip()
        if text:
            join = "" if not current or _WIDE.match(current[-1]) or _WIDE.match(text[0]) else " "
            current = f"{current}{join}{text}"
        elif current:
            paragraphs.append(current)
            current = ""
    return "\n\n".join(paragraphs)
