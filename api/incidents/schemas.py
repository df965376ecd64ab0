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
    """Many devices of one model and firmware with one fault: one incident, one L3 ticket."""

    fleet_incident_id: int
    model: str
    firmware: str
    fault: str
    opened_at: datetime
    closed_at: datetime | None
    devices: int
    priority: str
    ticket_id: int | None


class Counts(BaseModel):
    """Devices by health."""

    total: int
    online: int
    offline: int
    at_risk: int = Field(description="A predicted fault is open without a ticket")
    faulty: int = Field(description="A ticket about the device is open")


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
