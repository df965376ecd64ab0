"""What every detector reads and says: one observation in, a verdict with plain reasons out.

A verdict's ``score`` lies in [0, 1]; 0.5 is the detector's own warning level (its evidence
equals its built-in bar), so that a calibrated threshold can move the bar either way while
the score keeps one meaning for every fault. Reasons are sentences an owner can read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of one device, in canonical units (None: the device did not report it)."""

    ts: float  # epoch seconds
    signal: float | None = None  # dBm
    battery: float | None = None  # percent
    volts: float | None = None
    temp: float | None = None  # °C
    uptime: float | None = None  # seconds since boot
    reconnects: float | None = None  # counter since boot
    codes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Verdict:
    """A detector's judgement of one observation."""

    score: float  # [0, 1]; 0.5 is the detector's own bar
    reason: str = ""  # empty when there is nothing to say
    hours_left: float | None = None  # battery: estimated hours to empty


QUIET = Verdict(0.0)
# A verdict that is no matter of degree (a reading the quantity cannot physically take): it
# alerts at any threshold, so calibration neither can nor tries to budget it away.
CERTAIN = 1.0


class Detector(Protocol):
    """A per-device, label-free detector of one fault."""

    fault: str

    def score_one(self, x: Observation) -> Verdict:
        """Judge `x` against the history learned so far; never changes the detector."""
        ...

    def learn_one(self, x: Observation) -> None:
        """Fold `x` into the device's history (call after ``score_one``)."""
        ...


def squash(evidence: float) -> float:
    """Evidence over its bar (1.0 = at the bar) as a score in [0, 1): 1 becomes 0.5."""
    if evidence == math.inf:
        return 1.0
    if not math.isfinite(evidence) or evidence <= 0.0:
        return 0.0
    return evidence / (1.0 + evidence)


def decay(dt: float, tau: float) -> float:
    """Weight left on the past after `dt` seconds with time constant `tau` seconds."""
    return math.exp(-max(dt, 0.0) / tau)


def duration(seconds: float) -> str:
    """A length of time in words: "40 minutes", "5 hours", "about 6 days"."""
    if seconds < 5400:
        return f"{max(round(seconds / 60), 1)} minutes"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} hours"
    return f"about {round(seconds / 86400)} days"
