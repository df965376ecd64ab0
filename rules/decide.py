"""Decisions: pure functions from (signal, device, history, rule set, now) to what to do.

Nothing here reads the database or the clock; ``rules.flows`` gathers the facts, calls these
functions and carries the decision out in one transaction. Snooze, dedup (one open incident
per device and fault), cooldown and quiet hours are applied here, before any side effect.

Hysteresis: an incident opens on the first prediction and closes only after its device has
reported ``clear_after`` of telemetry without one, so a flapping signal stays one incident.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from forewarn.domain import Device, Owner, Prediction, Segment
from notifier.quiet import quiet_until
from notifier.tickets.sla import dues
from notifier.tickets.types import Priority, TicketOrder, Tier
from rules.types import Action, History, OpenIncident, RuleSet, Timing


class Verdict(enum.StrEnum):
    """The kind of a decision."""

    NOTHING = "nothing"  # no incident, no action
    TRACK = "track"  # an incident is open: note the prediction (and maybe join a fleet)
    OPEN = "open"  # open an incident (with a guide and/or a ticket)
    TICKET = "ticket"  # the guide's wait passed without recovery: open the ticket
    RECOVERED = "recovered"  # the device has been clean for `clear_after`: close


@dataclass(frozen=True, slots=True)
class GuideOrder:
    """Send the owner the fault's guide."""

    send_at: datetime  # now, or the end of the owner's quiet hours
    quiet_deferred: bool
    urgent: bool  # critical: sent at once, quiet hours or not
    onboarding: bool  # a novice also gets the onboarding guide for the product


@dataclass(frozen=True, slots=True)
class FleetOrder:
    """Tie the incident to its firmware cohort's fleet incident (opening it if need be)."""

    open_new: bool
    fleet_incident_id: int | None
    devices: int
    priority: Priority


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do, and why in words a support agent can read."""

    verdict: Verdict
    why: str
    rule: str | None = None
    segment: Segment | None = None
    state: str | None = None  # the incident's state afterwards
    guide: GuideOrder | None = None
    ticket: TicketOrder | None = None
    fleet: FleetOrder | None = None
    ticket_due_at: datetime | None = None
    outcome: str | None = None  # RECOVERED: recovered_after_guide | recovered


def segment_of(device: Device, now: datetime, timing: Timing) -> Segment:
    """The owner's segment: enterprise by account, else by how long the device has been owned."""
    owner = device.owner
    if owner is not None and owner.enterprise_account:
        return Segment.ENTERPRISE
    if device.activated_at is None:
        return Segment.REGULAR
    owned = now - device.activated_at
    if owned <= timedelta(days=timing.novice_days):
        return Segment.NOVICE
    if owned >= timedelta(days=timing.senior_days):
        return Segment.SENIOR
    return Segment.REGULAR


