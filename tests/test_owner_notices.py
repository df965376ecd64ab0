"""What owners are told about their tickets, through the real outbox and dispatcher to a real
local HTTP receiver (Apprise json://), pass by pass on a clock the test moves: the ticket's
number and when a person answers, each hand-over, the resolution with its survey link, in the
owner's language and outside their quiet hours. And the templates, checked like guides."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from forewarn.errors import GuideError
from forewarn.signing import new_secret
from notifier.guides.flows import default_directory
from notifier.notices.templates import read_library
from notifier.notices.types import NoticeKind
from notifier.tickets.types import TicketAction
from rules.feedback import act, outreach
from tests.conftest import count
from tests.test_acting import RULES, T0, World, ticket
from tests.test_acting import world as world  # the fixture

H = timedelta(hours=1)
M = timedelta(minutes=1)
NOTICES = default_directory() / "notices"


def local(at: object, zone: str) -> str:
    """A time as the notices print it: HH:MM in the owner's zone."""
    return at.astimezone(ZoneInfo(zone)).strftime("%H:%M")  # type: ignore[attr-defined]


def test_an_owner_hears_of_their_ticket_from_opening_to_resolution(world: World) -> None:
    w, db = world, world.db
    w.owner("o1")  # en-US, Europe/Berlin, quiet 22:00-07:00; T0 is 10:00 UTC
    w.device("cam-1", "o1", model="cam-c2", kind="camera", firmware="3.0.4")
    w.predict("cam-1", "reboot_loop", at=T0)  # a major ticket at L2 at once, owner warned
    w.step()
    t = ticket(db, "cam-1")
    tid = t["ticket_id"]
    told = w.receiver.wait_for(2, path="/owners/o1/0")
    [opened] = [r for r in told if r.json["title"].startswith("Ticket")]
    assert opened.json["title"] == f"Ticket #{tid}: we are looking into your camera"
    body = opened.json["message"]
    due = local(T0 + H, "Europe/Berlin")  # P2: first response within 1 hour
    assert f"support ticket #{tid} for your camera: it keeps restarting." in body
    assert "A member of our product experts will contact you by" in body
    assert f"{due} (Europe/Berlin) (within 1 hour). You do not need to do anything now." in body
    assert "reply to this message" in body and "{" not in body

    # Nobody takes it up within the hour: L3 has it now, and the owner is told by when.
    w.clock.advance(65 * M)
    w.step()
    [handed] = w.receiver.wait_for(3, path="/owners/o1/0")[2:]
    assert handed.json["title"] == f"Ticket #{tid} is now with our product engineers"
    assert (
        f"{local(T0 + 65 * M + 30 * M, 'Europe/Berlin')} (Europe/Berlin) (within 30 minutes)"
        in (handed.json["message"])
    )

    # Resolved: what was done, the staff's note, and a signed survey link that expires.
    signed = w.settings.with_overrides(
        survey_secret=new_secret(), public_url="https://help.example.com/"
    )
    reach = outreach(signed, RULES)
    with w.conn.transaction():
        act(
            w.conn,
            reach,
            ticket_id=tid,
            action=TicketAction.RESOLVE,
            actor="mei",
            now=w.clock.now(),
            resolution_code="firmware_update",
            note="We rolled the camera back to 3.0.3.",
        )
    w.step()
    [resolved] = w.receiver.wait_for(4, path="/owners/o1/0")[3:]
    text = resolved.json["message"]
    assert resolved.json["title"] == f"Ticket #{tid} is resolved: is your camera working again?"
    assert f"We have resolved support ticket #{tid}: a firmware update fixed it." in text
    assert "We rolled the camera back to 3.0.3." in text
    assert "https://help.example.com/survey/s1." in text
    assert "If we have no answer within 1 day, a member of the team will call you." in text
    assert "comes back within 30 days, reply to this message" in text
    kinds = [
        r[0]
        for r in db.execute(
            "SELECT detail->>'notice' FROM ticket_events WHERE ticket_id = %s "
            "AND kind = 'owner_notified' ORDER BY event_id",
            (tid,),
        ).fetchall()
    ]
    assert kinds == ["ticket_opened", "ticket_handed_over", "ticket_resolved"]
    # Each went out once, keyed so a repeated decision would not send it twice.
    assert count(db, "SELECT count(*) FROM notifications WHERE key LIKE 'notice:%%'") == 3


