"""Routes: /api/v1/tickets, the queue and what staff do to tickets."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import Agent, ClockDep, ConnDep, OutreachDep, Reader, RulesDep, SettingsDep
from api.responses import AUTH, CONFLICT, NOT_FOUND
from api.tickets import flows
from api.tickets.repository import OPEN_STATES, QueueFilter
from api.tickets.schemas import (
    Assign,
    Comment,
    Contact,
    Escalation,
    Feedback,
    NewTicket,
    Note,
    Resolve,
    TicketDetail,
    TicketPage,
    Wait,
)
from notifier.surveys.types import Answer
from notifier.tickets import actions, intake, staff
from notifier.tickets.types import TicketAction
from rules import feedback as decisions

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"], responses=AUTH)


StateFilter = Literal[
    "open", "all", "callback", "new", "acknowledged", "in_progress", "waiting", "resolved", "closed"
]


@router.get(
    "",
    response_model=TicketPage,
    summary="The ticket queue",
    description=(
        "Tickets matching the filters, most urgent first by default: open tickets by the due "
        "they work to now (answer at their tier, then solve), with the time left and an "
        "urgency of ok, near (breach warning) or breached. 'open' also lists resolved tickets "
        "with a call-back due (their survey went unanswered), after the open ones; "
        "'callback' lists only those."
    ),
)
def queue(
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    who: Reader,
    state: Annotated[
        StateFilter,
        Query(description="'open' (default, with call-backs due), 'all', 'callback' or a state"),
    ] = "open",
    priority: Annotated[Literal["critical", "major", "minor"] | None, Query()] = None,
    tier: Annotated[Literal["L1", "L2", "L3"] | None, Query()] = None,
    team: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[Literal["device", "fleet", "owner", "staff"] | None, Query()] = None,
    device_id: Annotated[str | None, Query(max_length=200)] = None,
    fault: Annotated[str | None, Query(max_length=100)] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    sort: Annotated[
        Literal["urgency", "opened", "-opened", "priority"],
        Query(description="urgency (default), opened, -opened (newest first), priority"),
    ] = "urgency",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TicketPage:
    """The queue."""
    states = {"open": OPEN_STATES, "all": None, "callback": ()}.get(state, (state,))
    callbacks = state in ("open", "callback")
    where = QueueFilter(states, callbacks, priority, tier, team, kind, device_id, fault, assignee)
    return flows.page(
        conn,
        where=where,
        sort=sort,
        limit=limit,
        offset=offset,
        now=clock.now(),
        warn_at=rules.timing.warn_at,
    )


@router.post(
    "",
    response_model=TicketDetail,
    status_code=201,
    summary="Make a ticket",
    description=(
        "A ticket an agent or an integration makes for an owner or a device: an owner's call "
        "or message, a complaint, a warranty question. It opens at the tier that takes its "
        "priority (or the one given, if that tier takes it; else 409) with the rule set's SLA "
        "dues (enterprise owners: their account's first-response target and team). A "
        "complaint is marked urgent, its first-response due is at most 30 minutes away, and "
        "it carries feedback (24 h) and follow-up (7 days) dues. The team is told, the "
        "helpdesk webhook gets it, and the owner is told its number and when a person will "
        "contact them. 404 for an unknown owner or device; 409 when the device belongs to "
        "another owner."
    ),
    responses=NOT_FOUND | CONFLICT,
)
def make_ticket(
    body: NewTicket,
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    settings: SettingsDep,
    who: Agent,
) -> TicketDetail:
    """Make a ticket."""
    now = clock.now()
    ticket_id = intake.open_staff_ticket(
        conn,
        settings,
        rules,
        new=intake.NewTicket(
            ticket_type=body.type,
            priority=body.priority,
            symptom=body.symptom,
            owner_id=body.owner_id,
            device_id=body.device_id,
            tier=body.tier,
            trigger=body.trigger,
            scope=body.scope,
            contact_person=body.contact_person,
            department=body.department,
            channel=body.channel,
        ),
        actor=who.name,
        now=now,
    )
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)


@router.get(
    "/{ticket_id}",
    response_model=TicketDetail,
    summary="One ticket",
    description=(
        "The ticket with its evidence (telemetry, prediction, reasons at opening), the "
        "incident's prediction, the guides sent to the owner and their delivery, the fleet "
        "ticket's children, and the timeline."
    ),
    responses=NOT_FOUND,
)
def get_ticket(
    ticket_id: int, conn: ConnDep, clock: ClockDep, rules: RulesDep, who: Reader
) -> TicketDetail:
    """One ticket."""
    return flows.detail(
        conn, ticket_id=ticket_id, now=clock.now(), warn_at=rules.timing.warn_at, who=who
    )


def _state_route(action: TicketAction, summary: str, description: str) -> None:
    @router.post(
        f"/{{ticket_id}}/{action.value}",
        response_model=TicketDetail,
        summary=summary,
        description=description,
        responses=NOT_FOUND | CONFLICT,
        name=f"{action.value}_ticket",
    )
    def change(
        ticket_id: int,
        body: Note,
        conn: ConnDep,
        clock: ClockDep,
        rules: RulesDep,
        reach: OutreachDep,
        who: Agent,
    ) -> TicketDetail:
        now = clock.now()
        decisions.act(
            conn,
            reach,
            ticket_id=ticket_id,
            action=action,
            actor=who.name,
            now=now,
            note=body.note,
        )
        return flows.detail(
            conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who
        )


_state_route(
    TicketAction.ACKNOWLEDGE,
    "Acknowledge",
    "Take the ticket up: stops its tier's answer clock. Only from 'new'. It is not the first "
    "response: that is the first contact with the customer (POST .../contact).",
)
_state_route(TicketAction.START, "Start work", "Mark the ticket in progress.")
_state_route(TicketAction.CLOSE, "Close", "Archive a resolved ticket.")
_state_route(
    TicketAction.REOPEN,
    "Reopen",
    "The problem is back or was not solved: the ticket is new again and counted as "
    "reopened (it no longer counts as resolved at first contact); the owner is told.",
)


@router.post(
    "/{ticket_id}/resolve",
    response_model=TicketDetail,
    summary="Resolve with a code",
    description=(
        "Resolve an open ticket; the code says how (see ResolutionCode). The owner is told what "
        "was done (the code, and the note) and asked to confirm the fix: a survey link when "
        "FOREWARN_SURVEY_SECRET is set; unanswered after survey_answer_hours, a call-back task."
    ),
    responses=NOT_FOUND | CONFLICT,
)
def resolve(
    ticket_id: int,
    body: Resolve,
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    reach: OutreachDep,
    who: Agent,
) -> TicketDetail:
    """Resolve."""
    now = clock.now()
    decisions.act(
        conn,
        reach,
        ticket_id=ticket_id,
        action=TicketAction.RESOLVE,
        actor=who.name,
        now=now,
        resolution_code=body.code.value,
        note=body.note,
    )
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)


@router.post(
    "/{ticket_id}/assign",
    response_model=TicketDetail,
    summary="Assign",
    description="Give the ticket to someone; noted on the timeline.",
    responses=NOT_FOUND,
)
def assign(
    ticket_id: int, body: Assign, conn: ConnDep, clock: ClockDep, rules: RulesDep, who: Agent
) -> TicketDetail:
    """Assign."""
    now = clock.now()
    staff.assign(conn, ticket_id=ticket_id, assignee=body.assignee, actor=who.name, now=now)
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)


@router.post(
    "/{ticket_id}/comment",
    response_model=TicketDetail,
    summary="Comment",
    description="Add a comment to the timeline.",
    responses=NOT_FOUND,
)
def comment(
    ticket_id: int, body: Comment, conn: ConnDep, clock: ClockDep, rules: RulesDep, who: Agent
) -> TicketDetail:
    """Comment."""
    now = clock.now()
    staff.comment(conn, ticket_id=ticket_id, text=body.text, actor=who.name, now=now)
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)


@router.post(
    "/{ticket_id}/escalate",
    response_model=TicketDetail,
    summary="Escalate",
    description=(
        "Hand an open ticket to the next tier now (L1 → L2 → L3) with that tier's dues; its "
        "team is told. 409 at L3 or when the ticket is not open."
    ),
    responses=NOT_FOUND | CONFLICT,
)
def escalate(
    ticket_id: int,
    body: Escalation,
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    settings: SettingsDep,
    who: Agent,
) -> TicketDetail:
    """Escalate."""
    now = clock.now()
    staff.escalate(
        conn, settings, rules, ticket_id=ticket_id, reason=body.reason, actor=who.name, now=now
    )
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)


@router.post(
    "/{ticket_id}/feedback",
    response_model=TicketDetail,
    summary="Mark false alarm or confirmed",
    description=(
        "Staff's verdict on the prediction. Each incident behind the ticket becomes a 'staff' "
        "fault label that `forewarn train` learns from (a false alarm cancels the episode). "
        "A false alarm also resolves an open ticket with the code false_alarm."
    ),
    responses=NOT_FOUND,
)
def feedback(
    ticket_id: int,
    body: Feedback,
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    reach: OutreachDep,
    who: Agent,
) -> TicketDetail:
    """Feedback."""
    now = clock.now()
    decisions.feedback(
        conn,
        reach,
        ticket_id=ticket_id,
        verdict=body.verdict,
        actor=who.name,
        now=now,
        note=body.note,
    )
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)


@router.post(
    "/{ticket_id}/wait",
    response_model=TicketDetail,
    summary="Ask the owner and wait",
    description=(
        "Send the owner a question through their channels and mark the ticket waiting for "
        "them; their reply (POST /api/v1/inbound/{channel}) puts it back in progress. The "
        "message sent is a contact: the first response if it is the first. From new, "
        "acknowledged or in_progress."
    ),
    responses=NOT_FOUND | CONFLICT,
)
def wait(
    ticket_id: int,
    body: Wait,
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    reach: OutreachDep,
    who: Agent,
) -> TicketDetail:
    """Wait for the owner."""
    now = clock.now()
    decisions.act(
        conn,
        reach,
        ticket_id=ticket_id,
        action=TicketAction.WAIT,
        actor=who.name,
        now=now,
        note=body.request,
    )
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)


@router.post(
    "/{ticket_id}/contact",
    response_model=TicketDetail,
    summary="Message or call the owner",
    description=(
        "A person's contact with the customer, which the standard measures first response "
        "by: 'message' sends the text to the owner's channels now (409 when they have none); "
        "'call' logs a call made. The first contact stamps first_response_at and acknowledges "
        "a new ticket. On a call-back, `survey` records the owner's answers (fixed: false "
        "reopens the ticket); any logged call completes the call-back task."
    ),
    responses=NOT_FOUND | CONFLICT,
)
def contact(
    ticket_id: int,
    body: Contact,
    conn: ConnDep,
    clock: ClockDep,
    rules: RulesDep,
    settings: SettingsDep,
    who: Agent,
) -> TicketDetail:
    """Contact the owner."""
    now = clock.now()
    given = body.survey
    actions.contact(
        conn,
        settings,
        ticket_id=ticket_id,
        how=body.how,
        text=body.text,
        actor=who.name,
        now=now,
        answer=None if given is None else Answer(given.fixed, given.rating, given.comment),
    )
    return flows.detail(conn, ticket_id=ticket_id, now=now, warn_at=rules.timing.warn_at, who=who)
