"""Payload adapters: topic + bytes in, a Reading, StatusEvent or Ignored out.

Validation lives here, at the edge, with pydantic; what leaves is a frozen
domain type. Every failure raises a PayloadError whose ``reason`` is written to
the dead-letter table, so it names the field and the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from forewarn.domain import DeviceStatus, Ignored, Parsed, Reading, StatusEvent
from forewarn.errors import TopicError, ValidationError
from ingest.signals import INT32_MAX, INT64_MAX, SIGNALS, shown
from ingest.timestamps import TimeWindow

__all__ = ["DEVICE_ID", "ForewarnV1Adapter", "PayloadAdapter", "TimeWindow", "decode_object"]

DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class PayloadAdapter(Protocol):
    """Reads one family of topics."""

    @property
    def name(self) -> str:
        """Short name used in dead-letter reasons."""
        ...

    def subscriptions(self) -> Sequence[str]:
        """MQTT topic filters this adapter needs."""
        ...

    def accepts(self, topic: str) -> bool:
        """Whether ``topic`` belongs to this adapter."""
        ...

    def ignores(self, topic: str) -> str | None:
        """Why messages on ``topic`` are ignored whatever they hold (checked before any size
        limit, so a large retained bridge message is never a dead letter), or None."""
        ...

    def parse(self, topic: str, payload: bytes, *, received_at: datetime) -> Parsed:
        """Turn one message into a domain value, or raise PayloadError."""
        ...

    def watches(self) -> Sequence[str]:
        """Retained topics to read outside the shared subscription (bridge device lists)."""
        ...

    def observe(self, topic: str, payload: bytes) -> None:
        """Learn from one watched message; never raises for bad input."""
        ...


def _epoch_ms(value: Any) -> Any:
    """Numbers are epoch milliseconds; strings are left for pydantic's RFC 3339 parser."""
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    return value


