"""The notification API through the app: the outbox with its filters, one notification with
its attempts, and targets redacted as the dispatcher redacts them (tokens never shown).

Both routes only read, so every role may call them: there is no 403 to test, only 401.
Rows are made as production makes them: guides with ``factories.guide_notification``, staff
and helpdesk rows with ``notifier.repository.enqueue``, attempts with its ``claim`` and
``finish``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from forewarn.clock import FixedClock
from forewarn.settings import Settings
from forewarn.signing import new_secret
from notifier import repository as outbox
from notifier.channels import AppriseChannel
from notifier.types import OutboundMessage, SendResult
from tests import factories
from tests.conftest import API_NOW

DB = psycopg.Connection[tuple[Any, ...]]
H = timedelta(hours=1)
TOKEN = "AAHsecretTokenXYZ"
PASSWORD = "s3cretpass"
TELEGRAM = f"tgram://123456789:{TOKEN}/987654"
JSON_WITH_PASSWORD = f"json://owner:{PASSWORD}@127.0.0.1:9/hook"


@dataclass(frozen=True, slots=True)
class Outbox:
    """The rows a test made."""

    device_id: str
    incident_id: int
    ticket_id: int
    guide: int  # to TELEGRAM: failed once, then sent
    failed: int  # to JSON_WITH_PASSWORD, failed
    staff: int
    helpdesk: int


def _message(key: str, **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "title": key,
        "body": f"body of {key}",
        "created_at": API_NOW,
        "not_before": API_NOW,
    } | fields
    return OutboundMessage(key=key, **values)


def _attempt(db: DB, settings: Settings, *, ok: bool, error: str | None = None) -> None:
    """Claim the one due row and record one attempt at it, as the dispatcher does."""
    channel = AppriseChannel(settings)
    with db.transaction():
        [row] = outbox.claim(db, worker="test", now=API_NOW, limit=5, redact=channel.redact)
    result = SendResult(ok, error, channel.redact(row.message.target))
    with db.transaction():
        outbox.finish(
            db,
            notification_id=row.notification_id,
            attempt=row.attempt,
            result=result,
            retry_in=None if ok else timedelta(0),
            at=API_NOW,
        )


@pytest.fixture
def rows(db: DB, settings: Settings) -> Outbox:
    """A guide sent on its second attempt, a failed guide, a staff alert and a helpdesk row."""
    device = factories.device(db, "lock-1")
    incident = factories.incident(db, device, opened_at=API_NOW - 3 * H)
    ticket = factories.ticket(db, device, opened_at=API_NOW - 3 * H, incident_id=incident)
    failed = factories.guide_notification(
        db, incident_id=incident, device_id=device, at=API_NOW - 2 * H, status="failed"
    )
    db.execute(
        "UPDATE notifications SET target = %s, last_error = 'HTTP 500' WHERE notification_id = %s",
        (JSON_WITH_PASSWORD, failed),
    )
    guide = factories.guide_notification(
        db, incident_id=incident, device_id=device, at=API_NOW - 1 * H, status="pending"
    )
    db.execute(
        "UPDATE notifications SET target = %s, attempts = 0 WHERE notification_id = %s",
        (TELEGRAM, guide),
    )
    _attempt(db, settings, ok=False, error="Apprise failure: HTTP 502")
    _attempt(db, settings, ok=True)
    staff = outbox.enqueue(
        db,
        message=_message(
            f"ticket:{ticket}:opened",
            channel="apprise",
            audience="staff",
            target="tag:support-l1",
            ticket_id=ticket,
            device_id=device,
            created_at=API_NOW - 30 * timedelta(minutes=1),
        ),
    )
    helpdesk = outbox.enqueue(
        db,
        message=_message(
            f"ticket:{ticket}:sink",
            channel="ticket_sink",
            audience="helpdesk",
            target="webhook",
            ticket_id=ticket,
            device_id=device,
            payload={"ticket_id": ticket, "priority": "minor"},
        ),
    )
    assert staff is not None and helpdesk is not None
    return Outbox(device, incident, ticket, guide, failed, staff, helpdesk)


def _get(client: TestClient, keys: dict[str, dict[str, str]], path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=keys["viewer"])
    assert response.status_code == 200, response.text
    return response.json()


# ---- keys ------------------------------------------------------------------------------------


def test_every_role_may_read_and_only_with_a_known_key(
    api_client: TestClient, keys: dict[str, dict[str, str]], rows: Outbox
) -> None:
    for path in ("/api/v1/notifications", f"/api/v1/notifications/{rows.guide}"):
        for headers in ({}, {"X-API-Key": "fw_not-a-key"}):
            response = api_client.get(path, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["WWW-Authenticate"] == "APIKey"
        for role in ("viewer", "agent", "integration", "admin"):
            assert api_client.get(path, headers=keys[role]).status_code == 200, (path, role)


# ---- the list --------------------------------------------------------------------------------


def test_outbox_lists_newest_first_with_targets_redacted(
    api_client: TestClient, keys: dict[str, dict[str, str]], rows: Outbox
) -> None:
    response = api_client.get("/api/v1/notifications", headers=keys["viewer"])
    assert TOKEN not in response.text and PASSWORD not in response.text
    body = response.json()
    assert body["total"] == 4 and (body["limit"], body["offset"]) == (50, 0)
    ids = [item["notification_id"] for item in body["items"]]
    assert ids == [rows.helpdesk, rows.staff, rows.guide, rows.failed]  # by created_at, desc
    by_id = {item["notification_id"]: item for item in body["items"]}
    guide = by_id[rows.guide]
    assert guide["target"].startswith("tgram://") and "987654" in guide["target"]
    assert (guide["status"], guide["attempts"], guide["audience"], guide["guide_id"]) == (
        "sent",
        2,
        "owner",
        "battery-low",
    )
    assert by_id[rows.failed]["target"] == "json://owner:****@127.0.0.1:9/..."  # path hidden
    assert by_id[rows.failed]["last_error"] == "HTTP 500"
    assert by_id[rows.staff]["target"] == "tag:support-l1"  # tags are not secret
    assert by_id[rows.helpdesk]["target"] == "webhook (no sink configured)"
    assert "body" not in guide and "payload" not in guide  # only the detail carries them


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"status": "sent"}, ["guide"], id="status"),
        pytest.param({"status": "pending"}, ["helpdesk", "staff"], id="status-pending"),
        pytest.param({"audience": "staff"}, ["staff"], id="audience"),
        pytest.param({"audience": "owner"}, ["guide", "failed"], id="audience-owner"),
        pytest.param({"channel": "ticket_sink"}, ["helpdesk"], id="channel"),
        pytest.param({"ticket_id": "ticket"}, ["helpdesk", "staff"], id="ticket"),
        pytest.param({"incident_id": "incident"}, ["guide", "failed"], id="incident"),
        pytest.param({"device_id": "lock-1", "audience": "helpdesk"}, ["helpdesk"], id="device"),
        pytest.param({"device_id": "lock-2"}, [], id="other-device"),
        pytest.param({"limit": 2, "offset": 1}, ["staff", "guide"], id="page"),
    ],
)
def test_outbox_filters(
    api_client: TestClient,
    keys: dict[str, dict[str, str]],
    rows: Outbox,
    params: dict[str, Any],
    expected: list[str],
) -> None:
    ids = {"ticket": rows.ticket_id, "incident": rows.incident_id}
    query = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    body = _get(api_client, keys, "/api/v1/notifications", **query)
    assert [item["notification_id"] for item in body["items"]] == [
        getattr(rows, name) for name in expected
    ]
    assert body["total"] == (4 if "limit" in params else len(expected))


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"audience": "everyone"},
        {"channel": "sms"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"ticket_id": "x"},
    ],
)
def test_outbox_refuses_bad_filters(
    api_client: TestClient, keys: dict[str, dict[str, str]], params: dict[str, Any]
) -> None:
    response = api_client.get("/api/v1/notifications", params=params, headers=keys["viewer"])
    assert response.status_code == 422, params


# ---- one notification ------------------------------------------------------------------------


def test_one_notification_with_its_attempts(
    api_client: TestClient, keys: dict[str, dict[str, str]], rows: Outbox
) -> None:
    response = api_client.get(f"/api/v1/notifications/{rows.guide}", headers=keys["agent"])
    assert response.status_code == 200
    assert TOKEN not in response.text
    body = response.json()
    assert (body["status"], body["title"], body["body"], body["payload"]) == (
        "sent",
        "Battery low",
        "Change it",
        {},
    )
    assert (body["incident_id"], body["device_id"]) == (rows.incident_id, rows.device_id)
    first, second = body["attempt_log"]
    assert (first["attempt"], first["ok"], first["error"]) == (
        1,
        False,
        "Apprise failure: HTTP 502",
    )
    assert (second["attempt"], second["ok"], second["error"]) == (2, True, None)
    for attempt in (first, second):
        assert attempt["target"].startswith("tgram://") and attempt["finished_at"] is not None
    assert first["target"] == body["target"]  # the list and the attempts redact alike


def test_a_helpdesk_row_shows_its_payload_and_the_sink_without_its_token(
    settings: Settings, api_clock: FixedClock, keys: dict[str, dict[str, str]], rows: Outbox
) -> None:
    sink = settings.with_overrides(
        ticket_webhook_url="https://helpdesk.example/hook?token=SECRET1",
        ticket_webhook_secret=new_secret(),
    )
    with TestClient(create_app(sink, clock=api_clock)) as client:
        response = client.get(f"/api/v1/notifications/{rows.helpdesk}", headers=keys["viewer"])
    assert response.status_code == 200 and "SECRET1" not in response.text
    body = response.json()
    assert body["target"] == "webhook https://helpdesk.example/hook"
    assert body["payload"] == {"ticket_id": rows.ticket_id, "priority": "minor"}
    assert body["attempt_log"] == []


def test_an_unknown_notification_is_a_404(
    api_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    response = api_client.get("/api/v1/notifications/999999", headers=keys["viewer"])
    assert response.status_code == 404
    assert response.json() == {"detail": "no notification 999999"}