def test_notices_wait_for_quiet_hours_and_speak_the_owners_language(world: World) -> None:
    w, db = world, world.db
    night = T0.replace(hour=16)  # 00:00 in Shanghai
    w.clock.at = night
    w.owner("o2", zone="Asia/Shanghai", locale="zh-CN", quiet=(time(22), time(7)))
    w.device("cam-2", "o2", model="cam-c2", kind="camera", firmware="3.0.4")
    w.predict("cam-2", "reboot_loop", at=night)
    w.step()
    tid = ticket(db, "cam-2")["ticket_id"]
    held = db.execute(
        "SELECT not_before, status, locale, title FROM notifications WHERE key LIKE 'notice:%%'"
    ).fetchone()
    morning = T0.replace(hour=23)  # 07:00 in Shanghai
    title = f"工单 #{tid}：我们正在处理您的摄像头的问题"  # noqa: RUF001
    assert held == (morning, "pending", "zh-CN", title)
    assert w.receiver.requests("/owners/o2/0") == []
    w.clock.at = morning
    w.step()
    told = [r.json for r in w.receiver.wait_for(2, path="/owners/o2/0")]
    notice = next(j for j in told if j["title"].startswith("工单"))
    assert f"我们已为您的摄像头创建了客服工单 #{tid}：它在反复重启。" in notice["message"]  # noqa: RUF001
    # Quiet hours held it past the hour a person was due: it does not promise a time gone by.
    assert "二线技术专家的工作人员会尽快联系您。您现在无需做任何操作。" in notice["message"]


def test_the_shipped_templates_cover_every_notice_in_both_languages() -> None:
    library = read_library(NOTICES)
    for kind in NoticeKind:
        for locale, lang in (("en-US", "en"), ("zh-CN", "zh"), ("zh-TW", "zh"), ("fr-FR", "en")):
            assert library.template(kind, locale).locale.startswith(lang), (kind, locale)
    assert {w.locale for w in library.words} == {"en-US", "zh-CN"}


def _edit(name: str, old: str, new: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text, (name, old)
        path.write_text(text.replace(old, new), encoding="utf-8")

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            _edit("ticket_opened.en.md", "{contact}", "{due_date}"),
            r"ticket_opened.en.md: unknown placeholder \{due_date\}",
            id="unknown-placeholder",
        ),
        pytest.param(
            _edit("ticket_waiting.en.md", "{request}", "{request"),
            "ticket_waiting.en.md: stray brace",
            id="stray-brace",
        ),
        pytest.param(
            lambda folder: (folder / "ticket_reopened.zh.md").unlink(),
            "no zh template for ticket_reopened",
            id="missing-language",
        ),
        pytest.param(
            _edit("staff_message.zh.md", "工单 #{ticket}：客服人员给您的消息", "Ticket"),  # noqa: RUF001
            "staff_message.zh.md.*is not in zh-CN",
            id="english-in-chinese",
        ),
        pytest.param(
            _edit("words.en.yaml", "  reboot_loop: it keeps restarting\n", ""),
            r"words.en.yaml: faults: missing \['reboot_loop'\]",
            id="word-missing",
        ),
        pytest.param(
            _edit("ticket_resolved.en.md", "locale: en-US", "locale: en-US\nfault: x"),
            "unknown front-matter field",
            id="unknown-field",
        ),
        pytest.param(
            _edit("words.zh.yaml", "{link}", "{url}"),
            r"survey: unknown placeholder \{url\}",
            id="survey-without-link",
        ),
    ],
)
def test_a_broken_template_is_refused_naming_the_file(
    tmp_path: Path, change: Callable[[Path], None], message: str
) -> None:
    folder = tmp_path / "notices"
    shutil.copytree(NOTICES, folder)
    change(folder)
    with pytest.raises(GuideError, match=message):
        read_library(folder)


def test_the_guides_promise_what_forewarn_does() -> None:
    """The after-sales guide states the rule set's SLA and windows and the survey settings as
    shipped (change them, change the guide: this test says so); the closing step of every
    troubleshooting guide sends the owner to a reply that reaches a ticket."""
    from forewarn.settings import Settings
    from notifier.guides.markdown import read_directory
    from notifier.tickets.types import Priority

    guides = {(g.guide_id, g.language): g for g in read_directory(default_directory())}
    process = guides["support_ticket_process", "en"]
    text = " ".join(process.steps)
    minutes = {p: RULES.sla[p].first_response.total_seconds() / 60 for p in Priority}
    assert minutes == {Priority.CRITICAL: 30, Priority.MAJOR: 60, Priority.MINOR: 120}
    assert "within 30 minutes for a critical problem" in text
    assert "within 1 hour for a major one, within 2 hours for a minor one" in text
    assert RULES.timing.enterprise_first_response == timedelta(minutes=10)
    assert "within 10 minutes" in text
    assert RULES.timing.recurrence_window == timedelta(days=30) and "within 30 days" in text
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.survey_valid_days, defaults.survey_answer_hours) == (7.0, 24.0)
    assert "works for 7 days" in text and "no answer within a day, we call you" in text
    assert "working day" not in text
    zh = " ".join(guides["support_ticket_process", "zh"].steps)
    for figure in ("30 分钟内", "1 小时内", "2 小时内", "10 分钟内", "7 天内", "30 天内"):
        assert figure in zh
    for (guide_id, lang), guide in guides.items():
        if guide.category != "troubleshooting":
            continue
        last = guide.steps[-1]
        assert "open Support in the app" not in last and "客服支持" not in last, guide_id
        if lang == "en":
            assert "reply to this message: it goes onto your support ticket" in last, guide_id
        else:
            assert "回复本消息：您的回复会记入您的客服工单" in last, guide_id  # noqa: RUF001
