"""Carry decisions out: one transaction per decision holds the incident, the ticket, the fleet
incident and the outbox rows, so a crash leaves all of them or none.

An advisory lock on (device, fault) serialises responders: two scorers racing on one device
open one incident and one ticket. A decision that may open or join a fleet incident then takes
the firmware cohort's lock and reads the cohort's facts under it; the others (an ignored hint,
an incident already in a fleet, a timer) do not wait on their cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forewarn.domain import Device, Prediction, Segment
from forewarn.settings import Settings
from notifier import repository as outbox
from notifier.guides.flows import guide_for
from notifier.guides.select import render
from notifier.guides.types import GuideFacts
from notifier.tickets import flows as tickets
from notifier.tickets.types import TicketOrder
from notifier.types import OutboundMessage, target_key
from rules import decide, facts, outages, predictions
from rules import repository as repo
from rules.decide import Decision, FleetOrder, GuideOrder, Verdict
from rules.onboarding import welcome
from rules.types import OpenIncident, RuleSet

Conn = repo.Conn


@dataclass(frozen=True, slots=True)
class Outcome:
    """What carrying out one decision did."""

    decision: Decision
    incident_id: int | None = None
    ticket_id: int | None = None
    fleet_incident_id: int | None = None
    queued: int = 0  # notifications put in the outbox


def apply_signal(
    conn: Conn, settings: Settings, rules: RuleSet, *, signal: Prediction, now: datetime
) -> Outcome:
    """Decide on a prediction and carry the decision out, in one transaction."""
    with conn.transaction():
        with conn.pipeline():  # the lock and the device in one round trip
            repo.lock(conn, key=f"incident:{signal.device_id}:{signal.fault}")
            device = facts.device(conn, device_id=signal.device_id)
        if device is None:
            return Outcome(Decision(Verdict.NOTHING, "the device is not registered"))
        outage = outages.absorb(conn, settings, rules, signal=signal, device=device, now=now)
        if outage is not None:
            why = f"silent with the devices of outage {outage}: its fleet incident covers it"
            return Outcome(Decision(Verdict.NOTHING, why), fleet_incident_id=outage)
        history = facts.history(
            conn, device=device, fault=signal.fault, now=now, rules=rules, cohort=False
        )
        decision = decide.on_signal(signal, device, history, rules, now)
        if decide.needs_cohort(decision, device, history):
            # Only a decision that may open or join a fleet incident waits for its cohort's
            # lock (the cohort's facts change nothing else): ignored hints and incidents
            # already in a fleet do not queue behind the rest of their cohort.
            _lock_cohort(conn, device, signal.fault)
            history = facts.with_cohort(
                conn, history, device=device, fault=signal.fault, now=now, rules=rules
            )
            decision = decide.on_signal(signal, device, history, rules, now)
        if decision.verdict is Verdict.TRACK:
            assert history.open is not None
            tracked = history.open.incident_id
            repo.track(conn, incident_id=tracked, signal=signal)
            joined = _fleet(
                conn,
                settings,
                rules,
                decision.fleet,
                device,
                signal.fault,
                now,
                incident_id=tracked,
                ticket_id=history.open.ticket_id,
            )
            return Outcome(decision, tracked, fleet_incident_id=joined)
        if decision.verdict is not Verdict.OPEN:
            return Outcome(decision)
        incident_id = repo.insert_incident(
            conn,
            signal=signal,
            device=device,
            decision=decision,
            now=now,
            recurrence_of=history.previous_incident_id,
        )
        if incident_id is None:  # cannot happen under the lock; the unique index is the backstop
            return Outcome(Decision(Verdict.NOTHING, "an incident opened meanwhile"))
        fleet_id = _fleet(
            conn,
            settings,
            rules,
            decision.fleet,
            device,
            signal.fault,
            now,
            incident_id=incident_id,
            ticket_id=None,
        )
        queued = 0
        if decision.guide is not None:
            queued = _send_guide(
                conn,
                decision.guide,
                device,
                signal,
                incident_id,
                now,
                segment=decision.segment,
                links=settings.owner_link_hosts,
            )
            if queued:
                repo.update_incident(conn, incident_id=incident_id, guide_sent_at=now)
            else:
                repo.update_incident(conn, incident_id=incident_id, state="watching")
        ticket_id = None
        if decision.ticket is not None:
            assert decision.rule is not None and decision.segment is not None
            about = tickets.DeviceTicket(
                incident_id, signal, device, decision.rule, decision.segment.value
            )
            ticket_id = tickets.open_device_ticket(
                conn, settings, order=decision.ticket, about=about, now=now
            )
            repo.update_incident(conn, incident_id=incident_id, ticket_id=ticket_id)
        outbox.notify_outbox(conn)
        return Outcome(decision, incident_id, ticket_id, fleet_id, queued)


def apply_timer(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    *,
    incident_id: int,
    device_id: str,
    fault: str,
    now: datetime,
) -> Outcome:
    """Recover an open incident, or open the ticket its guide's wait promised."""
    with conn.transaction():
        repo.lock(conn, key=f"incident:{device_id}:{fault}")
        incident = repo.open_incident(conn, incident_id=incident_id)
        device = facts.device(conn, device_id=device_id)
        if incident is None or device is None:
            return Outcome(Decision(Verdict.NOTHING, "closed meanwhile"))
        # A timer's decision never reads the cohort's facts (nor took its lock).
        history = facts.history(
            conn, device=device, fault=fault, now=now, rules=rules, cohort=False
        )
        decision = decide.on_timer(incident, device, history, rules, now)
        if decision.verdict is Verdict.RECOVERED:
            repo.update_incident(
                conn,
                incident_id=incident_id,
                state="closed",
                closed_at=now,
                recovered_at=now,
                outcome=decision.outcome,
            )
            if incident.ticket_id is not None:
                tickets.suggest_resolve(
                    conn, ticket_id=incident.ticket_id, now=now, why=decision.why
                )
            return Outcome(decision, incident_id, incident.ticket_id)
        if decision.verdict is not Verdict.TICKET or decision.ticket is None:
            return Outcome(decision, incident_id)
        ticket_id = open_incident_ticket(
            conn, settings, incident=incident, device=device, order=decision.ticket, now=now
        )
        return Outcome(decision, incident_id, ticket_id)


