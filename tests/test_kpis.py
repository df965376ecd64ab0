"""The support KPIs against the real database: rows inserted with hand-chosen business times,
every figure worked out by hand in the case tables below (docs/kpis.md defines them)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.kpis import flows, repository
from api.kpis.types import Average, Bucket, KpiReport, Mean, Period, Ratio
from forewarn.settings import Settings
from tests.conftest import count

DB = psycopg.Connection[tuple[Any, ...]]
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
US = timedelta(microseconds=1)
T0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday, midnight UTC
SINCE, UNTIL = T0, T0 + D
# PRODUCT.md's SLA table: (first response, resolution) per priority.
SLA = {"critical": (30 * M, 4 * H), "major": (1 * H, 8 * H), "minor": (2 * H, 24 * H)}
_keys = itertools.count(1)


# Factories: the fewest columns a real row has, every NOT NULL one filled.


def event(db: DB, ticket_id: int, *, at: datetime, kind: str) -> None:
    """One entry of a ticket's timeline."""
    db.execute(
        "INSERT INTO ticket_events (ticket_id, at, kind) VALUES (%s, %s, %s)",
        (ticket_id, at, kind),
    )


def ticket(
    db: DB,
    opened: datetime,
    *,
    priority: str = "minor",
    responded: datetime | None = None,
    resolved: datetime | None = None,
    escalations: int = 0,
    reopened: int = 0,
    feedback: str | None = None,
    feedback_at: datetime | None = None,
    code: str | None = None,
    kind: str = "device",
    tier: str = "L1",
) -> int:
    """A ticket with PRODUCT.md's dues for its priority, and the events its times imply
    (`responded`: the first contact with the customer; `tier`: the tier it opened at)."""
    respond, solve = SLA[priority]
    state = "resolved" if resolved else "acknowledged" if responded else "new"
    code = code or ("fixed_remotely" if resolved else None)
    row = db.execute(
        """INSERT INTO tickets (kind, device_id, fault, symptom, trigger, scope, priority, tier,
               team, state, opened_at, first_response_due, resolution_due, tier_since,
               tier_respond_due, tier_solve_due, first_response_at, resolved_at,
               resolution_code, escalations, reopened, feedback, feedback_at, feedback_by)
           VALUES (%s, 'lock-1', 'battery_failure', 'battery empty soon', 'prediction',
               '1 device', %s, %s, 'support-l1', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
               %s, %s, %s, %s)
           RETURNING ticket_id""",
        (
            kind,
            priority,
            tier,
            state,
            opened,
            opened + respond,
            opened + solve,
            opened,
            opened + respond,
            opened + solve,
            responded,
            resolved,
            code,
            escalations,
            reopened,
            feedback,
            feedback_at,
            "ana" if feedback else None,
        ),
    ).fetchone()
    assert row is not None
    tid = int(row[0])
    event(db, tid, at=opened, kind="opened")
    if responded is not None:
        event(db, tid, at=responded, kind="contact")
    for _ in range(escalations):
        event(db, tid, at=opened + respond, kind="escalated")
    if resolved is not None:
        event(db, tid, at=resolved, kind="resolve")
    return tid


