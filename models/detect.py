"""The label-free detectors driven for a fleet: one ``Watch`` per device, alerts from its
readings, silence from a sweep, and many devices falling silent together as one incident.

Used by the streaming scorer (``models.scorer``), the backtest and the evaluation; the
detectors themselves live in ``models.detectors``. Every device's detectors judge a reading
first and learn it after, so nothing said about a reading depends on it or on later ones.
"""

from __future__ import annotations

import logging
import math
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from forewarn.domain import FaultKind
from models.detectors.base import Observation, Verdict
from models.detectors.battery import BatteryDrain
from models.detectors.chemistry import Chemistry, chemistry
from models.detectors.connectivity import LinkLoss
from models.detectors.overheat import Overheating
from models.detectors.reboot import RebootLoop
from models.detectors.silence import Silence
from models.detectors.stuck import StuckSensor, plausible

log = logging.getLogger(__name__)

# A detector's own bar is score 0.5; a calibrated threshold replaces it per fault.
DEFAULT_THRESHOLD = 0.5
FAULTS: tuple[str, ...] = tuple(k.value for k in FaultKind)
# Silence has a threshold of its own, whatever fault a silence is told as (a link lost, a
# battery died, a reboot loop): it is judged by the sweep, on evidence of another kind.
SILENCE = "silence"
THRESHOLD_KEYS: tuple[str, ...] = (*FAULTS, SILENCE)
# Devices falling silent within this many seconds of each other may be one outage ...
FLEET_WINDOW_S = 1800.0
# ... when they are at least this many, and this share of the devices heard from lately.
FLEET_MIN_DEVICES, FLEET_MIN_SHARE = 5, 0.02
# A device is "heard from lately" when it reported within this many seconds (and only such a
# device is swept: one silent for longer was either called already or never will be).
ACTIVE_S = 86400.0
Flags = npt.NDArray[np.bool_]
# A device falling silent with its battery at or below this had its battery die.
_DYING_PCT = 15.0
# A device falling silent after this many recent restarts (fading over 6 hours) is looping.
_LOOPING = 1.5


@dataclass(frozen=True, slots=True)
class Profile:
    """What a device's model tells its detectors: its battery pack and temperature limit."""

    chem: Chemistry | None = None
    limit_c: float | None = None


def profiles(chemistries: Mapping[str, str], limits: Mapping[str, float]) -> dict[str, Profile]:
    """Per model name, from the simulator's catalogue and then the settings (which win)."""
    from simulators.catalog import MODELS

    out = {
        m.name: Profile(chemistry(m.chemistry) if m.chemistry else None, m.temp_critical_c)
        for m in MODELS
    }
    for name in set(chemistries) | set(limits):
        base = out.get(name, Profile())
        chem = chemistry(chemistries[name]) if name in chemistries else base.chem
        out[name] = Profile(chem, limits.get(name, base.limit_c))
    return out


@dataclass(frozen=True, slots=True)
class Alert:
    """A detector's score at or above its fault's threshold."""

    device_id: str
    fault: str
    ts: float
    score: float
    reason: str
    hours_left: float | None = None


# Each device's row in a fleet's array: its detectors' spans in this order, then the wall time
# its newest reading came (for ``Live``).
_PARTS = (BatteryDrain, Overheating, StuckSensor, RebootLoop, LinkLoss, Silence)
_STARTS = tuple(sum(p.SIZE for p in _PARTS[:i]) for i in range(len(_PARTS)))
_HEARD = sum(p.SIZE for p in _PARTS)
_SILENCE_LAST = _STARTS[5] + Silence.FIELDS.index(vars(Silence)["last_ts"])
WIDTH = _HEARD + 1


def layout() -> str:
    """The parts of a detector row, their sizes and fields, in order (a checkpoint's rows of
    another layout are not loaded)."""
    return ";".join(f"{p.__name__}:{p.SIZE}:{','.join(f.name for f in p.FIELDS)}" for p in _PARTS)


@dataclass(slots=True)
class Watch:
    """All the detectors of one device: views of its row of a fleet's array."""

    battery: BatteryDrain
    overheat: Overheating
    stuck: StuckSensor
    reboot: RebootLoop
    link: LinkLoss
    silence: Silence

    @classmethod
    def of(cls, profile: Profile) -> Watch:
        """The detectors for a device of a model with `profile`, in an array of their own."""
        return cls.at(row(profile), 0)

    @classmethod
    def at(cls, data: array[float], at: int) -> Watch:
        """The detectors whose row of `data` begins at `at`."""
        b, o, s, r, k, q = (at + i for i in _STARTS)
        return cls(
            BatteryDrain.at(data, b),
            Overheating.at(data, o),
            StuckSensor.of_temperature(data, s),
            RebootLoop.at(data, r),
            LinkLoss.at(data, k),
            Silence.at(data, q),
        )

    def score_one(self, x: Observation) -> dict[str, Verdict]:
        """Each fault's verdict on `x`; nothing learns. A temperature the quantity cannot
        physically be is the stuck sensor's alone: no other detector judges it."""
        seen = plausible(x)
        return {
            FaultKind.BATTERY_FAILURE.value: self.battery.score_one(seen),
            FaultKind.OVERHEATING.value: self.overheat.score_one(seen),
            FaultKind.STUCK_SENSOR.value: self.stuck.score_one(x),
            FaultKind.REBOOT_LOOP.value: self.reboot.score_one(seen),
            FaultKind.CONNECTIVITY_LOSS.value: self.link.score_one(seen),
        }

    def learn_one(self, x: Observation) -> None:
        """Every detector learns `x` (the others without a temperature it cannot be: a sensor
        reading -200 °C must not teach the overheating detector that -143 °C is usual)."""
        self.stuck.learn_one(x)
        seen = plausible(x)
        for d in (self.battery, self.overheat, self.reboot, self.link, self.silence):
            d.learn_one(seen)


