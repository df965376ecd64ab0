"""The KPI API's response bodies; every field says what it measures (docs/kpis.md in full)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.kpis.types import (
    AgentKpis,
    Average,
    KpiReport,
    KpiSeries,
    Mean,
    Ratio,
    SlaCompliance,
    Target,
)

_PENDING = "In scope but not decided yet at `now`, so left out of the denominator"


class TargetOut(BaseModel):
    """The customer's target for a KPI."""

    value: float = Field(description="The target: a share from 0 to 1, or seconds for a mean")
    direction: Literal["at_most", "at_least"] = Field(
        description="at_most: the KPI must not exceed the target; at_least: must reach it"
    )
    source: str = Field(description="Where the target comes from, quoted")

    @classmethod
    def of(cls, t: Target | None) -> TargetOut | None:
        """The target as the API shows it."""
        return (
            None if t is None else cls(value=t.value, direction=t.direction.value, source=t.source)
        )


class RatioOut(BaseModel):
    """A share: numerator over denominator."""

    value: float | None = Field(
        description="numerator / denominator, from 0 to 1; null when the denominator is 0 "
        "(nothing to measure), never 0 by default"
    )
    numerator: int = Field(description="How many in the denominator count as a success")
    denominator: int = Field(description="How many were measured")
    pending: int = Field(description=_PENDING)
    target: TargetOut | None = Field(description="The customer's target; null when none is set")
    meets_target: bool | None = Field(
        description="Whether value meets the target; null when there is no target or no value"
    )

    @classmethod
    def of(cls, r: Ratio) -> RatioOut:
        """The ratio as the API shows it."""
        return cls(
            value=r.value,
            numerator=r.numerator,
            denominator=r.denominator,
            pending=r.pending,
            target=TargetOut.of(r.target),
            meets_target=r.meets_target,
        )


class MeanOut(BaseModel):
    """A mean duration in seconds."""

    value: float | None = Field(
        description="The mean in seconds (total_seconds / count); null when count is 0"
    )
    total_seconds: float = Field(description="The durations added up")
    count: int = Field(description="How many durations were measured")
    pending: int = Field(description=_PENDING)
    target: TargetOut | None = Field(description="The customer's target; null when none is set")
    meets_target: bool | None = Field(
        description="Whether value meets the target; null when there is no target or no value"
    )

    @classmethod
    def of(cls, m: Mean) -> MeanOut:
        """The mean as the API shows it."""
        return cls(
            value=m.value,
            total_seconds=m.total_seconds,
            count=m.count,
            pending=m.pending,
            target=TargetOut.of(m.target),
            meets_target=m.meets_target,
        )


class AverageOut(BaseModel):
    """A mean score (a rating from 1 to 5)."""

    value: float | None = Field(description="total / count; null when nothing was answered")
    total: float = Field(description="The scores added up")
    count: int = Field(description="How many scores were given")
    pending: int = Field(description=_PENDING)
    target: TargetOut | None = Field(description="The customer's target; null when none is set")
    meets_target: bool | None = Field(
        description="Whether value meets the target; null when there is no target or no value"
    )

    @classmethod
    def of(cls, a: Average) -> AverageOut:
        """The average as the API shows it."""
        return cls(
            value=a.value,
            total=a.total,
            count=a.count,
            pending=a.pending,
            target=TargetOut.of(a.target),
            meets_target=a.meets_target,
        )


class SlaOut(BaseModel):
    """One priority's SLA compliance over tickets opened in the period."""

    priority: Literal["critical", "major", "minor"] = Field(
        description="critical (P1), major (P2) or minor (P3); every priority is listed"
    )
    first_response: RatioOut = Field(
        description="First responses at or before first_response_due, over tickets answered "
        "or past that due at `now`; pending: unanswered and not yet due"
    )
    resolution: RatioOut = Field(
        description="Resolutions at or before resolution_due, over tickets resolved or past "
        "that due at `now`; pending: unresolved and not yet due"
    )

    @classmethod
    def of(cls, s: SlaCompliance) -> SlaOut:
        """One priority as the API shows it."""
        return cls.model_validate(
            {
                "priority": s.priority,
                "first_response": RatioOut.of(s.first_response),
                "resolution": RatioOut.of(s.resolution),
            }
        )


