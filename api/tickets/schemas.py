"""The ticket API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from notifier.surveys.types import MAX_COMMENT
from notifier.tickets.types import ContactHow, Priority, ResolutionCode, TicketType, Tier, Verdict

# PostgreSQL text cannot hold NUL: refused here as a 422 rather than failing in the query.
NO_NUL = r"^[^\x00]*$"

Urgency = Literal["ok", "near", "breached", "done", "callback"]


class TicketItem(BaseModel):
    """A ticket as the queue shows it."""

    ticket_id: int
    kind: str = Field(
        description="'device' (one device), 'fleet' (a firmware cohort), 'owner' (opened by "
        "an owner's message) or 'staff' (made by an agent or an integration)"
    )
    ticket_type: str = Field(description="fault, question, complaint or warranty")
    urgent: bool = Field(description="Marked urgent (every complaint is)")
    device_id: str | None
    model: str | None
    firmware: str | None
    fault: str = Field(
        description="The predicted fault ('owner_message' for owner tickets, the ticket type "
        "for staff-made ones)"
    )
    symptom: str = Field(description="Symptom (现象), in English when Forewarn wrote it")
    phrasing: dict[str, Any] = Field(
        description="The symptom and trigger Forewarn wrote, as codes and values for each "
        "language to say ({'symptom': {'code': 'predicted', 'fault', 'hours', 'probability'}, "
        "'trigger': {'code': 'prediction', ...}}); empty where a person wrote them"
    )
    customer_id: str | None
    segment: str | None = Field(description="novice, regular, senior or enterprise")
    priority: str = Field(description="critical (P1), major (P2) or minor (P3)")
    tier: str = Field(description="L1, L2 or L3")
    opened_tier: str = Field(description="The tier it opened at (FCR counts those opened at L1)")
    team: str
    state: str = Field(
        description="new, acknowledged, in_progress, waiting (for the owner), resolved or closed"
    )
    assignee: str | None
    opened_at: datetime
    guide_sent: bool = Field(description="Whether a self-help guide went to the owner first")
    escalations: int
    reopened: int
    parent_ticket_id: int | None = Field(description="The fleet ticket this one is part of")
    recurrence_of: int | None = Field(description="An earlier ticket for the same problem")
    feedback: str | None = Field(description="Staff's verdict: confirmed or false_alarm")
    first_response_due: datetime = Field(description="SLA first-response due")
    resolution_due: datetime = Field(description="SLA resolution due")
    first_response_at: datetime | None = Field(
        description="The first contact with the customer: a person's message or logged call"
    )
    resolved_at: datetime | None
    callback_due_at: datetime | None = Field(
        description="The survey went unanswered: an agent is to call the owner (since then)"
    )
    callback_done_at: datetime | None = Field(description="The call-back was logged")
    feedback_due: datetime | None = Field(
        description="Complaints: the corrective action told to the customer by then (24 h)"
    )
    follow_up_due: datetime | None = Field(
        description="Complaints: the customer called back to confirm by then (7 days)"
    )
    due_at: datetime | None = Field(
        description="The due the ticket works to now: its tier's answer due until "
        "acknowledged, then its solve due. None once resolved."
    )
    due_kind: str | None = Field(
        description="'respond' or 'solve'; 'callback' for a resolved ticket whose owner is to "
        "be called back"
    )
    seconds_left: float | None = Field(description="Until due_at on the business clock")
    urgency: Urgency = Field(
        description="'breached' past due_at; 'near' once the breach-warning share of the time "
        "to due_at has passed; 'ok' before; 'done' when resolved or closed; 'callback' when "
        "resolved with a call-back due"
    )


class TicketPage(BaseModel):
    """One page of the queue."""

    now: datetime = Field(description="Business time the urgencies were computed at")
    total: int = Field(description="Tickets matching the filters")
    limit: int
    offset: int
    items: list[TicketItem]


class TicketEvent(BaseModel):
    """One entry of a ticket's timeline."""

    event_id: int
    at: datetime
    kind: str = Field(description="opened, acknowledge, escalated, breach_warning, comment...")
    actor: str
    detail: dict[str, Any]


class GuideSent(BaseModel):
    """A guide queued for the owner, and what became of it."""

    notification_id: int
    guide_id: str
    locale: str | None
    title: str
    status: str = Field(description="pending, sending, sent, failed, interrupted or cancelled")
    created_at: datetime
    not_before: datetime = Field(description="Held until then (the owner's quiet hours)")
    sent_at: datetime | None
    attempts: int
    last_error: str | None


class Prediction(BaseModel):
    """The incident behind a device ticket: what the model predicted and why."""

    incident_id: int
    state: str
    rule: str
    opened_at: datetime
    last_predicted_at: datetime
    probability: float
    max_probability: float
    hours_to_empty: float | None
    reasons: list[str] = Field(description="The model's reasons, in plain words")
    model_version: int | None
    guide_id: str | None
    guide_sent_at: datetime | None
    recovered_at: datetime | None
    outcome: str | None


class SurveyOut(BaseModel):
    """The ticket's newest survey: asked at the resolution, answered or called back."""

    survey_id: int
    linked: bool = Field(description="A link went to the owner (else only the call-back asks)")
    created_at: datetime
    answer_by: datetime = Field(description="Unanswered then: a call-back task")
    expires_at: datetime
    answered_at: datetime | None
    answered_via: str | None = Field(description="'survey' (the page) or 'call'")
    answered_by: str | None = Field(description="The agent who took it on a call")
    fixed: bool | None = Field(description="The owner confirms the fix")
    rating: int | None = Field(description="1 to 5")
    comment: str | None
    callback_at: datetime | None
    cancelled_at: datetime | None = Field(description="The ticket was reopened first")


