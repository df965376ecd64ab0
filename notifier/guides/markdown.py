"""Guides as files: ``guides/<guide_id>.<lang>.md``, a YAML header and four ``##`` sections.

The header may list ``phrases``: how owners describe the problem, for search only.

Every problem raises ``GuideError`` naming the file, and the line where there is one. The
file format is checked here; what any guide needs (fields, range, placeholders) in
``notifier.guides.validate``, which the API's create and edit share.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import frontmatter
import yaml

from forewarn.errors import GuideError
from notifier.guides.types import Guide, GuideDraft, language_of
from notifier.guides.validate import build_guide, check_identity, parse_firmware_range

_FIELDS = frozenset(
    {
        "id",
        "locale",
        "category",
        "fault",
        "audience",
        "kinds",
        "models",
        "firmware",
        "title",
        "phrases",
    }
)
_HEADING = re.compile(r"^##\s+(.+?)\s*#*\s*$")
_STEP = re.compile(r"^\d+[.)]\s+(.*)$")
_BULLET = re.compile(r"^[-*+]\s+(.*)$")

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
    title = _text(path, meta, "title")
    kinds = _list(path, meta, "kinds")
    models = _list(path, meta, "models")
    firmware = _text(path, meta, "firmware", required=False) or None
    phrases = _list(path, meta, "phrases", what="phrases (quoted if they hold ': ')")
    check_identity(str(path), guide_id, locale)
    # <id>.<lang>.md; <id>.<locale>.md when one language has several locales (zh-CN, zh-TW).
    names = (f"{guide_id}.{language_of(locale)}.md", f"{guide_id}.{locale}.md")
    if path.name not in names:
        raise GuideError(
            f"{path}: id {guide_id!r} and locale {locale!r} need the name {' or '.join(names)}"
        )

    offset = text[: text.find(post.content)].count("\n") if post.content else 0
    sections = _sections(path, post.content, offset)
    draft = GuideDraft(
        guide_id=guide_id,
        locale=locale,
        category=category,
        fault=fault,
        audience=audience,
        kinds=kinds,
        models=models,
        firmware=firmware,
        phrases=phrases,
        title=title,
        problem=_paragraphs(path, "Problem", sections["problem"]),
        scenario=_paragraphs(path, "Applies to", sections["scenario"]),
        steps=_items(path, "Steps", sections["steps"], _STEP, "a numbered step ('1. ...')"),
        cautions=_items(path, "Cautions", sections.get("cautions", []), _BULLET, "a '- ' bullet"),
    )
    return build_guide(
        str(path), draft, source_path=str(path), sha256=hashlib.sha256(raw).hexdigest()
    )


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


def _text(path: Path, meta: Mapping[str, object], key: str, *, required: bool = True) -> str:
    value = meta.get(key)
    if value is None or value == "":
        if required:
            raise GuideError(f"{path}: front matter has no {key!r}")
        return ""
    if not isinstance(value, str):
        raise GuideError(f"{path}: {key!r} must be text (quote it), not {value!r}")
    return value.strip()


def _list(
    path: Path, meta: Mapping[str, object], key: str, *, what: str = "names"
) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise GuideError(f"{path}: {key!r} must be a list of {what}, not {value!r}")
    return tuple(v.strip() for v in items)


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


# parse_firmware_range lives in validate.py; kept importable from here, where it began.
__all__ = ["parse_firmware_range", "parse_guide", "read_directory"]
