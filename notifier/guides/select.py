"""Which guide fits a device, and the guide with its placeholders filled. Pure: no I/O.

Selection order, most important first:

1. the guide must apply: same fault (or both none), the device's kind in ``kinds`` and its
   model in ``models`` (empty: any), its firmware inside the range (a device whose firmware
   is unknown only gets guides without a range);
2. locale: the exact locale, else the same language (zh-TW gets zh-CN), else en-US; a guide
   the owner cannot read loses to a less specific one they can;
3. specificity: a guide naming the model beats one naming the kind beats a generic one;
4. a firmware-ranged guide beats one without a range;
5. a guide for the audience asked for (novice, senior) beats one for "all".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from notifier.guides.plaintext import check_links, markdown_to_text
from notifier.guides.types import DEFAULT_LOCALE, Guide, GuideFacts, RenderedGuide, language_of

_VERSION = re.compile(r"^\d+(?:\.\d+)*$")
_DEVICE_VERSION = re.compile(r"^\s*[vV]?(\d+(?:\.\d+)*)")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ONE_UNIT = re.compile(r"\b1 (day|hour)s\b")  # "about 1 days" reads wrong

Version = tuple[int, ...]


def parse_version(text: str) -> Version | None:
    """Dotted numbers ("3.1.0") as a tuple of ints; None when the text is not one."""
    text = text.strip()
    if not _VERSION.match(text):
        return None
    return tuple(int(part) for part in text.split("."))


def device_version(text: str | None) -> Version | None:
    """A device's reported firmware as a version, ignoring a "v" prefix and build suffixes."""
    if text is None:
        return None
    found = _DEVICE_VERSION.match(text)
    return None if found is None else parse_version(found.group(1))


def compare_versions(a: Version, b: Version) -> int:
    """-1, 0 or 1, comparing numerically with missing parts as zeros (3.1 == 3.1.0)."""
    width = max(len(a), len(b))
    left = a + (0,) * (width - len(a))
    right = b + (0,) * (width - len(b))
    return (left > right) - (left < right)


def firmware_matches(guide: Guide, firmware: str | None) -> bool:
    """Whether a device on this firmware falls inside the guide's range (min incl., max excl.)."""
    if not guide.has_firmware_range:
        return True
    version = device_version(firmware)
    if version is None:
        return False
    low = parse_version(guide.firmware_min) if guide.firmware_min else None
    high = parse_version(guide.firmware_max) if guide.firmware_max else None
    if low is not None and compare_versions(version, low) < 0:
        return False
    return not (high is not None and compare_versions(version, high) >= 0)


def applies(
    guide: Guide, *, fault: str | None, kind: str | None, model: str | None, firmware: str | None
) -> bool:
    """Whether the guide is about this fault and covers this kind, model and firmware."""
    if guide.fault != fault:
        return False
    model_listed = model is not None and model in guide.models
    if guide.models and not model_listed:
        return False
    # A caller that knows the model but not the kind still gets a guide written for that model.
    if guide.kinds and kind not in guide.kinds and not (kind is None and model_listed):
        return False
    return firmware_matches(guide, firmware)


def locale_rank(guide_locale: str, wanted: str) -> int:
    """4 exact, 3 same language, 2 en-US, 1 another English; 0: the owner cannot read it."""
    have, want = _norm(guide_locale), _norm(wanted)
    if have == want:
        return 4
    if language_of(have) == language_of(want):
        return 3
    if have == _norm(DEFAULT_LOCALE):
        return 2
    return 1 if language_of(have) == language_of(DEFAULT_LOCALE) else 0


def choose(
    guides: Sequence[Guide],
    *,
    fault: str | None,
    kind: str | None,
    model: str | None,
    firmware: str | None,
    locale: str,
    audience: str = "all",
) -> Guide | None:
    """The best guide for this fault and device in this locale, or None when none applies."""
    best: Guide | None = None
    best_rank: tuple[int, ...] = ()
    for guide in sorted(guides, key=lambda g: (g.guide_id, g.locale)):
        if not applies(guide, fault=fault, kind=kind, model=model, firmware=firmware):
            continue
        lang = locale_rank(guide.locale, locale)
        if lang == 0:
            continue
        rank = (
            lang,
            2 if guide.models else 1 if guide.kinds else 0,
            int(guide.has_firmware_range),
            _audience_rank(guide.audience, audience),
        )
        if best is None or rank > best_rank:
            best, best_rank = guide, rank
    return best


