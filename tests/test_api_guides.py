"""The knowledge-base API: list, search, read, create and edit guides, and who may do what."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from forewarn.settings import Settings
from notifier.guides import default_directory, guide_for, load_directory, repository

Keys = dict[str, dict[str, str]]
BASE = "/api/v1/guides"

NEW: dict[str, Any] = {
    "guide_id": "doorbell_chime",
    "locale": "en-US",
    "category": "troubleshooting",
    "fault": "connectivity_loss",
    "kinds": ["camera"],
    "firmware": ">=2.0,<3.0",
    "title": "Your {device_name} doorbell does not chime",
    "problem": "The doorbell button is pressed but no chime sounds inside.",
    "scenario": "Video doorbells paired with an indoor chime.",
    "steps": ["Check the chime is plugged in.", "Pair the chime again in the app."],
    "cautions": ["Do not open the chime's mains box yourself."],
}


@pytest.fixture
def guides(settings: Settings) -> None:
    """The shipped guides in this test's schema, indexed."""
    with psycopg.connect(settings.database_url or "") as conn:
        load_directory(conn, default_directory())


def test_list_and_filter(api_client: TestClient, keys: Keys, guides: None) -> None:
    everything = api_client.get(BASE, headers=keys["viewer"]).json()
    assert everything["total"] == len(everything["items"]) == 38
    zh = api_client.get(BASE, params={"locale": "zh-CN"}, headers=keys["viewer"]).json()
    assert zh["total"] == 19 and {g["locale"] for g in zh["items"]} == {"zh-CN"}
    battery = api_client.get(
        BASE, params={"fault": "battery_failure", "locale": "en-US"}, headers=keys["viewer"]
    ).json()
    assert [g["guide_id"] for g in battery["items"]] == [
        "battery_failure",
        "lock_battery",
        "watch_battery_life",
    ]
    after_sales = api_client.get(
        BASE, params={"category": "after_sales", "locale": ""}, headers=keys["viewer"]
    ).json()
    assert {g["guide_id"] for g in after_sales["items"]} == {
        "support_ticket_process",
        "warranty_replacement",
    }
    bad = api_client.get(BASE, params={"category": "howto"}, headers=keys["viewer"])
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("q", "locale"),
    [
        pytest.param("手表电池不够用", "zh-CN", id="zh"),
        pytest.param("watch battery doesn't last", "en-US", id="en"),
    ],
)
def test_search(api_client: TestClient, keys: Keys, guides: None, q: str, locale: str) -> None:
    found = api_client.get(
        f"{BASE}/search", params={"q": q, "locale": locale, "limit": 3}, headers=keys["viewer"]
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["semantic"] is True and body["model"] and body["query"] == q
    assert len(body["hits"]) == 3
    top = body["hits"][0]
    assert (top["guide_id"], top["locale"]) == ("watch_battery_life", locale)
    assert 0 < top["meaning_score"] <= 1 and 0 < top["word_score"] <= 1
    assert top["score"] >= body["hits"][1]["score"]


def test_search_without_a_locale_shows_the_matched_language(
    api_client: TestClient, keys: Keys, guides: None
) -> None:
    body = api_client.get(
        f"{BASE}/search", params={"q": "手表电池不够用", "locale": ""}, headers=keys["agent"]
    ).json()
    assert body["locale"] is None
    assert body["hits"][0]["locale"] == body["hits"][0]["matched_locale"] == "zh-CN"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"q": "   "}, "query is empty", id="blank"),
        pytest.param({"q": "battery", "limit": 0}, None, id="limit"),
        pytest.param({}, None, id="no-q"),
        pytest.param({"q": "x" * 501}, None, id="too-long"),
    ],
)
def test_bad_search_is_422(
    api_client: TestClient, keys: Keys, params: dict[str, Any], message: str | None
) -> None:
    answer = api_client.get(f"{BASE}/search", params=params, headers=keys["viewer"])
    assert answer.status_code == 422, answer.text
    if message:
        assert message in answer.json()["detail"]


def test_read_one(api_client: TestClient, keys: Keys, guides: None) -> None:
    body = api_client.get(f"{BASE}/camera_reboot_fw_3_1_0/zh-CN", headers=keys["viewer"]).json()
    assert (body["guide_id"], body["locale"], body["models"]) == (
        "camera_reboot_fw_3_1_0",
        "zh-CN",
        ["cam-c2"],
    )
    assert (body["firmware_min"], body["firmware_max"]) == ("3.1.0", "3.1.1")
    assert body["steps"] and body["problem"] and body["updated_at"]
    missing = api_client.get(f"{BASE}/nothing/en-US", headers=keys["viewer"])
    assert missing.status_code == 404 and "no guide 'nothing'" in missing.json()["detail"]


