"""Reading a message's own timestamp, in the formats firmware really sends.

A device's (or bridge's) clock is a field like any other: when it cannot be read, or lies
outside the window Forewarn keeps, the reading is stored at the time it was received and the
reason is noted in ``Reading.dropped["ts"]``, rather than losing the reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from forewarn.errors import ValidationError
from ingest.signals import Implausible, shown, to_number

TimeFormat = Literal["rfc3339", "iso_local", "epoch_s", "epoch_ms", "auto"]
TIME_FORMATS: tuple[TimeFormat, ...] = ("rfc3339", "iso_local", "epoch_s", "epoch_ms", "auto")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Readings outside [now - max_age, now + max_skew] are refused."""

    max_age: timedelta
    max_skew: timedelta

    def check(self, ts: datetime, now: datetime) -> None:
        """Raise ValidationError if ``ts`` falls outside the window around ``now``."""
        # Compared as epoch seconds: aware-datetime arithmetic costs a microsecond a message.
        stamp, reference = ts.timestamp(), now.timestamp()
        if stamp > reference + self.max_skew.total_seconds():
            raise ValidationError(f"ts {ts.isoformat()} is more than {self.max_skew} in the future")
        if stamp < reference - self.max_age.total_seconds():
            raise ValidationError(
                f"ts {ts.isoformat()} is older than the retention window ({self.max_age})"
            )


def _epoch(value: Any, scale: float) -> datetime:
    seconds = to_number(value) / scale
    if not math.isfinite(seconds) or abs(seconds) > 1e11:  # beyond year 5000 either way
        raise Implausible("is not a plausible epoch time")
    return datetime.fromtimestamp(seconds, UTC)


def _iso(value: Any, zone: ZoneInfo | None) -> datetime:
    if not isinstance(value, str):
        raise Implausible("is not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Implausible("is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        if zone is None:
            raise Implausible("has no UTC offset (and the mapping names no zone)")
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def parse_time(value: Any, fmt: TimeFormat, zone: ZoneInfo | None = None) -> datetime:
    """An aware UTC datetime from `value`, or Implausible.

    ``rfc3339`` needs an offset; ``iso_local`` reads a time without one in `zone`;
    ``epoch_s``/``epoch_ms`` take numbers or numeric strings; ``auto`` takes numbers as epoch
    milliseconds (Zigbee2MQTT's ``last_seen: epoch``) and strings as RFC 3339.
    """
    if isinstance(value, bool):
        raise Implausible("is a boolean, not a time")
    if fmt == "epoch_s":
        return _epoch(value, 1)
    if fmt == "epoch_ms" or (fmt == "auto" and isinstance(value, int | float)):
        return _epoch(value, 1000)
    return _iso(value, zone if fmt == "iso_local" else None)


def reading_time(
    value: Any,
    fmt: TimeFormat,
    *,
    field: str,
    received_at: datetime,
    window: TimeWindow,
    zone: ZoneInfo | None = None,
) -> tuple[datetime, str | None]:
    """The message's time, or the receive time with the reason the message's was not used."""
    if value is None:
        return received_at, None
    try:
        ts = parse_time(value, fmt, zone)
        window.check(ts, received_at)
    except Implausible as exc:
        return received_at, f"{field}={shown(value)} {exc}; the receive time is used"
    except ValidationError as exc:
        return received_at, f"{field}={shown(value)}: {exc.reason}; the receive time is used"
    return ts, None
