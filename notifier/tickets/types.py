"""Tickets: their vocabulary (priorities, tiers, SLA targets, the order that opens one), their
states, the actions staff take on them, and the transitions allowed.

new ──acknowledge──▶ acknowledged ──start──▶ in_progress ◀──start / the owner's reply──┐
 │                        │                      │                                   │
 │                        └──────────wait────────┴──wait (a question to the owner)──▶ waiting
 │                                               │                                   │
 └──────────────resolve───┴──────────────────────┴──▶ resolved ◀────────resolve──────┘
                                                      ▲  │    ──close──▶ closed
                                       reopen (new) ◀─┘  └───────────────┘

A person's message or call to the owner (``actions.contact``, and ``wait``, which asks
something) is the first response; the automatic notices are not.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from forewarn.errors import TicketError

if TYPE_CHECKING:
    from notifier.tickets.calendar import Calendar


class Priority(enum.StrEnum):
    """Ticket priorities of the support standards manual (P1 to P3)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"

    @property
    def label(self) -> str:
        """P1, P2 or P3."""
        return {"critical": "P1", "major": "P2", "minor": "P3"}[self.value]

    @property
    def rank(self) -> int:
        """3 for critical down to 1 for minor: higher is more urgent."""
        return {"critical": 3, "major": 2, "minor": 1}[self.value]


class Tier(enum.StrEnum):
    """Escalation tiers: first line, experts, product experts and R&D."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"

    @property
    def team(self) -> str:
        """The support team that works this tier (also its Apprise staff tag)."""
        return f"support-{self.value.lower()}"

    @property
    def lead(self) -> str:
        """The Apprise staff tag of this tier's lead, told of near-breaches and breaches."""
        return f"lead-{self.value.lower()}"

    @property
    def next(self) -> Tier | None:
        """The tier a breach escalates to (None at L3)."""
        return {"L1": Tier.L2, "L2": Tier.L3, "L3": None}[self.value]


@dataclass(frozen=True, slots=True)
class Sla:
    """First response and resolution targets of one priority."""

    first_response: timedelta
    resolution: timedelta


@dataclass(frozen=True, slots=True)
class TierTimes:
    """How soon a tier must take a ticket up after hand-over, how long it has to solve it
    before handing it on, and which priorities may start at it."""

    respond: timedelta | None  # None (L1): the priority's first response
    solve: timedelta
    takes: frozenset[Priority] = frozenset(Priority)


def default_sla() -> Mapping[Priority, Sla]:
    """The support standards manual's table."""
    return {
        Priority.CRITICAL: Sla(timedelta(minutes=30), timedelta(hours=4)),
        Priority.MAJOR: Sla(timedelta(hours=1), timedelta(hours=8)),
        Priority.MINOR: Sla(timedelta(hours=2), timedelta(hours=24)),
    }


def default_tiers() -> Mapping[Tier, TierTimes]:
    """The manual's tiers (3.2): L1 takes P3 and simple P2, contacts the customer within the
    priority's first response and hands over what it cannot solve in its own time (2 h: with
    L2's 2 h and L3's 4 h a P2 still fits its 8 h); L2 takes P2 and complex P3, starts within
    1 h of the hand-over and hands over to L3 if unsolved 2 h after it; L3 takes P1 and hard
    P2, engages within 30 min and delivers within 4 h."""
    p = Priority
    return {
        Tier.L1: TierTimes(None, timedelta(hours=2), frozenset({p.MINOR, p.MAJOR})),
        Tier.L2: TierTimes(timedelta(hours=1), timedelta(hours=2), frozenset({p.MAJOR, p.MINOR})),
        Tier.L3: TierTimes(
            timedelta(minutes=30), timedelta(hours=4), frozenset({p.CRITICAL, p.MAJOR})
        ),
    }


class SlaPolicy(Protocol):
    """What the ticket clocks need to know of the rule set: the SLA table, the tiers' times,
    when to warn and the enterprise first-response target (``rules.types.RuleSet`` is one)."""

    @property
    def sla(self) -> Mapping[Priority, Sla]:
        """First response and resolution per priority."""
        ...

    @property
    def tiers(self) -> Mapping[Tier, TierTimes]:
        """Each tier's own times (L1, L2, L3)."""
        ...

    @property
    def calendar(self) -> Calendar:
        """Announced holidays, during which the clocks of some priorities stand still."""
        ...

    @property
    def warn_at(self) -> float:
        """Share of a due's time after which a breach warning is raised."""
        ...

    @property
    def enterprise_first_response(self) -> timedelta:
        """The dedicated first-response target of enterprise customers."""
        ...


@dataclass(frozen=True, slots=True)
class Dues:
    """When a ticket must be answered and solved, overall (SLA) and at its current tier."""

    first_response_due: datetime
    resolution_due: datetime
    tier_respond_due: datetime
    tier_solve_due: datetime


@dataclass(frozen=True, slots=True)
class TicketOrder:
    """Open a ticket for support (what a rule decided)."""

    priority: Priority
    tier: Tier
    team: str
    guide_sent: bool
    dues: Dues
    recurrence_of: int | None
    recurrences: int


