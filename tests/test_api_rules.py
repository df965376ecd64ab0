"""The rule API through the app: the running rule set, checking YAML with the loader's
line-numbered messages, and dry runs of a device's stored predictions that write nothing.

Every route only reads, so every role may call it: there is no 403 to test, only 401.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.rules import repository
from forewarn.clock import FixedClock
from forewarn.domain import Prediction, Segment
from forewarn.settings import Settings
from models.repository import upsert_predictions
from rules.loader import default_rules_path, load_rules
from tests import factories
from tests.conftest import API_NOW, count

DB = psycopg.Connection[tuple[Any, ...]]
RULES = load_rules()
DEFAULT_YAML = default_rules_path().read_text(encoding="utf-8")
H = timedelta(hours=1)
M = timedelta(minutes=1)
ACTING_TABLES = ("incidents", "tickets", "ticket_events", "fleet_incidents", "notifications")

ROUTES = [
    pytest.param("GET", "/api/v1/rules", None, id="get-rules"),
    pytest.param("POST", "/api/v1/rules/validate", {"yaml": DEFAULT_YAML}, id="validate"),
    pytest.param("POST", "/api/v1/rules/dry-run", {"device_id": "lock-1"}, id="dry-run"),
]


def t(text: str) -> datetime:
    """A datetime the API returned."""
    return datetime.fromisoformat(text)


def model_version(db: DB) -> int:
    """A model version row for predictions to point at."""
    row = db.execute(
        "INSERT INTO model_versions (features, horizon_h, seed, sha256, bundle) "
        "VALUES ('{}', 24, 0, 'test', '') RETURNING version"
    ).fetchone()
    assert row is not None
    return int(row[0])


def predict(db: DB, version: int, device_id: str, fault: str, at: datetime, p: float = 0.9) -> None:
    """One stored prediction, written by the scorer's own writer."""
    upsert_predictions(
        db,
        predictions=[
            Prediction(device_id, fault, at, p, 24.0, ("battery draining 3x faster",), version, 5.0)
        ],
    )


def owned_device(db: DB, device_id: str = "lock-1") -> str:
    """A device (regular owner: no activation date) whose owner has a notification target."""
    factories.device(db, device_id)
    db.execute(
        "UPDATE owners SET notify_targets = ARRAY['json://127.0.0.1:9/owner'] WHERE owner_id = %s",
        (f"owner-{device_id}",),
    )
    return device_id


def acting_rows(db: DB) -> dict[str, int]:
    """How many rows each table the responder writes holds."""
    return {table: count(db, f"SELECT count(*) FROM {table}") for table in ACTING_TABLES}


