"""Routes: /api/v1/kpis, the support KPIs for a period and their series for charts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import ClockDep, ConnDep, Reader
from api.kpis import flows
from api.kpis.schemas import AgentKpiOut, AgentKpisOut, KpiReportOut, KpiSeriesOut
from api.kpis.types import Bucket, Period
from api.responses import AUTH, INVALID

router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"], responses=AUTH | INVALID)

Since = Annotated[
    datetime | None,
    Query(
        description="Start of the period, included (ISO 8601; no offset means UTC). "
        "Default: 7 days before `until`."
    ),
]
Until = Annotated[
    datetime | None,
    Query(
        description="End of the period, excluded (ISO 8601; no offset means UTC). "
        "Default: now on the business clock."
    ),
]


def _period(since: datetime | None, until: datetime | None, now: datetime) -> Period:
    """The asked-for period, or 422 saying what is wrong with it."""
    try:
        return flows.period(since, until, now=now)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


@router.get(
    "",
    response_model=KpiReportOut,
    summary="Support KPIs for a period",
    description=(
        "The figures the customer measures, for [since, until) on business time: mean first "
        "response (target ≤ 30 min), first-contact resolution (≥ 80%), mean time to resolve, "
        "SLA compliance per priority, 30-day recurrence (≤ 5%), the share of predicted "
        "problems solved by a guide without a ticket (≥ 70%), the false-alarm rate from "
        "staff feedback, guide delivery, customer satisfaction from the surveys (≥ 4.5), the "
        "survey response rate (≥ 90%), the confirmed-fix rate and novice onboarding (100%). "
        "Each KPI gives its value (null when there is "
        "nothing to measure), numerator and denominator, what is still pending, its target "
        "and whether it is met. Definitions: docs/kpis.md."
    ),
)
def report(
    conn: ConnDep, clock: ClockDep, who: Reader, since: Since = None, until: Until = None
) -> KpiReportOut:
    """The KPI report."""
    now = clock.now()
    return KpiReportOut.of(flows.kpi_report(conn, period=_period(since, until, now), now=now))


@router.get(
    "/series",
    response_model=KpiSeriesOut,
    summary="Support KPIs over time",
    description=(
        "Per hour or day bucket (aligned to UTC) of [since, until): tickets opened and "
        "resolved, the mean first response of the tickets opened, the share of them that met "
        "both SLA dues, and guides sent to owners. Every bucket is listed, empty ones too. "
        f"At most {flows.MAX_BUCKETS} buckets: a longer period needs bucket=day."
    ),
)
def series(
    conn: ConnDep,
    clock: ClockDep,
    who: Reader,
    since: Since = None,
    until: Until = None,
    bucket: Annotated[Bucket, Query(description="Bucket width: hour (default) or day")] = (
        Bucket.HOUR
    ),
) -> KpiSeriesOut:
    """The KPI series."""
    now = clock.now()
    period = _period(since, until, now)
    try:
        flows.check_buckets(period, bucket)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return KpiSeriesOut.of(flows.kpi_series(conn, period=period, now=now, bucket=bucket))


@router.get(
    "/agents",
    response_model=AgentKpisOut,
    summary="Per-agent figures for a period",
    description=(
        "For every agent (a ticket's assignee) with work in [since, until): volume (tickets "
        "resolved), first-contact resolution (of those opened at L1, the share never "
        "escalated or reopened; target ≥ 80%), mean first response of the tickets opened in "
        "the period they answered (≤ 30 min), mean time to resolve, and the mean survey "
        "rating of their resolutions (≥ 4.5). The team's definitions (docs/kpis.md), "
        "restricted to each agent's tickets."
    ),
)
def agents(
    conn: ConnDep, clock: ClockDep, who: Reader, since: Since = None, until: Until = None
) -> AgentKpisOut:
    """Per-agent KPIs."""
    now = clock.now()
    period = _period(since, until, now)
    figures = flows.agent_report(conn, period=period, now=now)
    return AgentKpisOut(
        since=period.since,
        until=period.until,
        now=now,
        agents=[AgentKpiOut.of(a) for a in figures],
    )
