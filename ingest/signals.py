"""The canonical signals of a ``Reading``: their types and plausible ranges, and how a parser
takes values one by one so that one implausible value is dropped alone.

Every adapter that reads someone else's firmware (Zigbee2MQTT, the declarative mappings) puts
each value through ``ReadingBuilder.put``: a value that is not a number, not finite, or outside
its signal's range is left out and noted in ``Reading.dropped`` (signal -> why), and the rest
of the message is kept. A converter bug that reports ``battery: 200`` costs that one value,
not the device's link quality and temperature with it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from forewarn.domain import Reading

Kind = Literal["number", "integer", "text", "codes"]

INT32_MAX = 2**31 - 1  # reconnects is an integer column
INT64_MAX = 2**63 - 1  # uptime_s is a bigint column
MAX_CODES = 32
MAX_TEXT = 64


@dataclass(frozen=True, slots=True)
class Signal:
    """One canonical signal: what it holds and the widest values Forewarn accepts."""

    name: str
    kind: Kind
    low: float = -math.inf
    high: float = math.inf
    unit: str = ""


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("signal_dbm", "number", -150, 20, "dBm"),
        Signal("link_quality", "number", 0, 255, "LQI 0-255"),
        Signal("battery_pct", "number", 0, 100, "%"),
        Signal("battery_v", "number", 0, 60, "V"),
        # A failed sensor's odd readings (85 °C, -40 °C) are data; below absolute zero is not.
        Signal("temperature_c", "number", -273.15, 1000, "°C"),
        Signal("uptime_s", "integer", 0, INT64_MAX, "s"),
        Signal("reconnects", "integer", 0, INT32_MAX),
        Signal("error_codes", "codes"),
        Signal("firmware", "text"),
        Signal("model", "text"),
    )
}
NUMERIC = tuple(name for name, s in SIGNALS.items() if s.kind in ("number", "integer"))


class Implausible(ValueError):
    """A value that cannot stand for its signal; the message says why."""


def shown(value: Any) -> str:
    """A value as it reads in a reason: JSON-like, and short."""
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except ValueError:  # a nested NaN with allow_nan off cannot happen; be safe anyway
            text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_number(value: Any) -> float:
    """A finite number from a JSON number or a numeric string ("37.00"); Implausible if not."""
    if isinstance(value, bool):
        raise Implausible("is a boolean, not a number")
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise Implausible("is not a number") from None
    else:
        raise Implausible("is not a number")
    if not math.isfinite(number):
        raise Implausible("is not a finite number")
    return number


def _bound(x: float) -> str:
    return f"{x:g}"


def check(
    signal: Signal, value: Any, *, low: float | None = None, high: float | None = None
) -> Any:
    """The value typed for its signal, or Implausible; `low`/`high` narrow the range."""
    if signal.kind == "codes":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Implausible("is not a list of strings")
        if len(value) > MAX_CODES:
            raise Implausible(f"has {len(value)} codes, more than {MAX_CODES}")
        return tuple(value)
    if signal.kind == "text":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Implausible("is not text")
        text = str(value).strip()
        if not text:
            raise Implausible("is empty")
        if len(text) > MAX_TEXT:
            raise Implausible(f"is longer than {MAX_TEXT} characters")
        return text
    number = to_number(value)
    lo = signal.low if low is None else max(low, signal.low)
    hi = signal.high if high is None else min(high, signal.high)
    if number < lo or number > hi:
        raise Implausible(f"is outside {_bound(lo)}..{_bound(hi)}")
    if signal.kind == "integer":
        return round(number)
    return number


def _same(raw: Any, value: Any) -> bool:
    """Whether a conversion left the value as it was (so the reason shows it once)."""
    try:
        return bool(to_number(raw) == value)
    except Implausible:
        return False


class ReadingBuilder:
    """Collects one message's signals, dropping implausible ones one by one."""

    __slots__ = ("codes", "device_id", "dropped", "source", "values")

    def __init__(self, device_id: str, source: str) -> None:
        self.device_id = device_id
        self.source = source
        self.values: dict[str, Any] = {}
        self.dropped: dict[str, str] = {}
        self.codes: list[str] = []

    def put(
        self,
        name: str,
        value: Any,
        *,
        field: str,
        low: float | None = None,
        high: float | None = None,
        raw: Any = None,
    ) -> bool:
        """Take `value` (read from `field`, as `raw` before any unit conversion) for signal
        `name`; note and skip it if implausible."""
        if value is None:
            return False  # Zigbee2MQTT's "not known yet": nothing to take, nothing wrong
        try:
            self.values[name] = check(SIGNALS[name], value, low=low, high=high)
        except Implausible as exc:
            was = shown(value if raw is None else raw)
            if raw is not None and not _same(raw, value):
                was += f" ({shown(value)} {SIGNALS[name].unit})"
            self.drop(name, f"{field}={was} {exc}")
            return False
        return True

    def drop(self, name: str, why: str) -> None:
        """Note that `name` was left out, and why."""
        self.values.pop(name, None)
        self.dropped[name] = why

    def code(self, code: str) -> None:
        """Add an error code (once)."""
        if code not in self.codes:
            self.codes.append(code)

    def build(self, ts: datetime, extra: Mapping[str, Any]) -> Reading:
        """The reading, with what was dropped."""
        v = self.values
        codes = tuple(dict.fromkeys((*v.get("error_codes", ()), *self.codes)))[:MAX_CODES]
        return Reading(
            device_id=self.device_id,
            ts=ts,
            model=v.get("model"),
            firmware=v.get("firmware"),
            signal_dbm=v.get("signal_dbm"),
            link_quality=v.get("link_quality"),
            battery_pct=v.get("battery_pct"),
            battery_v=v.get("battery_v"),
            temperature_c=v.get("temperature_c"),
            uptime_s=v.get("uptime_s"),
            reconnects=v.get("reconnects"),
            error_codes=codes,
            extra=dict(extra),
            source=self.source,
            dropped=dict(self.dropped),
        )


def signals_of(reading: Reading) -> dict[str, Any]:
    """The signals a reading carries (None and empty left out), for tests and the CLI."""
    out: dict[str, Any] = {}
    for name in SIGNALS:
        value = getattr(reading, name)
        if value is not None and value != ():
            out[name] = list(value) if isinstance(value, tuple) else value
    return out