def incident(
    db: DB,
    opened: datetime,
    *,
    device: str = "lock-1",
    closed: datetime | None = None,
    outcome: str | None = None,
    recurrence_of: int | None = None,
    fleet_incident_id: int | None = None,
) -> int:
    """A battery incident on `device`, closed with `outcome` if `closed` is given."""
    row = db.execute(
        """INSERT INTO incidents (device_id, fault, segment, rule, state, opened_at,
               last_predicted_at, probability, max_probability, recurrence_of,
               fleet_incident_id, closed_at, recovered_at, outcome)
           VALUES (%s, 'battery_failure', 'regular', 'battery guide', %s, %s, %s, 0.9, 0.9,
                   %s, %s, %s, %s, %s)
           RETURNING incident_id""",
        (
            device,
            "closed" if closed else "guided",
            opened,
            opened,
            recurrence_of,
            fleet_incident_id,
            closed,
            closed,
            outcome,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def fleet(db: DB, opened: datetime) -> int:
    """A fleet incident with its (open, critical, L3) ticket."""
    tid = ticket(db, opened, priority="critical", kind="fleet")
    row = db.execute(
        """INSERT INTO fleet_incidents (model, firmware, fault, opened_at, devices, priority,
               ticket_id)
           VALUES ('lock-a', '1.0.0', 'battery_failure', %s, 5, 'critical', %s)
           RETURNING fleet_incident_id""",
        (opened, tid),
    ).fetchone()
    assert row is not None
    return int(row[0])


def notification(
    db: DB,
    created: datetime,
    *,
    status: str = "sent",
    guide_id: str | None = "lock-battery",
    audience: str = "owner",
    incident_id: int | None = None,
) -> None:
    """An outbox row; an owner's guide unless told otherwise."""
    db.execute(
        """INSERT INTO notifications (key, channel, audience, target, title, body, incident_id,
               guide_id, created_at, not_before, status)
           VALUES (%s, 'apprise', %s, 'json://127.0.0.1/owner', 'Battery', 'Change it', %s, %s,
                   %s, %s, %s)""",
        (f"k{next(_keys)}", audience, incident_id, guide_id, created, created, status),
    )


# The cases. Each setup writes rows; each expectation lists the figures that are not empty,
# as (value, numerator or total seconds, denominator or count, pending, meets target).


def boundaries(db: DB) -> None:
    """Rows at the period's edges: `since` is in, `until` is out."""
    ticket(db, SINCE, responded=SINCE + 10 * M, resolved=SINCE + 60 * M)
    ticket(db, UNTIL - US, responded=UNTIL + 20 * M - US)  # in; answered before now
    ticket(db, UNTIL, responded=UNTIL + 5 * M)  # out
    ticket(db, SINCE - US, resolved=SINCE + 30 * M)  # opened before; resolved inside
    ticket(db, SINCE - 2 * H, resolved=UNTIL)  # resolved exactly at until: out
    incident(db, SINCE)
    incident(db, UNTIL, device="lock-2")
    notification(db, SINCE)
    notification(db, UNTIL)


def first_responses(db: DB) -> None:
    """Two answered (10 and 50 min), one never, one answered after now."""
    ticket(db, T0 + 1 * H, priority="major", responded=T0 + 1 * H + 10 * M)
    ticket(db, T0 + 2 * H, priority="major", responded=T0 + 2 * H + 50 * M)
    ticket(db, T0 + 3 * H, priority="major")
    ticket(db, T0 + 4 * H, priority="major", responded=UNTIL + 5 * M)


def resolutions(db: DB) -> None:
    """Opened before the period, resolved inside it: three at first contact, one escalated,
    one reopened then resolved again; left out: one reopened and open, one resolved before,
    two false alarms (resolved as one; marked one by feedback), a duplicate."""
    before = SINCE - 1 * H
    ticket(db, before, responded=SINCE - 50 * M, resolved=SINCE + 1 * H)  # 2 h
    ticket(db, before, resolved=SINCE + 3 * H)  # 4 h
    ticket(db, before, resolved=SINCE + 1 * H)  # 2 h
    ticket(db, before, escalations=1, resolved=SINCE + 5 * H)  # 6 h
    ticket(db, before, reopened=1, resolved=SINCE + 7 * H)  # 8 h
    ticket(db, before, reopened=1)
    ticket(db, SINCE - D, resolved=SINCE - M)
    ticket(db, before, resolved=SINCE + 1 * H, code="false_alarm")
    ticket(db, before, resolved=SINCE + 2 * H, feedback="false_alarm", feedback_at=SINCE + H)
    ticket(db, before, resolved=SINCE + 2 * H, code="duplicate")


def sla_per_priority(db: DB) -> None:
    """Critical: met, response late, resolution late, not yet due, response overdue.
    Major: both met exactly at their dues, resolution late."""
    ticket(db, T0 + 1 * H, priority="critical", responded=T0 + 1 * H + 20 * M, resolved=T0 + 4 * H)
    ticket(db, T0 + 2 * H, priority="critical", responded=T0 + 2 * H + 40 * M, resolved=T0 + 5 * H)
    ticket(
        db,
        T0 + 3 * H,
        priority="critical",
        responded=T0 + 3 * H + 10 * M,
        resolved=T0 + 8 * H,
        escalations=1,
    )
    ticket(db, UNTIL - 10 * M, priority="critical")
    ticket(db, UNTIL - 1 * H, priority="critical")
    ticket(db, T0 + 1 * H, priority="major", responded=T0 + 2 * H, resolved=T0 + 9 * H)
    ticket(db, T0 + 2 * H, priority="major", responded=T0 + 2 * H + 30 * M, resolved=T0 + 11 * H)


def recurrences(db: DB) -> None:
    """Four incidents in the period: a recurrence after 10 days, a link older than 30 days
    (a longer configured window), one exactly 30 days on, one first-time."""
    old_a = incident(db, SINCE - 10 * D, closed=SINCE - 9 * D, outcome="recovered")
    incident(db, SINCE + 1 * H, recurrence_of=old_a)
    old_b = incident(
        db, SINCE + 2 * H - 40 * D, device="lock-2", closed=SINCE - 39 * D, outcome="recovered"
    )
    incident(db, SINCE + 2 * H, device="lock-2", recurrence_of=old_b)
    old_c = incident(
        db, SINCE + 3 * H - 30 * D, device="lock-3", closed=SINCE - 29 * D, outcome="recovered"
    )
    incident(db, SINCE + 3 * H, device="lock-3", recurrence_of=old_c)
    incident(db, SINCE + 4 * H, device="lock-4")


def self_service(db: DB) -> None:
    """Solved by the guide; guide failed; recovered unguided; fleet-covered; open; closed
    only after now."""

    def guided(
        device: str,
        opened: datetime,
        closed: datetime | None,
        status: str = "sent",
        fleet_id: int | None = None,
    ) -> None:
        i = incident(
            db,
            opened,
            device=device,
            closed=closed,
            fleet_incident_id=fleet_id,
            outcome="recovered_after_guide" if closed else None,
        )
        notification(db, opened, status=status, incident_id=i)

    guided("s1", T0 + 1 * H, T0 + 3 * H)
    guided("s2", T0 + 1 * H, T0 + 3 * H, status="failed")
    incident(db, T0 + 1 * H, device="s3", closed=T0 + 2 * H, outcome="recovered")
    guided("s4", T0 + 1 * H, T0 + 5 * H, fleet_id=fleet(db, SINCE - 1 * H))
    guided("s5", T0 + 2 * H, None)
    guided("s6", T0 + 2 * H, UNTIL + 1 * H)


def false_alarms(db: DB) -> None:
    """Feedback: one false alarm, two confirmed, one none, one given after now."""
    opened = T0 + 1 * H
    ticket(db, opened, feedback="false_alarm", feedback_at=opened + 30 * M)
    ticket(db, opened, feedback="confirmed", feedback_at=opened + 30 * M)
    ticket(db, opened, feedback="confirmed", feedback_at=opened + 40 * M)
    ticket(db, opened)
    ticket(db, opened, feedback="false_alarm", feedback_at=opened + 2 * H)


def deliveries(db: DB) -> None:
    """Guides to owners in every status, and rows that are not guides or not in the period."""
    for status in ("sent", "sent", "sent", "failed", "interrupted", "pending", "sending"):
        notification(db, T0 + 1 * H, status=status)
    notification(db, T0 + 1 * H, audience="staff", guide_id=None)
    notification(db, T0 + 1 * H, guide_id=None)
    notification(db, UNTIL)
    notification(db, SINCE - US)


def withdrawn(db: DB) -> None:
    """Work withdrawn without being done (a new demo run replaced its fleet): a ticket, an
    incident and a cancelled guide, left out of every figure."""
    ticket(db, T0 + 1 * H, priority="critical", code="withdrawn")
    i = incident(db, T0 + 1 * H, closed=T0 + 2 * H, outcome="withdrawn")
    notification(db, T0 + 1 * H, status="cancelled", incident_id=i)


def first_line(db: DB) -> None:
    """FCR counts only tickets opened at L1: resolved at L1 (a device and an owner's own
    ticket), escalated from L1; left out: one opened at L2 and a fleet ticket at L3. Time to
    resolve covers all five."""
    before = SINCE - 1 * H
    ticket(db, before, resolved=SINCE + 1 * H)  # 2 h
    ticket(db, before, resolved=SINCE + 2 * H, kind="owner")  # 3 h
    ticket(db, before, escalations=1, resolved=SINCE + 3 * H)  # 4 h
    ticket(db, before, tier="L2", resolved=SINCE + 1 * H)  # 2 h
    ticket(db, before, tier="L3", kind="fleet", resolved=SINCE + 1 * H)  # 2 h


Expected = dict[str, tuple[float | None, float, int, int, bool | None]]


CASES = [
    pytest.param(lambda db: None, UNTIL, {}, id="empty-period"),
    pytest.param(withdrawn, UNTIL, {}, id="withdrawn-left-out"),
    pytest.param(
        boundaries,
        UNTIL + 1 * H,
        {
            "first_response": (900.0, 1800.0, 2, 0, True),
            "first_contact_resolution": (1.0, 2, 2, 0, True),
            "time_to_resolve": (2700.0, 5400.0, 2, 0, None),
            "sla.minor.first_response": (1.0, 2, 2, 0, None),
            "sla.minor.resolution": (1.0, 1, 1, 1, None),
            "recurrence": (0.0, 0, 1, 0, True),
            "self_service": (None, 0, 0, 1, None),
            "false_alarms": (None, 0, 0, 2, None),
            "guide_delivery": (1.0, 1, 1, 0, None),
        },
        id="boundaries",
    ),
    pytest.param(
        first_responses,
        UNTIL,
        {
            "first_response": (1800.0, 3600.0, 2, 2, True),  # exactly the 30-min target
            "sla.major.first_response": (0.5, 2, 4, 0, None),
            "sla.major.resolution": (0.0, 0, 4, 0, None),
            "false_alarms": (None, 0, 0, 4, None),
        },
        id="first-response-with-waiting",
    ),
    pytest.param(
        resolutions,
        UNTIL,
        {
            "first_contact_resolution": (0.6, 3, 5, 0, False),
            "time_to_resolve": (15840.0, 79200.0, 5, 0, None),
        },
        id="fcr-escalated-reopened",
    ),
    pytest.param(
        sla_per_priority,
        UNTIL,
        {
            "first_response": (1920.0, 9600.0, 5, 2, False),
            "first_contact_resolution": (0.8, 4, 5, 0, True),
            "time_to_resolve": (20160.0, 100800.0, 5, 0, None),
            "sla.critical.first_response": (0.5, 2, 4, 1, None),
            "sla.critical.resolution": (2 / 3, 2, 3, 2, None),
            "sla.major.first_response": (1.0, 2, 2, 0, None),
            "sla.major.resolution": (0.5, 1, 2, 0, None),
            "false_alarms": (None, 0, 0, 7, None),
        },
        id="sla-per-priority",
    ),
    pytest.param(
        recurrences,
        UNTIL,
        {
            "recurrence": (0.5, 2, 4, 0, False),
            "self_service": (None, 0, 0, 4, None),
        },
        id="recurrence-30-days",
    ),
    pytest.param(
        self_service,
        UNTIL,
        {
            "recurrence": (0.0, 0, 6, 0, True),
            "self_service": (0.25, 1, 4, 2, False),
            "guide_delivery": (0.8, 4, 5, 0, None),
        },
        id="self-service",
    ),
    pytest.param(
        false_alarms,
        T0 + 2 * H,
        {
            "first_response": (None, 0.0, 0, 5, None),
            "sla.minor.first_response": (None, 0, 0, 5, None),
            "sla.minor.resolution": (None, 0, 0, 5, None),
            "false_alarms": (1 / 3, 1, 3, 2, None),
        },
        id="false-alarms",
    ),
    pytest.param(
        deliveries,
        UNTIL,
        {
            "guide_delivery": (0.6, 3, 5, 2, None),
        },
        id="guide-delivery",
    ),
    pytest.param(
        first_line,
        UNTIL,
        {
            "first_contact_resolution": (2 / 3, 2, 3, 0, False),
            "time_to_resolve": (9360.0, 46800.0, 5, 0, None),
        },
        id="fcr-opened-at-l1-only",
    ),
]


def figures(report: KpiReport) -> Expected:
    """Every KPI of a report, flattened to the shape of the expectations."""

    def row(k: Ratio | Mean | Average) -> tuple[float | None, float, int, int, bool | None]:
        if isinstance(k, Mean):
            return (k.value, k.total_seconds, k.count, k.pending, k.meets_target)
        if isinstance(k, Average):
            return (k.value, k.total, k.count, k.pending, k.meets_target)
        return (k.value, k.numerator, k.denominator, k.pending, k.meets_target)

    out = {
        name: row(getattr(report, name))
        for name in (
            "first_response",
            "first_contact_resolution",
            "time_to_resolve",
            "recurrence",
            "self_service",
            "false_alarms",
            "guide_delivery",
            "satisfaction",
            "survey_response",
            "confirmed_fix",
            "onboarding",
        )
    }
    for s in report.sla:
        out[f"sla.{s.priority}.first_response"] = row(s.first_response)
        out[f"sla.{s.priority}.resolution"] = row(s.resolution)
    return out


@pytest.mark.parametrize(("setup", "now", "expected"), CASES)
def test_report(db: DB, setup: Callable[[DB], None], now: datetime, expected: Expected) -> None:
    """Every figure of the report is the hand-computed one; unlisted ones are empty."""
    setup(db)
    report = flows.kpi_report(db, period=Period(SINCE, UNTIL), now=now)
    got = figures(report)
    empty = (None, 0, 0, 0, None)
    assert set(expected) <= set(got)
    for name, value in got.items():
        want = expected.get(name, empty)
        assert value == pytest.approx(want, abs=1e-3), name
    assert [s.priority for s in report.sla] == ["critical", "major", "minor"]
    assert (report.since, report.until, report.now) == (SINCE, UNTIL, now)


def test_report_reads_one_snapshot_and_writes_nothing(db: DB, settings: Settings) -> None:
    """A ticket committed by someone else halfway through a report is not half in it."""
    resolutions(db)
    with repository.snapshot(db):
        before = repository.opened_tickets(db, period=Period(SINCE, UNTIL), now=UNTIL)
        with psycopg.connect(settings.database_url or "", autocommit=True) as other:
            ticket(other, opened=T0 + H)
        assert repository.opened_tickets(db, period=Period(SINCE, UNTIL), now=UNTIL) == before
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            db.execute("UPDATE tickets SET assignee = 'x'")
    after = repository.opened_tickets(db, period=Period(SINCE, UNTIL), now=UNTIL)
    assert after.opened == before.opened + 1
    assert count(db, "SELECT count(*) FROM tickets WHERE assignee = 'x'") == 0


def test_period_defaults_and_refusals() -> None:
    """The default is the 7 days before now; naive times are UTC; since must precede until."""
    now = T0 + 5 * H
    assert flows.period(None, None, now=now) == Period(now - 7 * D, now)
    assert flows.period(None, UNTIL, now=now) == Period(UNTIL - 7 * D, UNTIL)
    assert flows.period(SINCE, None, now=now) == Period(SINCE, now)
    naive = flows.period(datetime(2025, 3, 3), datetime(2025, 3, 4), now=now)
    assert naive == Period(SINCE, UNTIL)
    for since, until in ((UNTIL, SINCE), (SINCE, SINCE)):
        with pytest.raises(ValueError, match=r"since .* must be before until"):
            flows.period(since, until, now=now)
    with pytest.raises(ValueError, match="too early: give since too"):
        flows.period(None, datetime(1, 1, 2, tzinfo=UTC), now=now)
    with pytest.raises(ValueError, match="more than 10000 buckets"):
        flows.check_buckets(Period(SINCE, SINCE + 2 * 365 * D), Bucket.HOUR)
    flows.check_buckets(Period(SINCE, SINCE + 2 * 365 * D), Bucket.DAY)


def test_hourly_series(db: DB) -> None:
    """Three hourly buckets worked out by hand, the empty-ish last one included."""
    ticket(db, T0 + 10 * M, responded=T0 + 20 * M, resolved=T0 + 90 * M)  # both dues met
    ticket(db, T0 + 20 * M, priority="critical", responded=T0 + 1 * H)  # 40 min: late
    ticket(db, T0 + 70 * M, priority="critical", responded=T0 + 80 * M, resolved=T0 + 2 * H)
    ticket(db, T0 + 179 * M)  # nothing due yet
    ticket(db, T0 - 1 * H, resolved=T0 + 150 * M)  # opened before, resolved in bucket 2
    notification(db, T0 + 5 * M)
    notification(db, T0 + 15 * M, status="failed")
    notification(db, T0 + 130 * M)
    series = flows.kpi_series(db, period=Period(T0, T0 + 3 * H), now=T0 + 3 * H, bucket=Bucket.HOUR)
    got = [
        (
            p.start,
            p.tickets_opened,
            p.tickets_resolved,
            p.first_response.value,
            p.first_response.count,
            p.sla_met.value,
            p.sla_met.numerator,
            p.sla_met.denominator,
            p.sla_met.pending,
            p.guides_sent,
        )
        for p in series.points
    ]
    assert got == [
        (T0, 2, 0, 1500.0, 2, 0.5, 1, 2, 0, 1),
        (T0 + 1 * H, 1, 1, 600.0, 1, 1.0, 1, 1, 0, 0),
        (T0 + 2 * H, 1, 2, None, 0, None, 0, 0, 1, 1),
    ]


def test_daily_series_covers_a_period_that_starts_mid_day(db: DB) -> None:
    """Day buckets start at midnight UTC; rows outside [since, until) are left out, even in
    a bucket that sticks out of the period."""
    since, until = T0 + 6 * H, T0 + 2 * D + 6 * H
    ticket(db, T0 + 1 * H)  # bucket T0, but before since
    ticket(db, T0 + 7 * H)
    ticket(db, T0 + 2 * D + 5 * H)
    ticket(db, until)
    series = flows.kpi_series(db, period=Period(since, until), now=until, bucket=Bucket.DAY)
    assert [(p.start, p.tickets_opened) for p in series.points] == [
        (T0, 1),
        (T0 + D, 0),
        (T0 + 2 * D, 1),
    ]
    report = flows.kpi_report(db, period=Period(since, until), now=until)
    assert report.first_response.pending == sum(p.tickets_opened for p in series.points)


def test_empty_series_has_every_bucket(db: DB) -> None:
    """No rows: one point per bucket, counts 0, means and shares None."""
    series = flows.kpi_series(db, period=Period(SINCE, UNTIL), now=UNTIL, bucket=Bucket.HOUR)
    assert len(series.points) == 24
    assert all(p.tickets_opened == 0 and p.first_response.value is None for p in series.points)
    assert all(p.sla_met.value is None and p.guides_sent == 0 for p in series.points)