def onboarding(guides: Sequence[Guide], *, kind: str | None, locale: str) -> Guide | None:
    """The novices' basic guide for a kind of product (a generic one if the kind has none)."""
    basics = [g for g in guides if g.category == "basic" and g.fault is None]
    return choose(
        basics, fault=None, kind=kind, model=None, firmware=None, locale=locale, audience="novice"
    )


def render(guide: Guide, facts: GuideFacts, *, links: Sequence[str] = ()) -> RenderedGuide:
    """The guide's title and a plain-text body (problem, numbered steps, cautions), filled in.

    The guide's Markdown becomes plain text before the placeholders are filled (so a device's
    model or firmware is never read as Markdown), and only https links to `links` hosts are
    kept (notifier/guides/plaintext.py)."""
    words = _WORDS.get(guide.language, _WORDS["en"])
    values = _values(guide, facts, words)

    def fill(text: str) -> str:
        plain = markdown_to_text(text, hosts=links)
        filled = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), plain)
        filled = check_links(filled, hosts=links)
        return _ONE_UNIT.sub(r"1 \1", filled) if guide.language == "en" else filled

    parts = [fill(guide.problem)]
    steps = "\n".join(f"{n}. {fill(step)}" for n, step in enumerate(guide.steps, start=1))
    parts.append(f"{words['steps']}\n{steps}")
    if guide.cautions:
        cautions = "\n".join(f"- {fill(caution)}" for caution in guide.cautions)
        parts.append(f"{words['cautions']}\n{cautions}")
    return RenderedGuide(
        guide_id=guide.guide_id,
        locale=guide.locale,
        title=fill(guide.title),
        body="\n\n".join(parts),
    )


def kind_word(kind: str | None, locale: str) -> str:
    """What a guide calls a kind of product in the locale's language: "lock", "门锁", "device"."""
    words = _WORDS.get(language_of(locale), _WORDS["en"])
    return words.get(f"kind:{kind}", words["kind:None"])


def _norm(locale: str) -> str:
    return locale.replace("_", "-").strip().lower()


def _audience_rank(have: str, wanted: str) -> int:
    if have == wanted and have != "all":
        return 2
    return 1 if have == "all" else 0


def _values(guide: Guide, facts: GuideFacts, words: Mapping[str, str]) -> dict[str, str]:
    kind = facts.kind or (guide.kinds[0] if len(guide.kinds) == 1 else None)
    hours = facts.hours_to_empty
    if hours is not None and not math.isfinite(hours):
        hours = None
    return {
        "device_name": facts.device_name or words.get(f"kind:{kind}", words["kind:None"]),
        # Half-up rounding, and never "0 days": the owner still has some time.
        "days_left": str(max(1, int(hours / 24 + 0.5))) if hours is not None else words["some"],
        "hours_left": str(max(1, int(hours + 0.5))) if hours is not None else words["some"],
        "owner_name": facts.owner_name or words["owner"],
        "model": facts.model or words["model"],
        "firmware": facts.firmware or words["firmware"],
    }


# Neutral words for facts the caller does not have, so no "{...}" ever reaches an owner.
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "kind:lock": "lock",
        "kind:air_conditioner": "air conditioner",
        "kind:watch": "watch",
        "kind:camera": "camera",
        "kind:temperature_sensor": "temperature sensor",
        "kind:None": "device",
        "some": "a few",
        "owner": "there",
        "model": "this model",
        "firmware": "the current version",
        "steps": "What to do:",
        "cautions": "Please note:",
    },
    "zh": {
        "kind:lock": "门锁",
        "kind:air_conditioner": "空调",
        "kind:watch": "手表",
        "kind:camera": "摄像头",
        "kind:temperature_sensor": "温度传感器",
        "kind:None": "设备",
        "some": "几",
        "owner": "用户",
        "model": "该型号",
        "firmware": "当前版本",
        # Chinese punctuation on purpose: a full-width colon after a Chinese heading.
        "steps": "操作步骤：",  # noqa: RUF001
        "cautions": "注意事项：",  # noqa: RUF001
    },
}