def _errors(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        # Keep the reasons of the plain-JSON path when pydantic parsed the bytes itself.
        if err["type"] == "json_invalid":
            return f"invalid JSON: {err['ctx'].get('error', err['msg'])}"
        if err["type"] == "model_type" and not err["loc"]:
            return f"expected a JSON object, got {type(err['input']).__name__}"
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class TelemetryBody(BaseModel):
    """The Forewarn v1 telemetry body (docs/telemetry.md)."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    ts: pydantic.AwareDatetime
    device_id: str | None = None
    model: str | None = Field(default=None, max_length=64)
    firmware: str | None = Field(default=None, max_length=64)
    signal_dbm: float | None = Field(default=None, ge=-150, le=20)
    link_quality: float | None = Field(default=None, ge=0, le=255)
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    battery_v: float | None = Field(default=None, ge=0, le=60)
    temperature_c: float | None = Field(default=None, ge=-273.15, le=1000)
    # The columns' bounds (bigint, integer): larger was refused by the database (abuse suite).
    uptime_s: int | None = Field(default=None, ge=0, le=INT64_MAX)
    reconnects: int | None = Field(default=None, ge=0, le=INT32_MAX)
    error_codes: list[str] = Field(default_factory=list, max_length=32)

    _ms = field_validator("ts", mode="before")(_epoch_ms)


class StatusBody(BaseModel):
    """The JSON form of a status message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: DeviceStatus
    ts: pydantic.AwareDatetime | None = None

    _ms = field_validator("ts", mode="before")(_epoch_ms)


def decode_object(payload: bytes) -> dict[str, Any]:
    """A JSON object from the payload, or ValidationError saying what it is instead."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"invalid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationError(f"expected a JSON object, got {type(body).__name__}")
    return body


def _without_implausible(
    payload: bytes, exc: pydantic.ValidationError, dropped: dict[str, str]
) -> TelemetryBody:
    """The body without the signals that failed validation, each noted in `dropped`.

    Only signal values are dropped one by one; a message whose ``ts`` or ``device_id`` is
    wrong, or that is not a JSON object, is still refused as a whole.
    """
    errors = exc.errors(include_url=False)
    if not all(err["loc"] and err["loc"][0] in SIGNALS for err in errors):
        raise ValidationError(_errors(exc)) from exc
    body = decode_object(payload)
    for err in errors:
        name = str(err["loc"][0])
        if name not in dropped:
            dropped[name] = f"{name}={shown(body.get(name))}: {err['msg']}"
        body.pop(name, None)
    try:
        return TelemetryBody.model_validate(body)
    except pydantic.ValidationError as again:  # cannot happen: the failing fields are gone
        raise ValidationError(_errors(again)) from again


@dataclass(frozen=True, slots=True)
class ForewarnV1Adapter:
    """``{prefix}/devices/{id}/telemetry`` and ``.../status``."""

    prefix: str
    name: str = "forewarn/v1"

    def subscriptions(self) -> Sequence[str]:
        """Telemetry and status of every device."""
        return (f"{self.prefix}/devices/+/telemetry", f"{self.prefix}/devices/+/status")

    def accepts(self, topic: str) -> bool:
        """Topics under this adapter's prefix."""
        return topic.startswith(self.prefix + "/")

    def ignores(self, topic: str) -> str | None:
        """Nothing under the prefix is ignored by topic alone."""
        return None

    def watches(self) -> Sequence[str]:
        """No retained topics to watch."""
        return ()

    def observe(self, topic: str, payload: bytes) -> None:
        """Nothing to learn."""

    def parse(self, topic: str, payload: bytes, *, received_at: datetime) -> Parsed:
        """Parse a telemetry or status message."""
        rest = topic[len(self.prefix) + 1 :].split("/")
        if len(rest) != 3 or rest[0] != "devices" or rest[2] not in ("telemetry", "status"):
            raise TopicError(
                f"unknown topic under {self.prefix}: expected devices/{{id}}/telemetry"
            )
        device_id, kind = rest[1], rest[2]
        if not DEVICE_ID.fullmatch(device_id):
            raise TopicError(f"invalid device id {device_id!r} in topic")
        if kind == "status":
            return self._status(device_id, payload, received_at)
        return self._telemetry(device_id, payload, received_at)

    def _telemetry(self, device_id: str, payload: bytes, received_at: datetime) -> Reading:
        dropped: dict[str, str] = {}
        try:
            # pydantic parses the bytes in its Rust core: a third of json.loads + validate.
            body = TelemetryBody.model_validate_json(payload)
        except pydantic.ValidationError as exc:
            body = _without_implausible(payload, exc, dropped)
        if body.device_id is not None and body.device_id != device_id:
            raise ValidationError(
                f"device_id {body.device_id!r} in body does not match topic device {device_id!r}"
            )
        return Reading(
            device_id=device_id,
            ts=body.ts.astimezone(UTC),
            model=body.model,
            firmware=body.firmware,
            signal_dbm=body.signal_dbm,
            link_quality=body.link_quality,
            battery_pct=body.battery_pct,
            battery_v=body.battery_v,
            temperature_c=body.temperature_c,
            uptime_s=body.uptime_s,
            reconnects=body.reconnects,
            error_codes=tuple(body.error_codes),
            extra=dict(body.model_extra or {}),
            source=self.name,
            dropped=dropped,
        )

    def _status(self, device_id: str, payload: bytes, received_at: datetime) -> Parsed:
        text = payload.strip()
        if not text:
            return Ignored(f"{self.prefix}/devices/{device_id}/status", "retained status cleared")
        if text in (b"online", b"offline"):
            return StatusEvent(device_id, received_at, DeviceStatus(text.decode()), self.name)
        try:
            body = StatusBody.model_validate(decode_object(payload))
        except pydantic.ValidationError as exc:
            raise ValidationError(_errors(exc)) from exc
        return StatusEvent(
            device_id, (body.ts or received_at).astimezone(UTC), body.status, self.name
        )