def row(profile: Profile) -> array[float]:
    """A fresh device's row: every detector at its start, with the model's pack and limit."""
    data = array("d")
    for part in _PARTS:
        data.extend(part.defaults())
    data.append(-math.inf)  # heard: never
    w = Watch.at(data, 0)
    w.battery.chem = profile.chem
    w.overheat.limit_c = profile.limit_c
    return data


class Fleet:
    """The watches of many devices, with thresholds per fault; pure and seeded by nothing."""

    def __init__(
        self,
        models: Mapping[str, str] | None = None,
        profiles_by_model: Mapping[str, Profile] | None = None,
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        self.models = dict(models or {})
        self.profiles = dict(profiles_by_model or {})
        self.thresholds = dict.fromkeys(THRESHOLD_KEYS, DEFAULT_THRESHOLD) | dict(thresholds or {})
        # Every device's detectors in one array, a row of WIDTH numbers a device: no Python
        # object per device but its id and its row's offset.
        self.data = array("d")
        self.rows: dict[str, int] = {}  # device id -> offset of its row in `data`
        self._free: list[int] = []  # rows of forgotten devices, reused first
        self._silent: set[str] = set()  # devices whose silence was already seen
        self._pending: list[Alert] = []  # silences waiting to see whether others join them
        self._outage: FleetSilence | None = None

    def watch(self, device_id: str) -> Watch:
        """The device's watch (a view of its row), its row made on first sight."""
        at = self.rows.get(device_id)
        if at is None:
            at = self._place(
                device_id, row(self.profiles.get(self.models.get(device_id, ""), Profile()))
            )
        return Watch.at(self.data, at)

    def _place(self, device_id: str, data: array[float]) -> int:
        """Give the device `data` as its row (a forgotten device's row first, else a new one
        at the end); the row's offset."""
        at = self.rows.get(device_id)
        if at is None and not self._free:
            at = len(self.data)
            self.data.extend(data)
        else:
            at = self._free.pop() if at is None else at
            self.data[at : at + WIDTH] = data
        # Interned: the window state's index and the model map key the same ids.
        self.rows[sys.intern(device_id)] = at
        return at

    def forget(self, device_id: str) -> None:
        """Drop the device's detectors; its row is reused by the next new device."""
        at = self.rows.pop(device_id, None)
        if at is not None:
            self._free.append(at)
        self._silent.discard(device_id)

    def export(self, device_ids: Sequence[str]) -> tuple[npt.NDArray[np.float64], Flags]:
        """The rows of these devices (each must have one), and which were found silent."""
        view = np.frombuffer(self.data, dtype=np.float64).reshape(-1, WIDTH)
        rows = view[[self.rows[d] // WIDTH for d in device_ids]]  # a copy
        del view  # the array cannot grow while a view of it exists
        return rows, np.array([d in self._silent for d in device_ids], dtype=bool)

    def restore(
        self, device_ids: Sequence[str], rows: npt.NDArray[np.float64], silent: Flags
    ) -> None:
        """Give these devices the rows `export` returned (made first where they have none)."""
        for k, device_id in enumerate(device_ids):
            self._place(device_id, array("d", rows[k].tobytes()))
            if silent[k]:
                self._silent.add(device_id)
            else:
                self._silent.discard(device_id)

    def last_reading(self, device_id: str) -> float:
        """Epoch seconds of the device's newest reading learnt (NaN: none yet)."""
        at = self.rows.get(device_id)
        return math.nan if at is None else self.data[at + _SILENCE_LAST]

    def heard(self, device_id: str) -> float:
        """Wall time set by ``hear`` for the device (-inf: never)."""
        at = self.rows.get(device_id)
        return -math.inf if at is None else self.data[at + _HEARD]

    def hear(self, device_id: str, wall: float) -> None:
        """Note when the device's newest reading came, by the wall's clock."""
        self.data[self.rows[device_id] + _HEARD] = wall

    def observe(self, device_id: str, x: Observation, *, score: bool = True) -> list[Alert]:
        """Judge then learn one reading; the alerts it raises (none when not `score`)."""
        w = self.watch(device_id)
        alerts: list[Alert] = []
        if score:
            for fault, v in w.score_one(x).items():
                if v.score >= self.thresholds[fault] and v.reason:
                    alerts.append(Alert(device_id, fault, x.ts, v.score, v.reason, v.hours_left))
        w.learn_one(x)
        self.observe_learned(device_id)
        return alerts

    def late(self, device_id: str, x: Observation) -> None:
        """A reading older than the device's newest: not learnt, but it may end a stuck run."""
        at = self.rows.get(device_id)
        if at is not None:
            Watch.at(self.data, at).stuck.late_value(x.ts, x.temp)

    def observe_learned(self, device_id: str) -> None:
        """The device spoke again: a later silence of it is news."""
        self._silent.discard(device_id)

    def silent(self, device_id: str) -> bool:
        """Whether a sweep found the device silent and it has not spoken since."""
        return device_id in self._silent

    def sweep(
        self, now: float, quiet: Callable[[str], bool] | None = None
    ) -> tuple[list[Alert], list[FleetSilence]]:
        """Silences at `now`: device alerts, released once ``FLEET_WINDOW_S`` has shown they
        are not part of an outage, and fleet incidents (each device in one only once)."""
        fault = FaultKind.CONNECTIVITY_LOSS.value
        fresh: list[Alert] = []
        active = 0
        data = self.data
        for device_id, at in self.rows.items():
            last = data[at + _SILENCE_LAST]
            if math.isnan(last) or now - last > ACTIVE_S:
                continue
            active += 1
            if device_id in self._silent or (quiet is not None and not quiet(device_id)):
                continue
            v = Silence.at(data, at + _STARTS[5]).score_at(now)
            if v.score >= self.thresholds[SILENCE] and v.reason:
                w = Watch.at(data, at)
                if w.reboot.recent >= _LOOPING:
                    why = f"{v.reason}, while restarting again and again"
                    fresh.append(Alert(device_id, FaultKind.REBOOT_LOOP.value, now, v.score, why))
                elif w.battery.low <= _DYING_PCT:
                    # Quiet after a battery ran low: the battery died, the link did not fail.
                    why = f"{v.reason}, its battery was last at {w.battery.low:.0f} %"
                    fresh.append(
                        Alert(device_id, FaultKind.BATTERY_FAILURE.value, now, v.score, why)
                    )
                else:
                    fresh.append(Alert(device_id, fault, now, v.score, v.reason))
        self._silent.update(a.device_id for a in fresh)
        incidents: list[FleetSilence] = []
        if self._outage is not None and now - self._outage.ts <= FLEET_WINDOW_S and fresh:
            # Late joiners of an outage already reported: one incident, grown.
            devices = tuple(sorted({*self._outage.devices, *(a.device_id for a in fresh)}))
            self._outage = FleetSilence(self._outage.ts, devices, self._outage.active)
            incidents.append(self._outage)
            fresh = []
        pending = [a for a in self._pending if now - a.ts <= FLEET_WINDOW_S] + fresh
        released = [a for a in self._pending if now - a.ts > FLEET_WINDOW_S]
        if len(pending) >= max(FLEET_MIN_DEVICES, FLEET_MIN_SHARE * active):
            devices = tuple(sorted(a.device_id for a in pending))
            self._outage = FleetSilence(now, devices, active)
            incidents.append(self._outage)
            pending = []
        self._pending = pending
        return released, incidents


@dataclass(frozen=True, slots=True)
class FleetSilence:
    """Many devices falling silent together: a gateway or a network, not each device."""

    ts: float
    devices: tuple[str, ...]
    active: int

    @property
    def reason(self) -> str:
        """The incident in plain words."""
        return (
            f"{len(self.devices)} of {self.active} devices heard from in the last day fell "
            "silent together: likely a gateway, network or broker outage, not each device"
        )


class ReadingLike(Protocol):
    """What the detectors read of a ``models.buckets.Sample`` or a stored reading."""

    @property
    def ts(self) -> float | datetime: ...
    @property
    def signal(self) -> float | None: ...
    @property
    def battery(self) -> float | None: ...
    @property
    def volts(self) -> float | None: ...
    @property
    def temp(self) -> float | None: ...
    @property
    def uptime(self) -> float | None: ...
    @property
    def reconnects(self) -> float | None: ...


def observations(rows: Iterable[ReadingLike]) -> Iterator[Observation]:
    """Observations from readings (a ``Sample``, a stored reading), in the same order."""
    for r in rows:
        ts = r.ts
        yield Observation(
            ts=ts.timestamp() if isinstance(ts, datetime) else float(ts),
            signal=r.signal,
            battery=r.battery,
            volts=r.volts,
            temp=r.temp,
            uptime=r.uptime,
            reconnects=r.reconnects,
        )
