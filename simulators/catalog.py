"""What a simulated fleet is made of: product models, markets, and how faults develop."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

# Re-exported: the simulator injects exactly the faults Forewarn predicts.
from forewarn.domain import FaultKind as FaultKind


class Kind(enum.StrEnum):
    """What sort of product a model is."""

    LOCK = "lock"
    AIR_CONDITIONER = "air_conditioner"
    WATCH = "watch"
    CAMERA = "camera"
    TEMPERATURE_SENSOR = "temperature_sensor"


class Power(enum.StrEnum):
    """How a model is powered; only battery models report battery fields."""

    BATTERY = "battery"
    MAINS = "mains"


@dataclass(frozen=True, slots=True)
class ProductModel:
    """One product model: its reporting cadence, power, thermal and radio behaviour."""

    name: str
    kind: Kind
    id_prefix: str
    interval_s: float
    power: Power
    # Share of the fleet built from this model (relative weight).
    weight: float
    # Firmware versions in the field with their relative share, newest first.
    firmwares: tuple[tuple[str, float], ...]
    signal_dbm: float
    zigbee: bool = False
    battery_drain_pct_per_day: float = 0.0
    voltage_full: float = 0.0
    voltage_empty: float = 0.0
    # Internal temperature = ambient + offset + load * activity(local hour).
    temp_offset_c: float = 0.0
    temp_load_c: float = 0.0
    temp_critical_c: float = 70.0
    # Watches sit on a charger once a day; other battery models never recharge.
    daily_charge: bool = False
    # The battery pack, a name in models.detectors.chemistry ("" for mains power).
    chemistry: str = ""
    # The temperature sensor's resolution, °C: cheap sensors report in tenths.
    temp_step_c: float = 0.01
    faults: tuple[FaultKind, ...] = ()

    @property
    def battery_powered(self) -> bool:
        """Whether the model runs on a battery (and so reports battery_pct/battery_v)."""
        return self.power is Power.BATTERY

    def voltage_at(self, battery_pct: float) -> float:
        """Nominal cell voltage at a state of charge: flat in the middle, steep near empty."""
        x = min(max(battery_pct, 0.0) / 100.0, 1.0)
        span = self.voltage_full - self.voltage_empty
        # A square-root knee reproduces the plateau of alkaline and Li-ion discharge curves.
        return self.voltage_empty + span * (0.08 * x + 0.92 * math.sqrt(x))


_ALL_FAULTS = tuple(FaultKind)
_MAINS_FAULTS = tuple(f for f in FaultKind if f is not FaultKind.BATTERY_FAILURE)

MODELS: tuple[ProductModel, ...] = (
    ProductModel(
        name="lock-s2",
        kind=Kind.LOCK,
        id_prefix="lock",
        interval_s=300.0,
        power=Power.BATTERY,
        weight=0.24,
        firmwares=(("2.4.1", 0.6), ("2.3.7", 0.3), ("2.2.0", 0.1)),
        signal_dbm=-68.0,
        battery_drain_pct_per_day=0.45,
        voltage_full=6.2,
        voltage_empty=4.4,
        chemistry="4xaa",
        temp_step_c=0.1,
        temp_offset_c=0.0,
        temp_load_c=0.6,
        temp_critical_c=65.0,
        faults=_ALL_FAULTS,
    ),
    ProductModel(
        name="ac-x1",
        kind=Kind.AIR_CONDITIONER,
        id_prefix="ac",
        interval_s=120.0,
        power=Power.MAINS,
        weight=0.2,
        firmwares=(("5.2.0", 0.7), ("5.1.3", 0.3)),
        signal_dbm=-58.0,
        temp_offset_c=9.0,
        temp_load_c=14.0,
        temp_critical_c=78.0,
        faults=_MAINS_FAULTS,
    ),
    ProductModel(
        name="watch-w3",
        kind=Kind.WATCH,
        id_prefix="watch",
        interval_s=300.0,
        power=Power.BATTERY,
        weight=0.18,
        firmwares=(("1.9.2", 0.55), ("1.8.5", 0.45)),
        signal_dbm=-62.0,
        battery_drain_pct_per_day=28.0,
        voltage_full=4.35,
        voltage_empty=3.4,
        chemistry="li-ion",
        temp_offset_c=7.0,
        temp_load_c=3.0,
        temp_critical_c=52.0,
        daily_charge=True,
        faults=_ALL_FAULTS,
    ),
    ProductModel(
        name="cam-c2",
        kind=Kind.CAMERA,
        id_prefix="cam",
        interval_s=180.0,
        power=Power.MAINS,
        weight=0.22,
        firmwares=(("3.1.0", 0.0), ("3.0.4", 0.75), ("2.9.7", 0.25)),
        signal_dbm=-64.0,
        temp_offset_c=15.0,
        temp_load_c=4.0,
        temp_critical_c=82.0,
        faults=_MAINS_FAULTS,
    ),
    ProductModel(
        name="zb-t1",
        kind=Kind.TEMPERATURE_SENSOR,
        id_prefix="zbt",
        interval_s=300.0,
        power=Power.BATTERY,
        weight=0.16,
        firmwares=(("1.0.6", 0.8), ("1.0.4", 0.2)),
        signal_dbm=-74.0,
        zigbee=True,
        battery_drain_pct_per_day=0.08,
        voltage_full=3.1,
        voltage_empty=2.2,
        chemistry="cr2032",
        temp_step_c=0.1,
        faults=(
            FaultKind.CONNECTIVITY_LOSS,
            FaultKind.BATTERY_FAILURE,
            FaultKind.STUCK_SENSOR,
        ),
    ),
)
"""Every model the simulator can build, in a fixed order (fleet generation depends on it)."""

# The firmware cohort: devices on this build receive it as an over-the-air update during the
# run and fall into a reboot loop shortly after (one incident, many devices).
COHORT_MODEL = "cam-c2"
COHORT_FIRMWARE = "3.1.0"
COHORT_PREVIOUS_FIRMWARE = "3.0.4"

# Locale -> (time zones with relative weight); the customer sells in China, the US and Europe.
ZONES: dict[str, tuple[tuple[str, float], ...]] = {
    "zh-CN": (("Asia/Shanghai", 0.9), ("Asia/Hong_Kong", 0.1)),
    "en-US": (
        ("America/New_York", 0.35),
        ("America/Los_Angeles", 0.2),
        ("Europe/Berlin", 0.3),
        ("Europe/London", 0.15),
    ),
}
ZH_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴")
ZH_GIVEN = ("伟", "芳", "敏", "静", "磊", "洋", "婷", "强", "军", "丽", "杰", "娟")
EN_FIRST = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Henry", "Ivy", "Jonas")
EN_LAST = ("Miller", "Schmidt", "Brown", "Wagner", "Taylor", "Fischer", "Clark", "Weber")
COMPANIES = ("Lotus Hotel", "Harbor Offices", "Greenfield Suites", "Northwind Co-Working")
COMPANY_CITIES = ("Shanghai", "Berlin", "Boston", "Shenzhen", "Munich", "Austin")

# How long each fault takes to develop from onset to failure, in hours.
DEVELOPMENT_H: dict[FaultKind, tuple[float, float]] = {
    FaultKind.CONNECTIVITY_LOSS: (4.0, 14.0),
    FaultKind.BATTERY_FAILURE: (10.0, 36.0),
    FaultKind.OVERHEATING: (3.0, 12.0),
    # A stuck sensor is constant from onset; failure_at is when the flat line has lasted long
    # enough to be unmistakable, so the interval is short on purpose.
    FaultKind.STUCK_SENSOR: (0.2, 0.5),
    FaultKind.REBOOT_LOOP: (6.0, 20.0),
}


_BY_NAME = {m.name: m for m in MODELS}


def model_named(name: str) -> ProductModel:
    """The catalog entry for a model name (KeyError if unknown)."""
    return _BY_NAME[name]
