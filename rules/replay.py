"""Replay a device's predictions through a rule set, deciding with ``rules.decide`` alone.

The history starts empty (no stored incidents, cooldowns or snoozes: what the rule set itself
does) and holds only what the replay decided: an incident it opened makes later predictions of
that fault ``track``, and a guide it sent starts the owner's cooldown. Time is not run between
predictions, so recoveries are not replayed; a guide-then-ticket incident instead shows the
ticket ``decide.on_timer`` would open at its due time if the device had not recovered.
Fleet correlation needs other devices' incidents and is not replayed either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from forewarn.domain import OUTAGE, Device, Prediction
from notifier.tickets.types import TicketOrder
from rules import decide
from rules.decide import Decision, Verdict
from rules.types import History, OpenIncident, RuleSet


@dataclass(frozen=True, slots=True)
class Step:
    """One prediction, the decision on it, and the ticket its guide's wait leads to."""

    signal: Prediction
    decision: Decision
    then_ticket: TicketOrder | None = None


def replay(signals: Iterable[Prediction], device: Device, rules: RuleSet) -> list[Step]:
    """Decide each signal in order (at its own reading time), as the responder would have."""
    opened: dict[str, OpenIncident] = {}
    told: datetime | None = None
    steps: list[Step] = []
    # An outage's predictions make a fleet incident, which is not replayed (rules.outages).
    mine = (s for s in signals if s.fault != OUTAGE)
    for number, signal in enumerate(mine, 1):
        history = History(open=opened.get(signal.fault), last_owner_notice_at=told)
        decision = decide.on_signal(signal, device, history, rules, signal.at)
        then = None
        if decision.verdict is Verdict.OPEN:
            incident = _incident(number, signal, decision)
            opened[signal.fault] = incident
            then = _then_ticket(incident, device, rules)
        if decision.guide is not None:
            told = signal.at
        steps.append(Step(signal, decision, then))
    return steps


def _incident(number: int, signal: Prediction, decision: Decision) -> OpenIncident:
    """The incident an OPEN decision stands for; its id is the replay's, never a stored one."""
    assert decision.rule is not None and decision.segment is not None
    return OpenIncident(
        incident_id=-number,
        state=decision.state or "watching",
        rule=decision.rule,
        segment=decision.segment,
        opened_at=signal.at,
        last_predicted_at=signal.at,
        guide_sent_at=signal.at if decision.guide is not None else None,
        ticket_due_at=decision.ticket_due_at,
    )


def _then_ticket(incident: OpenIncident, device: Device, rules: RuleSet) -> TicketOrder | None:
    """The ticket on_timer opens at the incident's due time if the device has not recovered."""
    if incident.ticket_due_at is None:
        return None
    # last_seen unknown: on_timer cannot call it recovered, which is the case asked about.
    later = decide.on_timer(
        incident, replace(device, last_seen=None), History(), rules, incident.ticket_due_at
    )
    return later.ticket if later.verdict is Verdict.TICKET else None
