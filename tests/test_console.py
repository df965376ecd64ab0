"""The staff console in a real browser: the app served by uvicorn on a free port, Debian's
chromium driven headless by Playwright, every page screenshotted to test-output/<test>/.

An agent signs in, reads the queue (urgency order and colours), opens a ticket (its telemetry
chart drawn), acknowledges and resolves it, sees the KPIs move, switches to Chinese, opens
fleet health and the guides; a viewer sees the ticket without its actions.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from api.server import BackgroundServer, config
from forewarn.clock import FixedClock
from forewarn.settings import Settings
from notifier.guides.flows import default_directory, load_directory
from notifier.tickets.types import Priority, Tier
from tests import factories
from tests.conftest import API_NOW

CONSOLE = Path(__file__).resolve().parents[1] / "api" / "console"
CHROMIUM = Path("/usr/bin/chromium")
# Headless, offline and quiet: no GPU, no QUIC, no first-run or background traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP: ViewportSize = {"width": 1366, "height": 900}
H = timedelta(hours=1)
M = timedelta(minutes=1)
DB = psycopg.Connection[tuple[Any, ...]]
GUIDES = ("watch_battery_life", "battery_failure", "lock_battery", "connectivity_loss")
POLL = 1  # seconds between the console's refreshes (5 by default), so live updates show fast


@pytest.fixture
def console(settings: Settings, api_clock: FixedClock) -> Iterator[str]:
    """The app served by uvicorn on a free local port, on a background thread; its base URL."""
    server = BackgroundServer(config(settings, clock=api_clock, host="127.0.0.1", port=0))
    server.start(timeout=30)
    yield server.url
    server.stop()
    assert not server.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Page]:
    """A page in Debian's chromium with a new, empty profile; fails on any script error."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    errors: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=LAPTOP,
            locale="en-US",
        )
        context.set_default_timeout(15_000)
        page = context.pages[0] if context.pages else context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: _console(msg.type, msg.text, errors))
        yield page
        context.close()
    assert errors == [], "the console logged errors"


def _console(kind: str, text: str, errors: list[str]) -> None:
    # The browser logs every 4xx response; the test provokes some (a wrong key, a refused
    # action) and the console handles them, so only other errors count.
    if kind == "error" and not text.startswith("Failed to load resource"):
        errors.append(f"console error: {text}")


def seed(db: DB) -> dict[str, int]:
    """Five devices, telemetry for one, and four open tickets of different urgencies."""
    factories.device(db, "lock-001")
    factories.device(db, "lock-002")
    factories.device(db, "lock-003", firmware="2.2.0")
    factories.device(db, "watch-001", model="watch-w1", kind="watch", firmware="1.4.2")
    factories.device(db, "cam-001", model="cam-c2", kind="camera", firmware="3.1.0", online=False)
    start = API_NOW - 14 * H
    factories.readings(db, "lock-001", start=start, minutes=14 * 60, step_minutes=5)
    predicted = API_NOW - 2 * H
    incident = factories.incident(db, "lock-001", opened_at=predicted, probability=0.87)
    factories.guide_notification(db, incident_id=incident, device_id="lock-001", at=predicted)
    ticket = factories.ticket
    critical = ticket(
        db,
        "lock-001",
        opened_at=API_NOW - 25 * M,
        incident_id=incident,
        priority=Priority.CRITICAL,
        tier=Tier.L3,
    )
    breached = ticket(db, "lock-002", opened_at=API_NOW - 3 * H)
    major = ticket(
        db,
        "lock-003",
        opened_at=API_NOW - 10 * M,
        fault="connectivity_loss",
        priority=Priority.MAJOR,
        tier=Tier.L2,
    )
    watch = ticket(db, "watch-001", opened_at=API_NOW - 1 * H)
    factories.fleet_incident(
        db,
        model="cam-c2",
        firmware="3.1.0",
        fault="reboot_loop",
        opened_at=API_NOW - 4 * H,
        devices=37,
    )
    return {"critical": critical, "breached": breached, "major": major, "watch": watch}


def load_guides(db: DB, folder: Path) -> None:
    """A few shipped guides in both languages, embedded for search by meaning (all 34 would
    take the embedding model tens of seconds on a small machine)."""
    folder.mkdir()
    for name in GUIDES:
        for lang in ("en", "zh"):
            shutil.copy(default_directory() / f"{name}.{lang}.md", folder)
    load_directory(db, folder)


def shot(page: Page, output_dir: Path, name: str) -> None:
    """A full-page screenshot once the page has settled."""
    page.wait_for_load_state("networkidle")
    page.screenshot(path=output_dir / f"{name}.png", full_page=True)


