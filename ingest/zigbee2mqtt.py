"""Zigbee2MQTT adapter: every topic a bridge publishes under its base, read as its users read it.

Zigbee2MQTT publishes ``{base}/{friendly_name}`` with the device's state as a JSON object,
``{base}/{friendly_name}/availability`` (``{"state": "online"}`` or the legacy plain
``online``), per-attribute topics ``{base}/{friendly_name}/{attribute}`` with a bare value when
``advanced.output`` is ``attribute`` or ``attribute_and_json``, ``{base}/{friendly_name}/action``
(a plain-text event for Home Assistant triggers), group states at the same level as devices,
and its own ``{base}/bridge/...`` topics, some retained and far over 64 KiB.

This is code, not a mapping file: which device a topic names, and what unit its ``voltage`` is
in, depend on what the bridge said earlier (``bridge/devices``, ``bridge/groups``,
``bridge/info``), and friendly names may contain ``/``, so a topic cannot be split by a fixed
pattern. Field by field conversion is in ``ingest.z2m_state``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from forewarn.domain import DeviceStatus, Ignored, Parsed, StatusEvent
from forewarn.errors import TopicError, ValidationError
from ingest.payloads import _errors, decode_object
from ingest.timestamps import TimeWindow
from ingest.z2m_bridge import WATCHED, Bridge
from ingest.z2m_state import SIGNAL_ATTRIBUTES, SOURCE, name_problem, state_reading

# What Zigbee2MQTT's own publish extension reads as commands (lib/extension/publish.ts).
_COMMAND_SUFFIXES = ("/set", "/get")
_COMMAND_INFIXES = ("/set/", "/get/")
# Home Assistant device-trigger topics: plain-text copies of the state message's `action`.
_EVENT_TOPICS = ("action", "click")


class Z2MAvailability(BaseModel):
    """``{"state": "online"}``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    state: DeviceStatus


class Zigbee2MqttAdapter:
    """``{base}/#``: device states, availability, attributes, actions, groups and the bridge."""

    __slots__ = ("base", "bridge", "window")
    name = SOURCE

    def __init__(self, base: str, window: TimeWindow, bridge: Bridge | None = None) -> None:
        self.base = base
        self.window = window
        self.bridge = bridge or Bridge()

    def subscriptions(self) -> Sequence[str]:
        """Everything under the bridge's base topic."""
        return (f"{self.base}/#",)

    def accepts(self, topic: str) -> bool:
        """Topics under the base topic."""
        return topic.startswith(self.base + "/")

    def watches(self) -> Sequence[str]:
        """The retained bridge topics that say which names are devices, groups and units."""
        return tuple(f"{self.base}/{rest}" for rest in WATCHED)

    def observe(self, topic: str, payload: bytes) -> None:
        """Learn devices, groups and the output mode from a watched bridge topic."""
        if self.accepts(topic):
            self.bridge.observe(topic[len(self.base) + 1 :], payload)

    def ignores(self, topic: str) -> str | None:
        """Bridge topics (whatever their size) and command topics."""
        rest = topic[len(self.base) + 1 :]
        if rest == "bridge" or rest.startswith("bridge/"):
            if rest in WATCHED:
                return f"Zigbee2MQTT {rest} (read by the ingester's bridge watcher)"
            return f"Zigbee2MQTT bridge topic {rest}"
        if rest.endswith(_COMMAND_SUFFIXES) or any(i in rest for i in _COMMAND_INFIXES):
            return "Zigbee2MQTT command topic"
        return None

    def parse(self, topic: str, payload: bytes, *, received_at: datetime) -> Parsed:
        """A reading, a status event, or Ignored with the reason; PayloadError if unreadable."""
        why = self.ignores(topic)
        if why:
            return Ignored(topic, why)
        rest = topic[len(self.base) + 1 :]
        if not payload.strip():
            return Ignored(topic, "empty message: a cleared retained topic or an unset attribute")
        known = self.bridge.known
        if rest.endswith("/availability"):
            name = rest.removesuffix("/availability")
            if name in known.groups:
                return Ignored(topic, f"availability of Zigbee2MQTT group {name!r}, not a device")
            return self._availability(self._device_id(name), payload, received_at)
        if payload.lstrip().startswith(b"{"):  # a state message (attribute values never are)
            if rest in known.groups:
                return Ignored(topic, f"state of Zigbee2MQTT group {rest!r}, not a device")
            body = decode_object(payload)
            self._device_id(rest)
            return state_reading(
                rest,
                body,
                received_at=received_at,
                window=self.window,
                info=known.devices.get(rest),
            )
        return self._attribute(topic, rest, payload, received_at)

    def _device_id(self, name: str) -> str:
        problem = name_problem(name)
        if problem:
            raise TopicError(f"invalid Zigbee2MQTT friendly name {name!r}: {problem}")
        return f"z2m:{name}"

    def _availability(self, device_id: str, payload: bytes, received_at: datetime) -> StatusEvent:
        text = payload.strip()
        if text in (b"online", b"offline"):
            return StatusEvent(device_id, received_at, DeviceStatus(text.decode()), self.name)
        try:
            body = Z2MAvailability.model_validate(decode_object(payload))
        except pydantic.ValidationError as exc:
            raise ValidationError(_errors(exc)) from exc
        return StatusEvent(device_id, received_at, body.state, self.name)

    def _attribute(self, topic: str, rest: str, payload: bytes, received_at: datetime) -> Parsed:
        """``{name}/{attribute}`` with a bare value: an event, a copy, or a signal to fold."""
        known = self.bridge.known
        if "/" not in rest or rest in known.devices:
            raise ValidationError(
                f"a Zigbee2MQTT state message is a JSON object, not {_kind(payload)}"
            )
        name, attribute = rest.rsplit("/", 1)
        self._device_id(name)
        if attribute in _EVENT_TOPICS:
            return Ignored(topic, f"{attribute} event of {name!r}; its state message carries it")
        if name in known.groups:
            return Ignored(topic, f"attribute of Zigbee2MQTT group {name!r}, not a device")
        if known.output != "attribute":
            mode = known.output or "attribute_and_json"
            return Ignored(
                topic,
                f"attribute {attribute!r} of {name!r} (advanced.output: {mode}); "
                "its JSON state message carries the same value",
            )
        if attribute not in SIGNAL_ATTRIBUTES:
            return Ignored(topic, f"attribute {attribute!r} of {name!r} is not a health signal")
        return state_reading(
            name,
            {attribute: _bare(payload)},
            received_at=received_at,
            window=self.window,
            info=known.devices.get(name),
        )


def _bare(payload: bytes) -> Any:
    """An attribute's value: a JSON scalar when it reads as one (99, false), else the text."""
    text = payload.decode("utf-8", errors="replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def _kind(payload: bytes) -> str:
    try:
        return type(json.loads(payload)).__name__
    except (ValueError, UnicodeDecodeError):
        return "plain text"
