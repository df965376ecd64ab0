"""Near-breach and breach alerts reach the tier's lead, and enterprise tickets their account's
own team, through Apprise tags of the staff configuration and a real local HTTP endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from forewarn.clock import FixedClock
from forewarn.settings import Settings
from notifier.dispatcher import Dispatcher
from notifier.tickets import repository as tickets
from notifier.tickets.clocks import run_clocks
from notifier.tickets.intake import NewTicket, open_staff_ticket
from notifier.tickets.types import Priority, TicketType, Tier, team_tag
from rules.loader import load_rules
from tests import factories
from tests.receiver import HttpReceiver

Conn = psycopg.Connection[tuple[Any, ...]]
RULES = load_rules()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H, M = timedelta(hours=1), timedelta(minutes=1)

# Every staff tag a ticket can name, each to its own path, so the test sees who was told.
STAFF_CONFIG = """\
urls:
  - json://127.0.0.1:{port}/support-l1:
      tag: support-l1
  - json://127.0.0.1:{port}/support-l2:
      tag: support-l2
  - json://127.0.0.1:{port}/support-l3:
      tag: support-l3
  - json://127.0.0.1:{port}/lead-l1:
      tag: lead-l1
  - json://127.0.0.1:{port}/lead-l2:
      tag: lead-l2
  - json://127.0.0.1:{port}/lead-l3:
      tag: lead-l3
  - json://127.0.0.1:{port}/enterprise:
      tag: enterprise
  - json://127.0.0.1:{port}/ent-grand:
      tag: ent-grand
"""


@pytest.fixture
def rx() -> Iterator[HttpReceiver]:
    """The staff's chat, standing in for every tagged target."""
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def staff(settings: Settings, rx: HttpReceiver, tmp_path: Path) -> Settings:
    """Settings whose Apprise staff configuration routes each tag to its own path."""
    config = tmp_path / "staff.yml"
    config.write_text(STAFF_CONFIG.format(port=rx.port))
    return settings.with_overrides(notify_config=str(config))


def tick(db: Conn, staff: Settings, rx: HttpReceiver, at: datetime) -> list[str]:
    """Run the clocks at `at`, send what they queued, and return the paths that were told
    (each with the notification's title) this time."""
    before = len(rx.requests())
    with db.transaction():
        run_clocks(db, staff, RULES, now=at)
    dispatcher = Dispatcher(staff, FixedClock(at))
    try:
        while dispatcher.run_once():
            pass
    finally:
        dispatcher.close()
    return sorted(f"{r.path} {r.json['title']}" for r in rx.requests()[before:])


def test_l1_lead_hears_of_the_near_breach_and_the_miss(
    staff: Settings, db: Conn, rx: HttpReceiver
) -> None:
    factories.device(db, "lock-1")
    tid = factories.ticket(db, "lock-1", opened_at=T0, priority=Priority.MAJOR)
    # P2 at L1: 1 h to respond; 80 % of it is 48 min.
    assert tick(db, staff, rx, T0 + 47 * M) == []
    assert tick(db, staff, rx, T0 + 48 * M) == [f"/lead-l1 [P2] ticket {tid} near breach at L1"]
    assert tick(db, staff, rx, T0 + 50 * M) == []  # once per due
    assert tick(db, staff, rx, T0 + H) == [
        f"/lead-l1 [P2] ticket {tid}: L1 missed its due",
        f"/support-l2 [P2] ticket {tid} escalated to L2",
    ]
    # The timeline keeps why as codes and times too, for each language to say.
    by_kind = {kind: detail for _, kind, _, detail in tickets.events(db, ticket_id=tid)}
    assert by_kind["breach_warning"] | {"why": ""} == {
        "due": (T0 + H).isoformat(),
        "which": "respond",
        "tier": "L1",
        "why": "",
    }
    assert by_kind["escalated"] | {"why": ""} == {
        "from": "L1",
        "to": "L2",
        "which": "respond",
        "due": (T0 + H).isoformat(),
        "why": "",
    }


def test_every_breach_reaches_the_lead_of_its_tier(
    staff: Settings, db: Conn, rx: HttpReceiver
) -> None:
    factories.device(db, "lock-2")
    tid = factories.ticket(db, "lock-2", opened_at=T0, priority=Priority.CRITICAL, tier=Tier.L3)
    assert tick(db, staff, rx, T0 + 24 * M) == [f"/lead-l3 [P1] ticket {tid} near breach at L3"]
    assert tick(db, staff, rx, T0 + 30 * M) == [
        f"/lead-l3 [P1] ticket {tid} breached its SLA at L3"
    ]
    assert tick(db, staff, rx, T0 + 40 * M) == []


def test_enterprise_tickets_tell_the_accounts_own_team(
    staff: Settings, db: Conn, rx: HttpReceiver
) -> None:
    factories.device(db, "lock-3", owner_id="grand")
    db.execute(
        "UPDATE owners SET account_type = 'enterprise', enterprise_account = 'Grand Hotel', "
        "enterprise_team = 'ent-grand' WHERE owner_id = 'grand'"
    )
    tid = factories.ticket(db, "lock-3", opened_at=T0, priority=Priority.MAJOR, tier=Tier.L2)
    db.execute(
        "UPDATE tickets SET customer_id = 'grand', team = 'enterprise:Grand Hotel' "
        "WHERE ticket_id = %s",
        (tid,),
    )
    told = tick(db, staff, rx, T0 + 48 * M)
    assert told == [
        f"/ent-grand [P2] ticket {tid} near breach at L2",
        f"/lead-l2 [P2] ticket {tid} near breach at L2",
    ]
    assert not any(path.startswith("/enterprise ") for path in told)


@pytest.mark.parametrize(
    ("team", "recorded", "tag"),
    [
        pytest.param("support-l2", None, "support-l2", id="support-team"),
        pytest.param("enterprise:Grand Hotel", "ent-grand", "ent-grand", id="recorded-team"),
        pytest.param("enterprise:Grand Hotel", None, "enterprise-grand-hotel", id="per-account"),
    ],
)
def test_team_tags(team: str, recorded: str | None, tag: str) -> None:
    assert team_tag(team, Tier.L2, recorded) == tag


def test_a_complaints_feedback_and_follow_up_are_reminded_once(
    staff: Settings, db: Conn, rx: HttpReceiver
) -> None:
    factories.device(db, "lock-4")
    new = NewTicket(TicketType.COMPLAINT, Priority.MINOR, "Nobody called back", device_id="lock-4")
    with db.transaction():
        tid = open_staff_ticket(db, staff, RULES, new=new, actor="ana", now=T0)
    assert tick(db, staff, rx, T0) == ["/support-l1 [urgent][P3][L1] complaint: Nobody called back"]
    db.execute("UPDATE tickets SET state = 'resolved', resolved_at = %s", (T0 + H,))
    assert tick(db, staff, rx, T0 + 23 * H) == []
    reminder = f"[complaint] ticket {tid}: feedback due"
    assert tick(db, staff, rx, T0 + 24 * H) == [f"/lead-l1 {reminder}", f"/support-l1 {reminder}"]
    assert tick(db, staff, rx, T0 + 25 * H) == []
    follow_up = f"[complaint] ticket {tid}: follow-up due"
    assert tick(db, staff, rx, T0 + 7 * 24 * H) == [
        f"/lead-l1 {follow_up}",
        f"/support-l1 {follow_up}",
    ]
    kinds = [kind for _, kind, _, _ in tickets.events(db, ticket_id=tid)]
    assert kinds.count("complaint_feedback_due") == kinds.count("complaint_follow_up_due") == 1
