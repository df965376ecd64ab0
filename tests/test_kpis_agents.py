"""Per-agent figures (GET /api/v1/kpis/agents) and the weekly ticket audit (/api/v1/audits)
against the real database: the same definitions as the team's KPIs, restricted to each
agent's tickets; a seeded, repeatable 10 % sample with a checklist per ticket."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.audits.sample import draw, week_seed
from api.kpis import flows
from api.kpis.types import Period
from forewarn.clock import FixedClock
from tests.test_kpis import SINCE, UNTIL, ticket

DB = psycopg.Connection[tuple[Any, ...]]
Keys = dict[str, dict[str, str]]
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
PERIOD = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}


def assign(db: DB, tid: int, agent: str) -> int:
    """Make `agent` the ticket's assignee."""
    db.execute("UPDATE tickets SET assignee = %s WHERE ticket_id = %s", (agent, tid))
    return tid


def survey(db: DB, tid: int, *, created: datetime, rating: int | None) -> None:
    """A survey of the ticket's resolution, answered an hour later with `rating` (or not)."""
    answered = created + H if rating is not None else None
    db.execute(
        """INSERT INTO surveys (ticket_id, owner_id, locale, linked, created_at, answer_by,
               expires_at, answered_at, answered_via, fixed, rating)
           VALUES (%s, 'o1', 'en-US', true, %s, %s, %s, %s, %s, %s, %s)""",
        (
            tid,
            created,
            created + D,
            created + 7 * D,
            answered,
            "survey" if answered else None,
            True if answered else None,
            rating,
        ),
    )


def team(db: DB) -> None:
    """Ana: three L1 tickets resolved (one escalated), answered in 10, 20 and 30 min, rated 5
    and 4; Bo: one L2 ticket resolved, answered in 1 h, rated 3, and a false alarm (left out of
    FCR and volume); an unassigned ticket counts for nobody."""
    t = SINCE + H
    assign(db, ticket(db, t, responded=t + 10 * M, resolved=t + 2 * H), "ana")
    a2 = assign(db, ticket(db, t, responded=t + 20 * M, resolved=t + 3 * H), "ana")
    assign(db, ticket(db, t, responded=t + 30 * M, resolved=t + 5 * H, escalations=1), "ana")
    b1 = assign(db, ticket(db, t, responded=t + H, resolved=t + 4 * H, tier="L2"), "bo")
    assign(db, ticket(db, t, resolved=t + 2 * H, code="false_alarm"), "bo")
    ticket(db, t, responded=t + 5 * M, resolved=t + H)
    survey(db, a2, created=t + 3 * H, rating=5)
    survey(db, a2, created=t + 4 * H, rating=4)
    survey(db, b1, created=t + 4 * H, rating=3)


def test_each_agent_is_counted_as_the_team_is(
    api_client: TestClient, keys: Keys, db: DB, api_clock: FixedClock
) -> None:
    team(db)
    got = api_client.get("/api/v1/kpis/agents", params=PERIOD, headers=keys["viewer"])
    assert got.status_code == 200, got.text
    by = {a["agent"]: a for a in got.json()["agents"]}
    assert list(by) == ["ana", "bo"]
    ana, bo = by["ana"], by["bo"]
    assert ana["volume"] == 3 and bo["volume"] == 1
    assert (
        ana["first_contact_resolution"]["numerator"],
        ana["first_contact_resolution"]["denominator"],
    ) == (2, 3)
    assert ana["first_contact_resolution"]["meets_target"] is False
    assert bo["first_contact_resolution"]["value"] is None  # opened at L2: not first line's
    assert ana["first_response"]["value"] == pytest.approx(20 * 60)
    assert ana["first_response"]["meets_target"] is True
    assert bo["first_response"]["value"] == pytest.approx(3600)
    assert ana["satisfaction"]["value"] == pytest.approx(4.5) and ana["satisfaction"]["count"] == 2
    assert bo["satisfaction"]["value"] == pytest.approx(3.0)
    # The agents' figures add up to the team's, bar the unassigned ticket.
    whole = flows.kpi_report(db, period=Period(SINCE, UNTIL), now=api_clock.now())
    assert whole.first_contact_resolution.denominator == 3 + 1  # the unassigned one
    assert whole.first_response.count == 3 + 1 + 1


def test_agents_need_a_key_and_a_sane_period(api_client: TestClient, keys: Keys) -> None:
    assert api_client.get("/api/v1/kpis/agents").status_code == 401
    bad = {"since": UNTIL.isoformat(), "until": SINCE.isoformat()}
    assert (
        api_client.get("/api/v1/kpis/agents", params=bad, headers=keys["viewer"]).status_code == 422
    )


