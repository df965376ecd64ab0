"""Tickets made by a person: an agent taking an owner's call, a complaint, a warranty
question, or an integration (a helpdesk, a CRM) passing one on. The ticket opens at the tier
that takes its priority, with the SLA dues of the rule set, and a complaint gets the
standard's complaint clock on top. Runs in the caller's transaction; the team and the owner
are told through the outbox in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forewarn.domain import Segment
from forewarn.errors import NotFoundError, TicketError
from forewarn.settings import Settings
from notifier.notices.flows import tell_owner
from notifier.notices.types import NoticeKind
from notifier.tickets import repository
from notifier.tickets.flows import Conn, tell_staff, to_helpdesk
from notifier.tickets.sla import dues
from notifier.tickets.types import (
    ENTERPRISE_TEAM,
    ComplaintTimes,
    Dues,
    Priority,
    SlaPolicy,
    TicketType,
    Tier,
)

COMPLAINT = ComplaintTimes()
SYMPTOM_CHARS = 2000


@dataclass(frozen=True, slots=True)
class NewTicket:
    """What a person writes down when a problem comes in (the standard's intake, 3.1): who
    (owner or device, contact person, department), the problem (symptom, trigger, scope), its
    type and priority, and how it came in."""

    ticket_type: TicketType
    priority: Priority
    symptom: str
    owner_id: str | None = None
    device_id: str | None = None
    tier: Tier | None = None  # None: the first tier that takes the priority
    trigger: str | None = None
    scope: str | None = None
    contact_person: str | None = None  # None: the owner's recorded contact person
    department: str | None = None  # None: the owner's recorded department
    channel: str = "phone"


def starting_tier(policy: SlaPolicy, priority: Priority, asked: Tier | None) -> Tier:
    """The tier a new ticket of `priority` opens at: `asked` if that tier takes the priority,
    else the first tier that does; TicketError if `asked` does not take it."""
    if asked is not None:
        takes = policy.tiers[asked].takes
        if priority not in takes:
            raise TicketError(
                f"tier {asked} does not take {priority} ({priority.label}) tickets; "
                f"it takes {', '.join(p.value for p in Priority if p in takes)}"
            )
        return asked
    return next(t for t in Tier if priority in policy.tiers[t].takes)


def complaint_dues(base: Dues, *, opened_at: datetime) -> tuple[Dues, datetime, datetime]:
    """A complaint's dues: the customer contacted within 30 minutes (sooner if the SLA says
    so), and the feedback and follow-up dues."""
    contact = min(base.first_response_due, opened_at + COMPLAINT.contact)
    return (
        Dues(
            first_response_due=contact,
            resolution_due=base.resolution_due,
            tier_respond_due=min(base.tier_respond_due, contact),
            tier_solve_due=base.tier_solve_due,
        ),
        opened_at + COMPLAINT.feedback,
        opened_at + COMPLAINT.follow_up,
    )


def open_staff_ticket(
    conn: Conn,
    settings: Settings,
    policy: SlaPolicy,
    *,
    new: NewTicket,
    actor: str,
    now: datetime,
) -> int:
    """Open a ticket a person made; returns its id. NotFoundError for an unknown owner or
    device; TicketError when the device is not the owner's or the tier cannot take it."""
    owner_id, device = new.owner_id, None
    if new.device_id is not None:
        device = repository.device_of(conn, device_id=new.device_id)
        if device is None:
            raise NotFoundError(f"no device {new.device_id}")
        if owner_id is not None and device.owner_id not in (None, owner_id):
            raise TicketError(f"device {new.device_id} belongs to another owner, not {owner_id}")
        owner_id = owner_id or device.owner_id
    owner = None if owner_id is None else repository.owner_of(conn, owner_id=owner_id)
    if owner_id is not None and owner is None:
        raise NotFoundError(f"no owner {owner_id}")
    tier = starting_tier(policy, new.priority, new.tier)
    enterprise = owner is not None and owner.enterprise_account is not None
    segment = Segment.ENTERPRISE if enterprise else None
    team = f"{ENTERPRISE_TEAM}{owner.enterprise_account}" if owner and enterprise else tier.team
    due = dues(policy, priority=new.priority, tier=tier, segment=segment, opened_at=now)
    complaint = new.ticket_type is TicketType.COMPLAINT
    feedback_due = follow_up_due = None
    if complaint:
        due, feedback_due, follow_up_due = complaint_dues(due, opened_at=now)
    symptom = " ".join(new.symptom.split())[:SYMPTOM_CHARS]
    fields = {
        "kind": "staff",
        "ticket_type": new.ticket_type.value,
        "customer_id": owner_id,
        "contact": owner.contact if owner else None,
        "contact_person": new.contact_person or (owner.contact_person if owner else None),
        "department": new.department or (owner.department if owner else None),
        "device_id": new.device_id,
        "model": device.model if device else None,
        "firmware": device.firmware if device else None,
        "fault": new.ticket_type.value,
        "symptom": symptom,
        "trigger": (new.trigger or "").strip() or f"reported by {actor} ({new.channel})",
        "scope": (new.scope or "").strip() or (f"1 device ({new.device_id})" if device else ""),
        "segment": segment.value if segment else None,
        "priority": new.priority.value,
        "tier": tier.value,
        "team": team,
        "created_by": actor,
        "channel": new.channel,
        "urgent": complaint,
        "feedback_due": feedback_due,
        "follow_up_due": follow_up_due,
        # Only an empty trigger is Forewarn's words; what the person wrote stays as written.
        "phrasing": (
            {}
            if (new.trigger or "").strip()
            else {"trigger": {"code": "staff", "by": actor, "channel": new.channel}}
        ),
    }
    ticket_id = repository.insert_ticket(conn, fields=fields, dues=due, opened_at=now)
    detail = {"type": new.ticket_type.value, "priority": new.priority.value, "tier": tier.value}
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="opened",
        actor=actor,
        detail=detail | {"team": team, "channel": new.channel, "urgent": complaint},
    )
    flag = "[urgent]" if complaint else ""
    tell_staff(
        conn,
        settings,
        ticket_id=ticket_id,
        tag=repository.team_tag_of(conn, ticket_id=ticket_id),
        now=now,
        title=f"{flag}[{new.priority.label}][{tier}] {new.ticket_type.value}: {symptom[:120]}",
        body=f"{symptom}\nBy: {actor} ({new.channel})\nCustomer: {owner_id}",
        key=f"ticket:{ticket_id}:opened",
    )
    to_helpdesk(conn, settings, ticket_id=ticket_id, now=now, key=f"ticket:{ticket_id}:sink")
    if owner_id is not None:
        tell_owner(
            conn,
            settings,
            ticket_id=ticket_id,
            kind=NoticeKind.TICKET_OPENED,
            now=now,
            key="opened",
        )
    return ticket_id