def sign_in(page: Page, base: str, secret: str) -> None:
    """Sign in on the console's sign-in form."""
    page.goto(f"{base}/console/?poll={POLL}#/queue")
    page.get_by_test_id("signin-key").fill(secret)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("who")).to_be_visible()


def kpi_figures(page: Page) -> dict[str, str | None]:
    """What the KPI page shows for the figures a resolve moves."""
    first_contact = page.get_by_test_id("kpi-first_contact_resolution")
    to_resolve = page.get_by_test_id("kpi-time_to_resolve")
    return {
        "fcr": first_contact.get_by_test_id("kpi-value").inner_text(),
        "fcr_count": first_contact.get_attribute("data-count"),
        "resolved": to_resolve.get_attribute("data-count"),
        "time_to_resolve": to_resolve.get_by_test_id("kpi-value").inner_text(),
    }


def _dictionary(source: str, name: str) -> set[str]:
    """The keys of one language's dictionary in i18n.js (`const EN = { 'key': ..., };`)."""
    block = re.search(rf"^const {name} = \{{$(.*?)^\}};$", source, re.S | re.M)
    assert block is not None, f"no dictionary {name} in i18n.js"
    return set(re.findall(r"^  '([\w.\-]+)':", block.group(1), re.M))


def test_every_label_is_translated() -> None:
    """Both languages have the same keys, and every literal t('key') the pages use exists."""
    source = (CONSOLE / "js" / "i18n.js").read_text(encoding="utf-8")
    english, chinese = _dictionary(source, "EN"), _dictionary(source, "ZH")
    assert len(english) > 300
    assert english ^ chinese == set()
    used = {
        key
        for path in (CONSOLE / "js").rglob("*.js")
        for key in re.findall(r"\bt\('([\w.\-]+)'", path.read_text(encoding="utf-8"))
    }
    assert used - english == set()


