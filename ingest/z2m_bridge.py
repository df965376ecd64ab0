"""What a Zigbee2MQTT bridge says about its network, from its retained bridge topics.

``{base}/bridge/devices`` lists every device with its definition (model, and the *exposes*
that give each property its unit), ``{base}/bridge/groups`` lists the groups, and
``{base}/bridge/info`` carries the bridge's configuration (``advanced.output``). All three are
retained, and can be far over 64 KiB on a real network. The ingester reads them on a watcher
connection of its own (``ingest.watcher``): its main connections share one subscription, which
is not a reliable way to receive retained messages.

Knowledge is an immutable snapshot swapped in whole, so the parser threads read it without a
lock while the watcher's thread replaces it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal

log = logging.getLogger(__name__)

VoltageUnit = Literal["mV", "V"]
OutputMode = Literal["json", "attribute", "attribute_and_json"]
WATCHED = ("bridge/devices", "bridge/groups", "bridge/info")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device as ``bridge/devices`` describes it."""

    model: str | None = None
    firmware: str | None = None
    voltage_unit: VoltageUnit | None = None  # the unit of its `voltage` expose, if it has one
    power_source: str | None = None  # "Battery", "Mains (single phase)", "DC Source"...


@dataclass(frozen=True, slots=True)
class Known:
    """Everything learnt from one bridge so far (empty until its topics are read)."""

    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    output: OutputMode | None = None
    devices_known: bool = False
    groups_known: bool = False


def _voltage_unit(exposes: Any) -> VoltageUnit | None:
    """The unit of the `voltage` property among a definition's exposes (features included)."""
    stack = list(exposes) if isinstance(exposes, list) else []
    while stack:
        item = stack.pop(0)
        if not isinstance(item, dict):
            continue
        if item.get("property") == "voltage" or item.get("name") == "voltage":
            unit = item.get("unit")
            if unit in ("mV", "V"):
                return unit  # type: ignore[no-any-return]
        features = item.get("features")
        if isinstance(features, list):
            stack.extend(features)
    return None


def _text(value: Any) -> str | None:
    return (value.strip()[:64] or None) if isinstance(value, str) else None


def devices_from(body: Any) -> dict[str, DeviceInfo]:
    """Device name -> what its entry in ``bridge/devices`` says (the coordinator left out)."""
    if not isinstance(body, list):
        raise ValueError(f"bridge/devices is a list, not {type(body).__name__}")
    out: dict[str, DeviceInfo] = {}
    for entry in body:
        if not isinstance(entry, dict) or entry.get("type") == "Coordinator":
            continue
        name = entry.get("friendly_name")
        if not isinstance(name, str) or not name:
            continue
        definition = entry.get("definition") if isinstance(entry.get("definition"), dict) else {}
        assert isinstance(definition, dict)
        out[name] = DeviceInfo(
            model=_text(definition.get("model")) or _text(entry.get("model_id")),
            firmware=_text(entry.get("software_build_id")),
            voltage_unit=_voltage_unit(definition.get("exposes")),
            power_source=_text(entry.get("power_source")),
        )
    return out


def groups_from(body: Any) -> frozenset[str]:
    """The friendly names in ``bridge/groups``."""
    if not isinstance(body, list):
        raise ValueError(f"bridge/groups is a list, not {type(body).__name__}")
    return frozenset(
        g["friendly_name"]
        for g in body
        if isinstance(g, dict) and isinstance(g.get("friendly_name"), str)
    )


def output_from(body: Any) -> OutputMode | None:
    """``config.advanced.output`` of ``bridge/info`` (json, attribute or attribute_and_json)."""
    if not isinstance(body, dict):
        raise ValueError(f"bridge/info is an object, not {type(body).__name__}")
    config = body.get("config")
    advanced = config.get("advanced") if isinstance(config, dict) else None
    output = advanced.get("output") if isinstance(advanced, dict) else None
    if output in ("json", "attribute", "attribute_and_json"):
        return output  # type: ignore[no-any-return]
    # Not set: Zigbee2MQTT's default is json.
    return "json" if isinstance(advanced, dict) else None


class Bridge:
    """The knowledge of one bridge, updated from its watched topics."""

    def __init__(self, known: Known | None = None) -> None:
        self._known = known or Known()

    @property
    def known(self) -> Known:
        """The current snapshot."""
        return self._known

    def observe(self, rest: str, payload: bytes) -> None:
        """Read ``bridge/devices``, ``bridge/groups`` or ``bridge/info``; keep what was known
        if the message cannot be read (an empty retained message clears nothing)."""
        if rest not in WATCHED or not payload.strip():
            return
        try:
            body = json.loads(payload)
            if rest == "bridge/devices":
                self._known = replace(self._known, devices=devices_from(body), devices_known=True)
            elif rest == "bridge/groups":
                self._known = replace(self._known, groups=groups_from(body), groups_known=True)
            else:
                self._known = replace(self._known, output=output_from(body))
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("could not read Zigbee2MQTT %s (%s); keeping what was known", rest, exc)