class NoticeOut(BaseModel):
    """Something Forewarn or a person told the owner about the ticket, and its delivery."""

    notification_id: int
    notice: str | None = Field(
        description="ticket_opened, ticket_handed_over, ticket_waiting, ticket_resolved, "
        "ticket_reopened or staff_message"
    )
    locale: str | None
    title: str
    body: str
    status: str
    created_at: datetime
    not_before: datetime = Field(description="Held until then (the owner's quiet hours)")
    sent_at: datetime | None
    attempts: int
    last_error: str | None


class TicketDetail(TicketItem):
    """Everything about one ticket."""

    now: datetime = Field(description="Business time seconds_left and urgency were computed at")
    trigger: str = Field(description="Trigger (触发条件): what set the problem off")
    scope: str = Field(description="Scope (影响范围): who or what is affected")
    contact: str | None
    contact_person: str | None = Field(description="The customer's contact person")
    department: str | None = Field(description="The contact person's department")
    created_by: str | None = Field(description="The agent or integration that made the ticket")
    channel: str | None = Field(description="How a staff-made ticket came in")
    evidence: dict[str, Any] = Field(
        description="At opening: the prediction, its reasons, the guides sent and the last "
        "hours of telemetry"
    )
    resolution_code: str | None
    closed_at: datetime | None
    recovery_suggested_at: datetime | None
    recurrences: int
    prediction: Prediction | None
    guides: list[GuideSent]
    children: list[int] = Field(description="Device tickets under this fleet ticket")
    survey: SurveyOut | None
    notices: list[NoticeOut] = Field(description="What the owner was told, oldest first")
    timeline: list[TicketEvent]


class Note(BaseModel):
    """An optional note kept on the timeline."""

    note: str | None = Field(default=None, max_length=2000)


class Resolve(Note):
    """Resolve with a code."""

    code: ResolutionCode = Field(description="How it was resolved")


class Assign(BaseModel):
    """Who takes the ticket."""

    assignee: str = Field(min_length=1, max_length=200)


class Comment(BaseModel):
    """A comment for the timeline."""

    text: str = Field(min_length=1, max_length=5000)


class Escalation(BaseModel):
    """Why the ticket goes to the next tier."""

    reason: str = Field(default="", max_length=2000)


class Feedback(Note):
    """Staff's verdict on the prediction."""

    verdict: Verdict = Field(
        description="confirmed or false_alarm; becomes a training label ('staff') for "
        "`forewarn train`; false_alarm also resolves an open ticket"
    )


class Wait(BaseModel):
    """What staff need from the owner; it is sent to them, and the ticket waits for the reply."""

    request: str = Field(min_length=1, max_length=2000)


class SurveyAnswerIn(BaseModel):
    """A survey's answers, as the owner gave them."""

    fixed: bool = Field(description="Is the problem really fixed? false reopens the ticket")
    rating: int = Field(ge=1, le=5, description="How we did, 1 to 5")
    comment: str = Field(default="", max_length=MAX_COMMENT)


class Contact(BaseModel):
    """A person's contact with the owner: the ticket's first response if it is the first."""

    how: ContactHow = Field(
        description="'message': sent now through the owner's channels; 'call': a call made, "
        "logged here"
    )
    text: str = Field(min_length=1, max_length=5000, description="The message, or call notes")
    survey: SurveyAnswerIn | None = Field(
        default=None,
        description="On a call-back: the survey's answers the owner gave on the phone",
    )


class NewTicket(BaseModel):
    """A ticket a person makes: an owner's call or message, a complaint, a warranty question.
    The standard's intake (3.1): the customer (owner or device), contact person and
    department; the problem (symptom, trigger, scope); the priority."""

    owner_id: str | None = Field(default=None, min_length=1, max_length=128)
    device_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The device it is about; its owner is the ticket's customer",
    )
    type: TicketType = Field(
        description="fault, question, complaint or warranty. A complaint is marked urgent and "
        "gets the complaint clock: contact within 30 minutes (the first-response due), "
        "feedback within 24 hours, follow-up within 7 days"
    )
    priority: Priority = Field(
        default=Priority.MINOR, description="critical (P1), major (P2) or minor (P3)"
    )
    tier: Tier | None = Field(
        default=None,
        description="Where it starts; left out: the first tier whose `takes` holds the "
        "priority (L1 for P2 and P3, L3 for P1). 409 if that tier does not take it",
    )
    symptom: str = Field(
        min_length=1, max_length=2000, pattern=NO_NUL, description="Symptom (现象)"
    )
    trigger: str | None = Field(
        default=None, max_length=2000, pattern=NO_NUL, description="Trigger (触发条件)"
    )
    scope: str | None = Field(
        default=None, max_length=500, pattern=NO_NUL, description="Scope (影响范围)"
    )
    contact_person: str | None = Field(
        default=None,
        max_length=200,
        pattern=NO_NUL,
        description="Left out: the owner's recorded contact person",
    )
    department: str | None = Field(
        default=None,
        max_length=200,
        pattern=NO_NUL,
        description="Left out: the owner's recorded department",
    )
    channel: Literal["phone", "email", "form", "chat", "other"] = Field(
        default="phone", description="How the problem came in"
    )

    @model_validator(mode="after")
    def _someone(self) -> NewTicket:
        if self.owner_id is None and self.device_id is None:
            raise ValueError("a ticket needs an owner_id or a device_id")
        return self
