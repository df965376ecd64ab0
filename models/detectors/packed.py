"""Detector state packed into float64 rows: no Python object per number per device.

A detector is a view: the array its numbers live in and where its span of the array begins.
Standing alone it owns a small array of its own; inside a fleet (``models.detect.Fleet``)
every device's detectors share one array, a row a device, so 100,000 devices cost their
numbers and little else. The numbers stay float64, so a packed detector computes exactly
what the objects it replaced computed. Each field is a descriptor over its slot of the span.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, ClassVar, Self

from models.detectors.chemistry import Chemistry


class Num:
    """A float field of a packed detector: slot `index` of the detector's span."""

    __slots__ = ("default", "index", "name")

    def __init__(self, default: float = math.nan) -> None:
        self.default = default
        self.index = -1  # set by Packed.__init_subclass__
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Packed, owner: type | None = None) -> float:
        return obj._data[obj._at + self.index]

    def __set__(self, obj: Packed, value: float) -> None:
        obj._data[obj._at + self.index] = value


class Int(Num):
    """A count kept in a float slot (exact up to 2**53), read back as an int."""

    __slots__ = ()

    def __get__(self, obj: Packed, owner: type | None = None) -> int:
        return int(obj._data[obj._at + self.index])


class Packed:
    """A detector whose numbers sit in `_data` from `_at` on (``SIZE`` slots)."""

    __slots__ = ("_at", "_data")
    FIELDS: ClassVar[tuple[Num, ...]] = ()
    SIZE: ClassVar[int] = 0  # slots of the span: the fields, then any extra (see OWN)
    OWN: ClassVar[int] = 0  # slots after the fields: arrays or parts the subclass lays out

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = [v for v in vars(cls).values() if isinstance(v, Num)]
        for i, f in enumerate(fields):
            f.index = i
        cls.FIELDS = tuple(fields)
        cls.SIZE = len(fields) + cls.OWN

    @classmethod
    def defaults(cls) -> list[float]:
        """A fresh span: every field at its default (extra slots NaN unless overridden)."""
        return [f.default for f in cls.FIELDS] + [math.nan] * cls.OWN

    @classmethod
    def at(cls, data: array[float], at: int) -> Self:
        """A view of the span of `data` starting at `at`."""
        obj = cls.__new__(cls)
        obj._data, obj._at = data, at
        return obj

    def _own(self) -> None:
        """Give a detector standing alone an array of its own, at its defaults."""
        self._data, self._at = array("d", self.defaults()), 0

    def __repr__(self) -> str:
        values = ", ".join(f"{f.name}={f.__get__(self)!r}" for f in self.FIELDS)
        extra = self._data[self._at + len(self.FIELDS) : self._at + self.SIZE].tolist()
        return f"{type(self).__name__}({values}, extra={extra!r})"


# Battery packs seen so far, so a device's pack is a number in its row (0: none yet).
_CHEMISTRIES: list[Chemistry] = []


def chem_code(chem: Chemistry | None) -> float:
    """The number a row keeps for `chem`."""
    if chem is None:
        return 0.0
    if chem not in _CHEMISTRIES:
        _CHEMISTRIES.append(chem)
    return float(_CHEMISTRIES.index(chem) + 1)


def chem_of(code: float) -> Chemistry | None:
    """The pack a row's number stands for."""
    return None if code == 0.0 else _CHEMISTRIES[int(code) - 1]
