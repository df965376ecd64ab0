"""Ticket orchestration: open device and fleet tickets with their evidence, hand them over
and tell staff (the clocks that call for hand-overs are ``notifier.tickets.clocks``). Each function runs inside the
caller's transaction; notifications go to the outbox in that same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from forewarn.domain import OUTAGE, Device, Prediction
from forewarn.settings import Settings
from notifier import repository as outbox
from notifier.notices.flows import tell_owner
from notifier.notices.types import NoticeKind
from notifier.tickets import repository
from notifier.tickets.sla import Escalate, dues
from notifier.tickets.types import Priority, SlaPolicy, TicketOrder, Tier
from notifier.types import OutboundMessage

Conn = repository.Conn

# How much telemetry a device ticket carries as evidence.
EVIDENCE_SPAN = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class DeviceTicket:
    """What a device ticket is about, beyond the order that opens it."""

    incident_id: int
    signal: Prediction
    device: Device
    rule: str
    segment: str
    guides_sent: tuple[dict[str, Any], ...] = ()


def open_device_ticket(
    conn: Conn, settings: Settings, *, order: TicketOrder, about: DeviceTicket, now: datetime
) -> int:
    """Open a ticket for one device's predicted fault; returns its id."""
    s, d = about.signal, about.device
    owner = d.owner
    fault = s.fault.replace("_", " ")
    why = s.reasons[0] if s.reasons else "the model's score crossed its threshold"
    trigger = (
        f"prediction by model v{s.model_version} at {s.at:%Y-%m-%d %H:%M} UTC, rule '{about.rule}'"
    )
    if order.guide_sent:
        trigger += "; a self-help guide was sent and the device has not recovered"
    evidence = {
        "prediction": {
            "fault": s.fault,
            "probability": s.probability,
            "at": s.at.isoformat(),
            "horizon_h": s.horizon_h,
            "hours_to_empty": s.hours_to_empty,
            "model_version": s.model_version,
        },
        "reasons": list(s.reasons),
        "guides_sent": list(about.guides_sent),
        "telemetry": repository.evidence_readings(
            conn, device_id=d.device_id, until=s.at, span=EVIDENCE_SPAN
        ),
    }
    fields = {
        "kind": "device",
        "incident_id": about.incident_id,
        "customer_id": owner.owner_id if owner else None,
        "contact": owner.contact if owner else None,
        "device_id": d.device_id,
        "model": d.model,
        "firmware": d.firmware,
        "fault": s.fault,
        "symptom": f"{fault} predicted within {s.horizon_h:.0f} h (p={s.probability:.2f}): {why}",
        "trigger": trigger,
        "scope": f"1 device ({d.device_id})",
        "evidence": evidence,
        "segment": about.segment,
        "priority": order.priority.value,
        "tier": order.tier.value,
        "team": order.team,
        "guide_sent": order.guide_sent,
        "recurrence_of": order.recurrence_of,
        "recurrences": order.recurrences,
        "phrasing": (
            {
                "symptom": {
                    "code": "predicted",
                    "fault": s.fault,
                    "hours": round(s.horizon_h),
                    "probability": round(s.probability, 2),
                },
                "scope": {"code": "device", "device_id": d.device_id},
                "trigger": {
                    "code": "prediction",
                    "model_version": s.model_version,
                    "at": s.at.isoformat(),
                    "rule": about.rule,
                    "guide_sent": order.guide_sent,
                },
            }
        ),
    }
    ticket_id = repository.insert_ticket(conn, fields=fields, dues=order.dues, opened_at=now)
    detail = {
        "priority": order.priority.value,
        "tier": order.tier.value,
        "team": order.team,
        "recurrence_of": order.recurrence_of,
    }
    repository.add_event(conn, ticket_id=ticket_id, at=now, kind="opened", detail=detail)
    title = f"[{order.priority.label}][{order.tier}] {fault} predicted on {d.device_id}"
    body = f"{fields['symptom']}\nTrigger: {trigger}\nCustomer: {fields['customer_id']}"
    tell_staff(
        conn,
        settings,
        ticket_id=ticket_id,
        tag=repository.team_tag_of(conn, ticket_id=ticket_id),
        now=now,
        title=title,
        body=body,
        key=f"ticket:{ticket_id}:opened",
    )
    to_helpdesk(conn, settings, ticket_id=ticket_id, now=now, key=f"ticket:{ticket_id}:sink")
    tell_owner(
        conn, settings, ticket_id=ticket_id, kind=NoticeKind.TICKET_OPENED, now=now, key="opened"
    )
    return ticket_id


