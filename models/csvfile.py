"""A user's telemetry CSV read into rows: a time column, numeric metric columns, maybe devices.

Options name the columns; what they leave out is found from the header (the time column by
name, the metrics as the columns that hold numbers, signals by their Forewarn names). Anything
wrong with the file raises ``ValidationError`` naming the file, the line and the problem; an
option that cannot work raises ``ConfigError``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from forewarn.errors import ConfigError, ValidationError

# The signals the fault predictors read, by their names in Forewarn's telemetry.
SIGNALS: tuple[str, ...] = (
    "signal_dbm",
    "battery_pct",
    "battery_v",
    "temperature_c",
    "uptime_s",
    "reconnects",
)
# Counters only ever grow between reboots, so their level says nothing on its own: they feed
# the fault predictors but are not anomaly metrics unless named as such.
COUNTERS = frozenset({"uptime_s", "reconnects"})
TIME_COLUMNS = ("ts", "timestamp", "time")
DEVICE_COLUMNS = ("device_id", "device")
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True, slots=True)
class Columns:
    """Which columns are which; None and empty mean "find them in the header"."""

    time: str | None = None
    device: str | None = None
    metrics: tuple[str, ...] = ()
    signals: tuple[tuple[str, str], ...] = ()  # (column, signal)

    def __post_init__(self) -> None:
        for column, signal in self.signals:
            if signal not in SIGNALS:
                raise ConfigError(
                    f"{column}={signal}: unknown signal {signal!r} (known: {', '.join(SIGNALS)})"
                )
        for what, names in (
            ("column", [c for c, _ in self.signals]),
            ("signal", [s for _, s in self.signals]),
            ("metric", list(self.metrics)),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ConfigError(f"{what} {twice[0]!r} is given twice")


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: where it was, whose and when it is, its cells and its numbers."""

    line: int
    device: str
    ts: float  # epoch seconds
    cells: tuple[str, ...]
    values: tuple[float, ...]  # Table.numeric order; NaN where the cell is empty


@dataclass(frozen=True, slots=True)
class Table:
    """A parsed CSV: its rows by device then time, one per (device, time)."""

    path: str
    delimiter: str
    header: tuple[str, ...]
    time_column: str
    device_column: str | None
    metrics: tuple[str, ...]
    signals: tuple[tuple[str, str], ...]  # (column, signal)
    numeric: tuple[str, ...]  # the metric and signal columns, the order of Row.values
    rows: tuple[Row, ...]
    dropped: int  # rows repeating a device's timestamp (the first one is kept)
    reordered: bool  # the file was not already in device and time order

    @property
    def devices(self) -> int:
        """How many devices the rows belong to."""
        return len({r.device for r in self.rows})


def parse_time(text: str) -> float:
    """Epoch seconds of an ISO 8601 time (naive means UTC) or of epoch s, ms, µs or ns."""
    s = text.strip()
    try:
        number = float(s)
    except ValueError:
        when = datetime.fromisoformat(s)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    if not math.isfinite(number):
        raise ValueError(f"{s!r} is not a time")
    # Epoch numbers are told apart by size: 1e11 seconds is the year 5138, 1e11 ms is 1973.
    for divisor, below in ((1.0, 1e11), (1e3, 1e14), (1e6, 1e17)):
        if abs(number) < below:
            return number / divisor
    return number / 1e9


def read_table(path: Path, columns: Columns | None = None) -> Table:
    """Read and check a telemetry CSV; see the module docstring for what is inferred."""
    columns = columns or Columns()
    name = str(path)
    lines = list(_records(path))
    if not lines:
        raise ValidationError(f"{name}: the file is empty (expected a header line)")
    head_line, first, delimiter = lines[0]
    header = tuple(cell.strip() for cell in first)
    at = f"{name}: line {head_line}"  # where header problems are reported
    _check_header(at, header)
    body = [(n, cells) for n, cells, _ in lines[1:] if any(c.strip() for c in cells)]
    if not body:
        raise ValidationError(f"{name}: no data rows below the header")
    time_col = _time_column(at, header, columns.time)
    device_col = _device_column(at, header, columns.device)
    keys = {c for c in (time_col, device_col) if c is not None}
    signals = _signals(at, header, columns.signals, keys)
    width = len(header)
    for n, cells in body:
        if len(cells) != width and (len(cells) < width or any(c.strip() for c in cells[width:])):
            raise ValidationError(
                f"{name}: line {n}: {len(cells)} fields where the header has {width}"
            )
    metrics = _metrics(at, header, body, columns.metrics, keys, signals)
    if not metrics and not signals:
        raise ValidationError(
            f"{name}: no numeric metric columns to score (columns: {', '.join(header)}"
            f"{_first_word(header, body, keys)})"
        )
    numeric = tuple(dict.fromkeys([*metrics, *(c for c, _ in signals)]))
    rows = [
        _row(name, n, cells[:width], header, time_col, device_col, numeric) for n, cells in body
    ]
    ordered = sorted(rows, key=lambda r: (r.device, r.ts))
    kept = [
        r
        for i, r in enumerate(ordered)
        if i == 0 or (r.device, r.ts) != (ordered[i - 1].device, ordered[i - 1].ts)
    ]
    return Table(
        path=name,
        delimiter=delimiter,
        header=header,
        time_column=time_col,
        device_column=device_col,
        metrics=metrics,
        signals=signals,
        numeric=numeric,
        rows=tuple(kept),
        dropped=len(rows) - len(kept),
        reordered=any(a is not b for a, b in zip(rows, ordered, strict=True)),
    )


