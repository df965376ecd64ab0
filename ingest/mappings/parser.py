"""The mapping-file parser: walks a composed YAML document and raises ``MappingError`` at the
line of the offending key or value, with "did you mean" for misspelt keys and names."""

from __future__ import annotations

import re
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from forewarn.errors import MappingError
from forewarn.yamlnodes import NodeReader, suggest
from ingest.mappings.types import (
    NAMED_CONVERSIONS,
    WILDCARD,
    Conversion,
    IgnoreRule,
    Mapping,
    Path,
    SignalRule,
    Source,
    StatusRule,
    Template,
    TimeSource,
    TopicPattern,
    UnitSwitch,
)
from ingest.signals import NUMERIC, SIGNALS
from ingest.timestamps import TIME_FORMATS

VERSION = 1
TOP_KEYS = ("version", "mappings", "ignore")
MAPPING_KEYS = (
    "name",
    "topic",
    "device",
    "payload",
    "text_key",
    "when",
    "root",
    "signals",
    "models",
    "flags",
    "time",
    "status",
    "extra",
)
CONVERSION_KEYS = ("convert", "scale", "offset", "percent_of", "clamp")
SOURCE_KEYS = ("field", *CONVERSION_KEYS)
RULE_KEYS = ("field", "fields", *CONVERSION_KEYS, "convert_by", "range")
TIME_KEYS = ("field", "format", "zone")
STATUS_KEYS = ("field", "online", "offline")
IGNORE_KEYS = ("topic", "reason")
PAYLOADS = ("json", "text")
SIGNAL_NAMES = tuple(SIGNALS)
CONVERSIONS = tuple(NAMED_CONVERSIONS)

