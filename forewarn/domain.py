"""Domain types shared by every package: immutable, slotted, typed."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

# The models' hint fault: no FaultKind, an unusual reading; rules may match it like one.
ANOMALY = "anomaly"
# Many devices falling silent together (a gateway, a network): the scorer's prediction for
# each of them, which the rules make one fleet incident, never a device incident each.
OUTAGE = "outage"


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
    # Signals left out because their value was implausible (out of range, not a number...):
    # signal name -> why, naming the field and its value. The rest of the reading is kept.
    dropped: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A device going online or offline (retained status topic or MQTT last will)."""

    device_id: str
    ts: datetime
    status: DeviceStatus
    source: str = "forewarn/v1"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message we could not read or would not take, kept with the reason: byte for byte,
    or (an oversized one) its first bytes with the whole one's size and SHA-256."""

    topic: str
    payload: bytes
    reason: str
    received_at: datetime
    size: int | None = None  # set when `payload` is only the first bytes
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message we read and deliberately keep nothing of (bridge chatter, empty retained)."""

    topic: str
    why: str


Parsed = Reading | StatusEvent | Ignored


@dataclass(frozen=True, slots=True)
class Prediction:
    """A device that is likely to fail: what, how likely, how soon, and why. The scorer
    writes it, the rules decide on it, the demo and the API show it."""

    device_id: str
    fault: str  # a FaultKind value, ANOMALY or OUTAGE
    at: datetime  # the reading time the prediction describes
    probability: float
    horizon_h: float
    reasons: tuple[str, ...] = ()
    model_version: int | None = None
    hours_to_empty: float | None = None


class Segment(enum.StrEnum):
    """Owner segments from PRODUCT.md: by time since activation, or by account."""

    NOVICE = "novice"
    REGULAR = "regular"
    SENIOR = "senior"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class Owner:
    """An owner: who to tell, in which language, and when not to."""

    owner_id: str
    name: str
    contact: str | None = None
    locale: str = "en-US"
    time_zone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None
    enterprise_account: str | None = None  # set: an enterprise customer
    targets: tuple[str, ...] = ()  # Apprise URLs


@dataclass(frozen=True, slots=True)
class Device:
    """A device and its owner."""

    device_id: str
    model: str | None
    kind: str | None
    firmware: str | None
    activated_at: datetime | None
    owner: Owner | None
    last_seen: datetime | None = None