def _records(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """(line number, cells, delimiter) of every record; blank lines are skipped."""
    name = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            head = f.readline()
            counts = {d: head.count(d) for d in _DELIMITERS}
            delimiter = max(_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            try:
                for cells in reader:
                    if cells:
                        yield reader.line_num, cells, delimiter
            except csv.Error as exc:
                raise ValidationError(f"{name}: line {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{name}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the file: {exc.strerror or exc}") from exc


def _check_header(at: str, header: tuple[str, ...]) -> None:
    for i, column in enumerate(header, start=1):
        if not column:
            raise ValidationError(f"{at}: column {i} of the header has no name")
        if header.count(column) > 1:
            raise ValidationError(f"{at}: column {column!r} appears twice in the header")


def _need(at: str, header: tuple[str, ...], column: str, what: str) -> str:
    if column not in header:
        raise ValidationError(
            f"{at}: no {what} column {column!r} (the header has: {', '.join(header)})"
        )
    return column


def _find(header: tuple[str, ...], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in header}
    return next((lowered[n] for n in names if n in lowered), None)


def _time_column(at: str, header: tuple[str, ...], given: str | None) -> str:
    if given is not None:
        return _need(at, header, given, "time")
    found = _find(header, TIME_COLUMNS)
    if found is None:
        raise ValidationError(
            f"{at}: no time column (looked for {', '.join(TIME_COLUMNS)}; "
            f"name it with --time-column; the header has: {', '.join(header)})"
        )
    return found


def _device_column(at: str, header: tuple[str, ...], given: str | None) -> str | None:
    return _find(header, DEVICE_COLUMNS) if given is None else _need(at, header, given, "device")


def _signals(
    at: str, header: tuple[str, ...], given: tuple[tuple[str, str], ...], keys: set[str]
) -> tuple[tuple[str, str], ...]:
    """The mapping asked for, plus any other column named exactly like an unmapped signal."""
    for column, _ in given:
        _need(at, header, column, "mapped")
        if column in keys:
            raise ConfigError(f"{column!r} is the time or device column; it cannot be a signal")
    taken_columns = {c for c, _ in given}
    taken_signals = {s for _, s in given}
    found = [
        (c, c.lower())
        for c in header
        if c.lower() in SIGNALS
        and c.lower() not in taken_signals
        and c not in taken_columns
        and c not in keys
    ]
    return (*given, *found)


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _metrics(
    at: str,
    header: tuple[str, ...],
    body: list[tuple[int, list[str]]],
    given: tuple[str, ...],
    keys: set[str],
    signals: tuple[tuple[str, str], ...],
) -> tuple[str, ...]:
    """The metrics asked for, or every numeric column but the keys and mapped counters."""
    for column in given:
        _need(at, header, column, "metric")
        if column in keys:
            raise ConfigError(f"{column!r} is the time or device column; it cannot be a metric")
    if given:
        return given
    counters = {c for c, s in signals if s in COUNTERS}
    found: list[str] = []
    for j, column in enumerate(header):
        if column in keys or column in counters:
            continue
        filled = [c for _, cells in body if (c := cells[j].strip()).lower() not in MISSING]
        # A column is numeric when most of its cells are numbers; a stray word in one is then
        # reported as an error rather than silently dropping the column.
        if filled and 2 * sum(map(_is_number, filled)) > len(filled):
            found.append(column)
    return tuple(found)


def _first_word(header: tuple[str, ...], body: list[tuple[int, list[str]]], keys: set[str]) -> str:
    """Where the first cell that is neither a number nor empty is, as a hint."""
    for n, cells in body:
        for column, cell in zip(header, cells, strict=False):
            text = cell.strip()
            if column not in keys and text.lower() not in MISSING and not _is_number(text):
                return f"; line {n} has {text!r} in column {column!r}"
    return ""


def _row(
    name: str,
    n: int,
    cells: list[str],
    header: tuple[str, ...],
    time_col: str,
    device_col: str | None,
    numeric: tuple[str, ...],
) -> Row:
    cell = dict(zip(header, cells, strict=True))
    stamp = cell[time_col].strip()
    if not stamp:
        raise ValidationError(f"{name}: line {n}: empty timestamp in column {time_col!r}")
    try:
        ts = parse_time(stamp)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValidationError(
            f"{name}: line {n}: cannot read the timestamp {stamp!r} in column {time_col!r} "
            "(expected ISO 8601 or epoch seconds/milliseconds)"
        ) from exc
    device = "" if device_col is None else cell[device_col].strip()
    if device_col is not None and not device:
        raise ValidationError(f"{name}: line {n}: empty device in column {device_col!r}")
    values: list[float] = []
    for column in numeric:
        text = cell[column].strip()
        if text.lower() in MISSING:
            values.append(math.nan)
        elif _is_number(text):
            values.append(float(text))
        else:
            raise ValidationError(
                f"{name}: line {n}: column {column!r} holds {text!r}, which is not a number"
            )
    return Row(n, device, ts, tuple(cells), tuple(values))
