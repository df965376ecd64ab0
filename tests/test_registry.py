"""The registry: importing owners and devices (good and broken files), exporting them, and
the commands that do it, against the real database."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from forewarn.errors import RecordError
from forewarn.settings import Settings
from registry import flows, importer, repository, validate
from registry.types import DeviceState, Outcome
from tests.conftest import count, env_for

DB = psycopg.Connection[tuple[Any, ...]]

OWNERS = [
    {
        "record": "owner",
        "owner_id": "o-1",
        "name": "王芳",
        "contact": "+86 138 0000 0000",
        "targets": ["json://127.0.0.1:9/owners/o-1"],
        "locale": "zh-CN",
        "time_zone": "Asia/Shanghai",
        "quiet_start": "22:00",
        "quiet_end": "07:30",
        "customer_since": "2025-06-01",
    },
    {
        "record": "owner",
        "owner_id": "hotel-9",
        "name": "Grand Hotel",
        "account_type": "enterprise",
        "enterprise_account": "grand-hotels",
        "enterprise_team": "ent-grand",
        "contact_person": "Li Wei",
        "department": "Facilities",
        "locale": "en-US",
    },
]
DEVICES = [
    {
        "device_id": "lock-100",
        "model": "lock-s2",
        "kind": "lock",
        "serial": "SN100",
        "firmware": "2.4.1",
        "owner_id": "o-1",
        "installed_at": "2025-06-02T10:00:00+08:00",
    },
    {
        "device_id": "ac-7",
        "model": "ac-x1",
        "kind": "air_conditioner",
        "owner_id": "hotel-9",
        "state": "provisioned",
    },
]


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSON lines."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_import_is_idempotent_and_counts_what_it_did(db: DB, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "fleet.jsonl", OWNERS + DEVICES)
    first = importer.import_file(db, path)
    assert (first.created, first.updated, first.unchanged, first.refused) == (4, 0, 0, ())
    again = importer.import_file(db, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    # One field changes: one update, the rest unchanged; a dry run would say so and not do it.
    changed = [*OWNERS, *DEVICES[:1], DEVICES[1] | {"serial": "SN7"}]
    dry = importer.import_file(db, jsonl(tmp_path / "v2.jsonl", changed), dry_run=True)
    assert (dry.created, dry.updated, dry.unchanged, dry.dry_run) == (0, 1, 3, True)
    assert count(db, "SELECT count(*) FROM devices WHERE serial = 'SN7'") == 0
    done = importer.import_file(db, tmp_path / "v2.jsonl")
    assert (done.updated, done.unchanged) == (1, 3)
    stored = repository.owner(db, owner_id="o-1")
    assert stored is not None and stored.time_zone == "Asia/Shanghai"
    assert stored.targets == ("json://127.0.0.1:9/owners/o-1",)
    hotel = repository.owner(db, owner_id="hotel-9")
    assert hotel is not None and (hotel.enterprise_team, hotel.department) == (
        "ent-grand",
        "Facilities",
    )
    ac = repository.device(db, device_id="ac-7")
    assert ac is not None and ac.state is DeviceState.PROVISIONED and ac.serial == "SN7"


BROKEN_CSV = """owner_id,name,locale,time_zone,quiet_start,quiet_end,account_type,enterprise_account,targets
o-ok,Ana,en-US,Europe/Lisbon,22:00,07:00,consumer,,mailto://ana:pw@example.com
o-zone,Bo,en-US,Mars/Olympus,,,consumer,,
o-quiet,Cy,en-US,UTC,22:00,,consumer,,
o-ent,Di,en-US,UTC,,,enterprise,,
o-url,Ed,en-US,UTC,,,consumer,,notascheme://x
o-ok,Ana again,en-US,UTC,,,consumer,,
o-lang,Fu,english,UTC,,,consumer,,
o-extra,Gu,en-US,UTC,,,consumer,,,surplus
"""

BROKEN_DEVICES = """{"device_id": "cam-1", "owner_id": "o-ok", "kind": "camera"}
{"device_id": "cam-2", "owner_id": "nobody"}
{"device_id": "cam+3"}
{"device_id": "cam-4", "kind": "Camera Pro"}
not json at all
{"device_id": "forewarn-ingest"}
{"device_id": "cam-5", "installed_at": "2999-01-01T00:00:00Z"}
{"device_id": "cam-6", "colour": "red"}
"""


def test_a_broken_file_names_each_line_and_field_and_keeps_the_rest(db: DB, tmp_path: Path) -> None:
    owners = tmp_path / "owners.csv"
    owners.write_text(BROKEN_CSV)
    summary = importer.import_file(db, owners)
    assert summary.created == 1  # o-ok, from line 2
    got = {r.line: (r.field, r.problem) for r in summary.refused}
    assert got[3][0] == "time_zone" and "Mars/Olympus" in got[3][1]
    assert "quiet_start and quiet_end go together" in got[4][1]
    assert "needs enterprise_account" in got[5][1]
    assert got[6][0] == "targets" and "notascheme" in got[6][1]
    assert "already appears on line 2" in got[7][1]
    assert got[8][0] == "locale"
    assert "more cells than the header" in got[9][1]
    assert len(summary.refused) == 7
    devices = importer.import_file(db, jsonl(tmp_path / "d.jsonl", []).with_name("d.jsonl"))
    assert devices.created == 0
    path = tmp_path / "devices.jsonl"
    path.write_text(BROKEN_DEVICES)
    summary = importer.import_file(db, path)
    assert summary.created == 1  # cam-1
    got = {r.line: (r.field, r.problem) for r in summary.refused}
    assert got[2] == ("owner_id", "no owner 'nobody'")
    assert got[3][0] == "device_id"
    assert got[4][0] == "kind"
    assert "not JSON" in got[5][1]
    assert got[6][0] == "device_id" and "Forewarn's own" in got[6][1]
    assert got[7] == ("installed_at", "is in the future")
    assert got[8] == ("colour", "is not a field of this record")


def test_export_then_import_changes_nothing(db: DB, tmp_path: Path) -> None:
    importer.import_file(db, jsonl(tmp_path / "fleet.jsonl", OWNERS + DEVICES))
    for what in ("owner", "device"):
        for fmt in ("jsonl", "csv"):
            out = io.StringIO()
            written = importer.export(db, out, what=what, fmt=fmt)  # type: ignore[arg-type]
            assert written == 2
            path = tmp_path / f"{what}.{fmt}"
            path.write_text(out.getvalue())
            back = importer.import_file(db, path)
            assert (back.created, back.updated, back.unchanged, back.refused) == (0, 0, 2, ())


def test_flows_refuse_what_the_registry_does_not_allow(db: DB, settings: Settings) -> None:
    flows.create_owner(db, {"owner_id": "o-1", "name": "Ana"})
    with pytest.raises(RecordError) as missing:
        flows.create_device(db, {"device_id": "lock-1", "owner_id": "o-2"})
    assert missing.value.field == "owner_id"
    made = flows.create_device(db, {"device_id": "lock-1", "owner_id": "o-1"})
    assert made.state is DeviceState.ACTIVE
    moved = flows.move(db, settings, "lock-1", DeviceState.SUSPENDED)
    assert moved.state is DeviceState.SUSPENDED
    with pytest.raises(Exception, match="cannot become suspended"):
        flows.move(db, settings, "lock-1", DeviceState.SUSPENDED)
    flows.move(db, settings, "lock-1", DeviceState.DECOMMISSIONED)
    with pytest.raises(Exception, match="is decommissioned: it cannot become active"):
        flows.move(db, settings, "lock-1", DeviceState.ACTIVE)
    assert validate.owner({"owner_id": "o-9", "name": "x"}).locale == "en-US"
    assert repository.upsert_owners(
        db, owners=[validate.owner({"owner_id": "o-1", "name": "Ana"})]
    ) == [Outcome.UNCHANGED]


def forewarn(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``forewarn`` command in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env_for(settings) | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_registry_commands(settings: Settings, db: DB, tmp_path: Path) -> None:
    good = jsonl(tmp_path / "fleet.jsonl", OWNERS + DEVICES)
    dry = forewarn(settings, "registry", "import", str(good), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "4 created, 0 updated, 0 unchanged, 0 refused (dry run" in dry.stdout
    assert count(db, "SELECT count(*) FROM owners") == 0
    done = forewarn(settings, "registry", "import", str(good))
    assert "4 created, 0 updated, 0 unchanged, 0 refused (committed)" in done.stdout
    broken = tmp_path / "owners.csv"
    broken.write_text(BROKEN_CSV)
    bad = forewarn(settings, "registry", "import", str(broken))
    assert bad.returncode == 1
    assert f"{broken}: line 3, field time_zone: unknown time zone 'Mars/Olympus'" in bad.stderr
    exported = forewarn(settings, "registry", "export", "--what", "devices")
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [d["device_id"] for d in lines] == ["ac-7", "lock-100"]
    assert lines[0]["state"] == "provisioned" and "2 devices written" in exported.stderr
