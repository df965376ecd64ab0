"""The ``forewarn`` command as a user runs it, in child processes."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from forewarn.settings import Settings
from tests.conftest import count, env_for


def forewarn(
    settings: Settings, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cli ARGS`` (the ``forewarn`` command) with these settings; capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env_for(settings) | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _row(output: str, label: str) -> str:
    """The value cell of a summary-table row."""
    match = re.search(rf"{re.escape(label)}\s*│\s*([^│]+?)\s*│", output)
    assert match, f"no {label!r} row in:\n{output}"
    return match.group(1)


# The subprocess's own timeout (600 s) is the one that matters; pytest's default is 300 s.
@pytest.mark.timeout(900)
def test_demo_runs_for_a_duration_and_its_summary_matches_the_database(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    # A fresh database: the demo first simulates a history and trains on it (minutes on a
    # busy two-core machine), hence the long timeout.
    result = forewarn(
        settings.model_copy(update={"api_port": 0}),  # any free port: 8000 may be taken
        "demo",
        "--duration",
        "6",
        "--devices",
        "30",
        "--speedup",
        "900",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    # The console served on the demo's clock, with keys made for this run.
    assert re.search(r"console: http://127\.0\.0\.1:\d+/", result.stderr)
    shown = re.findall(r"sign in as (\w+):\s+(fw_\S+)", result.stderr)
    assert [role for role, _ in shown] == ["agent", "viewer", "admin"]
    assert count(db, "SELECT count(*) FROM api_keys WHERE name LIKE 'demo %%'") == 3
    out = result.stdout
    assert "demo summary" in out
    stored = int(_row(out, "readings stored (all runs)"))
    written = int(_row(out, "readings written (this run)"))
    # A fresh database first gets a simulated history (devices numbered from 900001) and a
    # model trained on it; the live fleet's readings are the rest.
    live = "SELECT count(*) FROM telemetry WHERE device_id !~ '-9[0-9]{5}$'"
    assert written == count(db, live) > 0
    assert stored == count(db, "SELECT count(*) FROM telemetry") > written
    assert count(db, "SELECT count(*) FROM model_versions WHERE active") == 1
    # Titles of narrow tables wrap, so match them across line breaks and padding.
    assert re.search(r"predictions\s+this\s+run", out)
    online, offline, total = map(int, re.findall(r"\d+", _row(out, "devices online / offline")))
    assert total == count(db, "SELECT count(*) FROM devices") == 30 + 300
    assert online == count(db, "SELECT count(*) FROM devices WHERE online")
    assert offline == count(db, "SELECT count(*) FROM devices WHERE NOT online")
    assert int(_row(out, "dead letters (this run)")) == count(
        db, "SELECT count(*) FROM dead_letters"
    )
    published = int(re.findall(r"\d+", _row(out, "published"))[0])
    assert int(_row(out, "messages ingested")) == published  # nothing left behind at the stop
    assert count(db, "SELECT count(*) FROM owners") > 0
    assert count(db, "SELECT count(*) FROM fault_labels WHERE source = 'simulator'") > 0
    # Acting on predictions: every figure of the summary is what the tables hold.
    assert re.search(r"acting\s+on\s+predictions", out)
    assert int(_row(out, "incidents opened")) == count(db, "SELECT count(*) FROM incidents")
    sent = re.findall(r"\d+", _row(out, "guides sent to owners"))
    owners = "SELECT count(*) FROM notifications WHERE audience = 'owner'"
    guides = owners + " AND guide_id IS NOT NULL AND incident_id IS NOT NULL"  # fault guides
    assert int(sent[0]) == count(db, guides + " AND status = 'sent'")
    assert int(sent[1]) == count(db, guides)
    welcomed = owners + " AND key LIKE 'onboarding:%%'"
    assert int(_row(out, "novices onboarded")) == count(db, welcomed) > 0
    assert int(_row(out, "ticket notices to owners")) == count(
        db, owners + " AND key LIKE 'notice:%%'"
    )
    device_tickets = int(re.findall(r"\d+", _row(out, "device tickets opened"))[0])
    assert device_tickets == count(db, "SELECT count(*) FROM tickets WHERE kind = 'device'")
    fleet = int(re.findall(r"\d+", _row(out, "fleet incidents"))[0])
    assert fleet == count(db, "SELECT count(*) FROM fleet_incidents")
    escalations = "SELECT count(*) FROM ticket_events WHERE kind = 'escalated'"
    assert int(_row(out, "escalations")) == count(db, escalations)

    # A second run against the same database acts again: a fleet of its own, numbered after
    # the first, and the first run's open work withdrawn with a note (said at the start).
    open_before = count(db, "SELECT count(*) FROM incidents WHERE closed_at IS NULL")
    again = forewarn(
        settings.model_copy(update={"api_port": 0}),
        "demo",
        "--duration",
        "20",
        "--devices",
        "30",
        "--speedup",
        "900",
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    said = re.search(
        r"previous demo runs left 30 simulated devices here \(kept as history\); withdrawn "
        r"from them: (\d+) open incidents, \d+ fleet incidents, \d+ tickets, \d+ unsent "
        r"notifications; this run's 30 devices are numbered from 31",
        " ".join(again.stderr.split()),
    )
    assert said, again.stderr
    assert int(said.group(1)) == open_before
    assert count(db, "SELECT count(*) FROM incidents WHERE outcome = 'withdrawn'") == open_before
    assert count(db, "SELECT count(*) FROM devices") == 30 + 30 + 300
    out = again.stdout
    assert int(_row(out, "incidents opened")) > 0
    assert int(re.findall(r"\d+", _row(out, "guides sent to owners"))[1]) > 0  # queued
    tickets = int(re.findall(r"\d+", _row(out, "device tickets opened"))[0])
    assert tickets + int(re.findall(r"\d+", _row(out, "fleet incidents"))[0]) > 0
    # Only the second fleet's devices (numbered 31 to 60) were acted on in the second run.
    assert (
        count(
            db,
            "SELECT count(*) FROM incidents WHERE closed_at IS NULL "
            "AND substring(device_id FROM '[0-9]+$')::int <= 30",
        )
        == 0
    )


def test_db_commands_report_what_they_did(bare_settings: Settings) -> None:
    before = forewarn(bare_settings, "db", "status")
    assert before.returncode == 0 and "none yet" in before.stdout
    migrated = forewarn(bare_settings, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18" in migrated.stdout
    again = forewarn(bare_settings, "db", "migrate")
    assert "already up to date" in again.stdout
    status = forewarn(bare_settings, "db", "status")
    assert re.search(r"schema version\s+18 of 18", status.stdout), status.stdout
    assert re.search(r"storage\s+(partitioned|timescaledb)", status.stdout)
    maintained = forewarn(bare_settings, "db", "maintain")
    assert maintained.returncode == 0, maintained.stderr


def test_bad_settings_and_unreachable_services_fail_clearly(bare_settings: Settings) -> None:
    bad_url = forewarn(bare_settings.model_copy(update={"mqtt_url": "http://x"}), "db", "status")
    assert bad_url.returncode == 2
    assert "expected mqtt://host[:port]" in bad_url.stderr
    no_db = forewarn(
        bare_settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/x"}),
        "db",
        "migrate",
    )
    assert no_db.returncode == 1
    assert "cannot connect to the database" in no_db.stderr


def test_keys_commands_create_list_and_revoke(settings: Settings) -> None:
    made = forewarn(settings, "keys", "create", "--name", "helpdesk", "--role", "integration")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("fw_") and "not shown again" in made.stderr
    listed = forewarn(settings, "keys", "list")
    assert "helpdesk" in listed.stdout and "integration" in listed.stdout
    assert secret not in listed.stdout
    bad = forewarn(settings, "keys", "create", "--name", "x", "--role", "boss")
    assert bad.returncode == 2 and "unknown role 'boss'" in bad.stderr
    assert forewarn(settings, "keys", "revoke", "1").returncode == 0
    again = forewarn(settings, "keys", "revoke", "1")
    assert again.returncode == 1 and "no active key 1" in again.stderr
