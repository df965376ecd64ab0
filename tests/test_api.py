"""The API against the real database: tickets, devices, incidents, fleet health, keys, health
and metrics, with every role's limits. The clock is the only fake (``api_clock``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from forewarn.clock import FixedClock
from forewarn.schema.versions import MIGRATIONS
from notifier.tickets.types import Priority, Tier
from tests import factories
from tests.conftest import API_NOW, count

Db = psycopg.Connection[tuple[Any, ...]]
Keys = dict[str, dict[str, str]]


@pytest.fixture
def three(db: Db) -> dict[str, int]:
    """Three open tickets: breached, near breach, and with time to spare."""
    for d in ("lock-1", "lock-2", "watch-1"):
        factories.device(db, d)
    return {
        # Critical at L3: 30 min to answer; opened 40 min ago, breached 10 min ago.
        "breached": factories.ticket(
            db,
            "lock-1",
            opened_at=API_NOW - timedelta(minutes=40),
            priority=Priority.CRITICAL,
            tier=Tier.L3,
        ),
        # Minor at L1: 2 h to answer; 100 min gone, past the 80 % warning share.
        "near": factories.ticket(db, "lock-2", opened_at=API_NOW - timedelta(minutes=100)),
        "ok": factories.ticket(
            db, "watch-1", opened_at=API_NOW - timedelta(minutes=5), fault="connectivity_loss"
        ),
    }


def test_queue_orders_by_sla_urgency_and_says_how_urgent(
    api_client: TestClient, keys: Keys, three: dict[str, int]
) -> None:
    body = api_client.get("/api/v1/tickets", headers=keys["viewer"]).json()
    assert body["total"] == 3
    assert [t["ticket_id"] for t in body["items"]] == [
        three["breached"],
        three["near"],
        three["ok"],
    ]
    assert [t["urgency"] for t in body["items"]] == ["breached", "near", "ok"]
    first = body["items"][0]
    assert first["seconds_left"] == pytest.approx(-600)
    assert first["due_kind"] == "respond"
    assert body["items"][2]["seconds_left"] == pytest.approx(115 * 60)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("priority=critical", ["breached"], id="priority"),
        pytest.param("fault=connectivity_loss", ["ok"], id="fault"),
        pytest.param("device_id=lock-2", ["near"], id="device"),
        pytest.param("tier=L3", ["breached"], id="tier"),
        pytest.param("state=resolved", [], id="state"),
        pytest.param("sort=-opened", ["ok", "breached", "near"], id="newest-first"),
        pytest.param("sort=urgency&limit=1&offset=1", ["near"], id="paging"),
    ],
)
def test_queue_filters(
    api_client: TestClient, keys: Keys, three: dict[str, int], query: str, expected: list[str]
) -> None:
    body = api_client.get(f"/api/v1/tickets?{query}", headers=keys["viewer"]).json()
    assert [t["ticket_id"] for t in body["items"]] == [three[n] for n in expected]


def test_queue_rejects_unknown_filter_values(api_client: TestClient, keys: Keys) -> None:
    r = api_client.get("/api/v1/tickets?priority=urgent", headers=keys["viewer"])
    assert r.status_code == 422
    assert "priority" in str(r.json()["detail"])


def test_ticket_detail_has_prediction_guides_and_timeline(
    api_client: TestClient, keys: Keys, db: Db
) -> None:
    factories.device(db, "lock-9")
    opened = API_NOW - timedelta(hours=1)
    inc = factories.incident(db, "lock-9", opened_at=opened - timedelta(hours=6))
    factories.guide_notification(
        db, incident_id=inc, device_id="lock-9", at=opened - timedelta(hours=6)
    )
    tid = factories.ticket(db, "lock-9", opened_at=opened, incident_id=inc)
    body = api_client.get(f"/api/v1/tickets/{tid}", headers=keys["viewer"]).json()
    assert body["prediction"]["incident_id"] == inc
    assert body["prediction"]["reasons"] == [
        "battery fell 12 % in 6 h",
        "voltage sagging under load",
    ]
    assert [g["status"] for g in body["guides"]] == ["sent"]
    assert [e["kind"] for e in body["timeline"]] == ["opened"]
    assert api_client.get("/api/v1/tickets/999999", headers=keys["viewer"]).status_code == 404


def test_agent_works_a_ticket_through_its_life(
    api_client: TestClient, keys: Keys, db: Db, api_clock: FixedClock
) -> None:
    factories.device(db, "lock-3")
    tid = factories.ticket(db, "lock-3", opened_at=API_NOW - timedelta(minutes=20))
    agent = keys["agent"]

    def post(action: str, body: dict[str, Any]) -> dict[str, Any]:
        r = api_client.post(f"/api/v1/tickets/{tid}/{action}", json=body, headers=agent)
        assert r.status_code == 200, r.text
        return dict(r.json())

    # Taking a ticket up is not a response to the customer; calling them is.
    assert post("acknowledge", {})["first_response_at"] is None
    api_clock.advance(timedelta(minutes=5))
    called = post("contact", {"how": "call", "text": "battery check by phone"})
    assert called["first_response_at"] == "2026-11-23T12:05:00Z"
    assert post("assign", {"assignee": "mei"})["assignee"] == "mei"
    post("comment", {"text": "called the owner"})
    api_clock.advance(timedelta(minutes=30))
    escalated = post("escalate", {"reason": "needs an expert"})
    assert (escalated["tier"], escalated["team"], escalated["escalations"]) == (
        "L2",
        "support-l2",
        1,
    )
    assert escalated["state"] == "acknowledged"
    resolved = post("resolve", {"code": "part_replaced", "note": "new battery"})
    assert (resolved["state"], resolved["resolution_code"]) == ("resolved", "part_replaced")
    assert resolved["urgency"] == "done"
    assert post("close", {})["state"] == "closed"
    assert post("reopen", {"note": "battery drains again"})["reopened"] == 1
    kinds = [e["kind"] for e in post("start", {})["timeline"]]
    # The owner has no notification target: each notice says so on the timeline.
    assert kinds == [
        "opened",
        "acknowledge",
        "contact",
        "assigned",
        "comment",
        "escalated",
        "owner_notified",
        "resolve",
        "owner_notified",
        "close",
        "reopen",
        "owner_notified",
        "start",
    ]
    actors = {
        e["actor"]
        for e in api_client.get(f"/api/v1/tickets/{tid}", headers=agent).json()["timeline"][1:]
        if e["kind"] != "owner_notified"
    }
    assert actors == {"test agent"}


@pytest.mark.parametrize(
    ("action", "body", "status", "message"),
    [
        pytest.param("close", {}, 409, "cannot close a ticket that is new", id="close-new"),
        pytest.param("resolve", {}, 422, "code", id="resolve-without-code"),
        pytest.param("resolve", {"code": "magic"}, 422, "code", id="unknown-code"),
        pytest.param("assign", {"assignee": ""}, 422, "assignee", id="empty-assignee"),
        pytest.param("comment", {"text": ""}, 422, "text", id="empty-comment"),
    ],
)
def test_bad_actions_get_clear_errors(
    api_client: TestClient,
    keys: Keys,
    db: Db,
    action: str,
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    factories.device(db, "lock-4")
    tid = factories.ticket(db, "lock-4", opened_at=API_NOW - timedelta(minutes=5))
    r = api_client.post(f"/api/v1/tickets/{tid}/{action}", json=body, headers=keys["agent"])
    assert r.status_code == status
    assert message in str(r.json()["detail"])
    assert count(db, "SELECT count(*) FROM ticket_events WHERE ticket_id = %s", tid) == 1


def test_escalating_past_l3_is_a_conflict(api_client: TestClient, keys: Keys, db: Db) -> None:
    factories.device(db, "lock-5")
    tid = factories.ticket(
        db, "lock-5", opened_at=API_NOW, priority=Priority.CRITICAL, tier=Tier.L3
    )
    r = api_client.post(f"/api/v1/tickets/{tid}/escalate", json={}, headers=keys["agent"])
    assert (r.status_code, r.json()["detail"]) == (
        409,
        f"ticket {tid} is already at L3, the top tier",
    )


@pytest.mark.parametrize(
    ("verdict", "state", "labels"),
    [
        pytest.param("false_alarm", "resolved", [("false_alarm",)], id="false-alarm-resolves"),
        pytest.param("confirmed", "new", [("confirmed",)], id="confirmed-keeps-it-open"),
    ],
)
def test_feedback_becomes_a_training_label(
    api_client: TestClient, keys: Keys, db: Db, verdict: str, state: str, labels: list[tuple[str]]
) -> None:
    from models.repository import load_labels

    factories.device(db, "lock-6")
    opened = API_NOW - timedelta(hours=2)
    tid = factories.ticket(db, "lock-6", opened_at=opened)
    r = api_client.post(
        f"/api/v1/tickets/{tid}/feedback", json={"verdict": verdict}, headers=keys["integration"]
    )
    assert (r.status_code, r.json()["state"], r.json()["feedback"]) == (200, state, verdict)
    rows = db.execute("SELECT verdict FROM fault_labels WHERE source = 'staff'").fetchall()
    assert rows == labels
    # What `forewarn train` reads: a staff false alarm counts against the episode.
    got = load_labels(db, since=opened - timedelta(days=1), until=API_NOW + timedelta(days=1))
    assert (got.staff_confirmed, got.staff_false_alarms) == (
        (1, 0) if verdict == "confirmed" else (0, 1)
    )


ACTIONS = [
    "acknowledge",
    "start",
    "close",
    "reopen",
    "assign",
    "comment",
    "escalate",
    "resolve",
    "feedback",
]


@pytest.mark.parametrize("action", ACTIONS)
def test_a_viewer_cannot_act_on_tickets(
    api_client: TestClient, keys: Keys, db: Db, action: str
) -> None:
    factories.device(db, "lock-7")
    tid = factories.ticket(db, "lock-7", opened_at=API_NOW)
    body = {"assignee": "x", "text": "x", "code": "other", "verdict": "confirmed"}
    r = api_client.post(f"/api/v1/tickets/{tid}/{action}", json=body, headers=keys["viewer"])
    assert r.status_code == 403
    assert r.json()["detail"] == "a viewer key may not act tickets"
    assert count(db, "SELECT count(*) FROM ticket_events WHERE ticket_id = %s", tid) == 1


ROUTES = [
    ("GET", "/api/v1/tickets"),
    ("GET", "/api/v1/tickets/1"),
    ("POST", "/api/v1/tickets/1/resolve"),
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/devices/x"),
    ("GET", "/api/v1/devices/x/telemetry"),
    ("GET", "/api/v1/predictions"),
    ("GET", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents/1"),
    ("GET", "/api/v1/fleet/incidents"),
    ("GET", "/api/v1/fleet/health"),
    ("GET", "/api/v1/keys/me"),
    ("GET", "/api/v1/keys"),
    ("POST", "/api/v1/keys"),
    ("DELETE", "/api/v1/keys/1"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no-key"), pytest.param({"X-API-Key": "fw_not-a-key"}, id="wrong-key")],
)
def test_every_route_needs_a_valid_key(
    api_client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    r = api_client.request(method, path, headers=headers, json={})
    assert r.status_code == 401
    assert r.json()["detail"] in (
        "missing API key: send it in the X-API-Key header",
        "unknown API key",
    )


def test_keys_are_stored_hashed_and_can_be_revoked(
    api_client: TestClient, keys: Keys, db: Db
) -> None:
    admin = keys["admin"]
    made = api_client.post(
        "/api/v1/keys", json={"name": "helpdesk", "role": "integration"}, headers=admin
    )
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert secret.startswith("fw_") and len(secret) > 40
    assert (
        count(
            db,
            "SELECT count(*) FROM api_keys WHERE sha256 = encode(sha256(%s::bytea), 'hex')",
            secret.encode(),
        )
        == 1
    )
    assert (
        count(db, "SELECT count(*) FROM api_keys WHERE prefix = %s OR sha256 = %s", secret, secret)
        == 0
    )
    me = api_client.get("/api/v1/keys/me", headers={"X-API-Key": secret}).json()
    assert (me["name"], me["role"]) == ("helpdesk", "integration")
    assert "act_tickets" in me["permissions"] and "edit_guides" not in me["permissions"]
    listed = api_client.get("/api/v1/keys", headers=admin).json()
    assert "secret" not in listed[0] and len(listed) == len(keys) + 1  # one per role, and this
    assert (
        api_client.delete(f"/api/v1/keys/{made.json()['key_id']}", headers=admin).status_code == 204
    )
    r = api_client.get("/api/v1/keys/me", headers={"X-API-Key": secret})
    assert (r.status_code, r.json()["detail"]) == (401, f"API key {secret[:10]}… was revoked")
    assert (
        api_client.delete(f"/api/v1/keys/{made.json()['key_id']}", headers=admin).status_code == 404
    )


@pytest.mark.parametrize("role", ["viewer", "agent", "integration"])
def test_only_admins_manage_keys(api_client: TestClient, keys: Keys, role: str) -> None:
    assert api_client.get("/api/v1/keys", headers=keys[role]).status_code == 403
    r = api_client.post("/api/v1/keys", json={"name": "x", "role": "admin"}, headers=keys[role])
    assert r.status_code == 403


def test_devices_list_filters_and_health(api_client: TestClient, keys: Keys, db: Db) -> None:
    factories.device(db, "lock-a", online=True)
    factories.device(db, "lock-b", online=False)
    factories.device(db, "cam-a", model="cam-c2", firmware="3.1.0", kind="camera")
    factories.incident(db, "lock-a", opened_at=API_NOW, state="guided")
    factories.ticket(db, "cam-a", opened_at=API_NOW)
    v = keys["viewer"]
    health = {
        d["device_id"]: d["health"]
        for d in api_client.get("/api/v1/devices", headers=v).json()["items"]
    }
    assert health == {"cam-a": "faulty", "lock-a": "at_risk", "lock-b": "offline"}
    assert api_client.get("/api/v1/devices?health=faulty", headers=v).json()["total"] == 1
    worst = api_client.get("/api/v1/devices?sort=health", headers=v).json()["items"]
    assert [d["device_id"] for d in worst] == ["cam-a", "lock-a", "lock-b"]
    assert [
        d["device_id"]
        for d in api_client.get("/api/v1/devices?model=lock-s1&q=B", headers=v).json()["items"]
    ] == ["lock-b"]
    detail = api_client.get("/api/v1/devices/lock-a", headers=v).json()
    assert detail["owner_name"] == "Owner of lock-a" and detail["latest"] is None
    assert [i["state"] for i in detail["incidents"]] == ["guided"]
    assert api_client.get("/api/v1/devices/nope", headers=v).status_code == 404


def test_telemetry_in_buckets(api_client: TestClient, keys: Keys, db: Db) -> None:
    factories.device(db, "lock-t")
    start = API_NOW - timedelta(hours=24)
    assert factories.readings(db, "lock-t", start=start, minutes=24 * 60) == 1440
    v = keys["viewer"]
    day = api_client.get("/api/v1/devices/lock-t/telemetry", headers=v).json()
    assert day["bucket_seconds"] == 300  # 24 h in at most 300 points
    assert len(day["points"]) == 288 and sum(p["readings"] for p in day["points"]) == 1440
    hour = api_client.get(
        "/api/v1/devices/lock-t/telemetry",
        params={
            "since": (API_NOW - timedelta(hours=1)).isoformat(),
            "until": API_NOW.isoformat(),
            "bucket": 600,
        },
        headers=v,
    ).json()
    assert [p["readings"] for p in hour["points"]] == [10] * 6
    # Lowest battery in the bucket: readings fall 0.05 % each, the last of 1440 is the lowest.
    assert hour["points"][-1]["battery_pct"] == pytest.approx(80.0 - 0.05 * 1439, abs=1e-3)
    latest = api_client.get("/api/v1/devices/lock-t", headers=v).json()["latest"]
    assert latest["ts"] == (API_NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param(
            {"since": "2026-11-23T12:00:00Z", "until": "2026-11-23T11:00:00Z"},
            "since must be before until",
            id="backwards",
        ),
        pytest.param({"since": "2026-09-01T00:00:00Z"}, "at most 31 days", id="too-long"),
        pytest.param(
            {"bucket": 1, "since": "2026-11-20T00:00:00Z"},
            "more than 5000 points",
            id="too-many-points",
        ),
    ],
)
def test_telemetry_range_errors(
    api_client: TestClient, keys: Keys, db: Db, params: dict[str, Any], message: str
) -> None:
    factories.device(db, "lock-t")
    r = api_client.get("/api/v1/devices/lock-t/telemetry", params=params, headers=keys["viewer"])
    assert r.status_code == 422 and message in r.json()["detail"]


def test_incidents_and_fleet_health(api_client: TestClient, keys: Keys, db: Db) -> None:
    for i in range(3):
        factories.device(
            db, f"cam-{i}", model="cam-c2", firmware="3.1.0", kind="camera", online=i < 2
        )
    factories.device(db, "lock-z")
    inc = factories.incident(db, "cam-0", opened_at=API_NOW - timedelta(hours=1), state="watching")
    factories.ticket(db, "cam-1", opened_at=API_NOW)
    db.execute(
        "INSERT INTO fleet_incidents (model, firmware, fault, opened_at, devices, priority) "
        "VALUES ('cam-c2', '3.1.0', 'reboot_loop', %s, 3, 'major')",
        (API_NOW,),
    )
    v = keys["viewer"]
    page = api_client.get("/api/v1/incidents", headers=v).json()
    assert page["total"] == 2 and page["items"][1]["incident_id"] == inc
    assert (
        api_client.get(f"/api/v1/incidents/{inc}", headers=v).json()["reasons"][0]
        == "battery fell 12 % in 6 h"
    )
    assert api_client.get("/api/v1/incidents/99999", headers=v).status_code == 404
    health = api_client.get("/api/v1/fleet/health", headers=v).json()
    assert health["devices"] == {"total": 4, "online": 3, "offline": 1, "at_risk": 1, "faulty": 1}
    cams = next(c for c in health["by_cohort"] if c["model"] == "cam-c2")
    assert (cams["total"], cams["online"], cams["at_risk"], cams["faulty"]) == (3, 2, 1, 1)
    assert [f["fault"] for f in health["fleet_incidents"]] == ["reboot_loop"]
    assert len(api_client.get("/api/v1/fleet/incidents", headers=v).json()) == 1


def test_predictions_route(api_client: TestClient, keys: Keys, db: Db) -> None:
    factories.device(db, "lock-p")
    db.execute(
        "INSERT INTO model_versions (trained_from, trained_to, features, horizon_h, seed, training, "
        "evaluation, thresholds, sha256, bundle) VALUES (now(), now(), '{}', 24, 1, '{}', '{}', '{}', 'x', '')"
    )
    version = count(db, "SELECT max(version) FROM model_versions")
    for fault, p in (("battery_failure", 0.9), ("overheating", 0.2)):
        db.execute(
            "INSERT INTO predictions (device_id, fault, window_start, probability, max_probability, "
            "horizon_h, reasons, model_version, first_at, last_at) "
            "VALUES ('lock-p', %s, %s, %s, %s, 24, '{because}', %s, %s, %s)",
            (fault, API_NOW, p, p, version, API_NOW, API_NOW),
        )
    v = keys["viewer"]
    got = api_client.get("/api/v1/predictions?min_probability=0.5", headers=v).json()
    assert [(p["fault"], p["reasons"]) for p in got] == [("battery_failure", ["because"])]
    assert len(api_client.get("/api/v1/predictions?device_id=lock-p", headers=v).json()) == 2


def test_health_needs_no_key_and_metrics_a_token(
    settings: Any, api_clock: Any, keys: Keys, three: dict[str, int]
) -> None:
    from api.app import create_app

    token = settings.with_overrides(metrics_token="scrape-me-please")
    with TestClient(create_app(token, clock=api_clock)) as api_client:
        health = api_client.get("/healthz").json()
        assert (health["status"], health["schema_version"]) == ("ok", MIGRATIONS[-1].version)
        console = api_client.get("/console/")
        assert console.status_code == 200 and console.headers["cache-control"] == "no-cache"
        api_client.get("/api/v1/tickets", headers=keys["viewer"])
        assert api_client.get("/metrics").status_code == 401
        wrong = api_client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        text = api_client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"}).text
    assert 'forewarn_tickets_open{priority="critical"} 1.0' in text
    assert 'forewarn_tickets_open{priority="minor"} 2.0' in text
    assert 'forewarn_devices{status="online"} 3.0' in text
    assert (
        'forewarn_api_requests_total{method="GET",route="/api/v1/tickets",status="200"} 1.0' in text
    )


def test_metrics_include_an_in_process_ingester(settings: Any) -> None:
    from api.app import create_app
    from ingest.metrics import IngestMetrics

    settings = settings.with_overrides(metrics_token="t0ken")
    ingest = IngestMetrics()
    ingest.messages.labels("written").inc(7)
    with TestClient(create_app(settings, registries=[ingest.registry])) as client:
        assert (
            'forewarn_ingest_messages_total{outcome="written"} 7.0'
            in client.get("/metrics", headers={"Authorization": "Bearer t0ken"}).text
        )


def test_errors_are_json_with_a_message(api_client: TestClient, keys: Keys) -> None:
    r = api_client.get("/api/v1/nowhere", headers=keys["viewer"])
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    openapi = api_client.get("/openapi.json").json()
    missing = [
        f"{m.upper()} {p}"
        for p, ops in openapi["paths"].items()
        for m, op in ops.items()
        if not op.get("summary") or not op.get("description", op.get("summary"))
    ]
    assert missing == []


def test_resolving_closes_the_incidents_behind_the_ticket(
    api_client: TestClient, keys: Keys, db: Db
) -> None:
    for i in range(2):
        factories.device(db, f"cam-{i}", model="cam-c2", firmware="3.1.0", kind="camera")
    fleet = count(
        db,
        "INSERT INTO fleet_incidents (model, firmware, fault, opened_at, devices, priority) "
        "VALUES ('cam-c2', '3.1.0', 'reboot_loop', %s, 2, 'major') RETURNING fleet_incident_id",
        API_NOW,
    )
    incidents = [
        factories.incident(db, f"cam-{i}", fault="reboot_loop", opened_at=API_NOW) for i in range(2)
    ]
    db.execute("UPDATE incidents SET fleet_incident_id = %s", (fleet,))
    tid = factories.ticket(
        db, "cam-0", opened_at=API_NOW, fault="reboot_loop", incident_id=incidents[0]
    )
    db.execute(
        "UPDATE tickets SET kind = 'fleet', fleet_incident_id = %s, device_id = NULL WHERE ticket_id = %s",
        (fleet, tid),
    )
    r = api_client.post(
        f"/api/v1/tickets/{tid}/resolve", json={"code": "firmware_update"}, headers=keys["agent"]
    )
    assert r.status_code == 200
    assert r.json()["timeline"][-1]["detail"]["incidents_closed"] == 2
    rows = db.execute(
        "SELECT state, outcome, closed_at FROM incidents ORDER BY incident_id"
    ).fetchall()
    assert rows == [("closed", "ticket_closed", API_NOW)] * 2
    assert count(db, "SELECT count(*) FROM fleet_incidents WHERE closed_at IS NULL") == 0
    # A new prediction for the device can open a new incident (the old one no longer blocks it).
    factories.incident(db, "cam-0", fault="reboot_loop", opened_at=API_NOW + timedelta(hours=1))