@pytest.mark.slow
def test_console(
    console: str,
    browser: Page,
    db: DB,
    keys: dict[str, dict[str, str]],
    api_clock: FixedClock,
    output_dir: Path,
    tmp_path: Path,
) -> None:
    """An agent works a ticket end to end; a viewer may only look."""
    page = browser
    ids = seed(db)
    load_guides(db, tmp_path / "guides")
    agent = keys["agent"]["X-API-Key"]

    # Sign in.
    page.goto(f"{console}/")
    expect(page).to_have_url(f"{console}/console/")
    page.goto(f"{console}/console/?poll={POLL}")
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    shot(page, output_dir, "01-sign-in")
    page.get_by_test_id("signin-key").fill("not-a-key")
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("signin-status")).not_to_have_text(re.compile(r"^$|Checking"))
    page.get_by_test_id("signin-key").fill(agent)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("who")).to_contain_text("test agent")

    # The queue: the API's urgency order, each row coloured by its urgency.
    rows = page.get_by_test_id("queue-row")
    expect(rows).to_have_count(4)
    queue = page.request.get(f"{console}/api/v1/tickets?sort=urgency", headers=keys["agent"])
    expected = [(str(t["ticket_id"]), t["urgency"]) for t in queue.json()["items"]]
    shown = [
        (r.get_attribute("data-ticket-id"), r.get_attribute("data-urgency")) for r in rows.all()
    ]
    assert shown == expected
    assert expected[0] == (str(ids["breached"]), "breached")
    assert {u for _, u in expected} >= {"breached", "near", "ok"}
    colours = {
        r.get_attribute("data-urgency"): r.locator("td").first.evaluate(
            "td => getComputedStyle(td).backgroundColor"
        )
        for r in rows.all()
    }
    assert colours["breached"] == "rgb(253, 236, 235)"
    assert colours["near"] == "rgb(255, 243, 220)"
    assert colours["ok"] not in (colours["breached"], colours["near"])
    expect(rows.first.get_by_test_id("time-left")).to_contain_text("breached")
    expect(rows.first.get_by_test_id("time-left")).to_contain_text("ago")
    major = page.locator(f'[data-ticket-id="{ids["major"]}"]')
    expect(major.get_by_test_id("time-left")).to_contain_text("left")
    shot(page, output_dir, "02-queue")

    # KPIs before any ticket is resolved.
    page.get_by_test_id("nav-kpis").click()
    expect(page.get_by_test_id("kpi-time_to_resolve")).to_have_attribute("data-count", "0")
    before = kpi_figures(page)

    # Open the critical ticket from the queue: its facts, prediction and telemetry chart.
    page.get_by_test_id("nav-queue").click()
    page.locator(f'[data-testid="queue-row"][data-ticket-id="{ids["critical"]}"]').click()
    expect(page).to_have_url(re.compile(rf"#/tickets/{ids['critical']}$"))
    expect(page.get_by_test_id("ticket-title")).to_contain_text(str(ids["critical"]))
    expect(page.get_by_test_id("probability")).to_have_text("87%")
    expect(page.get_by_test_id("reasons")).to_contain_text("battery fell 12 % in 6 h")
    expect(page.get_by_test_id("guide-sent")).to_have_count(1)
    expect(page.get_by_test_id("contact")).to_contain_text("owner-lock-001@example.com")
    chart = page.get_by_test_id("chart-battery_pct")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).not_to_have_attribute("data-points", "0")
    assert int(chart.get_attribute("data-points") or 0) > 100
    drawn = chart.locator("canvas").evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert drawn > 1000, "the battery chart's canvas is blank"
    shot(page, output_dir, "03-ticket")

    # Live: a comment made elsewhere appears without a reload, and the note being typed stays.
    note = page.get_by_test_id("action-note")
    note.fill("Called the owner")
    elsewhere = page.request.post(
        f"{console}/api/v1/tickets/{ids['critical']}/comment",
        headers=keys["admin"],
        data={"text": "Seen from the helpdesk"},
    )
    assert elsewhere.ok
    expect(page.get_by_test_id("timeline")).to_contain_text("Seen from the helpdesk")
    expect(note).to_have_value("Called the owner")

    # Acknowledge (with the note), then resolve with a code.
    state = page.get_by_test_id("ticket-badges").get_by_test_id("state")
    page.get_by_test_id("action-acknowledge").click()
    expect(page.get_by_test_id("action-status")).to_contain_text("Acknowledge: done")
    expect(state).to_have_text("Acknowledged")
    expect(page.get_by_test_id("action-acknowledge")).to_be_disabled()
    expect(page.get_by_test_id("timeline")).to_contain_text("Called the owner")
    expect(note).to_have_value("")
    # Acknowledging is not the first response; a call to the owner is.
    url = f"{console}/api/v1/tickets/{ids['critical']}"
    assert page.request.get(url, headers=keys["agent"]).json()["first_response_at"] is None
    page.get_by_test_id("contact-how").select_option("call")
    page.get_by_test_id("contact-text").fill("Told the owner we reset the radio")
    page.get_by_test_id("action-contact").click()
    expect(page.get_by_test_id("action-status")).to_contain_text("Record contact: done")
    contact = page.locator('[data-testid="timeline-event"][data-kind="contact"]')
    expect(contact).to_contain_text("Log a call")
    assert page.request.get(url, headers=keys["agent"]).json()["first_response_at"] is not None
    page.get_by_test_id("resolve-code").select_option("fixed_remotely")
    page.get_by_test_id("action-note").fill("Reset the lock's radio remotely")
    page.get_by_test_id("action-resolve").click()
    expect(page.get_by_test_id("action-status")).to_contain_text("Resolve: done")
    expect(state).to_have_text("Resolved")
    expect(page.get_by_test_id("resolution-code")).to_contain_text("Fixed remotely")
    resolved = page.locator('[data-testid="timeline-event"][data-kind="resolve"]')
    expect(resolved).to_contain_text("Reset the lock's radio")
    # The owner (who has no notification target) could not be told: the timeline says so,
    # and the survey waits for the call-back.
    told = page.locator('[data-testid="timeline-event"][data-kind="owner_notified"]').last
    expect(told).to_contain_text("call them")
    expect(page.get_by_test_id("ticket-survey")).to_contain_text("Survey link sent")
    # An action the API refuses (forced past its disabled button) shows the API's reason.
    start = page.get_by_test_id("action-start")
    expect(start).to_be_disabled()
    start.evaluate("b => { b.disabled = false; b.click(); }")
    refused = "cannot start a ticket that is resolved"
    expect(page.get_by_test_id("action-status")).to_contain_text(refused)
    expect(page.get_by_test_id("toast-error")).to_be_visible()
    page.get_by_test_id("toast-error").get_by_role("button").click()
    expect(start).to_be_disabled()
    shot(page, output_dir, "04-ticket-resolved")

    # Business time moves on; the KPIs count the resolved ticket.
    api_clock.advance(5 * M)
    page.get_by_test_id("nav-kpis").click()
    expect(page.get_by_test_id("kpi-time_to_resolve")).to_have_attribute("data-count", "1")
    after = kpi_figures(page)
    assert after["resolved"] != before["resolved"]
    assert after["time_to_resolve"] != before["time_to_resolve"]
    expect(page.get_by_test_id("kpi-series").locator("canvas")).to_have_count(2)
    # The agent who resolved it has their own row: one resolved ticket.
    mine = page.locator('[data-testid="agent-row"][data-agent="test agent"]')
    expect(mine.locator("td").first).to_have_text("1")
    page.get_by_test_id("kpi-period").select_option("30d")
    expect(page.get_by_test_id("kpi-range")).to_contain_text("Oct")
    shot(page, output_dir, "05-kpis")

    # Chinese.
    page.get_by_test_id("language").select_option("zh-CN")
    expect(page.get_by_test_id("nav-queue")).to_have_text("工单队列")
    expect(page.get_by_test_id("kpi-first_contact_resolution")).to_contain_text("首次解决率")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    shot(page, output_dir, "06-kpis-zh")

    # Fleet health, in Chinese now.
    page.get_by_test_id("nav-fleet").click()
    expect(page.get_by_test_id("fleet-total")).to_contain_text("5")
    expect(page.get_by_test_id("fleet-offline")).to_contain_text("1")
    expect(page.get_by_test_id("cohort-row")).to_have_count(4)
    expect(page.get_by_test_id("fleet-incident")).to_contain_text("反复重启")
    expect(page.get_by_test_id("fleet-counts")).to_contain_text("故障")
    shot(page, output_dir, "07-fleet")

    # Guides: search in Chinese, open the best hit.
    page.get_by_test_id("nav-guides").click()
    expect(page.get_by_test_id("guide-row").first).to_be_visible()
    page.get_by_test_id("guide-query").fill("手表电池不够用")
    page.get_by_test_id("guide-search-submit").click()
    hits = page.get_by_test_id("guide-hit")
    expect(hits.first).to_be_visible()
    expect(hits.first.get_by_test_id("guide-score")).to_contain_text("得分")
    expect(hits.first).to_have_attribute("data-guide-id", "watch_battery_life")
    expect(page.get_by_test_id("guide-search-mode")).to_be_visible()
    shot(page, output_dir, "08-guides")
    hits.first.locator("a").click()
    expect(page.get_by_test_id("guide-view")).to_contain_text("手表")
    shot(page, output_dir, "09-guide")

    # Edit it: the editor holds the guide; saving makes a draft that owners do not get yet,
    # shown in the history with its diff; the agent sends it for review.
    page.get_by_test_id("guide-edit").click()
    title = page.get_by_test_id("guide-title-input")
    expect(title).not_to_have_value("")
    title.fill(title.input_value() + " 已更新")
    page.get_by_test_id("guide-save").click()
    expect(page.get_by_test_id("guide-pending")).to_contain_text("草稿")
    expect(page.get_by_test_id("guide-title")).not_to_contain_text(" 已更新")
    draft = page.get_by_test_id("guide-version").first
    expect(draft).to_have_attribute("data-state", "draft")
    expect(draft.get_by_test_id("guide-version-title")).to_contain_text(" 已更新")
    expect(draft.get_by_test_id("guide-diff")).to_contain_text("已更新", use_inner_text=False)
    page.get_by_test_id("guide-submit-review").click()
    expect(page.get_by_test_id("guide-version").first).to_have_attribute("data-state", "in_review")
    expect(page.get_by_test_id("guide-publish")).to_have_count(0)  # agents do not publish
    guide_url = page.url
    shot(page, output_dir, "09b-guide-in-review")

    # A ticket in Chinese: the standard's terms, and Forewarn's symptom said in Chinese.
    page.goto(f"{console}/console/?poll={POLL}#/tickets/{ids['critical']}")
    expect(page.get_by_test_id("symptom")).to_contain_text("预计 24 小时内出现电池故障")
    expect(page.get_by_test_id("symptom")).not_to_contain_text("predicted")
    expect(page.get_by_test_id("scope")).to_contain_text("1 台设备（lock-001）")  # noqa: RUF001
    expect(page.get_by_test_id("ticket-problem")).to_contain_text("现象")
    expect(page.get_by_test_id("ticket-problem")).to_contain_text("触发条件")
    expect(page.get_by_test_id("ticket-sla")).to_contain_text("三线")
    expect(page.get_by_test_id("ticket-sla")).to_contain_text("一级（P1）")  # noqa: RUF001
    shot(page, output_dir, "09c-ticket-zh")

    # Every label exists in both languages.
    missing = page.evaluate("import('/console/js/i18n.js').then(m => m.missingKeys())")
    assert missing == {"zh-CN": [], "en-US": []}

    # A viewer reads the ticket but gets no actions.
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    sign_in(page, console, keys["viewer"]["X-API-Key"])
    expect(page.get_by_test_id("who")).to_contain_text("只读")
    page.goto(f"{console}/console/?poll={POLL}#/tickets/{ids['breached']}")
    expect(page.get_by_test_id("actions-read-only")).to_be_visible()
    expect(page.get_by_test_id("action-resolve")).to_have_count(0)
    expect(page.get_by_test_id("action-acknowledge")).to_have_count(0)
    expect(page.get_by_test_id("nav-registry")).to_have_count(0)  # owners are not for viewers
    shot(page, output_dir, "10-ticket-viewer")

    # An admin sees the registry: owners with their devices, and the refused messages.
    db.execute(
        "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES "
        "('forewarn/v1/devices/x/telemetry', '{}', 'unknown device ''x'' (not in the registry)',"
        " now())"
    )
    page.get_by_test_id("sign-out").click()
    sign_in(page, console, keys["admin"]["X-API-Key"])
    page.get_by_test_id("nav-registry").click()
    expect(page.get_by_test_id("owner-row").first).to_be_visible()
    expect(page.get_by_test_id("dead-letter-kinds")).to_contain_text("unknown device")
    shot(page, output_dir, "11-registry")

    # A reviewer (here the admin, who did not write it) publishes the guide in review.
    page.goto(guide_url)
    page.get_by_test_id("guide-publish").click()
    expect(page.get_by_test_id("guide-title")).to_contain_text(" 已更新")
    expect(page.get_by_test_id("guide-version").first).to_have_attribute("data-state", "published")
    shot(page, output_dir, "11b-guide-published")
    page.get_by_test_id("sign-out").click()
    sign_in(page, console, keys["viewer"]["X-API-Key"])

    # The queue picks up a new ticket by itself.
    page.get_by_test_id("nav-queue").click()
    expect(page.get_by_test_id("queue-row")).to_have_count(3)
    fresh = factories.ticket(db, "cam-001", opened_at=API_NOW, fault="reboot_loop")
    expect(page.locator(f'[data-testid="queue-row"][data-ticket-id="{fresh}"]')).to_be_visible()


