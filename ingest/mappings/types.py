"""The vocabulary of payload mappings: topic patterns, templates, field paths, conversions and
the rules that turn one firmware's messages into readings and status events.

Everything here is immutable and pure; ``ingest.mappings.parser`` builds it from YAML and
``ingest.mappings.apply`` runs it on a message. The file format is in docs/telemetry.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ingest.timestamps import TimeFormat

Path = tuple[str, ...]  # field names from the document's top; "*" is any key, first match
WILDCARD = "*"

# name -> (scale, offset): canonical = raw * scale + offset
NAMED_CONVERSIONS: dict[str, tuple[float, float]] = {
    "none": (1.0, 0.0),
    "mV": (0.001, 0.0),  # millivolts to volts
    "F": (5 / 9, -32 * 5 / 9),  # Fahrenheit to Celsius
    "K": (1.0, -273.15),  # Kelvin to Celsius
    "tenths": (0.1, 0.0),
    "hundredths": (0.01, 0.0),
    "ms": (0.001, 0.0),  # milliseconds to seconds
    "minutes": (60.0, 0.0),
    "hours": (3600.0, 0.0),
    "days": (86400.0, 0.0),
}


def path_text(path: Path) -> str:
    """A path as written in a mapping file: ``Wifi.Signal``."""
    return ".".join(path)


def lookup(doc: Any, path: Path) -> tuple[Any, Path]:
    """The value at `path` (None if absent) and the path it was found at (wildcards resolved)."""
    if not path:
        return doc, path
    if not isinstance(doc, dict):
        return None, path
    head, rest = path[0], path[1:]
    if head == WILDCARD:
        for key, value in doc.items():
            found, where = lookup(value, rest)
            if found is not None:
                return found, (key, *where)
        return None, path
    found, where = lookup(doc.get(head), rest)
    return found, (head, *where)


def without(doc: AnyMapping[str, Any], paths: list[Path]) -> dict[str, Any]:
    """A copy of `doc` without the values at `paths` (parents emptied by it are dropped too)."""
    out = dict(doc)
    for path in paths:
        if not path:
            continue
        if len(path) == 1:
            out.pop(path[0], None)
            continue
        inner = out.get(path[0])
        if isinstance(inner, dict):
            trimmed = without(inner, [path[1:]])
            if trimmed:
                out[path[0]] = trimmed
            else:
                out.pop(path[0])
    return out


@dataclass(frozen=True, slots=True)
class TopicPattern:
    """``tele/{topic}/SENSOR``: literal levels and named one-level slots; ``{rest#}`` last
    takes one or more levels."""

    text: str
    levels: tuple[str, ...]  # a literal level, or "{name}"
    rest: str | None = None  # the name of a trailing multi-level slot

    def match(self, topic: str) -> dict[str, str] | None:
        """The slot values if `topic` fits, else None."""
        parts = topic.split("/")
        n = len(self.levels)
        if len(parts) < n or (self.rest is None and len(parts) != n):
            return None
        if self.rest is not None and len(parts) == n:
            return None  # the multi-level slot takes at least one level
        slots: dict[str, str] = {}
        for level, part in zip(self.levels, parts, strict=False):
            if level.startswith("{"):
                if not part:
                    return None
                slots[level[1:-1]] = part
            elif level != part:
                return None
        if self.rest is not None:
            slots[self.rest] = "/".join(parts[n:])
        return slots

    def mqtt_filter(self) -> str:
        """The subscription that receives every topic this pattern can match."""
        levels = ["+" if level.startswith("{") else level for level in self.levels]
        return "/".join([*levels, "#"] if self.rest is not None else levels)


@dataclass(frozen=True, slots=True)
class Template:
    """``tasmota:{topic}`` or ``zb:{$Device}``: text with topic slots and payload fields."""

    text: str
    parts: tuple[str | tuple[Literal["slot", "field"], Any], ...]

    def render(self, slots: AnyMapping[str, str], doc: Any) -> str | None:
        """The filled-in text, or None when a payload field it names is absent."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part[0] == "slot":
                out.append(slots[part[1]])
            else:
                value, _ = lookup(doc, part[1])
                if value is None or isinstance(value, dict | list):
                    return None
                out.append(str(value))
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Conversion:
    """raw * scale + offset; or a percentage of a raw range (`percent_of`)."""

    name: str = "none"
    scale: float = 1.0
    offset: float = 0.0
    percent_of: tuple[float, float] | None = None
    clamp: bool = False

    def apply(self, raw: float) -> float:
        """The value in the signal's canonical unit."""
        if self.percent_of is not None:
            low, high = self.percent_of
            value = (raw - low) / (high - low) * 100
            return min(max(value, 0.0), 100.0) if self.clamp else value
        value = raw * self.scale + self.offset
        return value if math.isfinite(value) else math.nan

    @property
    def identity(self) -> bool:
        """Whether the value passes unchanged."""
        return self.percent_of is None and self.scale == 1.0 and self.offset == 0.0


@dataclass(frozen=True, slots=True)
class Source:
    """One place a signal's value may be, with its own conversion if it differs."""

    path: Path
    convert: Conversion | None = None


@dataclass(frozen=True, slots=True)
class UnitSwitch:
    """The conversion named by another field's value (Tasmota's ``TempUnit: F``)."""

    path: Path
    by_value: dict[str, Conversion]


@dataclass(frozen=True, slots=True)
class SignalRule:
    """Where one signal comes from: the first source present, converted, range-checked."""

    signal: str
    sources: tuple[Source, ...]
    convert: Conversion = field(default_factory=Conversion)
    unit_by: UnitSwitch | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class TimeSource:
    """A field holding the message's time, and how it is written."""

    path: Path
    format: TimeFormat
    zone: ZoneInfo | None = None


@dataclass(frozen=True, slots=True)
class StatusRule:
    """A status topic: the payload (or one field of it) says online or offline."""

    path: Path | None
    online: frozenset[str]
    offline: frozenset[str]


@dataclass(frozen=True, slots=True)
class Mapping:
    """One family of topics of one firmware."""

    name: str
    topic: TopicPattern
    device: Template
    payload: Literal["json", "text"] = "json"
    text_key: Template | None = None
    when: Path | None = None
    root: Path | None = None
    signals: dict[str, SignalRule] = field(default_factory=dict)
    models: tuple[tuple[str, dict[str, SignalRule]], ...] = ()
    flags: tuple[tuple[Path, str], ...] = ()
    time: tuple[TimeSource, ...] = ()
    status: StatusRule | None = None
    extra: bool = True
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """Topics a mapping file's patterns would match that carry nothing to keep."""

    topic: TopicPattern
    reason: str


@dataclass(frozen=True, slots=True)
class MappingSet:
    """Every mapping of the active files, in order: the first that fits a message reads it."""

    mappings: tuple[Mapping, ...] = ()
    ignore: tuple[IgnoreRule, ...] = ()
    files: tuple[str, ...] = ()

    def filters(self) -> tuple[str, ...]:
        """The MQTT subscriptions the mappings need (duplicates removed, in order)."""
        return tuple(dict.fromkeys(m.topic.mqtt_filter() for m in self.mappings))
