"""The registry API: owners and devices for integration and admin keys, device states, dead
letters; through TestClient on the real database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import privacy

Db = psycopg.Connection[tuple[Any, ...]]
Keys = dict[str, dict[str, str]]

OWNER = {
    "owner_id": "hotel-9",
    "name": "Grand Hotel",
    "account_type": "enterprise",
    "enterprise_account": "grand-hotels",
    "enterprise_team": "ent-grand",
    "contact_person": "Li Wei",
    "department": "Facilities",
    "time_zone": "Asia/Shanghai",
    "locale": "zh-CN",
    "quiet_start": "22:00",
    "quiet_end": "07:00",
    "targets": ["json://127.0.0.1:9/hotel"],
}


@pytest.mark.parametrize("role", ["viewer", "agent"])
def test_owners_are_for_integration_and_admin_keys(
    api_client: TestClient, keys: Keys, role: str
) -> None:
    assert api_client.get("/api/v1/owners", headers=keys[role]).status_code == 403
    assert api_client.post("/api/v1/owners", json=OWNER, headers=keys[role]).status_code == 403
    r = api_client.post("/api/v1/devices", json={"device_id": "x"}, headers=keys[role])
    assert r.status_code == 403
    assert api_client.get("/api/v1/dead-letters", headers=keys[role]).status_code == 403


def test_register_an_owner_and_its_devices(api_client: TestClient, keys: Keys, db: Db) -> None:
    key = keys["integration"]
    made = api_client.post("/api/v1/owners", json=OWNER, headers=key)
    assert made.status_code == 201, made.text
    assert made.json()["enterprise_team"] == "ent-grand" and made.json()["quiet_end"] == "07:00"
    assert api_client.post("/api/v1/owners", json=OWNER, headers=key).status_code == 409
    bad = api_client.post(
        "/api/v1/owners", json=OWNER | {"owner_id": "o-2", "time_zone": "Mars/Olympus"}, headers=key
    )
    assert bad.status_code == 422 and "Mars/Olympus" in bad.text
    changed = api_client.patch("/api/v1/owners/hotel-9", json={"department": "IT"}, headers=key)
    # An integration writes contact details but reads them back hidden; an admin sees them.
    assert changed.status_code == 200 and changed.json()["department"] == privacy.HIDDEN
    seen = api_client.get("/api/v1/owners/hotel-9", headers=keys["admin"]).json()
    assert (seen["department"], seen["contact_person"]) == ("IT", "Li Wei")  # the rest stays
    inconsistent = api_client.patch(
        "/api/v1/owners/hotel-9", json={"account_type": "consumer"}, headers=key
    )
    assert inconsistent.status_code == 422 and "enterprise_account" in inconsistent.text
    assert api_client.patch("/api/v1/owners/nobody", json={}, headers=key).status_code == 404

    device = {
        "device_id": "ac-1",
        "model": "ac-x1",
        "kind": "air_conditioner",
        "owner_id": "hotel-9",
        "serial": "SN1",
        "state": "provisioned",
    }
    r = api_client.post("/api/v1/devices", json=device, headers=key)
    assert r.status_code == 201 and r.json()["state"] == "provisioned"
    orphan = api_client.post(
        "/api/v1/devices", json=device | {"device_id": "ac-2", "owner_id": "nobody"}, headers=key
    )
    assert orphan.status_code == 422 and "no owner 'nobody'" in orphan.text
    r = api_client.patch("/api/v1/devices/ac-1", json={"serial": "SN1-B"}, headers=key)
    assert r.status_code == 200 and r.json()["serial"] == "SN1-B"
    r = api_client.patch("/api/v1/devices/ac-1", json={"state": "active"}, headers=key)
    assert r.status_code == 422  # states move by their own routes
    listed = api_client.get("/api/v1/owners", params={"q": "grand"}, headers=key).json()
    assert listed["total"] == 1 and listed["items"][0]["devices"] == 1
    # The device list, for any reader, shows the registration.
    item = api_client.get("/api/v1/devices/ac-1", headers=keys["viewer"]).json()
    assert (item["serial"], item["state"]) == ("SN1-B", "provisioned")

    # States: suspend, resume, decommission; what a state does not allow is a 409.
    post = api_client.post
    assert post("/api/v1/devices/ac-1/resume", headers=key).status_code == 409
    assert post("/api/v1/devices/ac-1/suspend", headers=key).json()["state"] == "suspended"
    assert post("/api/v1/devices/ac-1/resume", headers=key).json()["state"] == "active"
    assert post("/api/v1/devices/ac-1/decommission", headers=key).json()["state"] == (
        "decommissioned"
    )
    assert post("/api/v1/devices/ac-1/resume", headers=key).status_code == 409
    assert post("/api/v1/devices/nope/suspend", headers=key).status_code == 404


def test_dead_letters_are_counted_by_reason(api_client: TestClient, keys: Keys, db: Db) -> None:
    db.execute(
        "INSERT INTO dead_letters (topic, payload, reason, received_at, payload_bytes) VALUES "
        "('t/a', 'x', 'unknown device ''a'' (not in the registry)', now(), 1), "
        "('t/b', 'y', 'unknown device ''b'' (not in the registry)', now(), 1), "
        "('t/c', '\\xff00', 'payload of 70000 bytes exceeds 65536 bytes', now(), 70000)"
    )
    page = api_client.get("/api/v1/dead-letters", headers=keys["admin"]).json()
    assert page["total"] == 3
    assert page["by_reason"] == {"unknown device": 2, "payload of": 1}
    assert page["items"][0]["preview"] == "\\xff\x00" and page["items"][0]["topic"] == "t/c"
    only = api_client.get(
        "/api/v1/dead-letters", params={"reason": "unknown device"}, headers=keys["admin"]
    ).json()
    assert only["total"] == 2 and {i["topic"] for i in only["items"]} == {"t/a", "t/b"}
