"""Pure, seeded stepping of a fleet: what every device publishes, and when, in simulated time.

What each fault looks like in the data, between onset (u = 0) and failure (u = 1):

- connectivity_loss: signal_dbm sinks by 18-30 dB along u**1.4 with growing noise, reconnects
  and skipped readings become more frequent; at failure the retained status turns offline and
  the device falls silent.
- battery_failure: battery_pct falls from its onset level to 0 along an accelerating curve,
  battery_v sags below the model's nominal curve, E_BROWNOUT / E_LOW_BATTERY appear; offline
  at failure, then silence. Watches stop recovering on the charger.
- overheating: temperature_c climbs from normal to about critical + 2 °C along u**1.8, with
  E_OVERTEMP once critical is crossed; the device keeps reporting.
- stuck_sensor: temperature_c is one constant from onset (the last value, or 85.0 as a
  sensor reset value); failure_at is minutes later, when the flat line is unmistakable.
- reboot_loop: crashes come hours apart at onset and minutes apart at failure; each resets
  uptime_s and reconnects, adds a crash code, and the next reading re-announces model and
  firmware. Cohort devices first report the previous build, then update at onset.

Healthy devices have ordinary bad days drawn per local day: a weak-signal hour, a hot
afternoon, a single reconnect.
"""

from __future__ import annotations

import enum
import heapq
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.catalog import FaultKind, Kind, model_named
from simulators.fleet import Device, FaultEpisode, Fleet
from simulators.owners import GuideHabits, GuideRead, fix_after_guide

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_HOUR_MS = 3_600_000
# Devices announce themselves a moment after connecting, as real firmware does.
_ANNOUNCE_DELAY_MS = 250
_CRASH_CODES = ("E_WATCHDOG_RESET", "E_KERNEL_PANIC", "E_HARDFAULT")