def on_signal(
    signal: Prediction, device: Device, history: History, rules: RuleSet, now: datetime
) -> Decision:
    """What a new prediction calls for."""
    timing = rules.timing
    segment = segment_of(device, now, timing)
    if history.open is not None:
        return Decision(
            Verdict.TRACK,
            "an incident is already open for this device and fault",
            rule=history.open.rule,
            segment=segment,
            state=history.open.state,
            fleet=_fleet(history, rules, device, joining=history.open),
        )
    if history.snoozed_until is not None and history.snoozed_until > now:
        why = f"snoozed until {history.snoozed_until:%Y-%m-%d %H:%M} UTC"
        return Decision(Verdict.NOTHING, f"{why}: {history.snooze_reason or 'no reason given'}")
    rule = rules.rule_for(signal.fault, segment, signal.probability)
    if rule is None:
        return Decision(Verdict.NOTHING, f"no rule matches {signal.fault} for a {segment} owner")
    if rule.action is Action.IGNORE:
        return Decision(Verdict.NOTHING, f"rule '{rule.name}' ignores it", rule=rule.name)
    fleet = _fleet(history, rules, device, joining=None)
    urgent = rule.action is Action.TICKET and rule.priority is Priority.CRITICAL
    guide, held = None, ""
    if rule.action is not Action.TICKET or rule.notify_owner:
        guide, held = _guide(device.owner, history, now, timing, urgent=urgent, segment=segment)
    ticket = None
    if rule.action is Action.TICKET and fleet is None:
        ticket = _ticket(
            rules, rule.priority, rule.tier, device, segment, history, now, guide_sent=False
        )
    wait = rule.action is Action.GUIDE_THEN_TICKET
    # A ticket rule whose device joined a fleet incident is ticketed: the fleet ticket covers it.
    ticketed = ticket is not None or (fleet is not None and rule.action is Action.TICKET)
    state = "ticketed" if ticketed else "guided" if guide else "watching"
    parts = [f"rule '{rule.name}' ({rule.action}) for a {segment} owner"]
    if fleet is not None:
        parts.append(f"{fleet.devices} devices of {device.model}@{device.firmware} hit: fleet")
    if held:
        parts.append(held)
    return Decision(
        Verdict.OPEN,
        "; ".join(parts),
        rule=rule.name,
        segment=segment,
        state=state,
        guide=guide,
        ticket=ticket,
        fleet=fleet,
        # The guide gets its wait once it reaches the owner: a guide held by quiet hours has
        # not been read yet, so the ticket's wait starts when it goes out.
        ticket_due_at=(guide.send_at if guide is not None else now) + rule.wait if wait else None,
    )


def acts_on(rules: RuleSet, fault: str, probability: float) -> bool:
    """Whether a prediction of `fault` at `probability` can open anything for some owner: a
    rule other than ``ignore`` matches it in some segment. When none does, ``on_signal``
    decides NOTHING unless the device already has an incident open for the fault (then
    TRACK), so the responder can skip such predictions after one look at open incidents."""
    for segment in Segment:
        rule = rules.rule_for(fault, segment, probability)
        if rule is not None and rule.action is not Action.IGNORE:
            return True
    return False


def needs_cohort(decision: Decision, device: Device, history: History) -> bool:
    """Whether `decision`, made without the cohort's facts, may open or join a fleet incident
    once they are read: it opens an incident, or tracks one not yet in a fleet, on a device
    with a model and firmware. Otherwise the cohort's facts cannot change it (``_fleet``
    alone reads them), so its lock and its reads are skipped."""
    if device.model is None or device.firmware is None:
        return False
    if decision.verdict is Verdict.OPEN:
        return True
    return (
        decision.verdict is Verdict.TRACK
        and history.open is not None
        and history.open.fleet_incident_id is None
    )


def on_timer(
    incident: OpenIncident, device: Device, history: History, rules: RuleSet, now: datetime
) -> Decision:
    """What the passing of time calls for on an open incident: recovery, or the ticket that
    a guide's wait promised."""
    timing = rules.timing
    clean = None if device.last_seen is None else device.last_seen - incident.last_predicted_at
    if clean is not None and clean >= timing.clear_after:
        guided = incident.guide_sent_at is not None and incident.ticket_id is None
        outcome = "recovered_after_guide" if guided else "recovered"
        why = f"{_minutes(clean)} min of telemetry without a prediction"
        return Decision(
            Verdict.RECOVERED,
            why,
            rule=incident.rule,
            segment=incident.segment,
            state="closed",
            outcome=outcome,
        )
    due = incident.ticket_due_at
    if due is None or now < due or incident.ticket_id is not None:
        return Decision(Verdict.NOTHING, "waiting", rule=incident.rule, state=incident.state)
    if incident.fleet_incident_id is not None:
        return Decision(
            Verdict.NOTHING,
            "covered by its fleet incident's ticket",
            rule=incident.rule,
            state=incident.state,
        )
    if history.snoozed_until is not None and history.snoozed_until > now:
        return Decision(
            Verdict.NOTHING,
            f"snoozed until {history.snoozed_until:%H:%M} UTC",
            rule=incident.rule,
            state=incident.state,
        )
    rule = next((r for r in rules.rules if r.name == incident.rule), None)
    priority = rule.priority if rule else Priority.MINOR
    tier = rule.tier if rule else Tier.L1
    sent = incident.guide_sent_at is not None
    ticket = _ticket(rules, priority, tier, device, incident.segment, history, now, guide_sent=sent)
    why = "not recovered within the guide's wait" if sent else "not recovered within the wait"
    return Decision(
        Verdict.TICKET,
        why,
        rule=incident.rule,
        segment=incident.segment,
        state="ticketed",
        ticket=ticket,
    )