class KpiReportOut(BaseModel):
    """Every support KPI for [since, until), as known at `now`."""

    since: datetime = Field(description="Start of the period (included)")
    until: datetime = Field(description="End of the period (excluded)")
    now: datetime = Field(description="Business time the report was computed at")
    first_response: MeanOut = Field(
        description="Mean time from opened_at to first_response_at (the first contact with the "
        "customer: a person's message or logged call; automatic notices do not count) of "
        "tickets opened in the period and contacted by `now`; pending: not contacted yet"
    )
    first_contact_resolution: RatioOut = Field(
        description="Tickets opened at L1 and resolved in the period by L1 (no escalation, never "
        "reopened), over tickets opened at L1 and resolved in the period (tickets opened at L2 "
        "or L3, false alarms and duplicates left out)"
    )
    time_to_resolve: MeanOut = Field(
        description="Mean time from opened_at to resolved_at of the same resolved tickets"
    )
    sla: list[SlaOut] = Field(description="SLA compliance per priority: critical, major, minor")
    recurrence: RatioOut = Field(
        description="Incidents opened in the period that recur (linked by recurrence_of to an "
        "earlier incident of the same device and fault opened at most 30 days before), over "
        "incidents opened in the period"
    )
    self_service: RatioOut = Field(
        description="Incidents opened in the period and closed by `now` that recovered after "
        "a guide the owner was sent, with no ticket (their own or a fleet's), over those "
        "closed incidents; pending: still open"
    )
    false_alarms: RatioOut = Field(
        description="Tickets opened in the period that staff marked false_alarm, over those "
        "with any feedback; pending: no feedback yet"
    )
    guide_delivery: RatioOut = Field(
        description="Guides queued to owners in the period that were sent, over those that "
        "reached a final state (sent, failed, interrupted); pending: pending or sending"
    )
    satisfaction: AverageOut = Field(
        description="CSAT: the mean rating (1 to 5) of the surveys of resolutions in the period "
        "answered by `now`, on the page or on a call-back; target ≥ 4.5"
    )
    survey_response: RatioOut = Field(
        description="Surveys of resolutions in the period answered by `now`, over those answered "
        "or past their answer time (then a call-back); pending: still inside it"
    )
    confirmed_fix: RatioOut = Field(
        description="Answered surveys whose owner confirmed the fix, over the answered surveys"
    )
    onboarding: RatioOut = Field(
        description="Novice owners (per product kind) whose device first reported in the period "
        "and who were sent that kind's onboarding guide; pending: queued, not sent yet"
    )

    @classmethod
    def of(cls, r: KpiReport) -> KpiReportOut:
        """The report as the API shows it."""
        return cls(
            since=r.since,
            until=r.until,
            now=r.now,
            first_response=MeanOut.of(r.first_response),
            first_contact_resolution=RatioOut.of(r.first_contact_resolution),
            time_to_resolve=MeanOut.of(r.time_to_resolve),
            sla=[SlaOut.of(s) for s in r.sla],
            recurrence=RatioOut.of(r.recurrence),
            self_service=RatioOut.of(r.self_service),
            false_alarms=RatioOut.of(r.false_alarms),
            guide_delivery=RatioOut.of(r.guide_delivery),
            satisfaction=AverageOut.of(r.satisfaction),
            survey_response=RatioOut.of(r.survey_response),
            confirmed_fix=RatioOut.of(r.confirmed_fix),
            onboarding=RatioOut.of(r.onboarding),
        )


class SeriesPointOut(BaseModel):
    """One bucket of the chart series."""

    start: datetime = Field(description="Start of the bucket (UTC hour or day boundary)")
    tickets_opened: int = Field(description="Tickets opened in the bucket")
    tickets_resolved: int = Field(description="Tickets resolved in the bucket (all of them)")
    mean_first_response_seconds: float | None = Field(
        description="Mean first response time of tickets opened in the bucket and answered; "
        "null when none was"
    )
    first_responses: int = Field(description="Tickets opened in the bucket and answered")
    sla_met_share: float | None = Field(
        description="sla_met / sla_known; null when no ticket's SLA outcome is known yet"
    )
    sla_met: int = Field(description="Tickets opened in the bucket that met both dues")
    sla_known: int = Field(
        description="Tickets opened in the bucket that met both dues or breached either"
    )
    guides_sent: int = Field(description="Guides queued to owners in the bucket and sent")


class KpiSeriesOut(BaseModel):
    """The KPIs over time, for charts."""

    since: datetime = Field(description="Start of the period (included)")
    until: datetime = Field(description="End of the period (excluded)")
    bucket: Literal["hour", "day"] = Field(description="Width of the buckets")
    points: list[SeriesPointOut] = Field(
        description="One per bucket overlapping the period, oldest first, empty ones included; "
        "rows outside [since, until) are not counted even where a bucket sticks out"
    )

    @classmethod
    def of(cls, s: KpiSeries) -> KpiSeriesOut:
        """The series as the API shows it."""
        points = [
            SeriesPointOut(
                start=p.start,
                tickets_opened=p.tickets_opened,
                tickets_resolved=p.tickets_resolved,
                mean_first_response_seconds=p.first_response.value,
                first_responses=p.first_response.count,
                sla_met_share=p.sla_met.value,
                sla_met=p.sla_met.numerator,
                sla_known=p.sla_met.denominator,
                guides_sent=p.guides_sent,
            )
            for p in s.points
        ]
        return cls(since=s.since, until=s.until, bucket=s.bucket.value, points=points)


class AgentKpiOut(BaseModel):
    """One agent's figures for the period (standard 5.3: FCR, response time, satisfaction,
    volume), counted as the team's KPIs are, over the tickets the agent is assignee of."""

    agent: str = Field(description="The assignee: the API key's name of who took the ticket up")
    volume: int = Field(description="Tickets the agent resolved in the period")
    first_contact_resolution: RatioOut = Field(
        description="Of their resolved tickets opened at L1, the share never escalated or reopened"
    )
    first_response: MeanOut = Field(
        description="Mean time to first contact of the tickets opened in the period they answered"
    )
    time_to_resolve: MeanOut
    satisfaction: AverageOut = Field(description="Mean survey rating of their resolutions")

    @classmethod
    def of(cls, a: AgentKpis) -> AgentKpiOut:
        """The response item for an agent."""
        return cls(
            agent=a.agent,
            volume=a.volume,
            first_contact_resolution=RatioOut.of(a.first_contact_resolution),
            first_response=MeanOut.of(a.first_response),
            time_to_resolve=MeanOut.of(a.time_to_resolve),
            satisfaction=AverageOut.of(a.satisfaction),
        )


class AgentKpisOut(BaseModel):
    """Every agent with tickets in the period, by name."""

    since: datetime
    until: datetime
    now: datetime = Field(description="Business time the figures were computed at")
    agents: list[AgentKpiOut]
