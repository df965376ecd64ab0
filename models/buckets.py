"""Five-minute bucket aggregates of a device's readings: the one input of the feature code.

The same aggregates are built two ways. Training asks the database for them
(``models.repository.load_buckets``: ``time_bucket`` on TimescaleDB, ``date_bin`` on plain
PostgreSQL); streaming folds readings in one at a time (``DeviceBuckets.add``). Both follow the
definitions below, reading by reading in time order, and a test holds them to the same values.

Each bucket is one row of ``AGGREGATES``. Missing values are NaN; counts and sums start at 0.
Columns that compare a reading with the one before it (repeats, resets, reconnect increments,
gaps) look at the device's previous reading, whichever bucket it fell in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from forewarn.domain import Reading

BUCKET_SECONDS = 300
# The day window reaches back to the start of the clock hour 23 hours ago, and "yesterday" is
# the clock hour before that: at most 299 buckets behind the newest, the longest look-back any
# feature takes, so a ring of this many buckets per device holds all a feature reads.
HISTORY_BUCKETS = 300

AGGREGATES: tuple[str, ...] = (
    "n",  # readings
    "sig_n",
    "sig_sum",
    "sig_min",
    "bat_first",  # first battery_pct in the bucket, and its time (epoch seconds)
    "bat_first_ts",
    "bat_last",
    "bat_last_ts",
    "volt_last",
    "tmp_n",
    "tmp_sum",
    "tmp_min",
    "tmp_max",
    "tmp_same",  # readings whose temperature equals the previous reading's exactly
    "tmp_step",  # largest temperature change from the previous reading, °C
    "resets",  # readings whose uptime_s is below the previous reading's
    "reconn",  # reconnect-counter increments (the counter restarts at 0 on reboot)
    "gap_max",  # longest time since the previous reading, seconds
    "err_link",  # readings reporting each class of error code
    "err_crash",
    "err_power",
    "err_temp",
)
COL = {name: i for i, name in enumerate(AGGREGATES)}
(
    C_N,
    C_SIG_N,
    C_SIG_SUM,
    C_SIG_MIN,
    C_BAT_FIRST,
    C_BAT_FIRST_TS,
    C_BAT_LAST,
    C_BAT_LAST_TS,
    C_VOLT_LAST,
    C_TMP_N,
    C_TMP_SUM,
    C_TMP_MIN,
    C_TMP_MAX,
    C_TMP_SAME,
    C_TMP_STEP,
    C_RESETS,
    C_RECONN,
    C_GAP_MAX,
    C_ERR_LINK,
    C_ERR_CRASH,
    C_ERR_POWER,
    C_ERR_TEMP,
) = range(len(AGGREGATES))

# Which error codes fall in which class (the Forewarn v1 vocabulary, docs/telemetry.md).
LINK_CODES = frozenset({"E_LINK_RETRY"})
CRASH_CODES = frozenset({"E_WATCHDOG_RESET", "E_KERNEL_PANIC", "E_HARDFAULT", "E_BOOT_LOOP"})
POWER_CODES = frozenset({"E_BROWNOUT", "E_LOW_BATTERY"})
TEMP_CODES = frozenset({"E_OVERTEMP"})

_NAN_COLUMNS = (
    "sig_min",
    "bat_first",
    "bat_first_ts",
    "bat_last",
    "bat_last_ts",
    "volt_last",
    "tmp_min",
    "tmp_max",
    "tmp_step",
    "gap_max",
)

Matrix = npt.NDArray[np.float64]


def empty_buckets(count: int) -> Matrix:
    """`count` buckets with no readings in them."""
    out = np.zeros((count, len(AGGREGATES)), dtype=np.float64)
    for name in _NAN_COLUMNS:
        out[:, COL[name]] = np.nan
    return out


def bucket_of(ts: datetime) -> int:
    """The index of the five-minute bucket holding `ts` (buckets count from the Unix epoch)."""
    return math.floor(ts.timestamp() / BUCKET_SECONDS)


@dataclass(frozen=True, slots=True)
class Sample:
    """The fields of a reading the aggregates use (a Reading, or a row of a user's CSV)."""

    ts: float  # epoch seconds
    signal: float | None = None
    battery: float | None = None
    volts: float | None = None
    temp: float | None = None
    uptime: float | None = None
    reconnects: float | None = None
    codes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, reading: Reading) -> Sample:
        """The sample of one ingested reading."""
        return cls(
            ts=reading.ts.timestamp(),
            signal=reading.signal_dbm,
            battery=reading.battery_pct,
            volts=reading.battery_v,
            temp=reading.temperature_c,
            uptime=None if reading.uptime_s is None else float(reading.uptime_s),
            reconnects=None if reading.reconnects is None else float(reading.reconnects),
            codes=frozenset(reading.error_codes),
        )


