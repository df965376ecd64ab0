"""What a reading may carry into the database beyond its signals. Pure.

PostgreSQL refuses a NUL character in text and in jsonb, and jsonb refuses NaN and
infinities; one such value anywhere in a batch used to fail the whole COPY, which was then
retried one row at a time. Every adapter's reading passes through ``clean`` (from
``ingest.router.route``), which drops such values one by one and notes each in
``Reading.dropped``, as the signal checks do:

- an unknown field (kept in ``extra``) whose name or value holds a NUL, a non-finite number,
  nesting deeper than ``max_depth``, or JSON longer than ``max_bytes``;
- unknown fields past the first ``max_fields`` (one note says how many);
- a model or firmware string, or an error code, holding a NUL.

A signal value too small for PostgreSQL's ``real`` (below 1.2e-38, which the database refuses
as out of range) is stored as 0: found by the abuse suite (tests/test_abuse_ingest.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

from forewarn.domain import Reading

MAX_NAME_CHARS = 64
# Signals stored as PostgreSQL real (float4): a magnitude below its smallest normal number
# (a JSON 1e-100, say) is refused as out of range, where it means zero.
FLOAT4_MIN = 1.17549435e-38
_REAL_SIGNALS = ("signal_dbm", "link_quality", "battery_pct", "battery_v", "temperature_c")


@dataclass(frozen=True, slots=True)
class ExtraLimits:
    """Caps on the unknown fields a reading keeps (FOREWARN_EXTRA_MAX_*)."""

    max_fields: int = 32
    max_bytes: int = 2048
    max_depth: int = 3


class _Refused(ValueError):
    """A value that may not be stored; the message says why."""


def clean(reading: Reading, limits: ExtraLimits) -> Reading:
    """The reading with what the database cannot or should not take dropped and noted."""
    dropped: dict[str, str] = {}
    extra = _extra(reading.extra, limits, dropped) if reading.extra else reading.extra
    model, firmware = reading.model, reading.firmware
    for name, value in (("model", model), ("firmware", firmware)):
        if value is not None and "\0" in value:
            dropped[name] = f"{name} holds a NUL character"
    codes = tuple(c for c in reading.error_codes if "\0" not in c)
    if len(codes) != len(reading.error_codes):
        dropped["error_codes"] = "error codes holding a NUL character were left out"
    if any(_tiny(getattr(reading, name)) for name in _REAL_SIGNALS):
        reading = replace(
            reading,
            signal_dbm=_zeroed(reading.signal_dbm),
            link_quality=_zeroed(reading.link_quality),
            battery_pct=_zeroed(reading.battery_pct),
            battery_v=_zeroed(reading.battery_v),
            temperature_c=_zeroed(reading.temperature_c),
        )
    if not dropped:
        return reading
    return replace(
        reading,
        extra=extra,
        model=None if "model" in dropped else model,
        firmware=None if "firmware" in dropped else firmware,
        error_codes=codes,
        dropped={**reading.dropped, **dropped},
    )


def _tiny(value: float | None) -> bool:
    return value is not None and 0 < abs(value) < FLOAT4_MIN


def _zeroed(value: float | None) -> float | None:
    return 0.0 if _tiny(value) else value


def _extra(extra: Any, limits: ExtraLimits, dropped: dict[str, str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    over = 0
    for name, value in extra.items():
        label = f"extra.{_shown_name(name)}"
        if len(kept) >= limits.max_fields:
            over += 1
            continue
        try:
            if "\0" in name or len(name) > MAX_NAME_CHARS:
                raise _Refused(f"a field name must be under {MAX_NAME_CHARS} characters, no NUL")
            _check(value, limits.max_depth, 1)
            size = len(json.dumps(value, ensure_ascii=False, allow_nan=False))
            if size > limits.max_bytes:
                raise _Refused(f"is {size} bytes of JSON, more than {limits.max_bytes}")
        except _Refused as exc:
            dropped[label] = f"{label} {exc}"
            continue
        kept[name] = value
    if over:
        dropped["extra"] = f"{over} more unknown field(s) left out (at most {limits.max_fields})"
    return kept


def _check(value: Any, max_depth: int, depth: int) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused("is not a finite number")
    if isinstance(value, str):
        if "\0" in value:
            raise _Refused("holds a NUL character")
        return
    if isinstance(value, dict | list):
        if depth > max_depth:
            raise _Refused(f"nests deeper than {max_depth} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and "\0" in key:
                raise _Refused("holds a NUL character in a name")
            _check(item, max_depth, depth + 1)


def _shown_name(name: str) -> str:
    text = name.replace("\0", "\\0")
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 3] + "..."
