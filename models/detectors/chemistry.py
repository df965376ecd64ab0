"""Battery chemistries: the discharge curve that turns a pack's voltage into its charge.

Each curve is (volts, percent) points of a pack at room temperature under a light load, from
the makers' typical discharge curves (a single Li-ion cell; alkaline AA cells in series; the
lithium coin cell CR2032 and the CR123A). Between points the charge is interpolated linearly.
The last point is where a typical device browns out: "empty" for a warning.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chemistry:
    """A pack's name, whether it is recharged, and its discharge curve (volts falling)."""

    name: str
    rechargeable: bool
    curve: tuple[tuple[float, float], ...]  # (volts, percent), volts descending

    def percent(self, volts: float) -> float:
        """Charge left at `volts`, 0-100."""
        pts = self.curve
        if volts >= pts[0][0]:
            return 100.0
        for (v1, p1), (v0, p0) in itertools.pairwise(pts):
            if volts >= v0:
                return p0 + (p1 - p0) * (volts - v0) / (v1 - v0)
        return 0.0

    def volts(self, percent: float) -> float:
        """The pack's voltage at `percent` of charge (the inverse of ``percent``)."""
        pts = self.curve
        for (v1, p1), (v0, p0) in itertools.pairwise(pts):
            if percent >= p0:
                return v0 + (v1 - v0) * (min(percent, p1) - p0) / (p1 - p0)
        return pts[-1][0]

    def volts_per_percent(self, percent: float) -> float:
        """Slope of the curve at `percent`: volts per percent of charge."""
        pts = self.curve
        for (v1, p1), (v0, p0) in itertools.pairwise(pts):
            if percent >= p0:
                return (v1 - v0) / (p1 - p0)
        (v1, p1), (v0, p0) = pts[-2], pts[-1]
        return (v1 - v0) / (p1 - p0)


def _series(cell: tuple[tuple[float, float], ...], n: int) -> tuple[tuple[float, float], ...]:
    return tuple((round(v * n, 3), p) for v, p in cell)


_ALKALINE = (
    (1.60, 100.0),
    (1.45, 80.0),
    (1.35, 60.0),
    (1.28, 40.0),
    (1.20, 20.0),
    (1.12, 10.0),
    (1.05, 5.0),
    (1.00, 0.0),
)

CHEMISTRIES: dict[str, Chemistry] = {
    "li-ion": Chemistry(
        "li-ion",
        True,
        (
            (4.20, 100.0),
            (4.06, 90.0),
            (3.98, 80.0),
            (3.92, 70.0),
            (3.87, 60.0),
            (3.82, 50.0),
            (3.79, 40.0),
            (3.75, 30.0),
            (3.70, 20.0),
            (3.62, 10.0),
            (3.50, 5.0),
            (3.30, 0.0),
        ),
    ),
    "1xaa": Chemistry("1xaa", False, _series(_ALKALINE, 1)),
    "2xaa": Chemistry("2xaa", False, _series(_ALKALINE, 2)),
    "4xaa": Chemistry("4xaa", False, _series(_ALKALINE, 4)),
    "cr2032": Chemistry(
        "cr2032",
        False,
        (
            (3.00, 100.0),
            (2.95, 80.0),
            (2.90, 60.0),
            (2.85, 40.0),
            (2.75, 20.0),
            (2.60, 10.0),
            (2.40, 5.0),
            (2.20, 0.0),
        ),
    ),
    "cr123a": Chemistry(
        "cr123a",
        False,
        (
            (3.10, 100.0),
            (3.00, 80.0),
            (2.92, 60.0),
            (2.85, 40.0),
            (2.75, 20.0),
            (2.60, 10.0),
            (2.45, 5.0),
            (2.20, 0.0),
        ),
    ),
}


def chemistry(name: str) -> Chemistry:
    """The chemistry called `name` (ValueError naming the known ones otherwise)."""
    try:
        return CHEMISTRIES[name.lower()]
    except KeyError:
        known = ", ".join(CHEMISTRIES)
        raise ValueError(f"unknown battery chemistry {name!r} (known: {known})") from None


def guess(volts: float) -> Chemistry:
    """The likeliest pack for a first reading of `volts` when nobody said which it is."""
    if volts < 1.8:
        return CHEMISTRIES["1xaa"]
    if volts < 3.35:
        return CHEMISTRIES["2xaa"]
    if volts < 4.5:
        return CHEMISTRIES["li-ion"]
    return CHEMISTRIES["4xaa"]
