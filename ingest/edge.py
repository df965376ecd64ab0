"""What the ingester trusts of a parsed message: nothing it cannot check.

After a message is parsed, the edge refuses it into a dead letter, with the reason, when:

- its device is suspended or decommissioned, or is not in the registry at all (``unknown
  device``; unless ``FOREWARN_AUTO_REGISTER`` is on, as it is for the demo): the writer
  decides that one, just before its batch is written, after looking at the registry again
  if any device of the batch is unknown (a device registered a moment ago is not refused);
- a reading or a status is stamped further ahead of the time the ingester received it than
  the allowed clock skew (minutes), or older than telemetry is kept;
- its device sends faster than its token bucket allows (a per-device rate limit).

The registry's device states are held in memory (``DeviceDirectory``, a few tens of bytes a
device) and refreshed from the database every second, so a device registered, suspended or
decommissioned is known within a second. Times are the ingester's clock: the wall clock, or
the demo's scaled business clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from forewarn.domain import DeadLetter, Parsed, Reading, StatusEvent
from forewarn.settings import Settings
from registry import repository as registry
from registry.repository import Conn
from registry.types import DeviceState

# Why a message was refused, as the refused-messages metric labels it.
Refusal = Callable[[str], None]


@dataclass(slots=True)
class DeviceDirectory:
    """The registry's device states, as of the last refresh."""

    states: dict[str, DeviceState] = field(default_factory=dict)
    _seen_until: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, conn: Conn) -> int:
        """Fold in the devices changed since the last refresh; returns how many."""
        with self._lock:
            rows = registry.device_states(conn, changed_after=self._seen_until)
            for device_id, state, updated_at in rows:
                self.states[device_id] = DeviceState(state)
                if self._seen_until is None or updated_at > self._seen_until:
                    self._seen_until = updated_at
        return len(rows)

    def state(self, device_id: str) -> DeviceState | None:
        """A device's state (None: not registered)."""
        return self.states.get(device_id)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # epoch seconds of the last refill


class Edge:
    """Admits or refuses parsed messages; safe to call from several threads."""

    def __init__(
        self, settings: Settings, directory: DeviceDirectory, *, on_refused: Refusal
    ) -> None:
        self._directory = directory
        self._auto_register = settings.auto_register
        self._skew = settings.max_clock_skew_seconds
        self._max_age = settings.telemetry_retention_days * 86_400.0
        self._rate = settings.device_rate_per_minute / 60.0
        self._burst = float(settings.device_rate_burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._on_refused = on_refused

    def admit(
        self, parsed: Parsed | DeadLetter, topic: str, payload: bytes, received_at: datetime
    ) -> Parsed | DeadLetter:
        """The message as it may be stored: itself, or a dead letter saying why not."""
        if not isinstance(parsed, Reading | StatusEvent):
            return parsed
        why = self._refusal(parsed, received_at)
        if why is None:
            return parsed
        label, reason = why
        self._on_refused(label)
        return DeadLetter(topic, payload, reason, received_at)

    def _refusal(
        self, parsed: Reading | StatusEvent, received_at: datetime
    ) -> tuple[str, str] | None:
        device_id = parsed.device_id
        state = self._directory.state(device_id)
        if state is not None and not state.listened:
            return f"device_{state.value}", f"device {device_id!r} is {state.value}"
        what = "reading" if isinstance(parsed, Reading) else "status"
        ahead = parsed.ts.timestamp() - received_at.timestamp()
        if ahead > self._skew:
            return "clock_skew", (
                f"{what} stamped {parsed.ts.isoformat()} is {ahead:.0f} s ahead of its arrival "
                f"(at most {self._skew:.0f} s of clock skew is allowed)"
            )
        if -ahead > self._max_age:
            return "too_old", (
                f"{what} stamped {parsed.ts.isoformat()} is older than telemetry is kept "
                f"({self._max_age / 86_400:.0f} days)"
            )
        if not self._take(device_id, received_at.timestamp()):
            return "rate_limited", (
                f"device {device_id!r} sent more than {self._rate * 60:g} messages a minute "
                f"(burst {self._burst:g})"
            )
        return None

    def unknown(self, parsed: Parsed | DeadLetter) -> bool:
        """Whether this message's device must be refused as not registered."""
        return (
            not self._auto_register
            and isinstance(parsed, Reading | StatusEvent)
            and self._directory.state(parsed.device_id) is None
        )

    def refuse_unknown(
        self, parsed: Reading | StatusEvent, topic: str, payload: bytes, received_at: datetime
    ) -> DeadLetter:
        """The dead letter of a message from a device not in the registry."""
        self._on_refused("unknown_device")
        reason = f"unknown device {parsed.device_id!r} (not in the registry)"
        return DeadLetter(topic, payload, reason, received_at)

    def _take(self, device_id: str, now: float) -> bool:
        """One token from the device's bucket, if it has one."""
        with self._lock:
            bucket = self._buckets.get(device_id)
            if bucket is None:
                bucket = self._buckets[device_id] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = max(bucket.at, now)
            if bucket.tokens < 1.0:
                return False
            bucket.tokens -= 1.0
            return True
