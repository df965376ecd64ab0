"""Why a prediction was made, in plain words.

For each fault a handful of features can tell its story. The ones that drove a prediction are
those furthest from healthy, measured in the healthy rows' own spread (median and interquartile
range, learned with the model) and only in the direction that means trouble.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forewarn.domain import FaultKind
from models.features import FEATURE_INDEX, FEATURES


def _hours(h: float) -> str:
    return f"about {h / 24:.0f} days" if h >= 48 else f"about {max(h, 1):.0f} hours"


# feature -> (direction that means trouble: +1 higher, -1 lower; how to say it)
_PHRASES: dict[str, tuple[int, Callable[[float], str]]] = {
    "signal_fall_6h": (1, lambda v: f"signal fell {v:.0f} dB in 6 h"),
    "signal_fall_2h": (1, lambda v: f"signal fell {v:.0f} dB in 2 h"),
    "signal_drop_2h": (1, lambda v: f"signal {v:.0f} dB below its 24-hour average"),
    "signal_dip_2h": (1, lambda v: f"signal dipped {v:.0f} dB below its 24-hour average"),
    "reconnects_30m": (1, lambda v: f"{v:.0f} reconnects in the last 30 minutes"),
    "reconnects_2h": (1, lambda v: f"{v:.0f} reconnects in the last 2 hours"),
    "link_errors_2h": (1, lambda v: f"{v:.0f} link retries reported in 2 h"),
    "rate_2h": (-1, lambda v: f"only {v:.0%} of its usual messages in the last 2 hours"),
    "gap_2h": (1, lambda v: f"a silence {v:.1f} times its usual interval"),
    "drain_6h": (1, lambda v: f"battery draining {v:.1f}% an hour over 6 h"),
    "drain_2h": (1, lambda v: f"battery draining {v:.1f}% an hour over 2 h"),
    "hours_to_empty": (-1, lambda v: f"battery empty in {_hours(v)}"),
    "battery_pct": (-1, lambda v: f"battery at {v:.0f}%"),
    "power_errors_6h": (1, lambda v: f"{v:.0f} brown-out or low-battery reports in 6 h"),
    "temp_excess_24h": (1, lambda v: f"{v:.1f} °C above its 24-hour average"),
    "temp_rise_2h": (1, lambda v: f"temperature rose {v:.1f} °C in 2 h"),
    "temp_vs_yesterday": (1, lambda v: f"{v:.1f} °C warmer than this time yesterday"),
    "temp_max_excess_2h": (1, lambda v: f"peaked {v:.1f} °C above its 24-hour average"),
    "overtemp_errors_2h": (1, lambda v: f"{v:.0f} over-temperature reports in 2 h"),
    "temp_repeat_2h": (1, lambda v: f"{v:.0f} readings in 2 h repeated the temperature exactly"),
    "temp_repeat_30m": (1, lambda v: f"{v:.0f} readings in 30 min repeated the temperature"),
    "temp_step_30m": (1, lambda v: f"temperature jumped {v:.0f} °C between two readings"),
    "temp_range_2h": (-1, lambda v: f"temperature varied only {v:.2f} °C in 2 h"),
    "reboots_6h": (1, lambda v: f"{v:.0f} reboots in 6 h"),
    "reboots_24h": (1, lambda v: f"{v:.0f} reboots in 24 h"),
    "crash_errors_6h": (1, lambda v: f"{v:.0f} crash reports in 6 h"),
}

TELLING: dict[FaultKind | str, tuple[str, ...]] = {
    FaultKind.CONNECTIVITY_LOSS: (
        "signal_fall_6h",
        "signal_fall_2h",
        "signal_drop_2h",
        "reconnects_30m",
        "reconnects_2h",
        "link_errors_2h",
        "rate_2h",
        "gap_2h",
    ),
    FaultKind.BATTERY_FAILURE: (
        "hours_to_empty",
        "drain_6h",
        "drain_2h",
        "battery_pct",
        "power_errors_6h",
    ),
    FaultKind.OVERHEATING: (
        "temp_excess_24h",
        "temp_rise_2h",
        "temp_vs_yesterday",
        "temp_max_excess_2h",
        "overtemp_errors_2h",
    ),
    FaultKind.STUCK_SENSOR: ("temp_repeat_2h", "temp_repeat_30m", "temp_range_2h", "temp_step_30m"),
    FaultKind.REBOOT_LOOP: ("reboots_6h", "reboots_24h", "crash_errors_6h", "rate_2h"),
    "anomaly": tuple(_PHRASES),
}


@dataclass(frozen=True, slots=True)
class Baseline:
    """The healthy rows' median and spread of every feature."""

    median: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def learn(cls, healthy: npt.NDArray[np.float64]) -> Baseline:
        """Median and interquartile range (at least a small floor) per feature column."""
        med, scale = [], []
        for j in range(healthy.shape[1]):
            col = healthy[:, j]
            col = col[np.isfinite(col)]
            if not len(col):
                med.append(0.0)
                scale.append(1.0)
                continue
            q1, q2, q3 = np.percentile(col, [25, 50, 75])
            med.append(float(q2))
            scale.append(max(float(q3 - q1), 0.05 * abs(float(q2)), 1e-3))
        return cls(tuple(med), tuple(scale))


def explain(
    fault: FaultKind | str, row: npt.NDArray[np.float64], baseline: Baseline, *, most: int = 3
) -> tuple[str, ...]:
    """The few features that set this row apart from healthy for `fault`, in plain words."""
    scored: list[tuple[float, str]] = []
    for name in TELLING[fault]:
        j = FEATURE_INDEX[name]
        value = float(row[j])
        if not np.isfinite(value):
            continue
        direction, _ = _PHRASES[name]
        z = direction * (value - baseline.median[j]) / baseline.scale[j]
        if z >= 3.0:
            scored.append((z, name))
    scored.sort(reverse=True)
    return tuple(_PHRASES[name][1](float(row[FEATURE_INDEX[name]])) for _, name in scored[:most])


assert set(_PHRASES) <= set(FEATURES), "every phrase must name a feature"
