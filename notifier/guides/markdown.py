"""Guides as files: ``guides/<guide_id>.<lang>.md``, a YAML header and four ``##`` sections.

Every problem raises ``GuideError`` naming the file, and the line where there is one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import frontmatter
import yaml

from forewarn.domain import FaultKind
from forewarn.errors import GuideError
from notifier.guides.select import compare_versions, parse_version
from notifier.guides.types import AUDIENCES, CATEGORIES, KINDS, PLACEHOLDERS, Guide, language_of

_FIELDS = frozenset(
    {"id", "locale", "category", "fault", "audience", "kinds", "models", "firmware", "title"}
)
_FAULTS = frozenset(f.value for f in FaultKind)
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_LOCALE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
_HEADING = re.compile(r"^##\s+(.+?)\s*#*\s*$")
_STEP = re.compile(r"^\d+[.)]\s+(.*)$")
_BULLET = re.compile(r"^[-*+]\s+(.*)$")
_BOUND = re.compile(r"^(>=|<=|==|=|>|<)?\s*(\S+)$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Headings are matched case-insensitively; Chinese files may use the Chinese names.
_SECTIONS = {
    "problem": "problem",
    "问题": "problem",
    "applies to": "scenario",
    "适用范围": "scenario",
    "steps": "steps",
    "步骤": "steps",
    "操作步骤": "steps",
    "cautions": "cautions",
    "注意事项": "cautions",
}
_REQUIRED = ("problem", "scenario", "steps")

Lines = list[tuple[int, str]]


def parse_guide(path: Path) -> Guide:
    """Read one guide file; raise GuideError naming the file (and line) when it is broken."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GuideError(f"{path}: cannot read the guide: {exc}") from exc
    try:
        post = frontmatter.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        # +2: the YAML starts on the line after the opening "---", and marks count from 0.
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise GuideError(f"{path}{where}: bad front matter: {exc}") from exc
    meta: Mapping[str, object] = post.metadata
    if not meta:
        raise GuideError(f"{path}: no front matter (a YAML header between '---' lines)")
    unknown = sorted(set(meta) - _FIELDS)
    if unknown:
        raise GuideError(f"{path}: unknown front-matter field(s) {', '.join(unknown)}")

    guide_id = _text(path, meta, "id")
    locale = _text(path, meta, "locale")
    category = _text(path, meta, "category")
    fault = _text(path, meta, "fault", required=False) or None
    audience = _text(path, meta, "audience", required=False) or "all"
    if not _ID.match(guide_id):
        raise GuideError(f"{path}: id {guide_id!r} must be lower-case letters, digits, _ or -")
    if not _LOCALE.match(locale):
        raise GuideError(f"{path}: locale {locale!r} must look like en-US or zh-CN")
    # <id>.<lang>.md; <id>.<locale>.md when one language has several locales (zh-CN, zh-TW).
    names = (f"{guide_id}.{language_of(locale)}.md", f"{guide_id}.{locale}.md")
    if path.name not in names:
        raise GuideError(
            f"{path}: id {guide_id!r} and locale {locale!r} need the name {' or '.join(names)}"
        )
    _one_of(path, "category", category, CATEGORIES)
    _one_of(path, "audience", audience, AUDIENCES)
    if fault is not None:
        _one_of(path, "fault", fault, _FAULTS)
    kinds = _list(path, meta, "kinds")
    for kind in kinds:
        _one_of(path, "kind", kind, KINDS)
    models = _list(path, meta, "models")
    firmware = _text(path, meta, "firmware", required=False)
    try:
        firmware_min, firmware_max = parse_firmware_range(firmware) if firmware else (None, None)
    except ValueError as exc:
        raise GuideError(f"{path}: bad firmware range {firmware!r}: {exc}") from exc

    offset = text[: text.find(post.content)].count("\n") if post.content else 0
    sections = _sections(path, post.content, offset)
    guide = Guide(
        guide_id=guide_id,
        locale=locale,
        category=category,
        fault=fault,
        audience=audience,
        kinds=kinds,
        models=models,
        firmware_min=firmware_min,
        firmware_max=firmware_max,
        title=_text(path, meta, "title"),
        problem=_paragraphs(path, "Problem", sections["problem"]),
        scenario=_paragraphs(path, "Applies to", sections["scenario"]),
        steps=_items(path, "Steps", sections["steps"], _STEP, "a numbered step ('1. ...')"),
        cautions=_items(path, "Cautions", sections.get("cautions", []), _BULLET, "a '- ' bullet"),
        source_path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    for text_ in (guide.title, guide.problem, guide.scenario, *guide.steps, *guide.cautions):
        _check_placeholders(path, text_)
    return guide


def read_directory(directory: Path) -> list[Guide]:
    """Every ``*.md`` guide in a folder, sorted by file name; duplicates (id, locale) refused."""
    if not directory.is_dir():
        raise GuideError(f"{directory}: not a folder of guides")
    seen: dict[tuple[str, str], Path] = {}
    guides: list[Guide] = []
    for path in sorted(directory.glob("*.md")):
        guide = parse_guide(path)
        key = (guide.guide_id, guide.locale)
        if key in seen:
            raise GuideError(
                f"{path}: guide {guide.guide_id!r} in {guide.locale} is also in {seen[key]}"
            )
        seen[key] = path
        guides.append(guide)
    return guides


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


def _text(path: Path, meta: Mapping[str, object], key: str, *, required: bool = True) -> str:
    value = meta.get(key)
    if value is None or value == "":
        if required:
            raise GuideError(f"{path}: front matter has no {key!r}")
        return ""
    if not isinstance(value, str):
        raise GuideError(f"{path}: {key!r} must be text (quote it), not {value!r}")
    return value.strip()


def _list(path: Path, meta: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise GuideError(f"{path}: {key!r} must be a list of names, not {value!r}")
    return tuple(v.strip() for v in items)


def _one_of(path: Path, what: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise GuideError(f"{path}: unknown {what} {value!r}; one of {', '.join(sorted(allowed))}")


def _sections(path: Path, body: str, offset: int) -> dict[str, Lines]:
    sections: dict[str, Lines] = {}
    current: Lines | None = None
    for lineno, line in enumerate(body.splitlines(), start=offset + 1):
        heading = _HEADING.match(line)
        if heading:
            name = _SECTIONS.get(heading.group(1).strip().lower())
            if name is None:
                raise GuideError(
                    f"{path}, line {lineno}: unknown section {heading.group(1)!r}; "
                    "use Problem, Applies to, Steps, Cautions"
                )
            if name in sections:
                raise GuideError(f"{path}, line {lineno}: section {heading.group(1)!r} twice")
            current = sections[name] = []
        elif current is not None:
            current.append((lineno, line))
        elif line.strip():
            raise GuideError(f"{path}, line {lineno}: text before the first '## ' section")
    missing = [name for name in _REQUIRED if name not in sections]
    if missing:
        names = {"problem": "Problem", "scenario": "Applies to", "steps": "Steps"}
        raise GuideError(
            f"{path}: missing section(s) {', '.join('## ' + names[m] for m in missing)}"
        )
    return sections


def _paragraphs(path: Path, name: str, lines: Lines) -> str:
    paragraphs: list[str] = []
    current = ""
    for _, line in [*lines, (0, "")]:
        if line.strip():
            current = _join(current, line.strip())
        elif current:
            paragraphs.append(current)
            current = ""
    if not paragraphs:
        raise GuideError(f"{path}: section '## {name}' is empty")
    return "\n\n".join(paragraphs)


def _items(
    path: Path, name: str, lines: Lines, marker: re.Pattern[str], what: str
) -> tuple[str, ...]:
    items: list[str] = []
    for lineno, line in lines:
        if not line.strip():
            continue
        found = marker.match(line)
        if found and found.group(1).strip():
            items.append(found.group(1).strip())
        elif items and line[:1].isspace():
            items[-1] = _join(items[-1], line.strip())
        else:
            raise GuideError(f"{path}, line {lineno}: expected {what} in '## {name}'")
    if not items and name == "Steps":
        raise GuideError(f"{path}: section '## Steps' has no steps")
    return tuple(items)


def _join(left: str, right: str) -> str:
    """Join wrapped lines: with a space in English, without one next to Chinese characters."""
    if not left:
        return right
    if _wide(left[-1]) or _wide(right[0]):
        return left + right
    return f"{left} {right}"


def _wide(char: str) -> bool:
    return ord(char) >= 0x2E80


def _check_placeholders(path: Path, text: str) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            raise GuideError(
                f"{path}: unknown placeholder {{{name}}}; use {', '.join(sorted(PLACEHOLDERS))}"
            )
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        raise GuideError(f"{path}: stray brace in {text[:60]!r}; placeholders look like {{model}}")
