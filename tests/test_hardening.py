"""Issue 18's hardening, each part against the real database, broker-free: security headers
and switches of the API, keys that expire and are audited, contact details by role, owners'
targets encrypted at rest and rotated, plain text to owners, forgetting an owner, retention."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys.flows import create_key
from api.keys.types import Role
from forewarn import vault
from forewarn.clock import SystemClock
from forewarn.settings import Settings
from notifier import repository as outbox
from notifier.channels import AppriseChannel, scrub
from notifier.dispatcher import Dispatcher
from notifier.guides.plaintext import REMOVED, check_links, markdown_to_text
from notifier.types import OutboundMessage
from tests import factories
from tests.conftest import env_for
from tests.receiver import HttpReceiver

Conn = psycopg.Connection[tuple[Any, ...]]
Keys = dict[str, dict[str, str]]


def test_every_response_carries_the_security_headers(api_client: TestClient, keys: Keys) -> None:
    for path, headers in (("/console/", {}), ("/api/v1/tickets", keys["viewer"]), ("/nope", {})):
        r = api_client.get(path, headers=headers)
        policy = r.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert api_client.get("/api/v1/tickets", headers=keys["viewer"]).headers["cache-control"] == (
        "no-store"
    )
    docs = api_client.get("/docs")
    assert docs.status_code == 200 and "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "'sha256-" in docs.headers["content-security-policy"]


def test_the_console_has_no_inline_script_or_style() -> None:
    from api.app import CONSOLE_DIR

    html = (CONSOLE_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html and " style=" not in html
    for js in CONSOLE_DIR.rglob("*.js"):
        text = js.read_text()
        assert "eval(" not in text and "new Function" not in text
        assert not re.search(r"innerHTML\s*=(?!=)", text), js
        assert "sessionStorage." not in text, js


def test_docs_can_be_switched_off(settings: Settings) -> None:
    with TestClient(create_app(settings.with_overrides(api_docs=False))) as client:
        assert [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")] == [
            404,
            404,
            404,
        ]


def test_health_shows_no_internals(settings: Settings) -> None:
    down = settings.with_overrides(
        database_url="postgresql://secretuser@127.0.0.1:1/nowhere", api_pool_timeout_seconds=1
    )
    with TestClient(create_app(down)) as client:
        r = client.get("/healthz")
    assert (
        r.status_code == 503
        and "secretuser" not in r.text
        and set(r.json())
        == {
            "status",
            "schema_version",
            "now",
        }
    )


def test_keys_expire_and_every_creation_use_and_revocation_is_audited(
    api_client: TestClient, keys: Keys, db: Conn
) -> None:
    admin = keys["admin"]
    made = api_client.post(
        "/api/v1/keys",
        json={"name": "crm", "role": "integration", "expires_in_days": 30},
        headers=admin,
    ).json()
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert (
        api_client.get("/api/v1/keys/me", headers={"X-API-Key": made["secret"]}).status_code == 200
    )
    assert api_client.delete(f"/api/v1/keys/{made['key_id']}", headers=admin).status_code == 204
    assert (
        api_client.get("/api/v1/keys/me", headers={"X-API-Key": made["secret"]}).status_code == 401
    )
    audit = api_client.get(f"/api/v1/keys/audit?key_id={made['key_id']}", headers=admin).json()
    assert [e["event"] for e in reversed(audit)] == ["created", "used", "revoked"]
    assert audit[0]["actor"].endswith("(test admin)")
    # An expired key is refused.
    old = create_key(
        db, name="old", role=Role.VIEWER, expires_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 s' WHERE key_id = %s",
        (old.key.key_id,),
    )
    r = api_client.get("/api/v1/keys/me", headers={"X-API-Key": old.secret})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_contact_details_are_for_agents_and_admins(
    api_client: TestClient, keys: Keys, db: Conn
) -> None:
    factories.device(db, "lock-c1")
    tid = factories.ticket(db, "lock-c1", opened_at=datetime(2026, 11, 23, 11, tzinfo=UTC))
    db.execute("UPDATE tickets SET contact = 'ann@example.com' WHERE ticket_id = %s", (tid,))
    seen = {
        role: api_client.get(f"/api/v1/tickets/{tid}", headers=keys[role]).json()["contact"]
        for role in ("viewer", "agent", "integration", "admin")
    }
    assert seen["agent"] == seen["admin"] == "ann@example.com"
    assert "ann" not in seen["viewer"] and "ann" not in seen["integration"]
    owner = "/api/v1/owners/owner-lock-c1"
    assert (
        api_client.get(owner, headers=keys["admin"]).json()["contact"]
        == "owner-lock-c1@example.com"
    )
    assert "@" not in api_client.get(owner, headers=keys["integration"]).json()["contact"]


def test_targets_are_encrypted_at_rest_and_rotated(settings: Settings, db: Conn) -> None:
    from registry import flows

    url = "json://user:s3cret-token@127.0.0.1:9/owner"
    flows.create_owner(db, {"owner_id": "o-enc", "name": "Enc", "targets": [url]})
    [stored] = db.execute("SELECT notify_targets FROM owners WHERE owner_id = 'o-enc'").fetchone()
    assert stored[0].startswith(vault.PREFIX) and "s3cret" not in stored[0]
    outbox.enqueue(db, message=_message("k1", url))
    [target] = db.execute("SELECT target FROM notifications WHERE key = 'k1'").fetchone()
    assert target.startswith(vault.PREFIX)
    # Rotation: a new key in front, `forewarn secrets rotate`, then the old key can go.
    new = vault.new_key()
    old = settings.target_keys.get_secret_value() if settings.target_keys else ""
    both = settings.with_overrides(target_keys=f"{new},{old}")
    out = subprocess.run(
        [sys.executable, "-m", "cli", "secrets", "rotate"],
        env=env_for(both),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "1 owners' targets, 1 outbox rows" in out.stdout
    only_new = vault.Vault(new)
    [stored] = db.execute("SELECT notify_targets FROM owners WHERE owner_id = 'o-enc'").fetchone()
    assert only_new.open(stored[0]) == url
    with pytest.raises(vault.SealError):
        vault.Vault(old).open(stored[0])


def _message(key: str, target: str, body: str = "hello") -> OutboundMessage:
    now = datetime.now(UTC)
    return OutboundMessage(
        key=key,
        channel="apprise",
        audience="owner",
        target=target,
        title="Forewarn",
        body=body,
        created_at=now,
        not_before=now,
        owner_id="o-enc",
    )


def test_owners_get_plain_text_whatever_their_service_shows(settings: Settings, db: Conn) -> None:
    body = "<script>alert(1)</script> **bold** [x](https://evil.example/)"
    with HttpReceiver() as rx:
        # ?format=html: a service that shows HTML (as e-mail does) gets the text escaped.
        outbox.enqueue(
            db, message=_message("html", f"json://127.0.0.1:{rx.port}/o?format=html", body)
        )
        dispatcher = Dispatcher(settings, SystemClock())
        try:
            assert dispatcher.run_once() == 1
        finally:
            dispatcher.close()
        [got] = rx.requests("/o")
    assert got.json["message"].startswith("&lt;script&gt;alert(1)&lt;/script&gt;")
    assert "<script>" not in got.json["message"]


def test_guide_markdown_becomes_text_with_only_allowed_links() -> None:
    hosts = ("support.example.com",)
    text = markdown_to_text(
        "Press **reset** for `5 s`. See [the manual](https://support.example.com/m) or "
        "[this](https://evil.example/x) <b>now</b> ![pic](https://evil.example/p.png)",
        hosts=hosts,
    )
    assert text == (
        "Press reset for 5 s. See the manual (https://support.example.com/m) or this now pic"
    )
    firmware = "1.0 http://evil.example/update www.evil.example"
    assert check_links(f"firmware {firmware}.", hosts=hosts) == (
        f"firmware 1.0 {REMOVED} {REMOVED}."
    )


def test_errors_are_stored_without_tokens() -> None:
    said = (
        "HTTPSConnectionPool(host='h.example', port=443): Max retries exceeded with url: "
        "/hook?token=abc123 (Caused by x); see https://user:pw@h.example/p?key=zzz"
    )
    clean = scrub(said)
    assert "abc123" not in clean and "zzz" not in clean and "pw@" not in clean
    assert "h.example" in clean
    assert AppriseChannel.redact  # the same module redacts targets


def test_forgetting_an_owner_erases_every_copy(settings: Settings, db: Conn) -> None:
    factories.device(db, "lock-f1")
    tid = factories.ticket(db, "lock-f1", opened_at=datetime(2026, 11, 23, 11, tzinfo=UTC))
    db.execute(
        "UPDATE tickets SET contact = 'owner-lock-f1@example.com', customer_id = 'owner-lock-f1'"
        " WHERE ticket_id = %s",
        (tid,),
    )
    db.execute(
        "INSERT INTO ticket_events (ticket_id, at, kind, detail) VALUES "
        '(%s, now(), \'owner_reply\', \'{"text": "call me on 555-0101", "channel": "app"}\')',
        (tid,),
    )
    message = _message("f1", "json://127.0.0.1:9/x", "Dear Owner of lock-f1")
    outbox.enqueue(db, message=OutboundMessage(**{**_fields(message), "owner_id": "owner-lock-f1"}))
    dry = _forewarn(settings, "owners", "forget", "owner-lock-f1")
    assert dry.returncode == 0 and "would change" in dry.stdout
    assert db.execute("SELECT name FROM owners WHERE owner_id = 'owner-lock-f1'").fetchone() == (
        "Owner of lock-f1",
    )
    done = _forewarn(settings, "owners", "forget", "owner-lock-f1", "--yes")
    assert done.returncode == 0, done.stderr
    assert "tickets: 1" in done.stdout and "notifications: 1" in done.stdout
    everything = " ".join(
        str(r)
        for q in (
            "SELECT * FROM owners",
            "SELECT * FROM tickets",
            "SELECT * FROM ticket_events",
            "SELECT * FROM notifications",
        )
        for r in db.execute(q).fetchall()
    )
    assert "@example.com" not in everything and "555-0101" not in everything
    assert "Dear Owner" not in everything
    assert db.execute("SELECT status FROM notifications").fetchone() == ("cancelled",)


def _fields(m: OutboundMessage) -> dict[str, Any]:
    return {f: getattr(m, f) for f in OutboundMessage.__slots__}


def _forewarn(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_maintain_applies_every_retention(settings: Settings, db: Conn) -> None:
    factories.device(db, "lock-m1")
    db.execute(
        "INSERT INTO device_status_events (device_id, ts, status, source) VALUES "
        "('lock-m1', now() - interval '200 days', 'online', 't'), ('lock-m1', now(), 'online', 't')"
    )
    old = datetime.now(UTC) - timedelta(days=400)
    tid = factories.ticket(db, "lock-m1", opened_at=old)
    db.execute(
        "UPDATE tickets SET state = 'resolved', resolved_at = %s, contact = 'x@example.com' "
        "WHERE ticket_id = %s",
        (old, tid),
    )
    out = _forewarn(settings, "db", "maintain")
    assert out.returncode == 0, out.stderr
    assert "retention, status events: 1" in out.stdout and "retention, tickets: 1" in out.stdout
    assert db.execute("SELECT count(*) FROM device_status_events").fetchone() == (1,)
    assert db.execute("SELECT contact FROM tickets").fetchone() == (None,)
