"""A Zigbee2MQTT device state message, read the way its users read it.

Field by field, following Zigbee2MQTT's exposes (zigbee-herdsman-converters
``src/lib/exposes.ts``) for units:

- ``linkquality`` (LQI 0-255) -> link_quality; ``battery`` (% 0-100, old bridges send the
  string "37.00") -> battery_pct.
- ``voltage`` is the battery in **mV** on battery devices (``e.battery_voltage()``) and the
  mains in **V** on metering devices (``e.voltage()``). See ``voltage_unit`` for the rule.
  Battery millivolts become battery_v in volts; mains volts stay in ``extra`` as sent.
- ``battery_low: true`` -> the error code ``E_LOW_BATTERY`` (what the battery model counts).
- temperature_c is the device's temperature sensor: ``temperature``, else ``local_temperature``
  (thermostats), else ``device_temperature`` (the chip's own). The others stay in ``extra``.
  Plausible range: the ZCL int16/100 range, -273.15 to 327.67 °C, so the 0x8000 "invalid"
  sentinel (-327.68) and unsigned mis-decodes (655.35, 6553.5) are dropped.
- ``last_seen`` (ISO 8601 or epoch ms, per ``advanced.last_seen``) is the reading's time.

A value that is implausible is dropped alone (``Reading.dropped``); the rest is kept.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from forewarn.domain import Reading
from ingest.signals import Implausible, ReadingBuilder, shown, to_number
from ingest.timestamps import TimeWindow, reading_time
from ingest.z2m_bridge import DeviceInfo, VoltageUnit

SOURCE = "zigbee2mqtt"
LOW_BATTERY = "E_LOW_BATTERY"  # models.buckets.POWER_CODES counts it
TEMPERATURES = ("temperature", "local_temperature", "device_temperature")
# Properties that only metering (mains) devices expose, in W, A, kWh, Hz.
MAINS_FIELDS = frozenset(
    {"power", "current", "energy", "consumption", "power_factor", "ac_frequency", "produced_energy"}
)
BATTERY_FIELDS = ("battery", "battery_low")
# Attributes of `advanced.output: attribute` that carry a signal.
SIGNAL_ATTRIBUTES = frozenset({"linkquality", "battery", "voltage", "battery_low", *TEMPERATURES})
# The ZCL measured-temperature attribute is an int16 in hundredths of a degree.
ZCL_TEMPERATURE = (-273.15, 327.67)
# Below this a battery `voltage` cannot be millivolts of a live cell (1 V); mains volts are
# 100-250, so a bare `voltage` under 1000 with nothing else to go on is read as volts.
MILLIVOLT_FLOOR = 1000.0

# validateFriendlyName in Zigbee2MQTT's lib/util/utils.ts refuses exactly these.
_CONTROL = frozenset(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0xFDD0, 0xFDF0), 0xFFFE, 0xFFFF]
)
_ENDS_WITH_DIGITS = re.compile(r"/\d*$")


def name_problem(name: str) -> str | None:
    """Why Zigbee2MQTT would refuse this friendly name, or None if it accepts it."""
    if not name:
        return "is empty"
    if name.startswith("/") or name.endswith("/"):
        return "starts or ends with /"
    if any(ord(c) in _CONTROL for c in name):
        return "contains a control character"
    if "+" in name or "#" in name:
        return "contains an MQTT wildcard (+ or #)"
    if _ENDS_WITH_DIGITS.search(name):
        return "ends with /<digits>"
    return None


def voltage_unit(value: Any, body: dict[str, Any], info: DeviceInfo | None) -> VoltageUnit:
    """Whether this device's ``voltage`` is battery mV or mains V.

    1. the device's definition in ``bridge/devices`` (the unit of its voltage expose);
    2. its power source there (Battery: mV; Mains or DC: V);
    3. the message: metering fields (power, current, energy...) mean mains V; battery fields
       (battery, battery_low) mean mV;
    4. the value: 1000 or more is mV, less is V.
    """
    if info is not None:
        if info.voltage_unit is not None:
            return info.voltage_unit
        if info.power_source == "Battery":
            return "mV"
        if info.power_source and info.power_source.startswith(("Mains", "DC")):
            return "V"
    if any(body.get(k) is not None for k in MAINS_FIELDS):
        return "V"
    if any(body.get(k) is not None for k in BATTERY_FIELDS):
        return "mV"
    try:
        return "mV" if to_number(value) >= MILLIVOLT_FLOOR else "V"
    except Implausible:
        return "mV"  # not a number either way: dropped as battery_v with the reason


def state_reading(
    name: str,
    body: dict[str, Any],
    *,
    received_at: datetime,
    window: TimeWindow,
    info: DeviceInfo | None,
) -> Reading:
    """The reading for one state message of device `name`."""
    b = ReadingBuilder(f"z2m:{name}", SOURCE)
    extra = dict(body)
    if "linkquality" in extra:
        b.put("link_quality", extra.pop("linkquality"), field="linkquality")
    if "battery" in extra:
        b.put("battery_pct", extra.pop("battery"), field="battery")
    volts = body.get("voltage")
    if volts is not None and voltage_unit(volts, body, info) == "mV":
        extra.pop("voltage")
        try:
            b.put("battery_v", to_number(volts) / 1000, field="voltage", raw=volts)
        except Implausible as exc:
            b.drop("battery_v", f"voltage={shown(volts)} {exc}")
    if isinstance(body.get("battery_low"), bool) and extra.pop("battery_low"):
        b.code(LOW_BATTERY)
    for key in TEMPERATURES:
        if body.get(key) is not None:
            low, high = ZCL_TEMPERATURE
            b.put("temperature_c", extra.pop(key), field=key, low=low, high=high)
            break
    ts, late = reading_time(
        extra.pop("last_seen", None),
        "auto",
        field="last_seen",
        received_at=received_at,
        window=window,
    )
    if late:
        b.dropped["ts"] = late
    device = body.get("device") if isinstance(body.get("device"), dict) else {}
    assert isinstance(device, dict)
    # An empty string (Zigbee2MQTT's "not reported") is absence, not an implausible value.
    model = (info.model if info else None) or device.get("model") or None
    b.put("model", model, field="device.model")
    firmware = (info.firmware if info else None) or device.get("softwareBuildID") or None
    b.put("firmware", firmware, field="software_build_id")
    return b.build(ts, extra)
