"""Run a mapping on one message: a reading (implausible values dropped one by one), a status
event, or a PayloadError naming the problem. Pure: no I/O, no state."""

from __future__ import annotations

import json
import math
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from forewarn.domain import DeviceStatus, Parsed, StatusEvent
from forewarn.errors import ValidationError
from ingest.mappings.types import Conversion, Mapping, Path, SignalRule, lookup, path_text, without
from ingest.signals import NUMERIC, Implausible, ReadingBuilder, shown, to_number
from ingest.timestamps import TimeWindow, reading_time

MAX_DEVICE_ID = 200
_TRUE = frozenset({"true", "on", "yes", "1"})


def text_value(payload: bytes) -> Any:
    """A bare payload's value: a JSON number or boolean when it reads as one, else the text
    (so ESPHome's ``nan`` stays the text it was, and is dropped if it was meant as a signal)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
        return value
    return text


def _device_id(mapping: Mapping, slots: dict[str, str], doc: Any) -> str:
    device_id = mapping.device.render(slots, doc)
    if device_id is None:
        raise ValidationError(f"device {mapping.device.text!r}: a field it names is absent")
    device_id = device_id.strip()
    if not device_id or len(device_id) > MAX_DEVICE_ID or not device_id.isprintable():
        raise ValidationError(f"device id {device_id!r} is empty, too long or not printable")
    return device_id


def status_event(
    mapping: Mapping, slots: dict[str, str], payload: bytes, doc: Any, received_at: datetime
) -> StatusEvent:
    """The status a status mapping's message announces."""
    rule = mapping.status
    assert rule is not None
    value = text_value(payload) if rule.path is None else lookup(doc, rule.path)[0]
    said = str(value).strip() if value is not None else ""
    if said in rule.online:
        status = DeviceStatus.ONLINE
    elif said in rule.offline:
        status = DeviceStatus.OFFLINE
    else:
        where = "the payload" if rule.path is None else path_text(rule.path)
        raise ValidationError(
            f"{where} says {shown(value)}: neither online ({', '.join(sorted(rule.online))}) "
            f"nor offline ({', '.join(sorted(rule.offline))})"
        )
    device_id = _device_id(mapping, slots, doc)
    return StatusEvent(device_id, received_at, status, f"mapping:{mapping.name}")


def _rules(mapping: Mapping, model: str | None) -> dict[str, SignalRule]:
    rules = dict(mapping.signals)
    if model is not None:
        for glob, overrides in mapping.models:
            if fnmatchcase(model, glob):
                rules.update(overrides)
                break
    return rules


def _take(b: ReadingBuilder, rule: SignalRule, doc: Any, consumed: list[Path]) -> None:
    """Put the first present source of `rule` into the builder, converted and checked."""
    for source in rule.sources:
        value, where = lookup(doc, source.path)
        if value is None:
            continue
        consumed.append(where)
        field = path_text(where)
        if rule.signal not in NUMERIC:
            if rule.signal == "error_codes" and isinstance(value, str):
                value = [value]
            b.put(rule.signal, value, field=field)
            return
        convert: Conversion = source.convert or rule.convert
        if rule.unit_by is not None:
            unit, _ = lookup(doc, rule.unit_by.path)
            convert = rule.unit_by.by_value.get(str(unit), convert)
        try:
            number = to_number(value)
        except Implausible as exc:
            b.drop(rule.signal, f"{field}={shown(value)} {exc}")
            return
        converted = number if convert.identity else convert.apply(number)
        b.put(rule.signal, converted, field=field, low=rule.low, high=rule.high, raw=value)
        return


def reading(
    mapping: Mapping,
    slots: dict[str, str],
    doc: Any,
    *,
    received_at: datetime,
    window: TimeWindow,
) -> Parsed:
    """The reading a mapping makes of a decoded document (already rooted)."""
    b = ReadingBuilder(_device_id(mapping, slots, doc), f"mapping:{mapping.name}")
    consumed: list[Path] = []
    model_rule = mapping.signals.get("model")
    if model_rule is not None:
        _take(b, model_rule, doc, consumed)
    for name, rule in _rules(mapping, b.values.get("model")).items():
        if name != "model":
            _take(b, rule, doc, consumed)
    for path, code in mapping.flags:
        value, where = lookup(doc, path)
        if value is not None:
            consumed.append(where)
            if value is True or (isinstance(value, str | int) and str(value).lower() in _TRUE):
                b.code(code)
    ts = received_at
    for source in mapping.time:
        value, where = lookup(doc, source.path)
        if value is None:
            continue
        consumed.append(where)
        ts, late = reading_time(
            value,
            source.format,
            field=path_text(where),
            received_at=received_at,
            window=window,
            zone=source.zone,
        )
        if late:
            b.dropped["ts"] = late
        break
    extra = without(doc, consumed) if mapping.extra and isinstance(doc, dict) else {}
    return b.build(ts, extra)
