"""Every novice onboarded: the onboarding guide of a product kind reaches a novice owner when
their device of that kind first reports, once per owner and kind, through the real responder,
outbox and dispatcher to a real local HTTP receiver."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import count
from tests.test_acting import T0, World
from tests.test_acting import world as world  # the fixture

HOUR = timedelta(hours=1)
LOCK = "Welcome, Owner n1: getting started with your lock"
WATCH = "Welcome, Owner n1: getting started with your watch"


def welcomes(w: World, owner: str) -> list[str]:
    """Titles of what the owner's app received."""
    return [r.json["title"] for r in w.receiver.requests(f"/owners/{owner}/0")]


def test_a_novices_first_report_brings_the_onboarding_guide_once(world: World) -> None:
    w, db = world, world.db
    w.owner("n1")
    w.device("lock-n1", "n1", owned_days=5)
    w.device("lock-n2", "n1", owned_days=4)  # a second lock: no second welcome
    w.device("watch-n1", "n1", model="watch-w1", kind="watch", firmware="1.4.2", owned_days=5)
    w.owner("r1")
    w.device("lock-r1", "r1", owned_days=90)  # a regular owner: no onboarding
    w.owner("q1", targets=0)
    w.device("lock-q1", "q1", owned_days=2)  # nowhere to send it
    w.step()
    assert count(db, "SELECT count(*) FROM onboarded") == 0  # nothing has reported yet

    w.readings("lock-n1", T0 - HOUR, T0, battery_pct=90.0)
    w.readings("lock-r1", T0 - HOUR, T0, battery_pct=90.0)
    w.readings("lock-q1", T0 - HOUR, T0, battery_pct=90.0)
    w.step()
    [welcome] = w.receiver.wait_for(1, path="/owners/n1/0")
    assert welcome.json["title"] == LOCK
    assert w.receiver.requests("/owners/r1/0") == []
    assert db.execute("SELECT owner_id, kind, device_id, guide_id FROM onboarded").fetchall() == [
        ("n1", "lock", "lock-n1", "getting_started_lock")
    ]

    w.readings("lock-n2", T0 - HOUR, T0, battery_pct=90.0)
    w.readings("watch-n1", T0 - HOUR, T0, battery_pct=90.0)
    w.step()
    w.receiver.wait_for(2, path="/owners/n1/0")
    w.step()
    assert sorted(welcomes(w, "n1")) == [LOCK, WATCH]
    # A first fault guide does not bring a second welcome either.
    w.predict("lock-n1", "connectivity_loss", at=T0)
    w.step()
    assert len(w.receiver.wait_for(3, path="/owners/n1/0")) == 3
    assert count(db, "SELECT count(*) FROM notifications WHERE key LIKE 'onboarding:%%'") == 2
