"""Domain types shared by every package: immutable, slotted, typed."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class FaultKind(enum.StrEnum):
    """The faults Forewarn predicts; also the values of ``fault_labels.fault``."""

    CONNECTIVITY_LOSS = "connectivity_loss"
    BATTERY_FAILURE = "battery_failure"
    OVERHEATING = "overheating"
    STUCK_SENSOR = "stuck_sensor"
    REBOOT_LOOP = "reboot_loop"


class DeviceStatus(enum.StrEnum):
    """What a device's status topic says."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Reading:
    """One telemetry sample from one device, in canonical units."""

    device_id: str
    ts: datetime
    model: str | None = None
    firmware: str | None = None
    signal_dbm: float | None = None
    link_quality: float | None = None
    battery_pct: float | None = None
    battery_v: float | None = None
    temperature_c: float | None = None
    uptime_s: int | None = None
    reconnects: int | None = None
    error_codes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    source: str = "forewarn/v1"


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A device going online or offline (retained status topic or MQTT last will)."""

    device_id: str
    ts: datetime
    status: DeviceStatus
    source: str = "forewarn/v1"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message we could not read, kept byte for byte with the reason."""

    topic: str
    payload: bytes
    reason: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message we read and deliberately keep nothing of (bridge chatter, empty retained)."""

    topic: str
    why: str


Parsed = Reading | StatusEvent | Ignored
