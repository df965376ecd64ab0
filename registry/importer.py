"""``forewarn registry import`` and ``export``: owners and devices as CSV or JSON lines.

An import is idempotent: each record is inserted, updated, or left alone when it equals
what is stored, and the summary counts each. Every refused record names its line and field;
the others are still taken. A dry run does the same work in a transaction it rolls back.

Formats. JSON lines: one object a line; ``"record": "owner"`` or ``"device"`` (or left out:
a line with a ``device_id`` is a device). CSV: one kind a file, told by its header (a
``device_id`` column makes it devices); empty cells are left out; ``targets`` holds Apprise
URLs separated by spaces. Owners are taken before devices, so a device may name an owner
from the same file. ``forewarn registry export`` writes what ``import`` reads.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TextIO

from forewarn.errors import ConfigError, RecordError
from registry import repository, validate
from registry.repository import Conn
from registry.types import DeviceRecord, ImportSummary, Outcome, OwnerRecord, Refusal

Kind = Literal["owner", "device"]
Format = Literal["jsonl", "csv"]


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    kind: Kind
    values: dict[str, Any]
    error: str | None = None  # the line could not even be read as a record


def import_file(conn: Conn, path: Path, *, dry_run: bool = False) -> ImportSummary:
    """Register the owners and devices of a CSV or JSON-lines file."""
    owners: dict[str, tuple[int, OwnerRecord]] = {}
    devices: dict[str, tuple[int, DeviceRecord]] = {}
    refused: list[Refusal] = []
    for line in _read(path):
        if line.error is not None:
            refused.append(Refusal(line.number, None, line.error))
            continue
        try:
            if line.kind == "owner":
                o = validate.owner(line.values)
                _once(owners, o.owner_id, line.number, o)
            else:
                d = validate.device(line.values)
                _once(devices, d.device_id, line.number, d)
        except RecordError as exc:
            refused.append(Refusal(line.number, exc.field, exc.problem))
    with conn.transaction(force_rollback=dry_run):
        known = repository.owner_ids(
            conn, among=[d.owner_id for _, d in devices.values() if d.owner_id]
        )
        known |= set(owners)
        taken: list[DeviceRecord] = []
        for number, d in devices.values():
            if d.owner_id is not None and d.owner_id not in known:
                refused.append(Refusal(number, "owner_id", f"no owner {d.owner_id!r}"))
            else:
                taken.append(d)
        outcomes = repository.upsert_owners(conn, owners=[o for _, o in owners.values()])
        outcomes += repository.upsert_devices(conn, devices=taken, registered_by="import")
    return ImportSummary(
        created=outcomes.count(Outcome.CREATED),
        updated=outcomes.count(Outcome.UPDATED),
        unchanged=outcomes.count(Outcome.UNCHANGED),
        refused=tuple(sorted(refused, key=lambda r: r.line)),
        dry_run=dry_run,
    )


def _once(seen: dict[str, tuple[int, Any]], key: str, number: int, record: object) -> None:
    if key in seen:
        raise RecordError(f"{key!r} already appears on line {seen[key][0]}", field=None)
    seen[key] = (number, record)


def _read(path: Path) -> Iterator[_Line]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    first = text.lstrip()[:1]
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or first == "{":
        yield from _json_lines(text)
    else:
        yield from _csv(text)


def _json_lines(text: str) -> Iterator[_Line]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield _Line(number, "owner", {}, f"not JSON: {exc.msg}")
            continue
        if not isinstance(body, dict):
            yield _Line(number, "owner", {}, "expected a JSON object")
            continue
        kind = body.pop("record", None) or ("device" if "device_id" in body else "owner")
        if kind not in ("owner", "device"):
            yield _Line(number, "owner", {}, f"record must be owner or device, not {kind!r}")
            continue
        yield _Line(number, "device" if kind == "device" else "owner", body)


def _csv(text: str) -> Iterator[_Line]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    kind: Kind = "device" if "device_id" in header else "owner"
    for row in reader:
        values = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        if "targets" in values:
            values["targets"] = values["targets"].split()
        extra = row.get(None)
        error = f"{len(extra)} more cells than the header has columns" if extra else None
        yield _Line(reader.line_num, kind, values, error)


def export(conn: Conn, out: TextIO, *, what: Kind, fmt: Format) -> int:
    """Write every owner or device as ``import`` reads it; returns how many."""
    rows: Iterator[OwnerRecord] | Iterator[DeviceRecord] = (
        repository.owners(conn) if what == "owner" else repository.devices(conn)
    )
    fields = validate.OwnerIn.model_fields if what == "owner" else validate.DeviceIn.model_fields
    writer = csv.DictWriter(out, fieldnames=list(fields)) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    with conn.transaction():  # the rows stream through a server-side cursor
        return _write_rows(rows, out, writer, what)


def _write_rows(
    rows: Iterator[OwnerRecord] | Iterator[DeviceRecord],
    out: TextIO,
    writer: csv.DictWriter[str] | None,
    what: Kind,
) -> int:
    count = 0
    for record in rows:
        plain = {k: _plain(v) for k, v in asdict(record).items()}
        if writer is not None:
            if isinstance(record, OwnerRecord):
                plain["targets"] = " ".join(record.targets)
            writer.writerow({k: "" if v is None else v for k, v in plain.items()})
        else:
            out.write(json.dumps({"record": what, **_present(plain)}, ensure_ascii=False) + "\n")
        count += 1
    return count


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
