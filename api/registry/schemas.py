"""The registry API's bodies: owners and devices in and out, and dead letters."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from registry.types import AccountType, DeviceState

# A new owner or device is checked by the registry's own models (registry/validate.py): the
# API takes exactly what an import file takes.
from registry.validate import DeviceIn as DeviceCreate
from registry.validate import OwnerIn as OwnerCreate


class OwnerOut(BaseModel):
    """An owner as registered."""

    owner_id: str
    name: str
    contact: str | None
    targets: list[str] = Field(description="Apprise URLs notifications go to")
    locale: str
    time_zone: str
    quiet_start: str | None = Field(description="HH:MM, in the owner's time zone")
    quiet_end: str | None = Field(description="HH:MM, in the owner's time zone")
    account_type: AccountType
    customer_since: date | None
    enterprise_account: str | None
    enterprise_team: str | None = Field(description="The enterprise account's dedicated team")
    contact_person: str | None
    department: str | None
    devices: int | None = Field(default=None, description="Devices registered to the owner")

    @field_validator("quiet_start", "quiet_end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        return value.strftime("%H:%M") if isinstance(value, time) else value


class OwnerPage(BaseModel):
    """One page of owners."""

    total: int
    limit: int
    offset: int
    items: list[OwnerOut]


class OwnerUpdate(BaseModel):
    """Fields to change on an owner; the whole record is checked again."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    contact: str | None = None
    targets: list[str] | None = None
    locale: str | None = None
    time_zone: str | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None
    account_type: AccountType | None = None
    customer_since: date | None = None
    enterprise_account: str | None = None
    enterprise_team: str | None = None
    contact_person: str | None = None
    department: str | None = None


class DeviceRegistration(BaseModel):
    """A device's registration."""

    device_id: str
    model: str | None
    kind: str | None
    serial: str | None
    firmware: str | None
    owner_id: str | None
    installed_at: datetime | None
    state: DeviceState


class DeviceUpdate(BaseModel):
    """Registration fields to change (the state moves with suspend, resume, decommission)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    kind: str | None = None
    serial: str | None = None
    firmware: str | None = None
    owner_id: str | None = None
    installed_at: AwareDatetime | None = None


class DeadLetterItem(BaseModel):
    """A message the ingester could not read or would not take."""

    id: int
    topic: str
    reason: str
    received_at: datetime
    payload_bytes: int | None = Field(description="The whole payload's size")
    payload_sha256: str | None
    preview: str = Field(description="The first 256 bytes kept, as text (undecodable bytes as \\x)")


class DeadLetterPage(BaseModel):
    """Dead letters, newest first, and how many there are by reason."""

    total: int
    by_reason: dict[str, int] = Field(
        description="Counts by the reason's kind: its text up to the first quote or colon"
    )
    limit: int
    offset: int
    items: list[DeadLetterItem]


__all__ = [
    "DeadLetterItem",
    "DeadLetterPage",
    "DeviceCreate",
    "DeviceRegistration",
    "DeviceUpdate",
    "OwnerCreate",
    "OwnerOut",
    "OwnerPage",
    "OwnerUpdate",
]
