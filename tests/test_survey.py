"""Confirmation and satisfaction after a resolution: the signed survey link in the resolved
notice, the public page's data and answers (not fixed reopens the ticket), links that are
forged or expired, and the call-back task a survey left unanswered for a day becomes; the
page itself in a real browser (Debian's chromium, as the console's test drives it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from api.app import create_app
from api.server import BackgroundServer, config
from forewarn.clock import FixedClock
from forewarn.settings import Settings
from forewarn.signing import new_secret
from notifier.tickets.clocks import run_clocks
from tests import factories
from tests.conftest import API_NOW, count
from tests.factories import RULES
from tests.test_console import browser as browser  # the fixture: chromium, or a clean skip
from tests.test_console import shot

DB = psycopg.Connection[tuple[Any, ...]]
Keys = dict[str, dict[str, str]]
H = timedelta(hours=1)
D = timedelta(days=1)
LINK = re.compile(r"https?://[^\s)]+/survey/([\w.-]+)")


@pytest.fixture
def surveyed(settings: Settings) -> Settings:
    """Settings with survey links signed."""
    return settings.with_overrides(survey_secret=new_secret())


@pytest.fixture
def client(surveyed: Settings, api_clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(create_app(surveyed, clock=api_clock)) as c:
        yield c


def resolved_ticket(
    db: DB, client: TestClient, keys: Keys, device: str, *, locale: str = "en-US"
) -> tuple[int, str]:
    """A ticket resolved through the API for an owner with one target; its survey token."""
    factories.device(db, device)
    db.execute(
        "UPDATE owners SET notify_targets = ARRAY['json://127.0.0.1:9/app'], locale = %s "
        "WHERE owner_id = %s",
        (locale, f"owner-{device}"),
    )
    tid = factories.ticket(db, device, opened_at=API_NOW - 2 * H)
    r = client.post(
        f"/api/v1/tickets/{tid}/resolve",
        json={"code": "part_replaced", "note": "New batteries fitted."},
        headers=keys["agent"],
    )
    assert r.status_code == 200, r.text
    row = db.execute(
        "SELECT body FROM notifications WHERE ticket_id = %s AND key LIKE 'notice:%%resolved%%'",
        (tid,),
    ).fetchone()
    assert row is not None
    found = LINK.search(row[0])
    assert found is not None, row[0]
    return tid, found.group(1)


def test_the_owner_confirms_the_fix_and_rates_the_help(
    client: TestClient, db: DB, keys: Keys
) -> None:
    tid, token = resolved_ticket(db, client, keys, "lock-1")
    page = client.get(f"/survey/{token}")
    assert page.status_code == 200 and "survey.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    info = client.get(f"/survey/{token}/info").json()
    assert info == {
        "ticket_id": tid,
        "locale": "en-US",
        "device": "lock",
        "what_was_done": "a part was replaced",
        "expires_at": "2026-11-30T12:00:00Z",
        "answered": False,
        "cancelled": False,
    }
    answer = {"fixed": True, "rating": 4, "comment": "Quick, thanks"}
    assert client.post(f"/survey/{token}", json=answer).json() == {"reopened": False}
    again = client.post(f"/survey/{token}", json=answer)
    assert (again.status_code, again.json()["detail"]) == (
        409,
        "this survey was already answered; thank you",
    )
    detail = client.get(f"/api/v1/tickets/{tid}", headers=keys["viewer"]).json()
    assert detail["state"] == "resolved"
    assert (
        detail["survey"]["rating"],
        detail["survey"]["fixed"],
        detail["survey"]["answered_via"],
    ) == (
        4,
        True,
        "survey",
    )
    assert detail["timeline"][-1]["kind"] == "survey_answered"


def test_not_fixed_reopens_the_ticket(client: TestClient, db: DB, keys: Keys) -> None:
    tid, token = resolved_ticket(db, client, keys, "lock-2")
    r = client.post(f"/survey/{token}", json={"fixed": False, "rating": 2})
    assert r.json() == {"reopened": True}
    detail = client.get(f"/api/v1/tickets/{tid}", headers=keys["viewer"]).json()
    assert (detail["state"], detail["reopened"], detail["resolved_at"]) == ("new", 1, None)
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[-3:] == ["survey_answered", "reopen", "owner_notified"]
    assert detail["notices"][-1]["notice"] == "ticket_reopened"
    # The next resolution asks again, with a new survey.
    client.post(
        f"/api/v1/tickets/{tid}/resolve", json={"code": "device_replaced"}, headers=keys["agent"]
    )
    assert count(db, "SELECT count(*) FROM surveys WHERE ticket_id = %s", tid) == 2


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        pytest.param(lambda t: t[:-2] + "xx", 401, "signature does not match", id="forged"),
        pytest.param(lambda t: "s1.99999999999.abc", 401, "signature", id="longer-life"),
        pytest.param(lambda t: "nonsense", 401, "not a Forewarn link", id="garbage"),
    ],
)
def test_forged_links_are_refused(
    client: TestClient, db: DB, keys: Keys, change: Any, status: int, detail: str
) -> None:
    _, token = resolved_ticket(db, client, keys, "lock-3")
    for r in (
        client.get(f"/survey/{change(token)}/info"),
        client.post(f"/survey/{change(token)}", json={"fixed": True, "rating": 5}),
    ):
        assert r.status_code == status and detail in r.json()["detail"]
    assert count(db, "SELECT count(*) FROM surveys WHERE answered_at IS NOT NULL") == 0


def test_an_expired_link_is_gone_and_no_secret_means_no_link(
    client: TestClient, db: DB, keys: Keys, api_clock: FixedClock, settings: Settings
) -> None:
    _, token = resolved_ticket(db, client, keys, "lock-4")
    api_clock.advance(7 * D)
    r = client.get(f"/survey/{token}/info")
    assert (r.status_code, r.json()["detail"]) == (410, "the link expired at 2026-11-30 12:00 UTC")
    with TestClient(create_app(settings, clock=api_clock)) as plain:
        assert plain.get(f"/survey/{token}/info").status_code == 404
        factories.device(db, "lock-5")
        tid = factories.ticket(db, "lock-5", opened_at=API_NOW)
        plain.post(f"/api/v1/tickets/{tid}/resolve", json={"code": "other"}, headers=keys["agent"])
    assert db.execute("SELECT linked FROM surveys WHERE ticket_id = %s", (tid,)).fetchone() == (
        False,
    )


def test_an_unanswered_survey_becomes_a_call_back_in_the_queue(
    client: TestClient, db: DB, keys: Keys, api_clock: FixedClock, surveyed: Settings
) -> None:
    tid, _ = resolved_ticket(db, client, keys, "lock-6")

    def clocks() -> int:
        with db.transaction():
            return run_clocks(db, surveyed, RULES, now=api_clock.now()).callbacks

    api_clock.advance(23 * H)
    assert clocks() == 0
    api_clock.advance(2 * H)
    assert clocks() == 1
    assert clocks() == 0  # once
    queue = client.get("/api/v1/tickets", headers=keys["viewer"]).json()
    [item] = [i for i in queue["items"] if i["ticket_id"] == tid]
    assert (item["state"], item["urgency"], item["due_kind"]) == (
        "resolved",
        "callback",
        "callback",
    )
    only = client.get("/api/v1/tickets?state=callback", headers=keys["viewer"]).json()
    assert [i["ticket_id"] for i in only["items"]] == [tid]
    # The agent calls; the owner says it is fixed and gives a 5.
    called = client.post(
        f"/api/v1/tickets/{tid}/contact",
        json={"how": "call", "text": "Called: all good", "survey": {"fixed": True, "rating": 5}},
        headers=keys["agent"],
    ).json()
    assert called["callback_done_at"] is not None and called["survey"]["answered_via"] == "call"
    assert (called["survey"]["answered_by"], called["survey"]["rating"]) == ("test agent", 5)
    assert (
        client.get("/api/v1/tickets?state=callback", headers=keys["viewer"]).json()["items"] == []
    )


def test_a_message_to_an_owner_without_a_channel_is_refused(
    client: TestClient, db: DB, keys: Keys
) -> None:
    factories.device(db, "lock-7")
    tid = factories.ticket(db, "lock-7", opened_at=API_NOW)
    r = client.post(
        f"/api/v1/tickets/{tid}/contact",
        json={"how": "message", "text": "Hello"},
        headers=keys["agent"],
    )
    assert r.status_code == 409 and "call them and log the call" in r.json()["detail"]
    row = db.execute(
        "SELECT first_response_at FROM tickets WHERE ticket_id = %s", (tid,)
    ).fetchone()
    assert row == (None,)


@pytest.fixture
def server(surveyed: Settings, api_clock: FixedClock) -> Iterator[str]:
    srv = BackgroundServer(config(surveyed, clock=api_clock, host="127.0.0.1", port=0))
    srv.start(timeout=30)
    yield srv.url
    srv.stop()


@pytest.mark.slow
def test_the_survey_page_in_a_browser(
    server: str,
    browser: Page,
    db: DB,
    keys: Keys,
    client: TestClient,
    api_clock: FixedClock,
    output_dir: Path,
) -> None:
    """An owner in Chinese says it is not fixed; an owner in English who answered already
    sees so; an old link says it expired."""
    page = browser
    tid, token = resolved_ticket(db, client, keys, "lock-8", locale="zh-CN")
    page.goto(f"{server}/survey/{token}")
    expect(page.get_by_test_id("survey-title")).to_have_text(f"工单 #{tid}：您的门锁恢复正常了吗？")  # noqa: RUF001
    expect(page.get_by_test_id("survey-done")).to_contain_text("已更换配件")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    page.get_by_test_id("survey-submit").click()
    expect(page.get_by_test_id("survey-status")).to_contain_text("请选择问题是否解决")
    page.get_by_test_id("survey-fixed-no").check()
    page.get_by_test_id("survey-rating-2").check()
    page.get_by_test_id("survey-comment").fill("还是会自己锁上")
    shot(page, output_dir, "01-survey-zh")
    page.get_by_test_id("survey-submit").click()
    expect(page.get_by_test_id("survey-thanks")).to_contain_text(f"我们已重新打开工单 #{tid}")
    shot(page, output_dir, "02-survey-zh-reopened")
    row = db.execute(
        "SELECT t.state, s.rating, s.fixed, s.comment FROM tickets t JOIN surveys s USING (ticket_id) "
        "WHERE t.ticket_id = %s",
        (tid,),
    ).fetchone()
    assert row == ("new", 2, False, "还是会自己锁上")

    other, token2 = resolved_ticket(db, client, keys, "lock-9")
    client.post(f"/survey/{token2}", json={"fixed": True, "rating": 5})
    page.goto(f"{server}/survey/{token2}")
    expect(page.get_by_test_id("survey-answered")).to_contain_text("answered already")
    page.goto(f"{server}/survey/{token2[:-3]}abc")
    expect(page.get_by_test_id("survey-invalid")).to_contain_text("not valid")
    shot(page, output_dir, "03-survey-invalid")
    _, token3 = resolved_ticket(db, client, keys, "lock-10")
    api_clock.advance(8 * D)
    page.goto(f"{server}/survey/{token3}")
    expect(page.get_by_test_id("survey-expired")).to_contain_text("expired")
    assert other != tid