def test_a_guide_goes_live_only_when_a_reviewer_publishes_it(
    api_client: TestClient, keys: Keys, settings: Settings
) -> None:
    made = api_client.post(BASE, json=NEW, headers=keys["agent"])
    assert made.status_code == 201, made.text
    draft = made.json()
    assert (draft["state"], draft["version"], draft["editor"]) == ("draft", 1, "test agent")
    assert "+title: Your {device_name} doorbell does not chime" in draft["diff"]
    again = api_client.post(BASE, json=NEW, headers=keys["admin"])
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    # A draft is nobody's guide yet: not readable as a guide, not found, never chosen.
    assert api_client.get(f"{BASE}/doorbell_chime/en-US", headers=keys["viewer"]).status_code == 404
    assert not _found(api_client, keys, "the doorbell is silent")
    assert _chosen(settings) is None

    # A reviewer cannot publish what is not in review; the editor sends it.
    early = api_client.post(
        f"{BASE}/doorbell_chime/publish", json={"locale": "en-US"}, headers=keys["reviewer"]
    )
    assert early.status_code == 409 and "no version in review" in early.json()["detail"]
    sent = api_client.post(
        f"{BASE}/doorbell_chime/review", json={"locale": "en-US"}, headers=keys["agent"]
    )
    assert sent.status_code == 200 and sent.json()["state"] == "in_review"
    live = api_client.post(
        f"{BASE}/doorbell_chime/publish",
        json={"locale": "en-US", "note": "checked against the chime's manual"},
        headers=keys["reviewer"],
    )
    assert live.status_code == 200, live.text
    body = live.json()
    assert (body["source_path"], body["firmware_min"], body["firmware_max"]) == (
        "api",
        "2.0",
        "3.0",
    )
    assert _found(api_client, keys, "the doorbell is silent")
    assert _chosen(settings) == "doorbell_chime"

    # An edit is a draft again: owners keep the published steps until it is published.
    content = {k: v for k, v in NEW.items() if k not in ("guide_id", "locale")}
    content["steps"] = ["Replace the chime's battery."]
    edited = api_client.put(f"{BASE}/doorbell_chime/en-US", json=content, headers=keys["agent"])
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2 and edited.json()["state"] == "draft"
    assert "-1. Check the chime is plugged in." in edited.json()["diff"]
    assert "+1. Replace the chime's battery." in edited.json()["diff"]
    read = api_client.get(f"{BASE}/doorbell_chime/en-US", headers=keys["viewer"]).json()
    assert read["steps"] == NEW["steps"]
    api_client.post(
        f"{BASE}/doorbell_chime/review", json={"locale": "en-US"}, headers=keys["agent"]
    )
    # Its own editor may not publish it, even an admin.
    api_client.put(f"{BASE}/doorbell_chime/en-US", json=content, headers=keys["admin"])
    api_client.post(
        f"{BASE}/doorbell_chime/review", json={"locale": "en-US"}, headers=keys["admin"]
    )
    own = api_client.post(
        f"{BASE}/doorbell_chime/publish", json={"locale": "en-US"}, headers=keys["admin"]
    )
    assert own.status_code == 409 and "someone other than its editor" in own.json()["detail"]
    back = api_client.post(
        f"{BASE}/doorbell_chime/reject",
        json={"locale": "en-US", "note": "which battery? name its size"},
        headers=keys["reviewer"],
    )
    assert back.status_code == 200 and back.json()["state"] == "rejected"
    assert (
        api_client.get(f"{BASE}/doorbell_chime/en-US", headers=keys["viewer"]).json()["steps"]
        == NEW["steps"]
    )

    history = api_client.get(f"{BASE}/doorbell_chime/en-US/versions", headers=keys["viewer"]).json()
    assert [(v["version"], v["state"], v["editor"], v["reviewer"]) for v in history["items"]] == [
        (3, "rejected", "test admin", "test reviewer"),
        (2, "superseded", "test agent", None),
        (1, "published", "test agent", "test reviewer"),
    ]
    assert history["items"][2]["note"] == "checked against the chime's manual"
    missing = api_client.put(f"{BASE}/nothing/en-US", json=content, headers=keys["agent"])
    assert missing.status_code == 404
    assert (
        api_client.get(f"{BASE}/nothing/en-US/versions", headers=keys["viewer"]).status_code == 404
    )


def _found(api_client: TestClient, keys: Keys, q: str) -> bool:
    found = api_client.get(f"{BASE}/search", params={"q": q}, headers=keys["viewer"]).json()
    return any(h["guide_id"] == "doorbell_chime" for h in found["hits"])


def _chosen(settings: Settings) -> str | None:
    """The guide the notifier would send a camera owner about a connectivity loss."""
    with psycopg.connect(settings.database_url or "") as conn:
        guide = guide_for(
            conn,
            fault="connectivity_loss",
            kind="camera",
            model=None,
            firmware="2.5",
            locale="en-US",
        )
    return None if guide is None else guide.guide_id


