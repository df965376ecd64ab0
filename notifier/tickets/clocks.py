"""The ticket clocks' pass: warn the tier's lead of a near-breach, hand a ticket over when its
tier's own time is up (telling that tier's lead it was missed), mark an L3 breach and tell its
lead. Runs inside the caller's transaction; notifications go to the outbox in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forewarn.settings import Settings
from notifier.surveys.flows import request_callbacks
from notifier.tickets import repository
from notifier.tickets.flows import Conn, hand_over, tell_staff
from notifier.tickets.sla import Breach, Escalate, TicketClock, Warn, ticket_step
from notifier.tickets.types import SlaPolicy


@dataclass(frozen=True, slots=True)
class ClockReport:
    """What one pass over the open tickets' clocks did."""

    warned: int = 0
    escalated: int = 0
    breached: int = 0
    callbacks: int = 0  # unanswered surveys that became call-back tasks
    complaint_reminders: int = 0  # complaints whose feedback or follow-up came due


def run_clocks(conn: Conn, settings: Settings, policy: SlaPolicy, *, now: datetime) -> ClockReport:
    """Warn, escalate or mark breached every open ticket whose clock calls for it, and make a
    call-back task of every survey left unanswered past its time."""
    warned = escalated = breached = 0
    for clock in repository.open_clocks(conn):
        step = ticket_step(clock, policy, now)
        tid = clock.ticket_id
        if isinstance(step, Escalate):
            hand_over(
                conn,
                settings,
                ticket_id=tid,
                priority=clock.priority,
                step=step,
                from_tier=clock.tier,
                now=now,
            )
            escalated += 1
            tell_lead(
                conn,
                settings,
                clock,
                now=now,
                title=f"[{clock.priority.label}] ticket {tid}: {clock.tier} missed its due",
                body=step.why,
                key=f"ticket:{tid}:missed:{clock.tier}:{clock.tier_since.isoformat()}",
            )
        elif isinstance(step, Warn):
            repository.set_warned(conn, ticket_id=tid, at=now)
            repository.add_event(
                conn,
                ticket_id=tid,
                at=now,
                kind="breach_warning",
                detail={
                    "due": step.due.isoformat(),
                    "which": step.which,
                    "tier": clock.tier.value,
                    "why": step.why,
                },
            )
            tell_lead(
                conn,
                settings,
                clock,
                now=now,
                title=f"[{clock.priority.label}] ticket {tid} near breach at {clock.tier}",
                body=step.why,
                key=f"ticket:{tid}:warned:{step.which}:{clock.tier_since.isoformat()}",
            )
            warned += 1
        elif isinstance(step, Breach):
            repository.set_breached(conn, ticket_id=tid, at=now)
            repository.add_event(
                conn,
                ticket_id=tid,
                at=now,
                kind="breached",
                detail={
                    "which": step.which,
                    "tier": clock.tier.value,
                    "why": step.why,
                    **({"due": step.missed.isoformat()} if step.missed else {}),
                },
            )
            tell_lead(
                conn,
                settings,
                clock,
                now=now,
                title=f"[{clock.priority.label}] ticket {tid} breached its SLA at {clock.tier}",
                body=step.why,
                key=f"ticket:{tid}:breached:{clock.tier_since.isoformat()}",
            )
            breached += 1
    callbacks = request_callbacks(conn, now=now).requested
    reminders = remind_complaints(conn, settings, now=now)
    return ClockReport(warned, escalated, breached, callbacks, reminders)


def remind_complaints(conn: Conn, settings: Settings, *, now: datetime) -> int:
    """The complaint clock's later dues (standard 4.3): when a complaint's feedback (24 h)
    or follow-up (7 days) comes due, note it on the timeline and remind the team and the
    tier's lead, once each. Returns how many reminders were made."""
    due = repository.complaint_dues(conn, now=now)
    for reminder in due:
        tid = reminder.ticket_id
        repository.add_event(
            conn,
            ticket_id=tid,
            at=now,
            kind=f"complaint_{reminder.which}_due",
            detail={"which": reminder.which, "due": reminder.due.isoformat()},
        )
        what = (
            "tell the customer the corrective action"
            if reminder.which == "feedback"
            else ("call the customer back to confirm the complaint is resolved")
        )
        team = repository.team_tag_of(conn, ticket_id=tid)
        tell_staff(
            conn,
            settings,
            ticket_id=tid,
            tag=",".join(dict.fromkeys([team, reminder.tier.lead])),
            now=now,
            title=f"[complaint] ticket {tid}: {reminder.which.replace('_', '-')} due",
            body=f"Due {reminder.due:%Y-%m-%d %H:%M} UTC: {what}.",
            key=f"ticket:{tid}:complaint:{reminder.which}",
        )
    return len(due)


def tell_lead(
    conn: Conn,
    settings: Settings,
    clock: TicketClock,
    *,
    now: datetime,
    title: str,
    body: str,
    key: str,
) -> None:
    """Tell the lead of the ticket's tier (``lead-l1``..``lead-l3``) of a near-breach or a
    breach; an enterprise ticket's own team hears of it too."""
    tags = [clock.tier.lead]
    team = repository.team_tag_of(conn, ticket_id=clock.ticket_id, tier=clock.tier)
    if team != clock.tier.team:
        tags.append(team)
    tell_staff(
        conn,
        settings,
        ticket_id=clock.ticket_id,
        tag=",".join(tags),
        now=now,
        title=title,
        body=body,
        key=key,
    )
