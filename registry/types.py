"""What the registry holds: owners, devices and their states, and what an import did."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time


class DeviceState(enum.StrEnum):
    """Where a device is in its life; only provisioned and active devices are listened to."""

    PROVISIONED = "provisioned"  # registered, has not reported yet
    ACTIVE = "active"
    SUSPENDED = "suspended"  # refused for now (unpaid, stolen, under investigation)
    DECOMMISSIONED = "decommissioned"  # gone for good

    @property
    def listened(self) -> bool:
        """Whether the ingester stores this device's messages."""
        return self in (DeviceState.PROVISIONED, DeviceState.ACTIVE)


class AccountType(enum.StrEnum):
    """A consumer, or an enterprise account (a bulk buyer with a dedicated team)."""

    CONSUMER = "consumer"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """An owner as registered."""

    owner_id: str
    name: str
    contact: str | None = None  # phone or e-mail an agent may use
    targets: tuple[str, ...] = ()  # Apprise URLs notifications go to
    locale: str = "en-US"
    time_zone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None
    account_type: AccountType = AccountType.CONSUMER
    customer_since: date | None = None
    enterprise_account: str | None = None
    enterprise_team: str | None = None
    contact_person: str | None = None
    department: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device as registered (what the ingester learns of it is not here)."""

    device_id: str
    model: str | None = None
    kind: str | None = None
    serial: str | None = None
    firmware: str | None = None
    owner_id: str | None = None
    installed_at: datetime | None = None
    state: DeviceState = DeviceState.ACTIVE


OWNER_FIELDS = tuple(OwnerRecord.__dataclass_fields__)
DEVICE_FIELDS = tuple(DeviceRecord.__dataclass_fields__)


class Outcome(enum.StrEnum):
    """What an upsert did to a row."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A record an import could not take: where, which field, why."""

    line: int
    field: str | None
    problem: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import did (or, in a dry run, would do)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: tuple[Refusal, ...] = field(default_factory=tuple)
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """An active credential as the broker's files need it."""

    username: str
    salt: str
    password_hash: str  # hex
    iterations: int
    bridge_base: str | None
