"""Routes: /api/v1/audits, the weekly ticket audit (standard 4.2)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.audits import flows, repository
from api.audits.schemas import AuditOut, AuditWeek, Checklist, DrawIn
from api.deps import Agent, ClockDep, ConnDep, Reader
from api.responses import AUTH, CONFLICT, INVALID, NOT_FOUND

router = APIRouter(prefix="/api/v1/audits", tags=["audits"], responses=AUTH | INVALID)

Week = Annotated[date, Path(description="The Monday the week starts (YYYY-MM-DD, UTC)")]


@router.post(
    "/weeks/{week}",
    response_model=AuditWeek,
    summary="Draw a week's audit sample",
    description=(
        "10 % of the tickets closed in the week (rounded up; withdrawn ones left out), drawn "
        "by a random generator seeded with `seed` or, without one, a seed derived from the "
        "week: the same week and seed always draw the same tickets. A week is drawn once; "
        "asking again returns its sample. 422 for a day that is not a Monday or a week not "
        "over yet."
    ),
)
def draw(week: Week, body: DrawIn, conn: ConnDep, clock: ClockDep, who: Agent) -> AuditWeek:
    """Draw."""
    try:
        closed, rows = flows.draw_week(
            conn, week=week, now=clock.now(), by=who.name, seed=body.seed
        )
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return AuditWeek.of(week, closed, rows)


@router.get(
    "/weeks/{week}",
    response_model=AuditWeek,
    summary="A week's audit",
    description="The week's sample with each ticket's checklist and outcome; empty when not drawn.",
)
def week(week: Week, conn: ConnDep, clock: ClockDep, who: Reader) -> AuditWeek:
    """One week."""
    try:
        start = flows.week_start(week)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    closed = repository.closed_tickets(
        conn, since=start, until=start + timedelta(days=7), now=clock.now()
    )
    return AuditWeek.of(week, len(closed), repository.week_rows(conn, week=week))


@router.post(
    "/{audit_id}",
    response_model=AuditOut,
    summary="Record an audited ticket's checklist",
    description=(
        "Information complete, resolution steps as the standard writes them, the customer's "
        "feedback recorded: passed when all three hold, else failed. May be recorded again. "
        "409 when the auditor is the ticket's assignee."
    ),
    responses=NOT_FOUND | CONFLICT,
)
def record(audit_id: int, body: Checklist, conn: ConnDep, clock: ClockDep, who: Agent) -> AuditOut:
    """Record."""
    row = flows.record(
        conn,
        audit_id=audit_id,
        info_complete=body.info_complete,
        steps_standard=body.steps_standard,
        feedback_recorded=body.feedback_recorded,
        notes=body.notes,
        by=who.name,
        now=clock.now(),
    )
    return AuditOut.model_validate(row)
