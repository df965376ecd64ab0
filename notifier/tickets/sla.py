"""Service-level clocks: due times from the SLA table and the tiers, breach warnings and
escalation on breach. Pure functions of a ticket's clock fields and the time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from forewarn.domain import Segment
from notifier.tickets.types import Dues, Priority, SlaPolicy, Tier


def dues(
    policy: SlaPolicy,
    *,
    priority: Priority,
    tier: Tier,
    segment: Segment | None,
    opened_at: datetime,
) -> Dues:
    """Due times of a ticket opened now at `tier`.

    Every tier works to its own times from the tier table: it must respond within its
    `respond` (L1: the priority's first response), never later than the SLA's first
    response, and hands the ticket on when its own `solve` time is up (never later than the
    resolution). Enterprise customers get their dedicated first-response target. Holidays
    of the rule set's calendar do not count for the priorities it pauses.
    """
    sla = policy.sla[priority]
    first = sla.first_response
    if segment is Segment.ENTERPRISE:
        first = min(first, policy.enterprise_first_response)
    times = policy.tiers[tier]
    respond = first if times.respond is None else min(times.respond, first)
    solve = min(times.solve, sla.resolution)
    due = policy.calendar.add
    return Dues(
        first_response_due=due(opened_at, first, priority),
        resolution_due=due(opened_at, sla.resolution, priority),
        tier_respond_due=due(opened_at, respond, priority),
        tier_solve_due=due(opened_at, solve, priority),
    )


@dataclass(frozen=True, slots=True)
class TicketClock:
    """The fields of an open ticket that its clocks depend on."""

    ticket_id: int
    priority: Priority
    tier: Tier
    tier_since: datetime
    tier_respond_due: datetime
    tier_solve_due: datetime
    tier_acknowledged_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None


@dataclass(frozen=True, slots=True)
class Escalate:
    """Hand the ticket to the next tier, with that tier's dues."""

    to_tier: Tier
    respond_due: datetime
    solve_due: datetime
    why: str
    which: str | None = None  # by the clock: the due missed ("respond" or "solve")...
    missed: datetime | None = None  # ... and when it was


@dataclass(frozen=True, slots=True)
class Warn:
    """A due is near: warn the staff view before it is breached."""

    due: datetime
    which: str  # "respond" or "solve"
    why: str


@dataclass(frozen=True, slots=True)
class Breach:
    """A due passed at the top tier: nobody left to escalate to; tell the leads."""

    which: str
    why: str
    missed: datetime | None = None


TicketStep = Escalate | Warn | Breach


def handed_over(
    policy: SlaPolicy, *, priority: Priority, to_tier: Tier, now: datetime, why: str
) -> Escalate:
    """The hand-over to `to_tier` now, with that tier's own dues (holidays not counted)."""
    times = policy.tiers[to_tier]
    respond = times.respond or policy.sla[priority].first_response
    add = policy.calendar.add
    return Escalate(to_tier, add(now, respond, priority), add(now, times.solve, priority), why)


def ticket_step(t: TicketClock, policy: SlaPolicy, now: datetime) -> TicketStep | None:
    """What an open ticket's clocks call for now, if anything."""
    which, due = _current_due(t)
    if now >= due:
        late = f"{t.tier} did not {which} by {due:%Y-%m-%d %H:%M} UTC"
        nxt = t.tier.next
        if nxt is not None:
            step = handed_over(policy, priority=t.priority, to_tier=nxt, now=now, why=late)
            return replace(step, which=which, missed=due)
        if t.breached_at is None or t.breached_at < t.tier_since:
            return Breach(which, late, due)
        return None
    warned = t.warned_at is not None and t.warned_at >= t.tier_since
    if t.tier_acknowledged_at is not None and t.warned_at is not None:
        # A warning about answering does not cover solving: warn again for the solve due.
        warned = t.warned_at >= t.tier_acknowledged_at
    warn_from = t.tier_since + (due - t.tier_since) * policy.warn_at
    if not warned and now >= warn_from:
        left = due - now
        minutes = max(1, round(left.total_seconds() / 60))
        return Warn(due, which, f"{minutes} min left for {t.tier} to {which} ({t.priority.label})")
    return None


def _current_due(t: TicketClock) -> tuple[str, datetime]:
    if t.tier_acknowledged_at is None:
        return "respond", min(t.tier_respond_due, t.tier_solve_due)
    return "solve", t.tier_solve_due