def test_editing_through_the_api_keeps_the_guides_phrases(
    api_client: TestClient, keys: Keys, guides: None, settings: Settings
) -> None:
    # The API does not carry phrases (search-only words from the guide file): an edit made
    # through it must not erase them.
    path = f"{BASE}/lock_battery/zh-CN"
    body = api_client.get(path, headers=keys["viewer"]).json()
    fields = ("category", "fault", "audience", "kinds", "models", "title", "problem", "scenario")
    content = {k: body[k] for k in fields} | {
        "steps": body["steps"],
        "firmware": None,
        "cautions": [*body["cautions"], "请保留收据。"],
    }
    assert api_client.put(path, json=content, headers=keys["agent"]).status_code == 200
    step = {"locale": "zh-CN"}
    assert (
        api_client.post(f"{BASE}/lock_battery/review", json=step, headers=keys["agent"]).status_code
        == 200
    )
    assert (
        api_client.post(
            f"{BASE}/lock_battery/publish", json=step, headers=keys["reviewer"]
        ).status_code
        == 200
    )
    with psycopg.connect(settings.database_url or "") as conn:
        stored = repository.guide(conn, guide_id="lock_battery", locale="zh-CN")
    assert stored is not None and stored.cautions[-1] == "请保留收据。"
    assert "门锁提示电量低" in stored.phrases
    found = api_client.get(
        f"{BASE}/search", params={"q": "门锁提示电量低", "locale": "zh-CN"}, headers=keys["viewer"]
    ).json()
    assert found["hits"][0]["guide_id"] == "lock_battery"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"category": "howto"}, "unknown category", id="category"),
        pytest.param({"fault": "flooding"}, "unknown fault", id="fault"),
        pytest.param({"firmware": "~3"}, "bad firmware range", id="firmware"),
        pytest.param({"title": "Hi {serial}"}, "unknown placeholder", id="placeholder"),
        pytest.param({"guide_id": "Bad Id"}, "must be lower-case", id="id"),
        pytest.param({"steps": []}, None, id="no-steps"),
        pytest.param({"problem": " "}, "the problem is empty", id="blank-problem"),
    ],
)
def test_create_refuses_what_the_loader_refuses(
    api_client: TestClient, keys: Keys, change: dict[str, Any], message: str | None
) -> None:
    answer = api_client.post(BASE, json=NEW | change, headers=keys["agent"])
    assert answer.status_code == 422, answer.text
    if message:
        assert message in answer.json()["detail"]
    assert api_client.get(BASE, headers=keys["agent"]).json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", BASE, None, id="list"),
        pytest.param("GET", f"{BASE}/search?q=battery", None, id="search"),
        pytest.param("GET", f"{BASE}/reboot_loop/en-US", None, id="read"),
        pytest.param("POST", BASE, NEW, id="create"),
        pytest.param("PUT", f"{BASE}/reboot_loop/en-US", NEW, id="edit"),
        pytest.param("POST", f"{BASE}/reboot_loop/review", {"locale": "en-US"}, id="review"),
        pytest.param("POST", f"{BASE}/reboot_loop/publish", {"locale": "en-US"}, id="publish"),
        pytest.param("GET", f"{BASE}/reboot_loop/en-US/versions", None, id="history"),
    ],
)
def test_roles(
    api_client: TestClient, keys: Keys, guides: None, method: str, path: str, body: Any
) -> None:
    """Everyone reads; first line (L1), viewers and integrations may not write; L2/L3 agents
    draft and send for review; only reviewers (R&D) and admins publish."""
    nobody = api_client.request(method, path, json=body)
    assert nobody.status_code == 401
    wrong = api_client.request(method, path, json=body, headers={"X-API-Key": "fw_nonsense"})
    assert wrong.status_code == 401
    writes = method != "GET"
    for role in ("viewer", "integration", "first_line"):
        answer = api_client.request(method, path, json=body, headers=keys[role])
        assert answer.status_code == (403 if writes else 200), (role, answer.text)
    agent = api_client.request(method, path, json=body, headers=keys["agent"])
    assert (agent.status_code == 403) == path.endswith("/publish"), agent.text


def test_openapi_describes_every_route(api_client: TestClient) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]
    routes = {
        (BASE, "get"): "GuideList",
        (BASE, "post"): "VersionOut",
        (f"{BASE}/search", "get"): "SearchResults",
        (f"{BASE}/{{guide_id}}/{{locale}}", "get"): "GuideDetail",
        (f"{BASE}/{{guide_id}}/{{locale}}", "put"): "VersionOut",
        (f"{BASE}/{{guide_id}}/{{locale}}/versions", "get"): "VersionList",
        (f"{BASE}/{{guide_id}}/review", "post"): "VersionOut",
        (f"{BASE}/{{guide_id}}/publish", "post"): "GuideDetail",
        (f"{BASE}/{{guide_id}}/reject", "post"): "VersionOut",
    }
    for (path, method), model in routes.items():
        operation = paths[path][method]
        assert operation["summary"] and operation["description"], (path, method)
        ok = operation["responses"]["201" if (path, method) == (BASE, "post") else "200"]
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert {"401", "403"} <= set(operation["responses"])