class TicketType(enum.StrEnum):
    """What a ticket is about, as the standard's intake sorts problems."""

    FAULT = "fault"
    QUESTION = "question"
    COMPLAINT = "complaint"
    WARRANTY = "warranty"


@dataclass(frozen=True, slots=True)
class ComplaintTimes:
    """The standard's complaint clock (4.3): marked urgent, the customer contacted within 30
    minutes, the corrective action fed back within 24 hours, a follow-up within a week."""

    contact: timedelta = timedelta(minutes=30)
    feedback: timedelta = timedelta(hours=24)
    follow_up: timedelta = timedelta(days=7)


ENTERPRISE_TEAM = "enterprise:"  # team of an enterprise ticket: "enterprise:<account>"


def team_tag(team: str, tier: Tier, enterprise_team: str | None = None) -> str:
    """The Apprise tag of the team that works a ticket: an enterprise account's own team (its
    recorded team tag, else ``enterprise-<account>``), otherwise the tier's support team."""
    if not team.startswith(ENTERPRISE_TEAM):
        return tier.team
    if enterprise_team and _tag_word(enterprise_team):
        return _tag_word(enterprise_team)
    return f"enterprise-{_tag_word(team.removeprefix(ENTERPRISE_TEAM)) or 'account'}"


def _tag_word(text: str) -> str:
    # Apprise lower-cases tags and splits them at spaces and commas: make one word of it.
    return re.sub(r"[^0-9a-z_.-]+", "-", text.casefold()).strip("-")


class TicketState(enum.StrEnum):
    """Where a ticket is in its life."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # staff asked the owner for something; their reply resumes it
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def open(self) -> bool:
        """Whether the ticket still needs work (its SLA clocks run)."""
        return self not in (TicketState.RESOLVED, TicketState.CLOSED)


class TicketAction(enum.StrEnum):
    """What staff (or Forewarn) do to a ticket's state."""

    ACKNOWLEDGE = "acknowledge"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    WAIT = "wait"  # ask the owner something (the note is the question) and wait for the reply


_S = TicketState
TRANSITIONS: dict[TicketAction, dict[TicketState, TicketState]] = {
    TicketAction.ACKNOWLEDGE: {_S.NEW: _S.ACKNOWLEDGED},
    TicketAction.START: {
        _S.NEW: _S.IN_PROGRESS,
        _S.ACKNOWLEDGED: _S.IN_PROGRESS,
        _S.WAITING: _S.IN_PROGRESS,
    },
    TicketAction.RESOLVE: {
        _S.NEW: _S.RESOLVED,
        _S.ACKNOWLEDGED: _S.RESOLVED,
        _S.IN_PROGRESS: _S.RESOLVED,
        _S.WAITING: _S.RESOLVED,
    },
    TicketAction.WAIT: {
        _S.NEW: _S.WAITING,
        _S.ACKNOWLEDGED: _S.WAITING,
        _S.IN_PROGRESS: _S.WAITING,
    },
    TicketAction.CLOSE: {_S.RESOLVED: _S.CLOSED},
    TicketAction.REOPEN: {_S.RESOLVED: _S.NEW, _S.CLOSED: _S.NEW},
}


def next_state(state: TicketState, action: TicketAction) -> TicketState:
    """The state `action` leads to from `state`; TicketError if it is not allowed."""
    allowed = TRANSITIONS[action]
    if state not in allowed:
        from_states = ", ".join(s.value for s in allowed)
        raise TicketError(
            f"cannot {action.value} a ticket that is {state.value} (only from: {from_states})"
        )
    return allowed[state]


@dataclass(frozen=True, slots=True)
class TicketSummary:
    """A ticket as lists and summaries show it."""

    ticket_id: int
    kind: str
    device_id: str | None
    fault: str
    priority: str
    tier: str
    team: str
    state: str
    opened_at: datetime
    escalations: int
    guide_sent: bool
    parent_ticket_id: int | None
    recurrence_of: int | None


class ResolutionCode(enum.StrEnum):
    """How a ticket was resolved; the console offers these and KPIs can group by them."""

    FIXED_BY_GUIDE = "fixed_by_guide"
    FIXED_REMOTELY = "fixed_remotely"
    FIRMWARE_UPDATE = "firmware_update"
    PART_REPLACED = "part_replaced"
    DEVICE_REPLACED = "device_replaced"
    USER_ACTION = "user_action"
    NO_FAULT_FOUND = "no_fault_found"
    FALSE_ALARM = "false_alarm"
    DUPLICATE = "duplicate"
    OTHER = "other"


class ContactHow(enum.StrEnum):
    """How a person reached the owner: a message sent from the ticket, or a call logged."""

    MESSAGE = "message"
    CALL = "call"


class Verdict(enum.StrEnum):
    """Staff's judgement of the prediction behind a ticket."""

    CONFIRMED = "confirmed"
    FALSE_ALARM = "false_alarm"
