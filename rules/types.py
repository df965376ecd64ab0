"""What a rule set says, and what the responder knows when it applies one.

Everything here is a frozen, slotted value. ``rules.loader`` builds a ``RuleSet`` from YAML;
``rules.decide`` maps (signal, device, history, rule set, now) to a ``Decision``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from forewarn.domain import Segment
from notifier.tickets.calendar import Calendar
from notifier.tickets.types import (
    Priority,
    Sla,
    Tier,
    TierTimes,
    default_sla,
    default_tiers,
)


class Action(enum.StrEnum):
    """What a rule does with a prediction it matches."""

    IGNORE = "ignore"  # record nothing
    GUIDE = "guide"  # send the owner a guide and watch; never a ticket
    GUIDE_THEN_TICKET = "guide_then_ticket"  # guide, then a ticket if not recovered in `wait`
    TICKET = "ticket"  # open a ticket at once (and warn the owner if `notify_owner`)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: the first rule whose faults and segments match a prediction decides it."""

    name: str
    action: Action
    faults: frozenset[str] = frozenset()  # empty: every fault
    segments: frozenset[Segment] = frozenset()  # empty: every segment
    priority: Priority = Priority.MINOR
    tier: Tier = Tier.L1
    wait: timedelta = timedelta(hours=4)  # guide_then_ticket: how long the guide gets
    notify_owner: bool = False  # ticket: also warn the owner (critical: even in quiet hours)
    min_probability: float = 0.0  # on top of the model's own threshold
    line: int = 0  # where the rule starts in its file, for messages

    def matches(self, fault: str, segment: Segment, probability: float) -> bool:
        """Whether this rule applies to a prediction of `fault` for an owner in `segment`."""
        return (
            (not self.faults or fault in self.faults)
            and (not self.segments or segment in self.segments)
            and probability >= self.min_probability
        )


@dataclass(frozen=True, slots=True)
class FleetPolicy:
    """When devices of one model and firmware with one fault become one fleet incident."""

    min_devices: int = 5
    window: timedelta = timedelta(hours=6)
    # (devices hit, priority) in rising order: the fleet ticket takes the highest step reached.
    steps: tuple[tuple[int, Priority], ...] = ((5, Priority.MAJOR), (20, Priority.CRITICAL))

    def priority_for(self, devices: int) -> Priority:
        """The priority a fleet incident with `devices` devices deserves."""
        chosen = self.steps[0][1]
        for threshold, priority in self.steps:
            if devices >= threshold:
                chosen = priority
        return chosen


@dataclass(frozen=True, slots=True)
class Timing:
    """Windows that apply to every rule."""

    cooldown: timedelta = timedelta(hours=12)  # before the same owner is told again
    clear_after: timedelta = timedelta(hours=1)  # clean telemetry this long = recovered
    recurrence_window: timedelta = timedelta(days=30)
    warn_at: float = 0.8  # share of a due's time after which a breach warning is raised
    enterprise_first_response: timedelta = timedelta(minutes=10)
    novice_days: int = 30  # owned this long or less: novice
    senior_days: int = 180  # owned this long or more: senior


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated rule set."""

    rules: tuple[Rule, ...]
    sla: Mapping[Priority, Sla] = field(default_factory=default_sla)
    tiers: Mapping[Tier, TierTimes] = field(default_factory=default_tiers)
    fleet: FleetPolicy = FleetPolicy()
    timing: Timing = Timing()
    calendar: Calendar = field(default_factory=Calendar)
    source: str = "<memory>"

    @property
    def warn_at(self) -> float:
        """Share of a due's time after which a breach warning is raised (SlaPolicy)."""
        return self.timing.warn_at

    @property
    def enterprise_first_response(self) -> timedelta:
        """The enterprise first-response target (SlaPolicy)."""
        return self.timing.enterprise_first_response

    def rule_for(self, fault: str, segment: Segment, probability: float) -> Rule | None:
        """The first rule that matches, or None."""
        return next((r for r in self.rules if r.matches(fault, segment, probability)), None)


# ---- What the responder knows when it decides -------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """The open incident of one device and fault, if there is one."""

    incident_id: int
    state: str  # watching | guided | ticketed
    rule: str
    segment: Segment
    opened_at: datetime
    last_predicted_at: datetime
    guide_sent_at: datetime | None = None
    ticket_due_at: datetime | None = None
    ticket_id: int | None = None
    fleet_incident_id: int | None = None


@dataclass(frozen=True, slots=True)
class History:
    """What happened before, as far as a decision needs it."""

    open: OpenIncident | None = None
    last_owner_notice_at: datetime | None = None  # last fault guide queued for this owner
    previous_incident_id: int | None = None  # closed within the recurrence window
    previous_ticket_id: int | None = None
    recurrences: int = 0  # incidents of this device and fault within the recurrence window
    snoozed_until: datetime | None = None
    snooze_reason: str | None = None
    cohort_devices: int = 0  # devices of this model+firmware with this fault in the window
    fleet_incident_id: int | None = None  # the cohort's open fleet incident
    fleet_priority: Priority | None = None