def open_incident_ticket(
    conn: Conn,
    settings: Settings,
    *,
    incident: OpenIncident,
    device: Device,
    order: TicketOrder,
    now: datetime,
) -> int:
    """Open the ticket of an open incident (its guide's wait is over, or its owner replied),
    carrying the guides sent; returns the ticket's id."""
    incident_id = incident.incident_id
    signal = predictions.incident_signal(conn, incident_id=incident_id)
    about = tickets.DeviceTicket(
        incident_id,
        signal,
        device,
        incident.rule,
        incident.segment.value,
        tuple(repo.guides_sent(conn, incident_id=incident_id)),
    )
    ticket_id = tickets.open_device_ticket(conn, settings, order=order, about=about, now=now)
    repo.update_incident(conn, incident_id=incident_id, state="ticketed", ticket_id=ticket_id)
    outbox.notify_outbox(conn)
    return ticket_id


def _lock_cohort(conn: Conn, device: Device, fault: str) -> None:
    if device.model is not None and device.firmware is not None:
        repo.lock(conn, key=f"fleet:{device.model}:{device.firmware}:{fault}")


def _fleet(
    conn: Conn,
    settings: Settings,
    rules: RuleSet,
    order: FleetOrder | None,
    device: Device,
    fault: str,
    now: datetime,
    *,
    incident_id: int,
    ticket_id: int | None,
) -> int | None:
    """Open or join the cohort's fleet incident; returns its id (None: no fleet)."""
    if order is None or device.model is None or device.firmware is None:
        return None
    if order.open_new:
        fleet_id = repo.open_fleet(
            conn,
            model=device.model,
            firmware=device.firmware,
            fault=fault,
            now=now,
            devices=order.devices,
            priority=order.priority,
        )
        fleet_ticket = tickets.open_fleet_ticket(
            conn,
            settings,
            rules,
            fleet_incident_id=fleet_id,
            model=device.model,
            firmware=device.firmware,
            fault=fault,
            devices=order.devices,
            priority=order.priority,
            trigger=f"{order.devices} devices within {rules.fleet.window} (fleet threshold "
            f"{rules.fleet.min_devices})",
            now=now,
        )
        repo.update_fleet(
            conn, fleet_incident_id=fleet_id, devices=order.devices, ticket_id=fleet_ticket
        )
        linked = repo.link_cohort(
            conn,
            fleet_incident_id=fleet_id,
            model=device.model,
            firmware=device.firmware,
            fault=fault,
            since=now - rules.fleet.window,
        )
        tickets.link_children(conn, parent_ticket_id=fleet_ticket, ticket_ids=linked, now=now)
        return fleet_id
    assert order.fleet_incident_id is not None
    joined = order.fleet_incident_id
    repo.update_incident(conn, incident_id=incident_id, fleet_incident_id=joined)
    repo.update_fleet(
        conn, fleet_incident_id=joined, devices=order.devices, priority=order.priority
    )
    parent = repo.fleet_ticket(conn, fleet_incident_id=joined)
    if parent is not None:
        tickets.raise_fleet_priority(
            conn, rules, ticket_id=parent, priority=order.priority, devices=order.devices, now=now
        )
        if ticket_id is not None:
            tickets.link_children(conn, parent_ticket_id=parent, ticket_ids=[ticket_id], now=now)
    return joined


def _send_guide(
    conn: Conn,
    order: GuideOrder,
    device: Device,
    signal: Prediction,
    incident_id: int,
    now: datetime,
    *,
    segment: Segment | None,
    links: tuple[str, ...],
) -> int:
    """Queue the fault's guide (and a novice's onboarding guide) to every owner target; only
    links to `links` hosts reach the owner."""
    owner = device.owner
    if owner is None or not owner.targets:
        return 0
    audience = segment.value if segment in (Segment.NOVICE, Segment.SENIOR) else "all"
    guide = guide_for(
        conn,
        fault=signal.fault,
        kind=device.kind,
        model=device.model,
        firmware=device.firmware,
        locale=owner.locale,
        audience=audience,
    )
    if guide is None:
        return 0
    facts = GuideFacts(
        kind=device.kind,
        model=device.model,
        firmware=device.firmware,
        owner_name=owner.name,
        hours_to_empty=signal.hours_to_empty,
    )
    text = render(guide, facts, links=links)
    queued = 0
    for target in owner.targets:
        tag = target_key(target)
        queued += _enqueue(
            conn,
            OutboundMessage(
                key=f"guide:{incident_id}:{tag}",
                channel="apprise",
                audience="owner",
                target=target,
                title=text.title,
                body=text.body,
                created_at=now,
                not_before=order.send_at,
                owner_id=owner.owner_id,
                device_id=device.device_id,
                incident_id=incident_id,
                guide_id=guide.guide_id,
                locale=guide.locale,
            ),
        )
    if order.onboarding:
        # The novice's first fault guide comes with the onboarding guide, if their device's
        # first report has not brought it already (once per owner and product kind).
        welcome(conn, device, now=now, send_at=order.send_at, links=links)
    return queued


def _enqueue(conn: Conn, message: OutboundMessage) -> int:
    return 0 if outbox.enqueue(conn, message=message) is None else 1
