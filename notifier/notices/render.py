"""A notice filled in for one owner, and the times and durations it names, in their language
and time zone. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from notifier.guides.types import language_of
from notifier.notices.types import Library, Notice, NoticeKind

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def render(library: Library, kind: NoticeKind, *, locale: str, values: Mapping[str, str]) -> Notice:
    """The notice of `kind` in the owner's language, its placeholders filled from `values`."""
    template = library.template(kind, locale)

    def fill(text: str) -> str:
        # A placeholder the caller has no value for becomes nothing: never a "{...}".
        filled = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)
        # A placeholder left empty (no note, no survey) must not leave a blank paragraph.
        return "\n\n".join(p.strip() for p in filled.split("\n\n") if p.strip())

    return Notice(kind, template.locale, fill(template.title), fill(template.body))


def when(at: datetime, zone: ZoneInfo, locale: str) -> str:
    """A moment as the owner reads it: "Mon 23 Nov 14:30 (Europe/Berlin)" or
    "11月23日 14:30" and the zone in full-width brackets."""
    local = at.astimezone(zone)
    if language_of(locale) == "zh":
        return f"{local.month}月{local.day}日 {local:%H:%M}（{zone.key}）"  # noqa: RUF001
    return f"{local:%a} {local.day} {_EN_MONTHS[local.month - 1]} {local:%H:%M} ({zone.key})"


def within(delta: timedelta, locale: str) -> str:
    """A duration in whole minutes, hours or days: "2 hours", "30 minutes", "10 分钟"."""
    minutes = max(1, round(delta.total_seconds() / 60))
    zh = language_of(locale) == "zh"
    if minutes % (24 * 60) == 0:
        n, en, cn = minutes // (24 * 60), "day", "天"
    elif minutes % 60 == 0:
        n, en, cn = minutes // 60, "hour", "小时"
    else:
        n, en, cn = minutes, "minute", "分钟"
    if zh:
        return f"{n} {cn}"
    return f"{n} {en}" + ("" if n == 1 else "s")