def fold(row: Matrix, s: Sample, prev: Sample | None) -> None:
    """Add one sample to its bucket's row (in place), given the device's previous sample."""
    row[C_N] += 1
    if s.signal is not None:
        row[C_SIG_N] += 1
        row[C_SIG_SUM] += s.signal
        row[C_SIG_MIN] = _low(row[C_SIG_MIN], s.signal)
    if s.battery is not None:
        if math.isnan(row[C_BAT_FIRST]):
            row[C_BAT_FIRST], row[C_BAT_FIRST_TS] = s.battery, s.ts
        row[C_BAT_LAST], row[C_BAT_LAST_TS] = s.battery, s.ts
    if s.volts is not None:
        row[C_VOLT_LAST] = s.volts
    if s.temp is not None:
        row[C_TMP_N] += 1
        row[C_TMP_SUM] += s.temp
        row[C_TMP_MIN] = _low(row[C_TMP_MIN], s.temp)
        row[C_TMP_MAX] = _high(row[C_TMP_MAX], s.temp)
    if prev is not None:
        if s.temp is not None and prev.temp is not None:
            row[C_TMP_SAME] += s.temp == prev.temp
            row[C_TMP_STEP] = _high(row[C_TMP_STEP], abs(s.temp - prev.temp))
        if s.uptime is not None and prev.uptime is not None and s.uptime < prev.uptime:
            row[C_RESETS] += 1
        if s.reconnects is not None and prev.reconnects is not None:
            step = s.reconnects - prev.reconnects
            row[C_RECONN] += step if step >= 0 else s.reconnects
        row[C_GAP_MAX] = _high(row[C_GAP_MAX], s.ts - prev.ts)
    if s.codes:
        row[C_ERR_LINK] += bool(s.codes & LINK_CODES)
        row[C_ERR_CRASH] += bool(s.codes & CRASH_CODES)
        row[C_ERR_POWER] += bool(s.codes & POWER_CODES)
        row[C_ERR_TEMP] += bool(s.codes & TEMP_CODES)


def _low(current: float, value: float) -> float:
    return value if math.isnan(current) or value < current else current


def _high(current: float, value: float) -> float:
    return value if math.isnan(current) or value > current else current


class DeviceBuckets:
    """The last HISTORY_BUCKETS buckets of one device, updated as its readings arrive.

    Readings must come in time order; one older than the device's newest is refused
    (``add`` returns False) because the repeat, reset and gap columns depend on order.
    """

    __slots__ = ("_first", "_head", "_prev", "_ring")

    def __init__(self) -> None:
        self._ring = empty_buckets(HISTORY_BUCKETS)
        self._first: int | None = None  # bucket index of the device's first reading
        self._head: int | None = None  # bucket index of the ring's last row
        self._prev: Sample | None = None

    @property
    def head(self) -> int | None:
        """The bucket index of the newest bucket, None before the first reading."""
        return self._head

    @property
    def last_ts(self) -> float | None:
        """Epoch seconds of the newest reading folded in."""
        return None if self._prev is None else self._prev.ts

    def add(self, s: Sample) -> bool:
        """Fold one sample in; False (and nothing changes) when it is older than the newest."""
        if self._prev is not None and s.ts <= self._prev.ts:
            return False
        b = math.floor(s.ts / BUCKET_SECONDS)
        if self._head is None:
            self._first = self._head = b
        elif b > self._head:
            shift = b - self._head
            if shift >= HISTORY_BUCKETS:
                self._ring = empty_buckets(HISTORY_BUCKETS)
            else:
                self._ring = np.concatenate((self._ring[shift:], empty_buckets(shift)))
            self._head = b
        fold(self._ring[HISTORY_BUCKETS - 1], s, self._prev)
        self._prev = s
        return True

    def window(self) -> Matrix:
        """The ring as a matrix, oldest bucket first; the last row is the newest bucket."""
        return self._ring

    def valid_from(self) -> int:
        """Row of the ring holding the device's first bucket (0 once the ring is full).

        Windows are cut there, as the database path cuts them at the first bucket it loads.
        """
        if self._head is None or self._first is None:
            return HISTORY_BUCKETS - 1
        return max(0, HISTORY_BUCKETS - 1 - (self._head - self._first))


def series_buckets(samples: list[Sample]) -> tuple[int, Matrix]:
    """(first bucket index, matrix) of one device's whole series; samples in time order."""
    if not samples:
        return 0, empty_buckets(0)
    first = math.floor(samples[0].ts / BUCKET_SECONDS)
    last = math.floor(samples[-1].ts / BUCKET_SECONDS)
    m = empty_buckets(last - first + 1)
    prev: Sample | None = None
    for s in samples:
        if prev is not None and s.ts <= prev.ts:
            continue  # the streaming path refuses out-of-order readings; so does this one
        fold(m[math.floor(s.ts / BUCKET_SECONDS) - first], s, prev)
        prev = s
    return first, m
