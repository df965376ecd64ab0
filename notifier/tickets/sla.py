"""Service-level clocks: due times from the SLA table and the tiers, breach warnings and
escalation on breach. Pure functions of a ticket's clock fields and the time."""

from __future__ import annotations

from dataclasses import dataclass
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

    L1 works to the priority's SLA; L2 and L3 to their own hand-over times, never later than
    the SLA's first response. Enterprise customers get their dedicated first-response target.
    """
    sla = policy.sla[priority]
    first = sla.first_response
    if segment is Segment.ENTERPRISE:
        first = min(first, policy.enterprise_first_response)
    respond, solve = first, sla.resolution
    if tier is not Tier.L1:
        times = policy.tiers[tier]
        respond, solve = min(times.respond, first), times.solve
    return Dues(
        first_response_due=opened_at + first,
        resolution_due=opened_at + sla.resolution,
        tier_respond_due=opened_at + respond,
        tier_solve_due=opened_at + solve,
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


TicketStep = Escalate | Warn | Breach


def ticket_step(t: TicketClock, policy: SlaPolicy, now: datetime) -> TicketStep | None:
    """What an open ticket's clocks call for now, if anything."""
    which, due = _current_due(t)
    if now >= due:
        late = f"{t.tier} did not {which} by {due:%Y-%m-%d %H:%M} UTC"
        nxt = t.tier.next
        if nxt is not None:
            times = policy.tiers[nxt]
            return Escalate(nxt, now + times.respond, now + times.solve, late)
        if t.breached_at is None or t.breached_at < t.tier_since:
            return Breach(which, late)
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
