"""The rule API's request and response bodies.

Durations are written as rule files write them (``30m``, ``6h``, ``1h30m``, ``30d``), so what
the API shows can be pasted back into a rule set.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# A rule set is a few kilobytes; the cap keeps a request from making the parser work for long.
MAX_YAML = 100_000
# PostgreSQL text cannot hold NUL: refused here as a 422 rather than failing in the query.
NO_NUL = r"^[^\x00]*$"


class RuleBody(BaseModel):
    """One rule, in matching order: the first rule that matches a prediction decides it."""

    position: int = Field(description="1 for the rule tried first")
    name: str
    action: str = Field(description="ignore, guide, guide_then_ticket or ticket")
    faults: list[str] = Field(description="Faults it matches; empty: every fault")
    segments: list[str] = Field(description="Owner segments it matches; empty: every segment")
    min_probability: float = Field(description="Matches predictions at least this likely")
    priority: str = Field(description="The ticket's priority: critical, major or minor")
    priority_label: str = Field(description="P1, P2 or P3")
    tier: str = Field(description="The tier the ticket goes to first: L1, L2 or L3")
    team: str = Field(description="That tier's support team")
    wait: str | None = Field(
        description="guide_then_ticket only: how long the guide gets before a ticket opens"
    )
    notify_owner: bool = Field(description="ticket only: also warn the owner")
    line: int = Field(description="The line the rule starts on in its file")


class SlaBody(BaseModel):
    """The targets of one priority."""

    priority: str
    label: str = Field(description="P1, P2 or P3")
    first_response: str
    resolution: str


class TierBody(BaseModel):
    """How soon a tier takes a ticket up, how long it has before handing it on, and which
    priorities start at it."""

    tier: str
    team: str
    respond: str | None = Field(
        description="Within this of the hand-over; None (L1): the priority's first response"
    )
    solve: str = Field(description="The tier's own time: unsolved by then, it is handed on")
    takes: list[str] = Field(description="Priorities that may start at this tier")


class HolidayBody(BaseModel):
    """An announced holiday: whole local days, from and to inclusive."""

    name: str
    first: str = Field(description="YYYY-MM-DD")
    last: str = Field(description="YYYY-MM-DD")


class CalendarBody(BaseModel):
    """Holidays during which the clocks of the paused priorities stand still."""

    timezone: str
    pause: list[str] = Field(description="Priorities whose dues move past holidays")
    holidays: list[HolidayBody]


class FleetStep(BaseModel):
    """A fleet incident with at least this many devices gets this priority."""

    devices: int
    priority: str


class FleetBody(BaseModel):
    """When devices of one model and firmware with one fault become one fleet incident."""

    min_devices: int
    window: str
    steps: list[FleetStep]


class TimingBody(BaseModel):
    """Windows every rule shares, and how owners are put in segments."""

    cooldown: str = Field(description="Before the same owner is told about something again")
    clear_after: str = Field(description="Clean telemetry this long counts as recovered")
    recurrence_window: str
    warn_at: float = Field(description="Share of a due's time after which staff are warned")
    enterprise_first_response: str
    novice_days: int = Field(description="Owned this many days or fewer: novice")
    senior_days: int = Field(description="Owned this many days or more: senior")


class RuleSetBody(BaseModel):
    """A rule set: its rules in matching order, SLA table, tiers, fleet policy and timing."""

    source: str = Field(description="The file it was loaded from (or what named the text)")
    yaml: str | None = Field(
        description="The file's text as it is on disk now; None if it cannot be read"
    )
    yaml_matches: bool = Field(
        description="Whether that text still loads into the rule set the service runs (false "
        "once the file has been edited since start: a restart applies it)"
    )
    rules: list[RuleBody]
    sla: list[SlaBody] = Field(description="critical (P1), major (P2), minor (P3)")
    tiers: list[TierBody] = Field(description="L1, L2 and L3, each with its own times")
    calendar: CalendarBody
    fleet: FleetBody
    timing: TimingBody


class YamlText(BaseModel):
    """A rule set as YAML text."""

    yaml: str = Field(max_length=MAX_YAML, description="The rule file's text (docs/rules.md)")
    source: str = Field(
        default="request.yaml",
        min_length=1,
        max_length=200,
        description="The name error messages give the text (messages read '<source>:<line>: ...')",
    )


class Problem(BaseModel):
    """What the loader found wrong."""

    message: str = Field(description="The loader's message: '<source>:<line>: <problem>'")
    line: int | None = Field(description="The line it names")


class Validation(BaseModel):
    """Whether a rule set loads, why not, and its rules when it does."""

    valid: bool
    errors: list[Problem] = Field(
        description="Empty when valid; the loader stops at the first problem, so at most one"
    )
    rules: list[RuleBody] = Field(description="The rules in matching order (empty if invalid)")


class DryRunRequest(BaseModel):
    """Which device's predictions to replay, over how long, through which rule set."""

    device_id: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    hours: int = Field(default=24, ge=1, le=168, description="How far back, in business hours")
    yaml: str | None = Field(
        default=None,
        max_length=MAX_YAML,
        description="A rule set to try instead of the running one (None: the running one)",
    )
    source: str = Field(
        default="request.yaml",
        min_length=1,
        max_length=200,
        description="Names `yaml` in error messages",
    )


class GuidePlan(BaseModel):
    """The guide the owner would be sent."""

    send_at: datetime = Field(description="Now, or the end of the owner's quiet hours")
    quiet_deferred: bool = Field(description="Held back by the owner's quiet hours")
    urgent: bool = Field(description="Critical: sent at once, quiet hours or not")
    onboarding: bool = Field(description="A novice also gets the product's onboarding guide")


class TicketPlan(BaseModel):
    """The ticket support would get."""

    priority: str
    priority_label: str = Field(description="P1, P2 or P3")
    tier: str
    team: str
    guide_sent: bool = Field(description="Whether a guide went to the owner first")
    first_response_due: datetime
    resolution_due: datetime
    tier_respond_due: datetime
    tier_solve_due: datetime


class DryRunStep(BaseModel):
    """One stored prediction and what the rule set decides about it."""

    at: datetime = Field(description="The reading time the prediction describes")
    fault: str
    probability: float
    hours_to_empty: float | None
    reasons: list[str]
    model_version: int | None
    verdict: str = Field(
        description="nothing; open (an incident, with a guide and/or a ticket); or track (an "
        "incident this replay opened for the fault is still open)"
    )
    why: str = Field(description="The decision's reason, in words")
    rule: str | None = Field(description="The rule that decided it")
    action: str | None = Field(description="That rule's action")
    segment: str | None = Field(description="The owner's segment at that time")
    state: str | None = Field(description="The incident's state afterwards")
    guide: GuidePlan | None
    ticket: TicketPlan | None = Field(description="A ticket opened at once")
    ticket_due_at: datetime | None = Field(
        description="guide_then_ticket: when a ticket opens if the device has not recovered"
    )
    then_ticket: TicketPlan | None = Field(
        description="guide_then_ticket: the ticket that would open at ticket_due_at"
    )


class DryRun(BaseModel):
    """A device's recent predictions replayed through a rule set; nothing written or sent."""

    device_id: str
    owner_id: str | None
    has_targets: bool = Field(description="Whether the owner has somewhere to send guides")
    rules_source: str = Field(description="The rule set used: its file, or the request's name")
    since: datetime
    until: datetime = Field(description="Business time now")
    predictions: int
    verdicts: dict[str, int] = Field(description="How many steps got each verdict")
    steps: list[DryRunStep] = Field(description="Oldest prediction first")
