"""Owners' replies relayed to POST /api/v1/inbound/{channel}: signed requests (good, forged,
replayed, stale), matched to the owner and the conversation they answer, against the real
database through the app (TestClient). The signatures are made with the Standard Webhooks
scheme a relay would use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from forewarn.clock import FixedClock
from forewarn.settings import Settings
from forewarn.signing import Signer, new_secret
from tests import factories
from tests.conftest import API_NOW, count

DB = psycopg.Connection[tuple[Any, ...]]
SECRET = new_secret()
M = timedelta(minutes=1)
D = timedelta(days=1)


@pytest.fixture
def relay(settings: Settings, api_clock: FixedClock) -> Iterator[TestClient]:
    """The app with one relay configured: channel 'wecom'."""
    live = settings.with_overrides(inbound_secrets={"wecom": SECRET})
    with TestClient(create_app(live, clock=api_clock)) as client:
        yield client


def post(
    client: TestClient,
    body: dict[str, Any] | bytes,
    *,
    message_id: str,
    secret: str = SECRET,
    at: datetime | None = None,
    channel: str = "wecom",
) -> Any:
    """Post a message the way a relay signs it (webhook-id, -timestamp, -signature)."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = Signer(secret).headers(message_id=message_id, body=raw, at=at or datetime.now(UTC))
    return client.post(
        f"/api/v1/inbound/{channel}",
        content=raw,
        headers=headers | {"Content-Type": "application/json"},
    )


