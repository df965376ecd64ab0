"""Seeded generation of owners, devices and the fault plan (the ground truth)."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TypeVar

from simulators.catalog import (
    COHORT_FIRMWARE,
    COHORT_MODEL,
    COHORT_PREVIOUS_FIRMWARE,
    COMPANIES,
    COMPANY_CITIES,
    DEVELOPMENT_H,
    EN_FIRST,
    EN_LAST,
    MODELS,
    ZH_GIVEN,
    ZH_SURNAMES,
    ZONES,
    FaultKind,
    Kind,
    ProductModel,
    model_named,
)

__all__ = [
    "AccountType",
    "Device",
    "FaultEpisode",
    "FaultKind",
    "Fleet",
    "Owner",
    "Segment",
    "generate_fleet",
]


class AccountType(enum.StrEnum):
    """Consumer or enterprise (bulk buyer) account."""

    CONSUMER = "consumer"
    ENTERPRISE = "enterprise"


class Segment(enum.StrEnum):
    """Service segment of an owner, from the service improvement plan."""

    NOVICE = "novice"
    REGULAR = "regular"
    SENIOR = "senior"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class Owner:
    """A person or company owning devices."""

    owner_id: str
    name: str
    contact: str
    locale: str
    time_zone: str
    quiet_start: time
    quiet_end: time
    account_type: AccountType
    enterprise_account: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """One simulated device and the baseline parameters that make it individual."""

    device_id: str
    model: str
    kind: Kind
    firmware: str
    owner_id: str
    activated_at: datetime
    time_zone: str
    signal_dbm: float
    noise: float
    phase_h: float
    capacity_factor: float
    ambient_c: float
    ambient_swing_c: float
    battery_pct: float
    uptime_s: int
    # Set for cohort devices: the build they run until the over-the-air update.
    previous_firmware: str | None = None


@dataclass(frozen=True, slots=True)
class FaultEpisode:
    """One injected fault: it develops from onset_at and is complete at failure_at."""

    device_id: str
    fault: FaultKind
    onset_at: datetime
    failure_at: datetime
    cohort: str | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    """A network outage (a gateway, a provider): the devices' readings are lost meanwhile,
    the devices themselves are fine; not a fault of any of them."""

    start_at: datetime
    end_at: datetime
    device_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Fleet:
    """A generated fleet: owners, devices and the fault plan over a simulated span."""

    seed: int
    start: datetime
    span: timedelta
    owners: tuple[Owner, ...]
    devices: tuple[Device, ...]
    episodes: tuple[FaultEpisode, ...]
    outages: tuple[Outage, ...] = ()
    _owners: Mapping[str, Owner] = field(init=False, repr=False, compare=False)
    _episodes: Mapping[str, FaultEpisode] = field(init=False, repr=False, compare=False)
    _devices: Mapping[str, Device] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Lookup tables for the engine and tests; excluded from equality and repr.
        object.__setattr__(self, "_owners", {o.owner_id: o for o in self.owners})
        object.__setattr__(self, "_devices", {d.device_id: d for d in self.devices})
        object.__setattr__(self, "_episodes", {e.device_id: e for e in self.episodes})

    def owner(self, owner_id: str) -> Owner:
        """The owner with this id."""
        return self._owners[owner_id]

    def device(self, device_id: str) -> Device:
        """The device with this id."""
        return self._devices[device_id]

    def episode_for(self, device_id: str) -> FaultEpisode | None:
        """The fault planned for a device, or None when it stays healthy."""
        return self._episodes.get(device_id)

    def segment(self, owner: Owner, at: datetime) -> Segment:
        """The owner's segment at a moment: enterprise, else by their oldest device's age."""
        if owner.account_type is AccountType.ENTERPRISE:
            return Segment.ENTERPRISE
        first = min(d.activated_at for d in self.devices if d.owner_id == owner.owner_id)
        age = at - first
        if age <= timedelta(days=30):
            return Segment.NOVICE
        return Segment.REGULAR if age < timedelta(days=182) else Segment.SENIOR


_T = TypeVar("_T")

# Days before the start at which a device was activated, per segment.
_SEGMENT_AGES: dict[Segment, tuple[float, float]] = {
    Segment.NOVICE: (1.0, 29.0),
    Segment.REGULAR: (32.0, 175.0),
    Segment.SENIOR: (190.0, 900.0),
}
_SEGMENT_WEIGHTS = ((Segment.NOVICE, 0.25), (Segment.REGULAR, 0.4), (Segment.SENIOR, 0.35))


def _pick(rng: random.Random, options: tuple[tuple[_T, float], ...]) -> _T:
    values = [v for v, _ in options]
    weights = [w for _, w in options]
    return rng.choices(values, weights=weights, k=1)[0]


def _make_owner(rng: random.Random, number: int, enterprise: bool) -> Owner:
    locale = "zh-CN" if rng.random() < 0.5 else "en-US"
    zone = _pick(rng, ZONES[locale])
    owner_id = f"own-{number:05d}"
    if enterprise:
        company = f"{rng.choice(COMPANIES)} {rng.choice(COMPANY_CITIES)}"
        slug = company.lower().replace(" ", "-").replace("-co-working", "")
        return Owner(
            owner_id=owner_id,
            name=company,
            contact=f"it-ops@{slug}.example.com",
            locale=locale,
            time_zone=zone,
            quiet_start=time(20, 0),
            quiet_end=time(7, 0),
            account_type=AccountType.ENTERPRISE,
            enterprise_account=company,
        )
    if locale == "zh-CN":
        name = rng.choice(ZH_SURNAMES) + rng.choice(ZH_GIVEN) + rng.choice(("", *ZH_GIVEN))
        contact = f"user{number:05d}@example.cn"
    else:
        first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
        name = f"{first} {last}"
        contact = f"{first.lower()}.{last.lower()}{number}@example.com"
    return Owner(
        owner_id=owner_id,
        name=name,
        contact=contact,
        locale=locale,
        time_zone=zone,
        quiet_start=time(rng.choice((21, 22, 22, 23)), rng.choice((0, 30))),
        quiet_end=time(rng.choice((6, 7, 7, 8)), rng.choice((0, 30))),
        account_type=AccountType.CONSUMER,
    )


def _make_device(
    rng: random.Random, number: int, model: ProductModel, firmware: str, owner: Owner, at: datetime
) -> Device:
    cohort = model.name == COHORT_MODEL and firmware == COHORT_FIRMWARE
    return Device(
        device_id=f"{model.id_prefix}-{number:06d}",
        model=model.name,
        kind=model.kind,
        firmware=firmware,
        owner_id=owner.owner_id,
        activated_at=at,
        time_zone=owner.time_zone,
        signal_dbm=round(model.signal_dbm + rng.uniform(-9.0, 7.0), 1),
        noise=round(rng.uniform(0.8, 2.5), 2),
        phase_h=round(rng.uniform(-1.5, 1.5), 2),
        capacity_factor=round(rng.uniform(0.85, 1.15), 3),
        ambient_c=round(rng.uniform(19.0, 26.0), 1),
        ambient_swing_c=round(rng.uniform(0.8, 3.5), 1),
        battery_pct=round(rng.uniform(40.0, 100.0), 1) if model.battery_powered else 0.0,
        uptime_s=rng.randint(600, 40 * 86400),
        previous_firmware=COHORT_PREVIOUS_FIRMWARE if cohort else None,
    )


def _model_plan(rng: random.Random, devices: int, cohort_share: float) -> list[tuple[str, str]]:
    """(model, firmware) per device; the cohort build gets a guaranteed share of the fleet."""
    cohort_n = min(devices, max(5, math.ceil(cohort_share * devices)))
    cohort_n = min(devices, cohort_n + rng.randint(0, devices // 25))
    plan = [(COHORT_MODEL, COHORT_FIRMWARE)] * cohort_n
    weights = tuple((m, m.weight) for m in MODELS)
    for _ in range(devices - cohort_n):
        model = _pick(rng, weights)
        plan.append((model.name, _pick(rng, model.firmwares)))
    rng.shuffle(plan)
    return plan


def _episode(rng: random.Random, device_id: str, fault: FaultKind, onset: datetime) -> FaultEpisode:
    low, high = DEVELOPMENT_H[fault]
    develop = timedelta(seconds=round(rng.uniform(low, high) * 3600))
    return FaultEpisode(device_id, fault, onset, onset + develop)


def _fault_plan(
    rng: random.Random, fleet_devices: list[Device], start: datetime, span: timedelta, rate: float
) -> list[FaultEpisode]:
    episodes: list[FaultEpisode] = []
    cohort = [d for d in fleet_devices if d.previous_firmware is not None]
    # The update reaches every cohort device within ~45 minutes: one incident, many devices.
    update_at = start + span * rng.uniform(0.35, 0.6)
    label = f"{COHORT_MODEL}@{COHORT_FIRMWARE}"
    for device in cohort:
        onset = update_at + timedelta(seconds=rng.randint(0, 45 * 60))
        develop = timedelta(seconds=round(rng.uniform(4.0, 14.0) * 3600))
        episodes.append(
            FaultEpisode(device.device_id, FaultKind.REBOOT_LOOP, onset, onset + develop, label)
        )
    others = [d for d in fleet_devices if d.previous_firmware is None]
    chosen = rng.sample(others, min(len(others), round(rate * len(others))))
    assigned: dict[str, FaultKind] = {}
    # Give every kind one device that can have it first, so even a modest fleet shows them all.
    for kind in FaultKind:
        for device in chosen:
            if device.device_id not in assigned and kind in model_named(device.model).faults:
                assigned[device.device_id] = kind
                break
    for device in chosen:
        fault = assigned.get(device.device_id) or rng.choice(model_named(device.model).faults)
        onset = (start + span * rng.uniform(0.1, 0.85)).replace(microsecond=0)
        episodes.append(_episode(rng, device.device_id, fault, onset))
    return episodes


def generate_fleet(
    *,
    devices: int,
    seed: int,
    start: datetime,
    span: timedelta = timedelta(days=2),
    fault_rate: float = 0.15,
    cohort_share: float = 0.15,
    number_from: int = 1,
    outages_per_day: float = 0.0,
) -> Fleet:
    """Build a fleet of `devices` devices; the same arguments always give the same fleet.

    Device and owner numbers start at `number_from`, so two fleets in one database (a
    training history beside a live demo) need not share ids.
    """
    if devices < 1:
        raise ValueError("a fleet needs at least one device")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    rng = random.Random(f"forewarn-fleet:{seed}")
    plan = _model_plan(rng, devices, cohort_share)
    owners: list[Owner] = []
    fleet_devices: list[Device] = []
    consumer_count = 0
    while len(fleet_devices) < devices:
        remaining = devices - len(fleet_devices)
        # The first owner of a fleet of 20+ is a bulk buyer, so every segment is represented.
        enterprise = remaining >= 3 and ((not owners and devices >= 20) or rng.random() < 0.06)
        owner = _make_owner(rng, number_from + len(owners), enterprise)
        owners.append(owner)
        if enterprise:
            count = min(remaining, rng.randint(3, 10))
            bought = start - timedelta(days=rng.uniform(5.0, 400.0))
        else:
            count = min(remaining, _pick(rng, ((1, 0.6), (2, 0.3), (3, 0.1))))
            segment = (
                (Segment.NOVICE, Segment.REGULAR, Segment.SENIOR)[consumer_count]
                if consumer_count < 3
                else _pick(rng, _SEGMENT_WEIGHTS)
            )
            consumer_count += 1
            low, high = _SEGMENT_AGES[segment]
            bought = start - timedelta(days=rng.uniform(low, high))
        for _ in range(count):
            model_name, firmware = plan[len(fleet_devices)]
            # Devices of one owner are activated within a few days of each other.
            at = (bought + timedelta(hours=rng.uniform(0.0, 48.0))).replace(microsecond=0)
            at = min(at, start - timedelta(hours=1))
            number = number_from + len(fleet_devices)
            model = model_named(model_name)
            fleet_devices.append(_make_device(rng, number, model, firmware, owner, at))
    episodes = _fault_plan(rng, fleet_devices, start, span, fault_rate)
    episodes.sort(key=lambda e: (e.onset_at, e.device_id))
    outages = _outages(seed, fleet_devices, start, span, outages_per_day)
    return Fleet(seed, start, span, tuple(owners), tuple(fleet_devices), tuple(episodes), outages)


def _outages(
    seed: int, devices: list[Device], start: datetime, span: timedelta, per_day: float
) -> tuple[Outage, ...]:
    """Network outages, each cutting off one time zone's devices (their gateway, their
    provider) for 40 minutes to 3 hours. A generator of its own keeps the rest of the fleet
    the same whatever the rate."""
    if per_day <= 0:
        return ()
    rng = random.Random(f"forewarn-outages:{seed}")
    zones = sorted({d.time_zone for d in devices})
    out: list[Outage] = []
    for _ in range(max(1, round(per_day * span.total_seconds() / 86400))):
        zone = rng.choice(zones)
        at = start + timedelta(seconds=rng.uniform(0.1, 0.9) * span.total_seconds())
        hit = frozenset(d.device_id for d in devices if d.time_zone == zone)
        out.append(Outage(at, at + timedelta(minutes=rng.uniform(40.0, 180.0)), hit))
    return tuple(sorted(out, key=lambda o: o.start_at))