def on_reply(
    incident: OpenIncident, device: Device, history: History, rules: RuleSet, now: datetime
) -> Decision:
    """The owner answered the incident's guide (it did not help, or they have a question)
    before its wait was over: open the ticket the wait would have opened, now."""
    rule = next((r for r in rules.rules if r.name == incident.rule), None)
    priority = rule.priority if rule else Priority.MINOR
    tier = rule.tier if rule else Tier.L1
    sent = incident.guide_sent_at is not None
    ticket = _ticket(rules, priority, tier, device, incident.segment, history, now, guide_sent=sent)
    return Decision(
        Verdict.TICKET,
        "the owner replied",
        rule=incident.rule,
        segment=incident.segment,
        state="ticketed",
        ticket=ticket,
    )


def _guide(
    owner: Owner | None,
    history: History,
    now: datetime,
    timing: Timing,
    *,
    urgent: bool,
    segment: Segment,
) -> tuple[GuideOrder | None, str]:
    if owner is None or not owner.targets:
        return None, "no guide: the owner has no notification target"
    last = history.last_owner_notice_at
    if not urgent and last is not None and now - last < timing.cooldown:
        return None, f"guide held: owner told {_minutes(now - last)} min ago (cooldown)"
    until = None if urgent else quiet_until(owner, now)
    order = GuideOrder(
        send_at=until or now,
        quiet_deferred=until is not None,
        urgent=urgent,
        onboarding=segment is Segment.NOVICE,
    )
    held = f"guide deferred to {until:%H:%M} UTC (quiet hours)" if until else ""
    return order, held


def _ticket(
    rules: RuleSet,
    priority: Priority,
    tier: Tier,
    device: Device,
    segment: Segment,
    history: History,
    now: datetime,
    *,
    guide_sent: bool,
) -> TicketOrder:
    owner = device.owner
    if segment is Segment.ENTERPRISE and owner is not None:
        team = f"enterprise:{owner.enterprise_account}"
    else:
        team = tier.team
    return TicketOrder(
        priority=priority,
        tier=tier,
        team=team,
        guide_sent=guide_sent,
        dues=dues(rules, priority=priority, tier=tier, segment=segment, opened_at=now),
        recurrence_of=history.previous_ticket_id,
        recurrences=history.recurrences,
    )


def _fleet(
    history: History, rules: RuleSet, device: Device, *, joining: OpenIncident | None
) -> FleetOrder | None:
    """A fleet order when this device's cohort has reached the fleet threshold."""
    if device.model is None or device.firmware is None:
        return None
    if joining is not None and joining.fleet_incident_id is not None:
        return None  # already part of it
    # history.cohort_devices counts the cohort's incidents in the window, this one included
    # once it is open; a device about to open one adds itself.
    devices = history.cohort_devices + (0 if joining is not None else 1)
    policy = rules.fleet
    if history.fleet_incident_id is not None:
        return FleetOrder(False, history.fleet_incident_id, devices, policy.priority_for(devices))
    if devices >= policy.min_devices:
        return FleetOrder(True, None, devices, policy.priority_for(devices))
    return None


def _minutes(delta: timedelta) -> int:
    return round(delta.total_seconds() / 60)