def timeline(db: DB, ticket_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db.execute(
        "SELECT kind, actor, detail FROM ticket_events WHERE ticket_id = %s ORDER BY event_id",
        (ticket_id,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_a_signed_reply_joins_its_ticket_once(relay: TestClient, db: DB) -> None:
    factories.device(db, "lock-1")
    tid = factories.ticket(db, "lock-1", opened_at=API_NOW - 30 * M)
    body = {"sender": " Owner-lock-1@Example.com", "text": f"Still beeping, about #{tid}."}
    first = post(relay, body, message_id="wx-1")
    assert first.status_code == 200, first.text
    assert first.json() == {
        "message_id": "wx-1",
        "outcome": "added",
        "owner_id": "owner-lock-1",
        "ticket_id": tid,
        "incident_id": None,
    }
    assert timeline(db, tid)[-1] == (
        "owner_reply",
        "owner:owner-lock-1",
        {"text": f"Still beeping, about #{tid}.", "channel": "wecom"},
    )
    # The relay retries (or someone replays the captured request): nothing happens twice.
    again = post(relay, body, message_id="wx-1")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert count(db, "SELECT count(*) FROM ticket_events WHERE kind = 'owner_reply'") == 1
    assert count(db, "SELECT count(*) FROM inbound_messages") == 1


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        pytest.param({"secret": new_secret()}, 401, "no signature matches", id="forged"),
        pytest.param(
            {"at": datetime.now(UTC) - 10 * M}, 401, "at most 300 s is accepted", id="stale"
        ),
        pytest.param({"channel": "dingtalk"}, 404, "no relay is configured", id="unknown-relay"),
    ],
)
def test_unsigned_forged_or_stale_requests_change_nothing(
    relay: TestClient, db: DB, kwargs: dict[str, Any], status: int, detail: str
) -> None:
    factories.device(db, "lock-2")
    tid = factories.ticket(db, "lock-2", opened_at=API_NOW - 30 * M)
    r = post(relay, {"owner_id": "owner-lock-2", "text": "help"}, message_id="m1", **kwargs)
    assert r.status_code == status
    assert detail in r.json()["detail"]
    unsigned = relay.post("/api/v1/inbound/wecom", json={"owner_id": "owner-lock-2", "text": "x"})
    assert unsigned.status_code == 401
    assert "missing header(s) webhook-id" in unsigned.json()["detail"]
    assert count(db, "SELECT count(*) FROM inbound_messages") == 0
    assert [k for k, _, _ in timeline(db, tid)] == ["opened"]


def test_a_body_changed_after_signing_is_forged(relay: TestClient, db: DB) -> None:
    raw = json.dumps({"owner_id": "owner-x", "text": "fine"}).encode()
    headers = Signer(SECRET).headers(message_id="m2", body=raw, at=datetime.now(UTC))
    tampered = raw.replace(b"fine", b"refund me")
    r = relay.post("/api/v1/inbound/wecom", content=tampered, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Signature"


def test_a_signed_but_malformed_message_is_refused(relay: TestClient, db: DB) -> None:
    for body in (b"not json", b'{"text": "   "}', b'{"owner_id": "o"}'):
        r = post(relay, body, message_id=f"bad-{len(body)}")
        assert r.status_code == 422, (body, r.text)
    assert count(db, "SELECT count(*) FROM inbound_messages") == 0


def test_a_reply_to_a_waiting_ticket_puts_it_back_in_progress(
    relay: TestClient, db: DB, keys: dict[str, dict[str, str]]
) -> None:
    factories.device(db, "lock-3")
    tid = factories.ticket(db, "lock-3", opened_at=API_NOW - 30 * M)
    asked = relay.post(
        f"/api/v1/tickets/{tid}/wait",
        json={"request": "Which batteries did you put in?"},
        headers=keys["agent"],
    )
    assert asked.json()["state"] == "waiting"
    # No ticket number in the text: the owner's latest conversation is this ticket.
    r = post(relay, {"owner_id": "owner-lock-3", "text": "AA alkaline"}, message_id="m3")
    assert r.json()["outcome"] == "added" and r.json()["ticket_id"] == tid
    detail = relay.get(f"/api/v1/tickets/{tid}", headers=keys["viewer"]).json()
    assert detail["state"] == "in_progress"
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[-4:] == ["wait", "owner_notified", "owner_reply", "start"]


def test_a_reply_after_the_resolution_reopens_within_the_window_only(
    relay: TestClient, db: DB, api_clock: FixedClock, keys: dict[str, dict[str, str]]
) -> None:
    factories.device(db, "lock-4")
    tid = factories.ticket(db, "lock-4", opened_at=API_NOW - 60 * M)
    relay.post(
        f"/api/v1/tickets/{tid}/resolve", json={"code": "part_replaced"}, headers=keys["agent"]
    )
    api_clock.advance(2 * D)
    r = post(
        relay, {"owner_id": "owner-lock-4", "text": f"#{tid} it is dead again"}, message_id="m4"
    )
    assert r.json()["outcome"] == "reopened"
    row = db.execute("SELECT state, reopened FROM tickets WHERE ticket_id = %s", (tid,)).fetchone()
    assert row == ("new", 1)
    # Resolved again, and the owner writes 31 days later: a new ticket that follows it.
    relay.post(f"/api/v1/tickets/{tid}/resolve", json={"code": "other"}, headers=keys["agent"])
    api_clock.advance(31 * D)
    late = post(relay, {"owner_id": "owner-lock-4", "text": f"#{tid} again"}, message_id="m5")
    assert late.json()["outcome"] == "opened"
    new = late.json()["ticket_id"]
    kind, recurrence, device = db.execute(
        "SELECT kind, recurrence_of, device_id FROM tickets WHERE ticket_id = %s", (new,)
    ).fetchone() or (None, None, None)
    assert (kind, recurrence, device) == ("owner", tid, "lock-4")


def test_a_message_with_no_conversation_opens_a_ticket_with_sla(
    relay: TestClient, db: DB, keys: dict[str, dict[str, str]]
) -> None:
    factories.device(db, "watch-9", model="watch-w1", kind="watch", firmware="1.4.2")
    r = post(
        relay,
        {"sender": "owner-watch-9@example.com", "text": "手表充不进电了"},
        message_id="m6",
    )
    assert r.json()["outcome"] == "opened"
    t = relay.get(f"/api/v1/tickets/{r.json()['ticket_id']}", headers=keys["viewer"]).json()
    assert (t["kind"], t["fault"], t["priority"], t["tier"], t["opened_tier"]) == (
        "owner",
        "owner_message",
        "minor",
        "L1",
        "L1",
    )
    assert (t["device_id"], t["customer_id"], t["symptom"]) == (
        "watch-9",
        "owner-watch-9",
        "手表充不进电了",
    )
    assert t["first_response_due"] == "2026-11-23T14:00:00Z"  # P3: within 2 hours
    assert [e["kind"] for e in t["timeline"]] == ["opened", "owner_reply", "owner_notified"]


def test_a_reply_to_a_guide_opens_the_incidents_ticket_now(relay: TestClient, db: DB) -> None:
    factories.device(db, "lock-5")
    incident = factories.incident(db, "lock-5", opened_at=API_NOW - 40 * M, state="guided")
    db.execute(
        "UPDATE incidents SET guide_sent_at = %s, ticket_due_at = %s WHERE incident_id = %s",
        (API_NOW - 39 * M, API_NOW + 3 * 60 * M, incident),
    )
    factories.guide_notification(db, incident_id=incident, device_id="lock-5", at=API_NOW - 39 * M)
    r = post(relay, {"owner_id": "owner-lock-5", "text": "did all steps, no luck"}, message_id="m7")
    assert (r.json()["outcome"], r.json()["incident_id"]) == ("opened", incident)
    row = db.execute(
        "SELECT t.kind, t.incident_id, t.guide_sent, i.state FROM tickets t "
        "JOIN incidents i USING (incident_id) WHERE t.ticket_id = %s",
        (r.json()["ticket_id"],),
    ).fetchone()
    assert row == ("device", incident, True, "ticketed")


def test_a_sender_nobody_knows_is_kept_and_nothing_else(relay: TestClient, db: DB) -> None:
    r = post(relay, {"sender": "stranger@example.org", "text": "hello?"}, message_id="m8")
    assert r.json() == {
        "message_id": "m8",
        "outcome": "unmatched",
        "owner_id": None,
        "ticket_id": None,
        "incident_id": None,
    }
    assert db.execute("SELECT sender, outcome FROM inbound_messages").fetchone() == (
        "stranger@example.org",
        "unmatched",
    )
    assert count(db, "SELECT count(*) FROM tickets") == 0
