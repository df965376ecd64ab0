"""The incident and fleet API's response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Incident(BaseModel):
    """One device's predicted fault from first prediction to recovery or closure."""

    incident_id: int
    device_id: str
    fault: str
    owner_id: str | None
    segment: str
    rule: str = Field(description="The rule that decided what to do")
    state: str = Field(description="watching, guided, ticketed or closed")
    opened_at: datetime
    last_predicted_at: datetime
    probability: float
    max_probability: float
    hours_to_empty: float | None
    reasons: list[str]
    model_version: int | None
    guide_id: str | None
    guide_sent_at: datetime | None
    ticket_due_at: datetime | None = Field(description="A ticket opens then if not recovered")
    ticket_id: int | None
    fleet_incident_id: int | None
    recurrence_of: int | None
    recovered_at: datetime | None
    closed_at: datetime | None
    outcome: str | None = Field(
        description="recovered_after_guide, recovered, ticket_closed or withdrawn"
    )


class IncidentPage(BaseModel):
    """One page of incidents."""

    total: int
    limit: int
    offset: int
    items: list[Incident]


class FleetIncident(BaseModel):
    """Many devices with one fault: one incident, one L3 ticket. Either a firmware cohort
    (one model and firmware) or, with fault `outage`, many devices falling silent together
    (a gateway, a network), whatever their model."""

    fleet_incident_id: int
    model: str | None = Field(description="The cohort's model (none for an outage)")
    firmware: str | None = Field(description="The cohort's firmware (none for an outage)")
    fault: str = Field(description="The cohort's fault, or `outage`")
    opened_at: datetime
    closed_at: datetime | None
    devices: int = Field(description="Devices that have been in it")
    priority: str
    ticket_id: int | None
    reason: str | None = Field(
        None,
        description="An outage in plain words: how many devices, since when, and what they "
        "share (model, owner account, time zone) when the data says",
    )
    silent: list[str] = Field(
        default_factory=list,
        description="An outage's devices still silent (each leaves it when it reports again)",
    )


class Counts(BaseModel):
    """Devices by health."""

    total: int
    online: int
    offline: int
    at_risk: int = Field(description="A predicted fault is open without a ticket")
    faulty: int = Field(description="A ticket about the device (its own, or its outage's) is open")


class Cohort(Counts):
    """One model and firmware."""

    model: str
    firmware: str
    kind: str | None


class FleetHealth(BaseModel):
    """The fleet at a glance, for team leads."""

    now: datetime
    devices: Counts
    by_cohort: list[Cohort]
    fleet_incidents: list[FleetIncident] = Field(description="Open fleet incidents")