# ---- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_role_may_call_and_only_with_a_known_key(
    api_client: TestClient,
    db: DB,
    keys: dict[str, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    owned_device(db)
    for headers in ({}, {"X-API-Key": "fw_not-a-key"}):
        response = api_client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "APIKey"
        assert response.json()["detail"]
    for role in ("viewer", "agent", "integration", "admin"):
        response = api_client.request(method, path, json=body, headers=keys[role])
        assert response.status_code == 200, (role, response.text)


# ---- the running rule set --------------------------------------------------------------------


def test_get_rules_shows_the_running_rule_set_in_matching_order(
    api_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = api_client.get("/api/v1/rules", headers=keys["viewer"]).json()
    assert body["source"] == str(default_rules_path())
    assert body["yaml"] == DEFAULT_YAML
    assert body["yaml_matches"] is True
    assert [r["name"] for r in body["rules"]] == [r.name for r in RULES.rules]
    assert [r["position"] for r in body["rules"]] == list(range(1, len(RULES.rules) + 1))
    by_name = {r["name"]: r for r in body["rules"]}
    assert by_name["battery: guide, then a ticket"] == {
        "position": 7,
        "name": "battery: guide, then a ticket",
        "action": "guide_then_ticket",
        "faults": ["battery_failure"],
        "segments": [],
        "min_probability": 0.0,
        "priority": "minor",
        "priority_label": "P3",
        "tier": "L1",
        "team": "support-l1",
        "wait": "6h",
        "notify_owner": False,
        "line": _line_of(DEFAULT_YAML, '  - name: "battery: guide'),
    }
    heat = by_name["enterprise dedicated team"]
    assert (heat["action"], heat["segments"], heat["priority_label"], heat["tier"]) == (
        "ticket",
        ["enterprise"],
        "P1",
        "L3",
    )
    assert heat["wait"] is None and heat["notify_owner"] is True
    assert body["sla"] == [
        {"priority": "critical", "label": "P1", "first_response": "30m", "resolution": "4h"},
        {"priority": "major", "label": "P2", "first_response": "1h", "resolution": "8h"},
        {"priority": "minor", "label": "P3", "first_response": "2h", "resolution": "24h"},
    ]
    assert body["tiers"] == [
        {
            "tier": "L1",
            "team": "support-l1",
            "respond": None,
            "solve": "2h",
            "takes": ["major", "minor"],
        },
        {
            "tier": "L2",
            "team": "support-l2",
            "respond": "1h",
            "solve": "2h",
            "takes": ["major", "minor"],
        },
        {
            "tier": "L3",
            "team": "support-l3",
            "respond": "30m",
            "solve": "4h",
            "takes": ["critical", "major"],
        },
    ]
    assert body["calendar"] == {"timezone": "UTC", "pause": ["major", "minor"], "holidays": []}
    assert body["fleet"] == {
        "min_devices": 5,
        "window": "6h",
        "steps": [{"devices": 5, "priority": "major"}, {"devices": 20, "priority": "critical"}],
    }
    assert body["timing"] == {
        "cooldown": "12h",
        "clear_after": "1h",
        "recurrence_window": "30d",
        "warn_at": 0.8,
        "enterprise_first_response": "10m",
        "novice_days": 30,
        "senior_days": 180,
    }


def test_get_rules_says_when_the_file_was_edited_since_start(
    settings: Settings, api_clock: FixedClock, keys: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DEFAULT_YAML, encoding="utf-8")
    app = create_app(settings.with_overrides(rules_path=path), clock=api_clock)
    with TestClient(app) as client:
        body = client.get("/api/v1/rules", headers=keys["viewer"]).json()
        assert (body["source"], body["yaml_matches"]) == (str(path), True)
        edited = DEFAULT_YAML.replace("cooldown: 12h", "cooldown: 6h")
        path.write_text(edited, encoding="utf-8")
        body = client.get("/api/v1/rules", headers=keys["viewer"]).json()
        assert (body["yaml"], body["yaml_matches"]) == (edited, False)
        assert body["timing"]["cooldown"] == "12h"  # what runs until a restart


# ---- validate --------------------------------------------------------------------------------


def test_the_shipped_rule_set_is_valid(
    api_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    response = api_client.post(
        "/api/v1/rules/validate", json={"yaml": DEFAULT_YAML}, headers=keys["viewer"]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True and body["errors"] == []
    assert [r["name"] for r in body["rules"]] == [r.name for r in RULES.rules]


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# The shipped file, broken one way each; the loader's message names the line.
_TYPO = DEFAULT_YAML.replace("    wait: 6h", "    wiat: 6h", 1)
_CATCH_ALL_FIRST = DEFAULT_YAML.replace(
    "rules:\n", "rules:\n  - name: everything\n    action: guide\n", 1
)
_NO_UNIT = DEFAULT_YAML.replace("cooldown: 12h", "cooldown: 12", 1)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        pytest.param(
            _TYPO,
            _line_of(_TYPO, "    wiat"),
            'unknown key "wiat"; did you mean "wait"?',
            id="typo-in-a-key",
        ),
        pytest.param(
            _CATCH_ALL_FIRST,
            _line_of(_CATCH_ALL_FIRST, "  - name: ignore anomaly"),
            'rule "ignore anomaly hints"',
            id="unreachable-rule",
        ),
        pytest.param(_NO_UNIT, _line_of(_NO_UNIT, "cooldown: 12"), "unit", id="duration-no-unit"),
        pytest.param(
            "version: 1\nrules:\n  - name: x\n  action: ticket\n",
            4,
            "YAML syntax error",
            id="yaml-syntax",
        ),
        pytest.param("[" * 5000, 1, "nested too deeply", id="too-deep-for-pyyaml"),
    ],
)
def test_a_broken_rule_set_is_a_200_with_the_loaders_message(
    api_client: TestClient, keys: dict[str, dict[str, str]], text: str, line: int, problem: str
) -> None:
    response = api_client.post(
        "/api/v1/rules/validate",
        json={"yaml": text, "source": "mine.yaml"},
        headers=keys["viewer"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is False and body["rules"] == []
    [error] = body["errors"]
    assert error["line"] == line
    assert error["message"].startswith(f"mine.yaml:{line}: "), error["message"]
    assert problem in error["message"]


def test_unreachable_rule_message_names_both_rules(
    api_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    [error] = api_client.post(
        "/api/v1/rules/validate", json={"yaml": _CATCH_ALL_FIRST}, headers=keys["agent"]
    ).json()["errors"]
    assert "can never match" in error["message"]
    assert 'rule "everything" (line' in error["message"]
    assert error["message"].startswith("request.yaml:")  # the default source name


def test_validate_needs_yaml_text(api_client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    for body in ({}, {"yaml": None}, {"yaml": "x" * 100_001}):
        response = api_client.post("/api/v1/rules/validate", json=body, headers=keys["viewer"])
        assert response.status_code == 422, body


# ---- dry run ---------------------------------------------------------------------------------


def test_dry_run_decides_as_the_shipped_rules_and_writes_nothing(
    api_client: TestClient, db: DB, keys: dict[str, dict[str, str]]
) -> None:
    device = owned_device(db)
    version = model_version(db)
    battery, again = API_NOW - 3 * H, API_NOW - 2 * H
    link, heat = API_NOW - 90 * M, API_NOW - 1 * H
    for fault, at in (
        ("battery_failure", battery),
        ("battery_failure", again),
        ("connectivity_loss", link),
        ("overheating", heat),
    ):
        predict(db, version, device, fault, at)
    predict(db, version, device, "stuck_sensor", API_NOW - 30 * H)  # before the window
    predict(db, version, device, "reboot_loop", API_NOW + 1 * H)  # after business time now
    # A stored open incident the replay ignores: it starts from an empty history.
    factories.incident(db, device, fault="battery_failure", opened_at=API_NOW - 5 * H)
    before = acting_rows(db)

    response = api_client.post(
        "/api/v1/rules/dry-run", json={"device_id": device}, headers=keys["viewer"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert acting_rows(db) == before
    assert (body["device_id"], body["owner_id"], body["has_targets"]) == (
        device,
        f"owner-{device}",
        True,
    )
    assert body["rules_source"] == str(default_rules_path())
    assert (t(body["since"]), t(body["until"])) == (API_NOW - 24 * H, API_NOW)
    assert body["predictions"] == 4
    assert body["verdicts"] == {"open": 3, "track": 1}
    first, second, third, fourth = body["steps"]

    # A regular owner's battery prediction: the guide first, a ticket after the rule's wait.
    rule = RULES.rule_for("battery_failure", Segment.REGULAR, 0.9)
    assert rule is not None and rule.name == "battery: guide, then a ticket"
    assert (first["fault"], t(first["at"]), first["verdict"]) == (
        "battery_failure",
        battery,
        "open",
    )
    assert (first["rule"], first["action"], first["segment"], first["state"]) == (
        rule.name,
        "guide_then_ticket",
        "regular",
        "guided",
    )
    assert first["guide"] == {
        "send_at": first["at"],
        "quiet_deferred": False,
        "urgent": False,
        "onboarding": False,
    }
    assert first["ticket"] is None
    due = battery + rule.wait
    assert t(first["ticket_due_at"]) == due
    then = first["then_ticket"]
    assert (then["priority"], then["priority_label"], then["tier"], then["team"]) == (
        "minor",
        "P3",
        "L1",
        "support-l1",
    )
    assert then["guide_sent"] is True
    assert t(then["first_response_due"]) == due + 2 * H
    assert t(then["resolution_due"]) == due + 24 * H
    assert first["reasons"] == ["battery draining 3x faster"] and first["hours_to_empty"] == 5.0

    # The same fault again: the replay's own incident is open, so it is tracked.
    assert (second["verdict"], second["rule"], second["guide"]) == ("track", rule.name, None)

    # Another fault within the cooldown: its incident opens, but the owner is not told again.
    assert (third["verdict"], third["rule"], third["guide"], third["state"]) == (
        "open",
        "connectivity: guide, then a ticket",
        None,
        "watching",
    )
    assert "cooldown" in third["why"]
    assert third["then_ticket"]["guide_sent"] is False

    # Overheating: a critical ticket to L3 at once, and an urgent warning despite the cooldown.
    assert (fourth["verdict"], fourth["rule"], fourth["state"]) == (
        "open",
        "overheating is critical",
        "ticketed",
    )
    assert fourth["guide"]["urgent"] is True
    ticket = fourth["ticket"]
    assert (ticket["priority_label"], ticket["tier"], ticket["team"], ticket["guide_sent"]) == (
        "P1",
        "L3",
        "support-l3",
        False,
    )
    assert t(ticket["first_response_due"]) == heat + 30 * M
    assert t(ticket["tier_solve_due"]) == heat + 4 * H
    assert fourth["ticket_due_at"] is None and fourth["then_ticket"] is None


def test_dry_run_with_other_yaml_and_a_longer_window(
    api_client: TestClient, db: DB, keys: dict[str, dict[str, str]]
) -> None:
    device = owned_device(db)
    predict(db, model_version(db), device, "battery_failure", API_NOW - 30 * H)
    text = "version: 1\nrules:\n  - {name: all tickets, action: ticket, priority: major}\n"
    body = api_client.post(
        "/api/v1/rules/dry-run",
        json={"device_id": device, "hours": 48, "yaml": text},
        headers=keys["integration"],
    ).json()
    assert body["rules_source"] == "request.yaml"
    [step] = body["steps"]
    assert (step["rule"], step["action"], step["guide"]) == ("all tickets", "ticket", None)
    assert step["ticket"]["priority_label"] == "P2"
    short = api_client.post(
        "/api/v1/rules/dry-run", json={"device_id": device}, headers=keys["integration"]
    ).json()
    assert short["steps"] == [] and short["verdicts"] == {}


def test_dry_run_refuses_invalid_yaml_unknown_devices_and_bad_hours(
    api_client: TestClient, db: DB, keys: dict[str, dict[str, str]]
) -> None:
    device = owned_device(db)
    broken = "version: 1\nrules:\n  - name: x\n    action: tiket\n"
    response = api_client.post(
        "/api/v1/rules/dry-run", headers=keys["viewer"], json={"device_id": device, "yaml": broken}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("request.yaml:4: ")
    response = api_client.post(
        "/api/v1/rules/dry-run", json={"device_id": "nope"}, headers=keys["viewer"]
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "no device nope"}
    for hours in (0, 169):
        response = api_client.post(
            "/api/v1/rules/dry-run",
            headers=keys["viewer"],
            json={"device_id": device, "hours": hours},
        )
        assert response.status_code == 422, hours


def test_read_only_refuses_writes_and_rolls_back(db: DB) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), repository.read_only(db):
        db.execute("INSERT INTO owners (owner_id, name) VALUES ('x', 'x')")
    assert count(db, "SELECT count(*) FROM owners") == 0
    assert not db.info.transaction_status  # IDLE: nothing left open
