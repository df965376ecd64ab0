"""Zigbee2MQTT adapter: device state messages and the availability topic.

Zigbee2MQTT publishes ``{base}/{friendly_name}`` with the device's state as a
JSON object and ``{base}/{friendly_name}/availability`` with ``{"state":
"online"}`` (or the legacy plain ``online``/``offline``). Friendly names may
contain ``/``, so the topic is read from both ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from forewarn.domain import DeviceStatus, Ignored, Parsed, Reading, StatusEvent
from forewarn.errors import TopicError, ValidationError
from ingest.payloads import _decode_object, _epoch_ms, _errors

# Suffixes Zigbee2MQTT uses for commands and bridge chatter, not device state.
_COMMAND_SUFFIXES = ("/set", "/get")
_COMMAND_INFIXES = ("/set/", "/get/")


class Z2MState(BaseModel):
    """The fields of a Zigbee2MQTT state message that Forewarn maps; the rest goes to ``extra``."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    linkquality: float | None = Field(default=None, ge=0, le=255)
    battery: float | None = Field(default=None, ge=0, le=100)
    voltage: float | None = Field(default=None, ge=0, le=60000)
    temperature: float | None = Field(default=None, ge=-273.15, le=1000)
    last_seen: pydantic.AwareDatetime | None = None

    _ms = field_validator("last_seen", mode="before")(_epoch_ms)


class Z2MAvailability(BaseModel):
    """``{"state": "online"}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    state: DeviceStatus


@dataclass(frozen=True, slots=True)
class Zigbee2MqttAdapter:
    """``{base}/{friendly_name}`` and ``{base}/{friendly_name}/availability``."""

    base: str
    name: str = "zigbee2mqtt"

    def subscriptions(self) -> Sequence[str]:
        """Everything under the bridge's base topic."""
        return (f"{self.base}/#",)

    def accepts(self, topic: str) -> bool:
        """Topics under the base topic."""
        return topic.startswith(self.base + "/")

    def parse(self, topic: str, payload: bytes, *, received_at: datetime) -> Parsed:
        """Parse a state or availability message; ignore bridge and command topics."""
        rest = topic[len(self.base) + 1 :]
        if rest.startswith("bridge/") or rest == "bridge":
            return Ignored(topic, "Zigbee2MQTT bridge topic")
        if rest.endswith(_COMMAND_SUFFIXES) or any(i in rest for i in _COMMAND_INFIXES):
            return Ignored(topic, "Zigbee2MQTT command topic")
        if not payload.strip():
            return Ignored(topic, "empty retained message")
        if rest.endswith("/availability"):
            return self._availability(rest.removesuffix("/availability"), payload, received_at)
        return self._state(rest, payload, received_at)

    @staticmethod
    def _device_id(friendly_name: str) -> str:
        if not friendly_name or len(friendly_name) > 120 or not friendly_name.isprintable():
            raise TopicError(f"invalid Zigbee2MQTT friendly name {friendly_name!r}")
        return f"z2m:{friendly_name}"

    def _availability(self, name: str, payload: bytes, received_at: datetime) -> StatusEvent:
        device_id = self._device_id(name)
        text = payload.strip()
        if text in (b"online", b"offline"):
            return StatusEvent(device_id, received_at, DeviceStatus(text.decode()), self.name)
        try:
            body = Z2MAvailability.model_validate(_decode_object(payload))
        except pydantic.ValidationError as exc:
            raise ValidationError(_errors(exc)) from exc
        return StatusEvent(device_id, received_at, body.state, self.name)

    def _state(self, name: str, payload: bytes, received_at: datetime) -> Reading:
        device_id = self._device_id(name)
        try:
            body = Z2MState.model_validate(_decode_object(payload))
        except pydantic.ValidationError as exc:
            raise ValidationError(_errors(exc)) from exc
        ts = (body.last_seen or received_at).astimezone(UTC)
        extra: dict[str, Any] = dict(body.model_extra or {})
        return Reading(
            device_id=device_id,
            ts=ts,
            model=_model_of(extra),
            link_quality=body.linkquality,
            battery_pct=body.battery,
            battery_v=body.voltage / 1000 if body.voltage is not None else None,
            temperature_c=body.temperature,
            extra=extra,
            source=self.name,
        )


def _model_of(extra: dict[str, Any]) -> str | None:
    """Zigbee2MQTT includes ``device.model`` when ``include_device_information`` is on."""
    device = extra.get("device")
    if isinstance(device, dict):
        model = device.get("model") or device.get("modelID")
        if isinstance(model, str):
            return model[:64]
    return None