@pytest.mark.slow
def test_console_makes_a_complaint_ticket(
    console: str,
    browser: Page,
    db: DB,
    keys: dict[str, dict[str, str]],
    output_dir: Path,
) -> None:
    """An agent writes down a complaint that came in by phone; it opens with its clock."""
    page = browser
    factories.device(db, "lock-042", owner_id="hotel")
    sign_in(page, console, keys["agent"]["X-API-Key"])
    page.get_by_test_id("new-ticket-link").click()
    expect(page.get_by_test_id("new-ticket")).to_be_visible()
    page.get_by_test_id("new-symptom").fill("Nobody called back about the jammed lock")
    page.get_by_test_id("new-submit").click()  # nobody named: the form says so, nothing sent
    expect(page.get_by_test_id("new-status")).to_contain_text("owner id or a device id")
    page.get_by_test_id("new-device").fill("lock-042")
    page.get_by_test_id("new-type").select_option("complaint")
    expect(page.get_by_test_id("new-complaint-note")).to_be_visible()
    page.get_by_test_id("new-priority").select_option("major")
    page.get_by_test_id("new-contact-person").fill("Li Na")
    page.get_by_test_id("new-department").fill("Facilities")
    shot(page, output_dir, "01-new-ticket")
    page.get_by_test_id("new-submit").click()
    expect(page).to_have_url(re.compile(r"#/tickets/\d+$"))
    tid = int(page.url.rsplit("/", 1)[1])
    made = page.request.get(f"{console}/api/v1/tickets/{tid}", headers=keys["agent"]).json()
    assert (made["ticket_type"], made["urgent"], made["contact_person"]) == (
        "complaint",
        True,
        "Li Na",
    )
    assert made["feedback_due"] is not None and made["follow_up_due"] is not None
    expect(page.get_by_test_id("urgent")).to_be_visible()
    expect(page.get_by_test_id("feedback-due")).to_be_visible()
    expect(page.get_by_test_id("follow-up-due")).to_be_visible()
    expect(page.get_by_test_id("contact-person")).to_contain_text("Li Na")
    shot(page, output_dir, "02-made")

    # A viewer has no link and no form.
    page.get_by_test_id("sign-out").click()
    sign_in(page, console, keys["viewer"]["X-API-Key"])
    expect(page.get_by_test_id("queue-now")).to_be_visible()
    expect(page.get_by_test_id("new-ticket-link")).to_have_count(0)
