"""POST /api/v1/tickets: agents and integrations make tickets for an owner or a device, with
the standard's intake fields and, for complaints, the complaint clock. Real database; the
API's clock is the only fake."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import API_NOW

Db = psycopg.Connection[tuple[Any, ...]]
Keys = dict[str, dict[str, str]]


@pytest.fixture
def lock(db: Db) -> str:
    """A lock whose owner records a contact person and a department."""
    factories.device(db, "lock-7", owner_id="hotel")
    db.execute(
        "UPDATE owners SET contact_person = 'Li Na', department = 'Facilities' "
        "WHERE owner_id = 'hotel'"
    )
    factories.device(db, "cam-9", owner_id="someone-else")
    return "lock-7"


def at(text: str) -> datetime:
    """An API timestamp."""
    return datetime.fromisoformat(text)


def test_a_complaint_gets_the_complaint_clock(
    api_client: TestClient, keys: Keys, lock: str
) -> None:
    r = api_client.post(
        "/api/v1/tickets",
        json={
            "device_id": lock,
            "type": "complaint",
            "priority": "major",
            "symptom": "Waited two days for a call back about the lock",
            "trigger": "the ticket of last week was closed without a call",
            "channel": "phone",
        },
        headers=keys["agent"],
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["kind"], t["ticket_type"], t["urgent"], t["tier"], t["state"]) == (
        "staff",
        "complaint",
        True,
        "L1",
        "new",
    )
    assert (t["customer_id"], t["model"], t["contact_person"], t["department"]) == (
        "hotel",
        "lock-s1",
        "Li Na",
        "Facilities",
    )
    # Contact within 30 minutes (the P2's own first response is 1 h), feedback within 24 h,
    # follow-up within 7 days; the resolution stays the P2's 8 h.
    assert at(t["first_response_due"]) == API_NOW + timedelta(minutes=30)
    assert at(t["due_at"]) == API_NOW + timedelta(minutes=30)
    assert at(t["feedback_due"]) == API_NOW + timedelta(hours=24)
    assert at(t["follow_up_due"]) == API_NOW + timedelta(days=7)
    assert at(t["resolution_due"]) == API_NOW + timedelta(hours=8)
    assert t["created_by"] == "test agent" and t["trigger"].startswith("the ticket of last")
    [opened] = [e for e in t["timeline"] if e["kind"] == "opened"]
    assert opened["actor"] == "test agent" and opened["detail"]["urgent"] is True


def test_an_integration_makes_a_question_ticket_for_an_owner(
    api_client: TestClient, keys: Keys, lock: str
) -> None:
    r = api_client.post(
        "/api/v1/tickets",
        json={
            "owner_id": "hotel",
            "type": "warranty",
            "priority": "critical",
            "symptom": "Lock will not open after the battery change",
            "contact_person": "Wang Wei",
            "department": "Front desk",
        },
        headers=keys["integration"],
    )
    assert r.status_code == 201, r.text
    t = r.json()
    # P1 starts at L3; no complaint dues on a warranty ticket.
    assert (t["tier"], t["priority"], t["urgent"], t["feedback_due"]) == (
        "L3",
        "critical",
        False,
        None,
    )
    assert at(t["first_response_due"]) == API_NOW + timedelta(minutes=30)
    # An integration may not see contacts in clear; an agent may.
    assert t["contact_person"] != "Wang Wei" and t["contact_person"] is not None
    seen = api_client.get(f"/api/v1/tickets/{t['ticket_id']}", headers=keys["agent"]).json()
    assert (seen["contact_person"], seen["department"]) == ("Wang Wei", "Front desk")
    queue = api_client.get("/api/v1/tickets?kind=staff", headers=keys["viewer"]).json()
    assert [i["ticket_id"] for i in queue["items"]] == [t["ticket_id"]]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        pytest.param(
            {"type": "fault", "symptom": "x"}, 422, "owner_id or a device_id", id="nobody"
        ),
        pytest.param(
            {"device_id": "nope", "type": "fault", "symptom": "x"},
            404,
            "no device nope",
            id="unknown-device",
        ),
        pytest.param(
            {"owner_id": "nobody", "type": "fault", "symptom": "x"},
            404,
            "no owner nobody",
            id="unknown-owner",
        ),
        pytest.param(
            {"owner_id": "hotel", "device_id": "cam-9", "type": "fault", "symptom": "x"},
            409,
            "belongs to another owner",
            id="someone-elses-device",
        ),
        pytest.param(
            {
                "owner_id": "hotel",
                "type": "fault",
                "symptom": "x",
                "priority": "critical",
                "tier": "L1",
            },
            409,
            "tier L1 does not take critical (P1) tickets",
            id="p1-at-l1",
        ),
        pytest.param(
            {"owner_id": "hotel", "type": "praise", "symptom": "x"}, 422, "type", id="unknown-type"
        ),
        pytest.param(
            {"owner_id": "hotel", "type": "fault", "symptom": ""}, 422, "symptom", id="no-symptom"
        ),
    ],
)
def test_bad_tickets_get_clear_errors(
    api_client: TestClient, keys: Keys, lock: str, body: dict[str, Any], status: int, fragment: str
) -> None:
    r = api_client.post("/api/v1/tickets", json=body, headers=keys["agent"])
    assert r.status_code == status, r.text
    assert fragment in r.text


def test_a_viewer_cannot_make_tickets(api_client: TestClient, keys: Keys, lock: str) -> None:
    r = api_client.post(
        "/api/v1/tickets",
        json={"owner_id": "hotel", "type": "question", "symptom": "How do I add a fingerprint?"},
        headers=keys["viewer"],
    )
    assert r.status_code == 403