def to_ms(at: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return (at - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return _EPOCH + timedelta(milliseconds=ms)


def format_ts(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-23T08:15:00.123Z``."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class MessageKind(enum.StrEnum):
    """Which topic family a message goes to."""

    TELEMETRY = "telemetry"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message a device publishes; the topic is relative to the configured prefix."""

    topic_suffix: str
    payload: bytes
    retain: bool
    sim_ts: datetime
    device_id: str
    kind: MessageKind


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What the engine emitted for one device, to compare with the ground truth."""

    device_id: str
    readings: int
    status_messages: int
    first_ts: datetime | None
    last_reading_ts: datetime | None
    went_offline: bool
    offline_at: datetime | None


class _Phase(enum.Enum):
    CONNECT = enum.auto()
    READING = enum.auto()
    OFFLINE = enum.auto()
    DONE = enum.auto()


@dataclass(frozen=True, slots=True)
class _Day:
    """A healthy device's ordinary bad luck on one local day (never a fault)."""

    weak: tuple[float, float, float] | None  # start hour, end hour, depth dB
    hot_c: float  # extra afternoon heat
    reconnect_h: float | None


def _activity(hour: float) -> float:
    """0 at night, rising to 1 in the afternoon: owners use devices in the daytime."""
    return max(0.0, math.sin(math.pi * (hour - 7.0) / 15.0)) if 7.0 <= hour <= 22.0 else 0.0


class _DeviceSim:
    """Mutable per-device state; everything random comes from the device's own generator."""

    def __init__(self, device: Device, episode: FaultEpisode | None, seed: int, start_ms: int):
        self.device, self.episode, self.seed = device, episode, seed
        self.model = model_named(device.model)
        self.rng = random.Random(f"forewarn-device:{seed}:{device.device_id}")
        self.tz = ZoneInfo(device.time_zone)
        self.topic = f"devices/{device.device_id}/"
        self.next_ms = start_ms + self.rng.randint(0, int(self.model.interval_s * 1000))
        self.phase = _Phase.CONNECT
        self.boot_ms = start_ms - device.uptime_s * 1000
        self.reconnects, self.battery, self.last_ms = 0, device.battery_pct, start_ms
        self.firmware = device.previous_firmware or device.firmware
        self.announce = True
        self.errors: list[str] = []
        self.day_key, self.day = -1, _Day(None, 0.0, None)
        self.readings = self.statuses = 0
        self.first_ms: int | None = None
        self.last_reading_ms: int | None = None
        self.offline_ms: int | None = None
        self.onset_ms = to_ms(episode.onset_at) if episode else None
        self.failure_ms = to_ms(episode.failure_at) if episode else None
        self.fault = fault = episode.fault if episode else None
        self.terminal = fault in (FaultKind.CONNECTIVITY_LOSS, FaultKind.BATTERY_FAILURE)
        # Fault severities are drawn up front so they do not depend on when they are first used.
        self.depth_db = self.rng.uniform(18.0, 30.0)
        self.stuck_odd = self.rng.random() < 0.25
        self.stuck_value: float | None = None
        self.battery_at_onset: float | None = None
        self.next_crash_ms = self.onset_ms if fault is FaultKind.REBOOT_LOOP else None
        self.last_temp = device.ambient_c
        self.fixed_ms: int | None = None  # the owner fixed the fault then (simulators.owners)
        self.fix_applied = False
        self.cut_off: list[tuple[int, int]] = []  # network outages: readings lost meanwhile

    def fault_progress(self, ms: int, kind: FaultKind) -> float:
        """0 at onset of `kind`, rising to 1 at failure; -1 before onset, after the owner fixed
        it, or for another fault."""
        if self.fault is not kind or self.onset_ms is None or self.failure_ms is None:
            return -1.0
        if ms < self.onset_ms or (self.fixed_ms is not None and ms >= self.fixed_ms):
            return -1.0
        return min((ms - self.onset_ms) / max(self.failure_ms - self.onset_ms, 1), 1.0)

    def fix(self, ms: int) -> bool:
        """The owner fixes the fault at `ms`; False if there is none, it was fixed already, or
        the device failed for good first (offline: a fix would need it back)."""
        done = self.fault is None or self.fixed_ms is not None or self.phase is _Phase.DONE
        if done or (self.terminal and self.failure_ms is not None and ms >= self.failure_ms):
            return False
        self.fixed_ms, self.terminal = ms, False
        return True

    def _apply_fix(self, ms: int) -> None:
        """What the fix changed, once, at the first reading after it."""
        if self.fixed_ms is None or self.fix_applied or ms < self.fixed_ms:
            return
        self.fix_applied = True
        if self.fault is FaultKind.BATTERY_FAILURE:
            self.battery, self.battery_at_onset = 100.0, None  # new batteries, or a full charge
        elif self.fault is FaultKind.STUCK_SENSOR:
            self.stuck_value = None
        elif self.fault is FaultKind.REBOOT_LOOP:
            # Rolled back (or reset): one clean restart, then no more crashes.
            self.firmware = self.device.previous_firmware or self.firmware
            self.boot_ms, self.next_crash_ms = self.fixed_ms + 60_000, None
            self.reconnects, self.announce = 0, True

    def fire(self, ms: int) -> Outgoing | None:
        """Emit whatever is due at `ms` (maybe nothing) and schedule the next event."""
        if self.phase is _Phase.CONNECT:
            self.first_ms = ms
            self._schedule(ms + _ANNOUNCE_DELAY_MS, ms)
            return self._status("online", ms)
        if self.phase is _Phase.OFFLINE:
            self.phase, self.offline_ms = _Phase.DONE, ms
            return self._status("offline", ms)
        interval = self.model.interval_s * 1000 * self.rng.uniform(0.98, 1.02)
        body = self._reading(ms)
        self._schedule(ms + max(1, round(interval)), ms)
        if body is None or any(a <= ms < b for a, b in self.cut_off):
            return None  # not sent, or lost in a network outage
        self.readings += 1
        self.last_reading_ms = ms
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return Outgoing(
            self.topic + "telemetry",
            payload,
            False,
            from_ms(ms),
            self.device.device_id,
            MessageKind.TELEMETRY,
        )

    def _schedule(self, next_ms: int, now_ms: int) -> None:
        self.phase = _Phase.READING
        if self.terminal and self.failure_ms is not None and next_ms >= self.failure_ms:
            # The broker publishes the device's last will once the link is gone for good.
            self.phase, next_ms = _Phase.OFFLINE, max(self.failure_ms, now_ms + 1)
        self.next_ms = next_ms

    def _status(self, status: str, ms: int) -> Outgoing:
        self.statuses += 1
        payload = json.dumps({"status": status, "ts": format_ts(ms)}, separators=(",", ":"))
        return Outgoing(
            self.topic + "status",
            payload.encode(),
            True,
            from_ms(ms),
            self.device.device_id,
            MessageKind.STATUS,
        )

    def _day_for(self, local: datetime) -> _Day:
        key = local.toordinal()
        if key != self.day_key:
            rng = random.Random(f"forewarn-day:{self.seed}:{self.device.device_id}:{key}")
            start = rng.uniform(0.0, 22.5)
            weak = (start, start + rng.uniform(0.6, 1.5), rng.uniform(5.0, 11.0))
            self.day_key = key
            self.day = _Day(
                weak=weak if rng.random() < 0.25 else None,
                hot_c=rng.uniform(3.0, 7.0) if rng.random() < 0.2 else 0.0,
                reconnect_h=rng.uniform(0.0, 24.0) if rng.random() < 0.15 else None,
            )
        return self.day

    def _reading(self, ms: int) -> dict[str, Any] | None:
        dev, model, rng = self.device, self.model, self.rng
        local = from_ms(ms).astimezone(self.tz)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        day, act = self._day_for(local), _activity(hour - dev.phase_h)
        self._apply_fix(ms)
        onset, unfixed = self.onset_ms, self.fixed_ms is None
        if self.firmware != dev.firmware and onset is not None and ms >= onset and unfixed:
            # The over-the-air update lands at onset: a clean reboot into the new build.
            self.firmware, self.boot_ms = dev.firmware, onset + rng.randint(40, 90) * 1000
            self.reconnects, self.announce = 0, True
            self.next_crash_ms = self.boot_ms + self._crash_gap(0.0)
        self._crash_until(ms)
        if ms < self.boot_ms:
            return None  # still booting: this reading is never sent
        # Signal: the device's own level, busier air in the daytime, and any weak spot.
        signal = dev.signal_dbm - 2.0 * act + rng.gauss(0.0, dev.noise)
        if day.weak is not None and day.weak[0] <= hour <= day.weak[1]:
            signal -= day.weak[2]
        if day.reconnect_h is not None and hour >= day.reconnect_h:
            self.reconnects += 1
            self.day = _Day(day.weak, day.hot_c, None)
        u = self.fault_progress(ms, FaultKind.CONNECTIVITY_LOSS)
        if u >= 0:
            signal -= self.depth_db * u**1.4 + abs(rng.gauss(0.0, 1.0 + 3.0 * u))
            if rng.random() < 0.03 + 0.5 * u * u:
                self.reconnects += 1 + (rng.random() < u)
                self.errors.append("E_LINK_RETRY")
            if rng.random() < 0.45 * u * u:
                return None  # the link was down when this reading was due
        signal = min(max(signal, -120.0), -30.0)
        body: dict[str, Any] = {"ts": format_ts(ms), "device_id": dev.device_id}
        if self.announce:
            body.update(model=dev.model, firmware=self.firmware)
            self.announce = False
        body["signal_dbm"] = round(signal, 1)
        if model.zigbee:
            body["link_quality"] = min(255, max(0, round(255 * (signal + 100.0) / 60.0)))
        if model.battery_powered:
            self._battery(ms, act, hour, body)
        body["temperature_c"] = self._temperature(ms, hour, act, day)
        body["uptime_s"] = (ms - self.boot_ms) // 1000
        body["reconnects"] = self.reconnects
        body["error_codes"], self.errors = list(dict.fromkeys(self.errors))[:32], []
        body.update(self._extra(act))
        self.last_ms = ms
        return body

    def _crash_gap(self, u: float) -> int:
        """Time between crashes: hours at onset, shrinking to minutes at failure."""
        gap_s = math.exp(math.log(9000) + (math.log(240) - math.log(9000)) * u)
        return round(gap_s * self.rng.uniform(0.7, 1.3) * 1000)

    def _crash_until(self, ms: int) -> None:
        while self.next_crash_ms is not None and self.next_crash_ms <= ms:
            crash = self.next_crash_ms
            u = self.fault_progress(crash, FaultKind.REBOOT_LOOP)
            self.boot_ms = crash + self.rng.randint(30, 90) * 1000
            self.reconnects, self.announce = 0, True
            self.errors.append(self.rng.choice(_CRASH_CODES))
            if u >= 1.0:
                self.errors.append("E_BOOT_LOOP")
            self.next_crash_ms = self.boot_ms + self._crash_gap(max(u, 0.0))

    def _battery(self, ms: int, act: float, hour: float, body: dict[str, Any]) -> None:
        model, rng = self.model, self.rng
        days = (ms - self.last_ms) / 86_400_000
        self.battery -= (
            model.battery_drain_pct_per_day / self.device.capacity_factor * days * (0.6 + 0.8 * act)
        )
        u = self.fault_progress(ms, FaultKind.BATTERY_FAILURE)
        if u >= 0:
            # A dying cell: drain accelerates to empty at failure and charging no longer holds.
            if self.battery_at_onset is None:
                self.battery_at_onset = max(self.battery, 20.0)
            self.battery = self.battery_at_onset * (1.0 - u**1.6) + rng.gauss(0.0, 0.4) * (1 - u)
        elif model.daily_charge and 22.0 <= (hour - self.device.phase_h) % 24 < 23.5:
            self.battery += 70.0 * (ms - self.last_ms) / _HOUR_MS
        self.battery = min(max(self.battery, 0.0), 100.0)
        volts = model.voltage_at(self.battery) + rng.gauss(0.0, 0.008)
        if u > 0:
            volts -= 0.12 * (model.voltage_full - model.voltage_empty) * u**1.2
            if u > 0.8 and rng.random() < 0.3:
                self.errors.append("E_BROWNOUT")
        if self.battery < 10.0:
            self.errors.append("E_LOW_BATTERY")
        body["battery_pct"] = round(self.battery, 1)
        body["battery_v"] = round(max(volts, 0.0), 3)

    def _temperature(self, ms: int, hour: float, act: float, day: _Day) -> float:
        dev, model, rng = self.device, self.model, self.rng
        shifted = hour - dev.phase_h
        ambient = dev.ambient_c + dev.ambient_swing_c * math.cos(2 * math.pi * (shifted - 15) / 24)
        if day.hot_c and 12.0 <= hour <= 19.0:
            ambient += day.hot_c * math.sin(math.pi * (hour - 12.0) / 7.0)
        temp = ambient + model.temp_offset_c + model.temp_load_c * act + rng.gauss(0.0, 0.3)
        u = self.fault_progress(ms, FaultKind.OVERHEATING)
        if u >= 0:
            excess = model.temp_critical_c + 2.0 - temp
            temp += excess * u**1.8 + rng.gauss(0.0, 0.4 + 1.2 * u)
            if temp >= model.temp_critical_c:
                self.errors.append("E_OVERTEMP")
        if self.fault_progress(ms, FaultKind.STUCK_SENSOR) >= 0:
            if self.stuck_value is None:
                # Most stuck sensors freeze at their last value; some at the 85 °C reset value.
                self.stuck_value = 85.0 if self.stuck_odd else round(self.last_temp, 1)
            return self.stuck_value
        self.last_temp = temp
        step = model.temp_step_c
        return round(round(temp / step) * step, 2)

    def _extra(self, act: float) -> dict[str, Any]:
        kind = self.model.kind
        if kind is Kind.LOCK:
            return {"door": "unlocked" if self.rng.random() < 0.05 * act else "locked"}
        if kind is Kind.AIR_CONDITIONER:
            return {"mode": "cool" if act > 0.35 else "idle"}
        if kind is Kind.WATCH:
            return {"worn": act > 0.05}
        if kind is Kind.CAMERA:
            return {"recording": True}
        return {}

    def record(self) -> DeviceRecord:
        """What this device has emitted so far."""
        return DeviceRecord(
            self.device.device_id,
            self.readings,
            self.statuses,
            _opt(self.first_ms),
            _opt(self.last_reading_ms),
            self.offline_ms is not None,
            _opt(self.offline_ms),
        )


def _opt(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


class FleetEngine:
    """Steps a fleet through simulated time; same fleet, same messages, byte for byte."""

    def __init__(self, fleet: Fleet, *, device_ids: frozenset[str] | None = None) -> None:
        start_ms = to_ms(fleet.start)
        self._sims = [
            _DeviceSim(d, fleet.episode_for(d.device_id), fleet.seed, start_ms)
            for d in fleet.devices
            if device_ids is None or d.device_id in device_ids
        ]
        # Ties at one millisecond are broken by fleet order, which keeps the sequence stable.
        for outage in fleet.outages:
            window = (to_ms(outage.start_at), to_ms(outage.end_at))
            for sim in self._sims:
                if sim.device.device_id in outage.device_ids:
                    sim.cut_off.append(window)
        self._heap = [(sim.next_ms, i) for i, sim in enumerate(self._sims)]
        heapq.heapify(self._heap)
        self._clock_ms = start_ms
        self._by_id = {sim.device.device_id: sim for sim in self._sims}

    @property
    def now(self) -> datetime:
        """The simulated time the engine has advanced to."""
        return from_ms(self._clock_ms)

    def next_event_at(self) -> datetime | None:
        """When the next message is due, or None once every device has gone silent."""
        return from_ms(self._heap[0][0]) if self._heap else None

    def step_until(self, sim_time: datetime) -> list[Outgoing]:
        """Every message due up to and including `sim_time`, in time order."""
        limit = to_ms(sim_time)
        out: list[Outgoing] = []
        heap = self._heap
        while heap and heap[0][0] <= limit:
            ms, i = heapq.heappop(heap)
            sim = self._sims[i]
            message = sim.fire(ms)
            if message is not None:
                out.append(message)
            if sim.phase is not _Phase.DONE:
                heapq.heappush(heap, (sim.next_ms, i))
        self._clock_ms = max(self._clock_ms, limit)
        return out

    def owner_read_guide(self, read: GuideRead, habits: GuideHabits) -> datetime | None:
        """A fault guide reached the device's owner: when they fix the fault (as `habits` say
        owners do), or None. Devices of other fleets are not this engine's."""
        sim = self._by_id.get(read.device_id)
        if sim is None or sim.fault is None or sim.fault.value != read.fault:
            return None
        at = fix_after_guide(
            habits,
            seed=sim.seed,
            device_id=read.device_id,
            fault=read.fault,
            delivered_at=read.delivered_at,
        )
        return at if at is not None and sim.fix(to_ms(at)) else None

    def records(self) -> dict[str, DeviceRecord]:
        """Per-device record of what has been emitted so far."""
        return {sim.device.device_id: sim.record() for sim in self._sims}