def open_fleet_ticket(
    conn: Conn,
    settings: Settings,
    policy: SlaPolicy,
    *,
    fleet_incident_id: int,
    model: str,
    firmware: str,
    fault: str,
    devices: int,
    priority: Priority,
    trigger: str,
    now: datetime,
) -> int:
    """Open the L3 ticket of a fleet incident; returns its id. `trigger` says what made the
    devices one incident."""
    name = fault.replace("_", " ")
    fields = {
        "kind": "fleet",
        "fleet_incident_id": fleet_incident_id,
        "model": model,
        "firmware": firmware,
        "fault": fault,
        "symptom": f"{name} predicted on {devices} devices of {model} running {firmware}",
        "trigger": trigger,
        "scope": f"fleet: {model}@{firmware}, {devices} devices so far",
        "evidence": {"devices": devices},
        "priority": priority.value,
        "tier": Tier.L3.value,
        "team": Tier.L3.team,
        "phrasing": (
            {
                "symptom": {
                    "code": "fleet",
                    "fault": fault,
                    "devices": devices,
                    "model": model,
                    "firmware": firmware,
                },
                "trigger": {"code": "fleet", "devices": devices},
                "scope": {
                    "code": "fleet",
                    "model": model,
                    "firmware": firmware,
                    "devices": devices,
                },
            }
        ),
    }
    return _open_at_l3(
        conn,
        settings,
        policy,
        fields=fields,
        priority=priority,
        title=f"[{priority.label}][L3] fleet incident: {fields['symptom']}",
        body=trigger,
        now=now,
    )


def open_outage_ticket(
    conn: Conn,
    settings: Settings,
    policy: SlaPolicy,
    *,
    fleet_incident_id: int,
    device_ids: Sequence[str],
    since: datetime,
    priority: Priority,
    symptom: str,
    trigger: str,
    now: datetime,
) -> int:
    """Open the L3 ticket of a network outage (many devices silent together, no cohort);
    returns its id. `symptom` says what happened and what the devices share."""
    devices = len(device_ids)
    fields = {
        "kind": "fleet",
        "fleet_incident_id": fleet_incident_id,
        "fault": OUTAGE,
        "symptom": symptom,
        "trigger": trigger,
        "scope": f"outage: {devices} devices so far",
        "evidence": {
            "devices": devices,
            "device_ids": list(device_ids),
            "since": since.isoformat(),
        },
        "priority": priority.value,
        "tier": Tier.L3.value,
        "team": Tier.L3.team,
        "phrasing": {
            "symptom": {"code": "outage", "devices": devices, "since": since.isoformat()},
            "trigger": {"code": "outage", "devices": devices},
            "scope": {"code": "outage", "devices": devices},
        },
    }
    return _open_at_l3(
        conn,
        settings,
        policy,
        fields=fields,
        priority=priority,
        title=f"[{priority.label}][L3] outage: {devices} devices silent",
        body=f"{symptom}\nTrigger: {trigger}",
        now=now,
    )


def _open_at_l3(
    conn: Conn,
    settings: Settings,
    policy: SlaPolicy,
    *,
    fields: dict[str, Any],
    priority: Priority,
    title: str,
    body: str,
    now: datetime,
) -> int:
    """Insert a fleet ticket at L3 with its dues and 'opened' event, tell L3's team and the
    helpdesk; its id."""
    d = dues(policy, priority=priority, tier=Tier.L3, segment=None, opened_at=now)
    ticket_id = repository.insert_ticket(conn, fields=fields, dues=d, opened_at=now)
    detail = {
        "fleet_incident_id": fields["fleet_incident_id"],
        "devices": fields["evidence"]["devices"],
    }
    repository.add_event(conn, ticket_id=ticket_id, at=now, kind="opened", detail=detail)
    tell_staff(
        conn,
        settings,
        ticket_id=ticket_id,
        tag=Tier.L3.team,
        now=now,
        title=title,
        body=body,
        key=f"ticket:{ticket_id}:opened",
    )
    to_helpdesk(conn, settings, ticket_id=ticket_id, now=now, key=f"ticket:{ticket_id}:sink")
    return ticket_id


def raise_fleet_priority(
    conn: Conn,
    policy: SlaPolicy,
    *,
    ticket_id: int,
    priority: Priority,
    devices: int,
    now: datetime,
) -> None:
    """The fleet grew past a step: the ticket's priority and SLA dues follow."""
    row = repository.ticket_row(conn, ticket_id=ticket_id)
    if row is None or Priority(row["priority"]).rank >= priority.rank:
        return
    d = dues(policy, priority=priority, tier=Tier.L3, segment=None, opened_at=row["opened_at"])
    repository.raise_priority(
        conn,
        ticket_id=ticket_id,
        priority=priority,
        resolution_due=d.resolution_due,
        first_response_due=d.first_response_due,
    )
    repository.add_event(
        conn,
        ticket_id=ticket_id,
        at=now,
        kind="priority_raised",
        detail={"priority": priority.value, "devices": devices},
    )


