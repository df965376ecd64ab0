"""Compute the support KPIs for a period: the repository counts, pure functions here turn
the counts into KPIs with their targets. docs/kpis.md defines every figure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.kpis import repository
from api.kpis.types import (
    FCR_TARGET,
    FIRST_RESPONSE_TARGET,
    NOVICE_DAYS,
    ONBOARDING_TARGET,
    RECURRENCE_TARGET,
    RECURRENCE_WINDOW,
    SATISFACTION_TARGET,
    SELF_SERVICE_TARGET,
    SURVEY_RESPONSE_TARGET,
    AgentCounts,
    AgentKpis,
    Average,
    Bucket,
    BucketCounts,
    GuideCounts,
    IncidentCounts,
    KpiReport,
    KpiSeries,
    Mean,
    OnboardingCounts,
    OpenedTickets,
    Period,
    Ratio,
    ResolvedTickets,
    SeriesPoint,
    SlaCompliance,
    SlaCounts,
    SurveyCounts,
)
from notifier.tickets.types import Priority

Conn = repository.Conn

# The period a report covers when the caller names none.
DEFAULT_SPAN = timedelta(days=7)
# A series longer than this many buckets is refused: a year of hours fits, a decade of them
# (87,600 rows from one request) does not.
MAX_BUCKETS = 10_000


def period(since: datetime | None, until: datetime | None, *, now: datetime) -> Period:
    """[since, until) with defaults (until: now; since: DEFAULT_SPAN before until), naive
    times read as UTC; ValueError unless since is before until."""
    end = _utc(until) if until is not None else now
    try:
        start = _utc(since) if since is not None else end - DEFAULT_SPAN
    except OverflowError as exc:  # until within 7 days of year 1
        raise ValueError(f"until ({end.isoformat()}) is too early: give since too") from exc
    if start >= end:
        raise ValueError(
            f"since ({start.isoformat()}) must be before until ({end.isoformat()}): "
            "the period is [since, until)"
        )
    return Period(start, end)


def kpi_report(conn: Conn, *, period: Period, now: datetime) -> KpiReport:
    """Every KPI for the period, as known at `now` (business time), from one snapshot."""
    with repository.snapshot(conn):
        return build_report(
            period,
            now,
            opened=repository.opened_tickets(conn, period=period, now=now),
            resolved=repository.resolved_tickets(conn, period=period, now=now),
            sla=repository.sla_counts(conn, period=period, now=now),
            incidents=repository.incident_counts(
                conn, period=period, now=now, recurrence_window=RECURRENCE_WINDOW
            ),
            guides=repository.guide_counts(conn, period=period),
            surveys=repository.survey_counts(conn, period=period, now=now),
            onboarding=repository.onboarding_counts(
                conn, period=period, now=now, novice_days=NOVICE_DAYS
            ),
        )


def build_report(
    period: Period,
    now: datetime,
    *,
    opened: OpenedTickets,
    resolved: ResolvedTickets,
    sla: list[SlaCounts],
    incidents: IncidentCounts,
    guides: GuideCounts,
    surveys: SurveyCounts,
    onboarding: OnboardingCounts,
) -> KpiReport:
    """The KPIs the counts make, each with its target where the customer set one."""
    by_priority = {c.priority: c for c in sla}
    return KpiReport(
        since=period.since,
        until=period.until,
        now=now,
        first_response=Mean(
            opened.response_seconds,
            opened.responded,
            pending=opened.opened - opened.responded,
            target=FIRST_RESPONSE_TARGET,
        ),
        first_contact_resolution=Ratio(
            resolved.first_contact, resolved.first_line, target=FCR_TARGET
        ),
        time_to_resolve=Mean(resolved.resolve_seconds, resolved.resolved),
        # Every priority appears, measured or not, so a chart's legend does not shift.
        sla=tuple(_sla(p.value, by_priority.get(p.value)) for p in _BY_URGENCY),
        recurrence=Ratio(incidents.recurrences, incidents.opened, target=RECURRENCE_TARGET),
        self_service=Ratio(
            incidents.self_served,
            incidents.closed,
            pending=incidents.opened - incidents.closed,
            target=SELF_SERVICE_TARGET,
        ),
        false_alarms=Ratio(
            opened.false_alarms, opened.feedback, pending=opened.opened - opened.feedback
        ),
        guide_delivery=Ratio(guides.sent, guides.final, pending=guides.pending),
        satisfaction=Average(
            surveys.rating_total,
            surveys.rated,
            pending=surveys.sent - surveys.answered,
            target=SATISFACTION_TARGET,
        ),
        survey_response=Ratio(
            surveys.answered,
            surveys.known,
            pending=surveys.sent - surveys.known,
            target=SURVEY_RESPONSE_TARGET,
        ),
        confirmed_fix=Ratio(surveys.fixed, surveys.fixed_known),
        onboarding=Ratio(
            onboarding.sent,
            onboarding.novices - onboarding.pending,
            pending=onboarding.pending,
            target=ONBOARDING_TARGET,
        ),
    )


_BY_URGENCY = sorted(Priority, key=lambda p: -p.rank)


def _sla(priority: str, counts: SlaCounts | None) -> SlaCompliance:
    if counts is None:
        return SlaCompliance(priority, Ratio(0, 0), Ratio(0, 0))
    return SlaCompliance(
        priority,
        Ratio(
            counts.response_met,
            counts.response_known,
            pending=counts.opened - counts.response_known,
        ),
        Ratio(
            counts.resolution_met,
            counts.resolution_known,
            pending=counts.opened - counts.resolution_known,
        ),
    )


def kpi_series(conn: Conn, *, period: Period, now: datetime, bucket: Bucket) -> KpiSeries:
    """The chart series for the period in `bucket`-wide buckets; ValueError if too many."""
    check_buckets(period, bucket)
    rows = repository.buckets(conn, period=period, now=now, width=bucket.width)
    return build_series(period, bucket, rows)


def check_buckets(period: Period, bucket: Bucket) -> None:
    """ValueError if the period holds more than MAX_BUCKETS buckets."""
    # +2: the first and last buckets may stick out of the period at both ends.
    if (period.until - period.since) / bucket.width + 2 > MAX_BUCKETS:
        raise ValueError(
            f"a {bucket.value}ly series of this period would have more than {MAX_BUCKETS} "
            "buckets; choose a shorter period or bucket=day"
        )


def build_series(period: Period, bucket: Bucket, rows: list[BucketCounts]) -> KpiSeries:
    """The series points the bucket counts make."""
    points = tuple(
        SeriesPoint(
            start=r.start,
            tickets_opened=r.opened,
            tickets_resolved=r.resolved,
            first_response=Mean(
                r.response_seconds,
                r.responded,
                pending=r.opened - r.responded,
                target=FIRST_RESPONSE_TARGET,
            ),
            sla_met=Ratio(r.sla_met, r.sla_known, pending=r.opened - r.sla_known),
            guides_sent=r.guides_sent,
        )
        for r in rows
    )
    return KpiSeries(period.since, period.until, bucket, points)


def _utc(t: datetime) -> datetime:
    """An aware time; a naive one is taken to be UTC (the API's times are UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def agent_report(conn: Conn, *, period: Period, now: datetime) -> list[AgentKpis]:
    """Every agent's figures for the period, by name, with the team's targets."""
    with repository.snapshot(conn):
        counts = repository.agent_counts(conn, period=period, now=now)
    return [agent_kpis(c) for c in counts]


def agent_kpis(c: AgentCounts) -> AgentKpis:
    """One agent's KPIs from their counts (the team's definitions and targets)."""
    return AgentKpis(
        agent=c.agent,
        volume=c.resolved,
        first_contact_resolution=Ratio(c.first_contact, c.first_line, target=FCR_TARGET),
        first_response=Mean(c.response_seconds, c.responded, target=FIRST_RESPONSE_TARGET),
        time_to_resolve=Mean(c.resolve_seconds, c.resolved),
        satisfaction=Average(c.rating_total, c.rated, target=SATISFACTION_TARGET),
    )
