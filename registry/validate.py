"""Checking owner and device records wherever they come from (the API, an import file, the
simulator): every problem names its field.

Pydantic does the parsing at this edge; what leaves is a frozen ``OwnerRecord`` or
``DeviceRecord``, or a ``RecordError`` whose ``field`` says what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import apprise
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forewarn.apprise_plugins import load_plugins
from forewarn.errors import RecordError
from registry.types import AccountType, DeviceRecord, DeviceState, OwnerRecord

# Owner and device ids: printable, no MQTT wildcards, no control characters.
_ID = re.compile(r"[^\x00-\x1f\x7f+#]{1,128}")
# A device that connects to the broker itself is named by its id in topics and as its
# username: one topic level, nothing a pattern ACL could widen.
BROKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Broker usernames of Forewarn's own services start with this; no device may take it.
RESERVED_PREFIX = "forewarn-"
_LOCALE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
# A time of day on the owner's clock (no zone: the owner's time zone says which).
_CLOCK = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"


def _text(limit: int) -> Any:
    return Field(default=None, max_length=limit)


class OwnerIn(BaseModel):
    """An owner record as given (API body, import line)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    owner_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    contact: str | None = _text(200)
    targets: tuple[str, ...] = Field(default=(), max_length=10)
    locale: str = "en-US"
    time_zone: str = "UTC"
    quiet_start: str | None = Field(
        default=None, pattern=_CLOCK, description="HH:MM, in the owner's time zone"
    )
    quiet_end: str | None = Field(
        default=None, pattern=_CLOCK, description="HH:MM, in the owner's time zone"
    )
    account_type: AccountType = AccountType.CONSUMER
    customer_since: date | None = None
    enterprise_account: str | None = _text(128)
    enterprise_team: str | None = _text(128)
    contact_person: str | None = _text(200)
    department: str | None = _text(200)

    @field_validator("owner_id")
    @classmethod
    def _owner_id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError("must be printable, without '+', '#' or control characters")
        return value

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        load_plugins()
        for url in value:
            if apprise.Apprise.instantiate(url) is None:
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise ValueError(f"not an Apprise URL Apprise can use (scheme {scheme!r})")
        return value

    @field_validator("quiet_start", "quiet_end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> object:
        return value.strftime("%H:%M") if isinstance(value, time) else value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if not _LOCALE.fullmatch(value):
            raise ValueError(f"{value!r} must look like en-US or zh-CN")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name: Asia/Shanghai)") from exc
        return value

    @field_validator("customer_since")
    @classmethod
    def _since(cls, value: date | None) -> date | None:
        if value is not None and value > datetime.now(UTC).date():
            raise ValueError("is in the future")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OwnerIn:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end go together: give both or neither")
        enterprise = self.account_type is AccountType.ENTERPRISE
        if enterprise and not self.enterprise_account:
            raise ValueError("an enterprise owner needs enterprise_account")
        if not enterprise and (self.enterprise_account or self.enterprise_team):
            raise ValueError("enterprise_account and enterprise_team need account_type enterprise")
        return self

    def record(self) -> OwnerRecord:
        """The frozen record."""
        values = self.model_dump()
        for key in ("quiet_start", "quiet_end"):
            if values[key] is not None:
                values[key] = time.fromisoformat(values[key])
        return OwnerRecord(**values)


class DeviceIn(BaseModel):
    """A device record as given (API body, import line)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    device_id: str = Field(min_length=1, max_length=128)
    model: str | None = _text(64)
    kind: str | None = None
    serial: str | None = _text(128)
    firmware: str | None = _text(64)
    owner_id: str | None = _text(128)
    installed_at: pydantic.AwareDatetime | None = None
    state: DeviceState = DeviceState.ACTIVE

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if not _ID.fullmatch(value) or value.startswith("/") or value.endswith("/"):
            raise ValueError(
                "must be printable, without '+', '#', control characters or a leading or "
                "trailing '/'"
            )
        if value.startswith(RESERVED_PREFIX):
            raise ValueError(f"ids starting with {RESERVED_PREFIX!r} are Forewarn's own")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and not _KIND.fullmatch(value):
            raise ValueError("must be a lowercase word such as lock or air_conditioner")
        return value

    @field_validator("installed_at")
    @classmethod
    def _installed(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > datetime.now(UTC):
            raise ValueError("is in the future")
        return value

    def record(self) -> DeviceRecord:
        """The frozen record."""
        return DeviceRecord(**self.model_dump())


def owner(values: Mapping[str, Any]) -> OwnerRecord:
    """A checked owner record; RecordError naming the first field that is wrong."""
    return _checked(OwnerIn, values).record()  # type: ignore[attr-defined, no-any-return]


def device(values: Mapping[str, Any]) -> DeviceRecord:
    """A checked device record; RecordError naming the first field that is wrong."""
    return _checked(DeviceIn, values).record()  # type: ignore[attr-defined, no-any-return]


def _checked(model: type[BaseModel], values: Mapping[str, Any]) -> BaseModel:
    try:
        return model.model_validate(dict(values))
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or None
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "is not a field of this record"
        raise RecordError(message, field=where) from exc