def hand_over(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    priority: Priority,
    step: Escalate,
    from_tier: Tier,
    now: datetime,
    actor: str = "forewarn",
) -> None:
    """Escalate a ticket to `step.to_tier` (by its clock, or by staff), note it on the
    timeline and tell that tier's team."""
    tid, to = ticket_id, step.to_tier
    # The clock escalates to a tier once (racing responders make one notification); staff may
    # hand a reopened ticket over again, so theirs are keyed by time.
    key = f"ticket:{tid}:escalated:{to}" + ("" if actor == "forewarn" else f":{now.isoformat()}")
    repository.escalate(
        conn, ticket_id=tid, tier=to, at=now, respond_due=step.respond_due, solve_due=step.solve_due
    )
    repository.add_event(
        conn,
        ticket_id=tid,
        at=now,
        kind="escalated",
        actor=actor,
        detail={
            "from": from_tier.value,
            "to": to.value,
            "why": step.why,
            # Codes and times, so each language can say why (the console does).
            **({"which": step.which} if step.which else {}),
            **({"due": step.missed.isoformat()} if step.missed else {}),
        },
    )
    tell_staff(
        conn,
        settings,
        ticket_id=tid,
        tag=to.team,
        now=now,
        title=f"[{priority.label}] ticket {tid} escalated to {to}",
        body=step.why,
        key=key,
    )
    tell_owner(
        conn,
        settings,
        ticket_id=tid,
        kind=NoticeKind.HANDED_OVER,
        now=now,
        key=key.removeprefix(f"ticket:{tid}:"),
    )


def suggest_resolve(conn: Conn, *, ticket_id: int, now: datetime, why: str) -> bool:
    """The device recovered: suggest resolving its open ticket (once)."""
    if not repository.suggest_recovery(conn, ticket_id=ticket_id, at=now):
        return False
    repository.add_event(
        conn, ticket_id=ticket_id, at=now, kind="recovery_suggested", detail={"why": why}
    )
    return True


def tell_staff(
    conn: Conn,
    settings: Settings,
    *,
    ticket_id: int,
    tag: str,
    now: datetime,
    title: str,
    body: str,
    key: str,
) -> None:
    """Queue a staff notification to the Apprise targets tagged `tag` (several tags joined by
    commas: any of them) if staff targets are configured at all: without them the ticket
    queue is the only channel."""
    if settings.notify_config is None:
        return
    outbox.enqueue(
        conn,
        message=OutboundMessage(
            key=key,
            channel="apprise",
            audience="staff",
            target=f"tag:{tag}",
            title=title,
            body=body,
            payload={},
            ticket_id=ticket_id,
            created_at=now,
            not_before=now,
        ),
    )


def to_helpdesk(conn: Conn, settings: Settings, *, ticket_id: int, now: datetime, key: str) -> None:
    """Queue the ticket for the external helpdesk's webhook, when one is configured."""
    if settings.ticket_webhook_url is None:
        return
    row = repository.ticket_row(conn, ticket_id=ticket_id)
    assert row is not None
    payload = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
    outbox.enqueue(
        conn,
        message=OutboundMessage(
            key=key,
            channel="ticket_sink",
            audience="helpdesk",
            target="webhook",
            title=str(row["symptom"]),
            body=str(row["trigger"]),
            payload=payload,
            ticket_id=ticket_id,
            device_id=row["device_id"],
            created_at=now,
            not_before=now,
        ),
    )


def link_children(
    conn: Conn, *, parent_ticket_id: int, ticket_ids: list[int], now: datetime
) -> int:
    """Make device tickets children of their fleet ticket, noting it on both timelines."""
    linked = repository.set_parent(conn, ticket_ids=ticket_ids, parent_ticket_id=parent_ticket_id)
    for tid in ticket_ids:
        repository.add_event(
            conn,
            ticket_id=tid,
            at=now,
            kind="linked_to_fleet",
            detail={"parent_ticket_id": parent_ticket_id},
        )
    if linked:
        repository.add_event(
            conn,
            ticket_id=parent_ticket_id,
            at=now,
            kind="children_linked",
            detail={"ticket_ids": ticket_ids},
        )
    return linked
