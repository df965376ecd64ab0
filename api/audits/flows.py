"""The weekly ticket audit (standard 4.2): draw 10 % of a week's closed tickets with a seed,
and record each one's checklist outcome."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from api.audits import repository
from api.audits.repository import Conn
from api.audits.sample import draw, week_seed
from forewarn.errors import ConflictError, NotFoundError


def week_start(week: date) -> datetime:
    """Midnight UTC of the Monday `week` names; ValueError for another day."""
    if week.weekday() != 0:
        raise ValueError(f"{week.isoformat()} is a {week:%A}; a week is named by its Monday")
    return datetime.combine(week, time(), UTC)


def draw_week(
    conn: Conn, *, week: date, now: datetime, by: str, seed: int | None = None
) -> tuple[int, list[dict[str, object]]]:
    """Draw the week's sample if it was not drawn yet (the same seed and tickets give the
    same sample: drawing again adds nothing). Returns (closed tickets in the week, the
    sample's rows). ValueError for a week that has not ended by `now`."""
    start = week_start(week)
    end = start + timedelta(days=7)
    if end > now:
        raise ValueError(f"the week of {week.isoformat()} has not ended yet")
    with conn.transaction():
        closed = repository.closed_tickets(conn, since=start, until=end, now=now)
        drawn = repository.week_rows(conn, week=week)
        if not drawn:
            chosen = seed if seed is not None else week_seed(week)
            picked = draw(closed, seed=chosen)
            repository.insert_sample(conn, week=week, ticket_ids=picked, seed=chosen, at=now, by=by)
            drawn = repository.week_rows(conn, week=week)
        return len(closed), drawn


def record(
    conn: Conn,
    *,
    audit_id: int,
    info_complete: bool,
    steps_standard: bool,
    feedback_recorded: bool,
    notes: str | None,
    by: str,
    now: datetime,
) -> dict[str, object]:
    """Record one audited ticket's checklist; NotFoundError for no such audit, ConflictError
    when the auditor is the ticket's assignee (nobody audits their own work)."""
    with conn.transaction():
        row = repository.audit_row(conn, audit_id=audit_id, lock=True)
        if row is None:
            raise NotFoundError(f"no audit {audit_id}")
        if row["assignee"] == by:
            raise ConflictError(
                f"ticket {row['ticket_id']} was worked by {by}; someone else audits it"
            )
        checks = (info_complete, steps_standard, feedback_recorded)
        repository.record(conn, audit_id=audit_id, checks=checks, notes=notes, by=by, at=now)
        found = repository.audit_row(conn, audit_id=audit_id)
        assert found is not None
        return found
