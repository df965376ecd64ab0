"""Tickets: their states, the actions staff take on them, and the transitions allowed.

new ──acknowledge──▶ acknowledged ──start──▶ in_progress
 │                        │                      │
 └──────────────resolve───┴──────────────────────┴──▶ resolved ──close──▶ closed
                                                         ▲  │               │
                                          reopen (new) ◀─┘  └───────────────┘
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from forewarn.errors import TicketError


class TicketState(enum.StrEnum):
    """Where a ticket is in its life."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
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


_S = TicketState
TRANSITIONS: dict[TicketAction, dict[TicketState, TicketState]] = {
    TicketAction.ACKNOWLEDGE: {_S.NEW: _S.ACKNOWLEDGED},
    TicketAction.START: {_S.NEW: _S.IN_PROGRESS, _S.ACKNOWLEDGED: _S.IN_PROGRESS},
    TicketAction.RESOLVE: {
        _S.NEW: _S.RESOLVED,
        _S.ACKNOWLEDGED: _S.RESOLVED,
        _S.IN_PROGRESS: _S.RESOLVED,
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
