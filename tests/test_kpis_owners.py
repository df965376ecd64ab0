"""The KPIs of talking with owners, against the real database: surveys (CSAT, response rate,
confirmed fix) and novices onboarded, each figure worked out by hand in the cases below
(docs/kpis.md defines them). The ticket and incident KPIs are in test_kpis.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from api.kpis import flows
from api.kpis.types import Period
from tests.test_kpis import (
    DB,
    SINCE,
    T0,
    UNTIL,
    D,
    Expected,
    H,
    _keys,
    figures,
    ticket,
)


def survey(
    db: DB,
    created: datetime,
    *,
    answered: datetime | None = None,
    rating: int | None = None,
    fixed: bool | None = None,
    cancelled: datetime | None = None,
    via: str = "survey",
) -> None:
    """A survey of a resolution at `created` (of a ticket resolved before the period, so the
    ticket KPIs stay empty), answered or not; unanswered a day later it is a call-back."""
    tid = ticket(db, SINCE - 2 * D, resolved=SINCE - D)
    db.execute(
        """INSERT INTO surveys (ticket_id, owner_id, locale, linked, created_at, answer_by,
               expires_at, answered_at, answered_via, fixed, rating, cancelled_at)
           VALUES (%s, 'o1', 'en-US', true, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            tid,
            created,
            created + D,
            created + 7 * D,
            answered,
            via if answered else None,
            fixed,
            rating,
            cancelled,
        ),
    )


def novice(
    db: DB,
    owner: str,
    kind: str,
    *,
    first_seen: datetime,
    owned_days: float,
    onboarding: str | None = None,
    account: str = "consumer",
) -> None:
    """An owner's device of `kind`, activated `owned_days` before it first reported, and the
    onboarding guide queued for the owner and kind in status `onboarding` (None: none)."""
    db.execute(
        "INSERT INTO owners (owner_id, name, account_type) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (owner, owner, account),
    )
    db.execute(
        "INSERT INTO devices (device_id, kind, owner_id, activated_at, first_seen) "
        "VALUES (%s, %s, %s, %s, %s)",
        (f"{owner}-{kind}-{next(_keys)}", kind, owner, first_seen - owned_days * D, first_seen),
    )
    if onboarding is not None:
        db.execute(
            """INSERT INTO notifications (key, channel, audience, target, title, body, owner_id,
                   guide_id, created_at, not_before, status)
               VALUES (%s, 'apprise', 'owner', 'json://127.0.0.1/owner', 'Welcome', 'Hello', %s,
                       %s, %s, %s, %s)""",
            (
                f"onboarding:{owner}:{kind}:{next(_keys)}",
                owner,
                f"getting_started_{kind}",
                first_seen,
                first_seen,
                onboarding,
            ),
        )


def surveys(db: DB) -> None:
    """Answered 5 (fixed), 4 on the call-back (fixed), 2 (not fixed); one unanswered past its
    day; one unanswered within it; one answered only after now; one cancelled by a reopen;
    one of a resolution before the period."""
    survey(db, T0 + 1 * H, answered=T0 + 2 * H, rating=5, fixed=True)
    survey(db, T0 + 1 * H, answered=T0 + 20 * H, rating=4, fixed=True, via="call")
    survey(db, T0 + 2 * H, answered=T0 + 3 * H, rating=2, fixed=False)
    survey(db, T0 + 1 * H)
    survey(db, T0 + 10 * H)
    survey(db, T0 + 4 * H, answered=UNTIL + 3 * H, rating=1, fixed=False)
    survey(db, T0 + 3 * H, cancelled=T0 + 5 * H)
    survey(db, SINCE - H, answered=SINCE + H, rating=1, fixed=False)


def onboarding(db: DB) -> None:
    """Novice owner and kind pairs first reporting in the period: onboarded (two locks, one
    pair), queued, never sent, cancelled; left out: a regular owner, an enterprise, one
    first seen before the period."""
    novice(db, "o1", "lock", first_seen=T0 + 1 * H, owned_days=5, onboarding="sent")
    novice(db, "o1", "lock", first_seen=T0 + 2 * H, owned_days=3)
    novice(db, "o2", "watch", first_seen=T0 + 3 * H, owned_days=10, onboarding="pending")
    novice(db, "o3", "camera", first_seen=T0 + 4 * H, owned_days=2)
    novice(db, "o7", "air_conditioner", first_seen=T0 + 5 * H, owned_days=1, onboarding="cancelled")
    novice(db, "o4", "lock", first_seen=T0 + 1 * H, owned_days=100, onboarding="sent")
    novice(db, "o5", "watch", first_seen=T0 + 1 * H, owned_days=2, account="enterprise")
    novice(db, "o6", "lock", first_seen=SINCE - H, owned_days=2)


CASES = [
    pytest.param(
        surveys,
        UNTIL + 2 * H,
        {
            "satisfaction": (11 / 3, 11, 3, 3, False),  # (5 + 4 + 2) / 3 < 4.5
            "survey_response": (0.75, 3, 4, 2, False),  # < 90%
            "confirmed_fix": (2 / 3, 2, 3, 0, None),
        },
        id="satisfaction-and-response",
    ),
    pytest.param(
        onboarding,
        UNTIL,
        {
            "onboarding": (1 / 3, 1, 3, 1, False),  # o1's lock of o1, o2 (queued), o3, o7
            "guide_delivery": (1.0, 2, 2, 1, None),  # onboarding guides are guides too
        },
        id="novices-onboarded",
    ),
]


@pytest.mark.parametrize(("setup", "now", "expected"), CASES)
def test_report(db: DB, setup: Callable[[DB], None], now: datetime, expected: Expected) -> None:
    """Every figure of the report is the hand-computed one; unlisted ones are empty."""
    setup(db)
    got = figures(flows.kpi_report(db, period=Period(SINCE, UNTIL), now=now))
    empty = (None, 0, 0, 0, None)
    for name, value in got.items():
        assert value == pytest.approx(expected.get(name, empty), abs=1e-3), name