_SLOT = re.compile(r"\{([^{}]*)\}")
_SLOT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class MappingParser(NodeReader):
    """Walks one composed mapping file."""

    def __init__(self, source: str) -> None:
        super().__init__(source, MappingError)

    # ---- building blocks ------------------------------------------------------------------

    def path(self, node: Node, what: str) -> Path:
        """``a.b.c`` or a list of keys (for keys holding dots); ``*`` matches any key."""
        if isinstance(node, SequenceNode):
            parts = tuple(self.text(item, what) for item in self.items(node, what, "name a field"))
        else:
            parts = tuple(self.text(node, what).split("."))
        if any(not p for p in parts):
            self.fail(node, f'{what} "{".".join(parts)}" has an empty part')
        return parts

    def topic(self, node: Node, what: str) -> TopicPattern:
        """A topic pattern with ``{slot}`` levels and an optional trailing ``{rest#}``."""
        text = self.text(node, what)
        levels = text.split("/")
        seen: set[str] = set()
        rest: str | None = None
        for i, level in enumerate(levels):
            if "+" in level or ("#" in level and not level.endswith("#}")):
                self.fail(node, f'{what} "{text}": write {{name}} for a level, not MQTT wildcards')
            if "{" not in level and "}" not in level:
                continue
            match = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)(#?)\}", level)
            if not match:
                self.fail(node, f'{what} "{text}": a slot fills a whole level, like {{name}}')
            name, many = match.group(1), bool(match.group(2))
            if name in seen:
                self.fail(node, f'{what} "{text}": slot {{{name}}} is used twice')
            seen.add(name)
            if many:
                if i != len(levels) - 1:
                    self.fail(node, f'{what} "{text}": only the last level can be {{{name}#}}')
                rest = name
        fixed = tuple(levels[:-1]) if rest else tuple(levels)
        return TopicPattern(text, fixed, rest)

    def template(self, node: Node, what: str, slots: set[str]) -> Template:
        """Text with ``{slot}`` from the topic and ``{$field.path}`` from the payload."""
        text = self.text(node, what)
        parts: list[Any] = []
        pos = 0
        for match in _SLOT.finditer(text):
            if match.start() > pos:
                parts.append(text[pos : match.start()])
            inner = match.group(1)
            if inner.startswith("$") and len(inner) > 1:
                parts.append(("field", tuple(inner[1:].split("."))))
            elif _SLOT_NAME.fullmatch(inner):
                if inner not in slots:
                    known = ", ".join(sorted(slots)) or "none"
                    self.fail(node, f'{what} "{text}": no slot {{{inner}}} in the topic ({known})')
                parts.append(("slot", inner))
            else:
                self.fail(node, f'{what} "{text}": write {{slot}} or {{$field}}, not {{{inner}}}')
            pos = match.end()
        if pos < len(text):
            parts.append(text[pos:])
        if any(isinstance(p, str) and ("{" in p or "}" in p) for p in parts):
            self.fail(node, f'{what} "{text}" has an unmatched brace')
        return Template(text, tuple(parts))

    def conversion(self, found: dict[str, tuple[Node, Node]], what: str) -> Conversion | None:
        """convert, scale/offset, or percent_of (+ clamp); at most one kind."""
        kinds: list[str] = [k for k in ("convert", "percent_of") if k in found]
        if "scale" in found or "offset" in found:
            kinds.append("scale/offset")
        if len(kinds) > 1:
            self.fail(found[kinds[0]][0], f"{what}: use one of {' or '.join(kinds)}, not both")
        if "clamp" in found and "percent_of" not in found:
            self.fail(found["clamp"][0], f"{what}: clamp only goes with percent_of")
        if "convert" in found:
            name = self.choice(found["convert"][1], CONVERSIONS, f"{what} conversion")
            scale, offset = NAMED_CONVERSIONS[name]
            return Conversion(name, scale, offset)
        if "percent_of" in found:
            node = found["percent_of"][1]
            low, high = self.pair(node, f"{what} percent_of")
            if low == high:
                self.fail(node, f"{what} percent_of needs two different ends, not {low:g} twice")
            clamp = self.flag(found["clamp"][1], f"{what} clamp") if "clamp" in found else False
            return Conversion("percent_of", percent_of=(low, high), clamp=clamp)
        if kinds:
            scale = self.number(found["scale"][1], f"{what} scale") if "scale" in found else 1.0
            offset = self.number(found["offset"][1], f"{what} offset") if "offset" in found else 0.0
            return Conversion("linear", scale, offset)
        return None

    def pair(self, node: Node, what: str) -> tuple[float, float]:
        """``[low, high]``."""
        items = self.items(node, what, "write [low, high]")
        if len(items) != 2:
            self.fail(node, f"{what} must be two numbers, [low, high]")
        return self.number(items[0], what), self.number(items[1], what)

    def words(self, node: Node, what: str) -> frozenset[str]:
        """A non-empty list of texts (one text alone is a list of one)."""
        nodes = [node] if isinstance(node, ScalarNode) else self.items(node, what, "list them")
        return frozenset(self.text(n, what) for n in nodes)

    # ---- sections -------------------------------------------------------------------------

    def document(self, root: Node) -> tuple[list[Mapping], list[IgnoreRule]]:
        """The whole file."""
        top = self.fields(root, TOP_KEYS, name="", required=())
        if "version" not in top:
            self.fail(root, f'missing "version"; add "version: {VERSION}" at the top')
        node = top["version"][1]
        if self.scalar(node, "version") != VERSION:
            self.fail(
                node, f'version "{node.value}" is not supported; this Forewarn reads {VERSION}'
            )
        if "mappings" not in top:
            self.fail(root, 'missing "mappings"; a mapping file needs at least one mapping')
        nodes = self.items(top["mappings"][1], "mappings", "add at least one mapping")
        mappings = [self.mapping(n, i) for i, n in enumerate(nodes, 1)]
        ignore = []
        if "ignore" in top:
            for n in self.items(top["ignore"][1], "ignore", "leave ignore out"):
                f = self.fields(n, IGNORE_KEYS, name="an ignore entry", required=IGNORE_KEYS)
                ignore.append(
                    IgnoreRule(
                        self.topic(f["topic"][1], "topic"), self.text(f["reason"][1], "reason")
                    )
                )
        return mappings, ignore

    def mapping(self, node: Node, index: int) -> Mapping:
        """One entry of ``mappings``."""
        self.prefix = ""
        f = self.fields(node, MAPPING_KEYS, name=f"mapping {index}", required=("name",))
        name = self.text(f["name"][1], "name")
        self.prefix = f'mapping "{name}": '
        for key in ("topic", "device"):
            if key not in f:
                self.fail(node, f'missing "{key}"')
        topic = self.topic(f["topic"][1], "topic")
        slots = {lvl[1:-1] for lvl in topic.levels if lvl.startswith("{")}
        if topic.rest:
            slots.add(topic.rest)
        payload = self.choice(f["payload"][1], PAYLOADS, "payload") if "payload" in f else "json"
        self._only(f, payload)
        status = self.status(f["status"][1]) if "status" in f else None
        if status and ({"signals", "models", "flags"} & f.keys()):
            extra = sorted({"signals", "models", "flags"} & f.keys())
            self.fail(f[extra[0]][0], f"a status mapping has no {', '.join(extra)}")
        signals = self.signals(f["signals"][1], "signals") if "signals" in f else {}
        models = self.models(f["models"][1], signals) if "models" in f else ()
        text_key = f.get("text_key")
        return Mapping(
            name=name,
            topic=topic,
            device=self.template(f["device"][1], "device", slots),
            payload="text" if payload == "text" else "json",
            text_key=self.template(text_key[1], "text_key", slots) if text_key else None,
            when=self.path(f["when"][1], "when") if "when" in f else None,
            root=self.path(f["root"][1], "root") if "root" in f else None,
            signals=signals,
            models=models,
            flags=self.flags(f["flags"][1]) if "flags" in f else (),
            time=self.time(f["time"][1]) if "time" in f else (),
            status=status,
            extra=self.flag(f["extra"][1], "extra") if "extra" in f else True,
            file=self.source,
            line=node.start_mark.line + 1,
        )

    def _only(self, f: dict[str, tuple[Node, Node]], payload: str) -> None:
        if payload == "text":
            for key in ("when", "root"):
                if key in f:
                    self.fail(f[key][0], f"{key} reads JSON fields; this mapping's payload is text")
        elif "text_key" in f:
            self.fail(f["text_key"][0], "text_key only goes with payload: text")

    def signals(self, node: Node, what: str) -> dict[str, SignalRule]:
        """``signal: where`` for each canonical signal the mapping fills."""
        out: dict[str, SignalRule] = {}
        for key, (key_node, value) in self.fields(node, (), name=what).items():
            if key not in SIGNALS:
                self.fail(key_node, f'unknown signal "{key}"; {suggest(key, SIGNAL_NAMES)}')
            out[key] = self.rule(key, value)
        return out

    def rule(self, signal: str, node: Node) -> SignalRule:
        """A path, a list of sources (first present wins), or a mapping with options."""
        what = f"signals.{signal}"
        if not isinstance(node, MappingNode):
            return SignalRule(signal, self.sources(node, what))
        f = self.fields(node, RULE_KEYS, name=what)
        if ("field" in f) == ("fields" in f):
            self.fail(node, f'{what} needs "field" (one place) or "fields" (the first present)')
        where = f.get("field") or f["fields"]
        sources = self.sources(where[1], what)
        convert = self.conversion(f, what)
        numeric = signal in NUMERIC
        if not numeric and (convert or "convert_by" in f or "range" in f):
            key = next(k for k in (*CONVERSION_KEYS, "convert_by", "range") if k in f)
            self.fail(f[key][0], f"{what}: {signal} is not a number; it takes no {key}")
        low = high = None
        if "range" in f:
            low, high = self.pair(f["range"][1], f"{what} range")
            s = SIGNALS[signal]
            if not s.low <= low < high <= s.high:
                self.fail(f["range"][1], f"{what} range must lie within {s.low:g}..{s.high:g}")
        unit_by = self.unit_switch(f["convert_by"][1], what) if "convert_by" in f else None
        return SignalRule(signal, sources, convert or Conversion(), unit_by, low, high)

    def sources(self, node: Node, what: str) -> tuple[Source, ...]:
        """One path, or a list of paths and ``{field, convert...}`` entries."""
        if not isinstance(node, SequenceNode):
            return (Source(self.path(node, f"{what} field")),)
        out = []
        for item in self.items(node, what, "name at least one field"):
            if isinstance(item, MappingNode):
                f = self.fields(item, SOURCE_KEYS, name=f"a source of {what}", required=("field",))
                out.append(Source(self.path(f["field"][1], "field"), self.conversion(f, what)))
            else:
                out.append(Source(self.path(item, f"{what} field")))
        return tuple(out)

    def unit_switch(self, node: Node, what: str) -> UnitSwitch:
        """``{field: TempUnit, F: F, K: K}``: the conversion named by another field's value."""
        f = self.fields(node, (), name=f"{what} convert_by", required=("field",))
        by_value: dict[str, Conversion] = {}
        for key, (_, value) in f.items():
            if key != "field":
                name = self.choice(value, CONVERSIONS, f"{what} conversion")
                by_value[key] = Conversion(name, *NAMED_CONVERSIONS[name])
        if not by_value:
            self.fail(node, f"{what} convert_by names no value, like F: F")
        return UnitSwitch(self.path(f["field"][1], "convert_by field"), by_value)

    def models(
        self, node: Node, signals: dict[str, SignalRule]
    ) -> tuple[tuple[str, dict[str, SignalRule]], ...]:
        """``"lock-s1*": {signal: where}``: overrides for the models a pattern matches."""
        if "model" not in signals:
            self.fail(node, "models needs a model signal to match against (signals: model: ...)")
        out = []
        for glob, (_, value) in self.fields(node, (), name="models").items():
            overrides = self.signals(value, f"models.{glob}")
            if "model" in overrides:
                self.fail(value, f"models.{glob} cannot override the model signal itself")
            out.append((glob, overrides))
        return tuple(out)

    def flags(self, node: Node) -> tuple[tuple[Path, str], ...]:
        """``battery_low: E_LOW_BATTERY``: an error code when the field is true."""
        out = []
        for key, (key_node, value) in self.fields(node, (), name="flags").items():
            code = self.text(value, f"flags.{key}")
            if not _CODE.fullmatch(code):
                self.fail(value, f'flags.{key}: "{code}" is not an error code (letters, digits, _)')
            out.append((self.path(key_node, "flag field"), code))
        return tuple(out)

    def time(self, node: Node) -> tuple[TimeSource, ...]:
        """One ``{field, format, zone}`` or a list of them (the first present wins)."""
        nodes = list(node.value) if isinstance(node, SequenceNode) else [node]
        if not nodes:
            self.fail(node, "time is an empty list; leave it out to use the receive time")
        return tuple(self.time_source(n) for n in nodes)

    def time_source(self, node: Node) -> TimeSource:
        """Where the time is and how it is written."""
        if isinstance(node, ScalarNode):
            return TimeSource(self.path(node, "time field"), "rfc3339")
        f = self.fields(node, TIME_KEYS, name="time", required=("field",))
        fmt = (
            self.choice(f["format"][1], TIME_FORMATS, "time format") if "format" in f else "rfc3339"
        )
        zone = None
        if "zone" in f:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            name = self.text(f["zone"][1], "zone")
            if fmt != "iso_local":
                self.fail(f["zone"][0], "zone only goes with format: iso_local")
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                self.fail(
                    f["zone"][1], f'unknown time zone "{name}" (e.g. UTC, Europe/Berlin)', exc
                )
        elif fmt == "iso_local":
            self.fail(node, "format iso_local needs a zone for times written without an offset")
        return TimeSource(self.path(f["field"][1], "time field"), fmt, zone)  # type: ignore[arg-type]

    def status(self, node: Node) -> StatusRule:
        """``{field?, online: [...], offline: [...]}``."""
        f = self.fields(node, STATUS_KEYS, name="status", required=("online", "offline"))
        online, offline = (
            self.words(f["online"][1], "online"),
            self.words(f["offline"][1], "offline"),
        )
        both = online & offline
        if both:
            self.fail(f["offline"][1], f'"{sorted(both)[0]}" cannot mean both online and offline')
        path = self.path(f["field"][1], "status field") if "field" in f else None
        if path and WILDCARD in path:
            self.fail(f["field"][1], "the status field cannot contain *")
        return StatusRule(path, online, offline)