# ---- the weekly audit ----------------------------------------------------------------------

WEEK = date(2025, 3, 3)  # SINCE's Monday


def closed_week(db: DB, count: int) -> list[int]:
    """`count` tickets closed during WEEK, assigned to ana."""
    ids = []
    for n in range(count):
        opened = SINCE + n * H
        tid = assign(db, ticket(db, opened, responded=opened + M, resolved=opened + H), "ana")
        db.execute(
            "UPDATE tickets SET state = 'closed', closed_at = %s WHERE ticket_id = %s",
            (opened + 2 * H, tid),
        )
        ids.append(tid)
    return ids


def test_the_draw_is_ten_percent_seeded_and_repeatable() -> None:
    ids = list(range(100, 137))
    first = draw(ids, seed=42)
    assert len(first) == 4  # 10 % of 37, rounded up
    assert draw(list(reversed(ids)), seed=42) == first  # the order they come in does not matter
    assert draw(ids, seed=43) != first
    assert draw([7], seed=1) == [7] and draw([], seed=1) == []
    assert week_seed(WEEK) == week_seed(date(2025, 3, 3)) != week_seed(date(2025, 3, 10))


def test_a_week_is_drawn_once_and_each_ticket_checked(
    api_client: TestClient, keys: Keys, db: DB, api_clock: FixedClock
) -> None:
    closed = closed_week(db, 23)
    api_clock.at = datetime(2025, 3, 11, 9, 0, tzinfo=SINCE.tzinfo)
    path = f"/api/v1/audits/weeks/{WEEK.isoformat()}"
    got = api_client.post(path, json={}, headers=keys["agent"])
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["closed"], body["sampled"], body["pending"]) == (23, 3, 3)
    assert body["seed"] == week_seed(WEEK)
    sample = [i["ticket_id"] for i in body["items"]]
    assert sample == draw(closed, seed=week_seed(WEEK))
    again = api_client.post(path, json={"seed": 1}, headers=keys["admin"]).json()
    assert [i["ticket_id"] for i in again["items"]] == sample  # drawn once

    first = body["items"][0]["audit_id"]
    own = api_client.post(
        f"/api/v1/audits/{first}",
        json={"info_complete": True, "steps_standard": True, "feedback_recorded": True},
        headers=keys["agent"],
    )
    assert own.status_code == 200  # "test agent" did not work these tickets (ana did)
    assert own.json()["outcome"] == "passed"
    second = body["items"][1]["audit_id"]
    failed = api_client.post(
        f"/api/v1/audits/{second}",
        json={
            "info_complete": True,
            "steps_standard": False,
            "feedback_recorded": True,
            "notes": "no steps recorded before the resolution",
        },
        headers=keys["admin"],
    ).json()
    assert (failed["outcome"], failed["audited_by"]) == ("failed", "test admin")
    week = api_client.get(path, headers=keys["viewer"]).json()
    assert (week["passed"], week["failed"], week["pending"]) == (1, 1, 1)


def test_ana_may_not_audit_her_own_ticket(
    api_client: TestClient, keys: Keys, db: DB, api_clock: FixedClock
) -> None:
    closed_week(db, 3)
    db.execute("UPDATE tickets SET assignee = 'test agent'")
    api_clock.at = datetime(2025, 3, 11, 9, 0, tzinfo=SINCE.tzinfo)
    body = api_client.post(
        f"/api/v1/audits/weeks/{WEEK.isoformat()}", json={}, headers=keys["agent"]
    ).json()
    audit_id = body["items"][0]["audit_id"]
    answer = api_client.post(
        f"/api/v1/audits/{audit_id}",
        json={"info_complete": True, "steps_standard": True, "feedback_recorded": True},
        headers=keys["agent"],
    )
    assert answer.status_code == 409 and "someone else audits it" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("week", "fragment"),
    [
        pytest.param("2025-03-04", "a week is named by its Monday", id="tuesday"),
        pytest.param("2025-03-10", "has not ended yet", id="this-week"),
    ],
)
def test_bad_weeks_are_422(
    api_client: TestClient, keys: Keys, api_clock: FixedClock, week: str, fragment: str
) -> None:
    api_clock.at = datetime(2025, 3, 12, 9, 0, tzinfo=SINCE.tzinfo)
    answer = api_client.post(f"/api/v1/audits/weeks/{week}", json={}, headers=keys["agent"])
    assert answer.status_code == 422 and fragment in answer.text
    assert (
        api_client.post(f"/api/v1/audits/weeks/{week}", json={}, headers=keys["viewer"]).status_code
        == 403
    )
