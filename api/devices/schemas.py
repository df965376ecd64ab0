"""The device API's response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DeviceItem(BaseModel):
    """A device as lists show it."""

    device_id: str
    model: str | None
    kind: str | None = Field(description="lock, aircon, watch, camera...")
    serial: str | None
    firmware: str | None
    owner_id: str | None
    activated_at: datetime | None = Field(description="When it was installed (registry)")
    state: str = Field(description="provisioned, active, suspended or decommissioned")
    first_seen: datetime | None = Field(description="When the ingester first received from it")
    last_seen: datetime | None = Field(
        description="When the ingester last received a reading from it (never the device's clock)"
    )
    online: bool | None
    status_at: datetime | None
    health: str = Field(
        description="faulty (a ticket about it, or about an outage it is silent in, is open), "
        "at_risk (a predicted fault is open "
        "without a ticket), online, offline or unknown"
    )


class DevicePage(BaseModel):
    """One page of devices."""

    total: int
    limit: int
    offset: int
    items: list[DeviceItem]


class Reading(BaseModel):
    """One stored reading."""

    ts: datetime
    firmware: str | None
    signal_dbm: float | None
    link_quality: float | None
    battery_pct: float | None
    battery_v: float | None
    temperature_c: float | None
    uptime_s: int | None
    reconnects: int | None
    error_codes: list[str]


class OpenIncident(BaseModel):
    """A predicted fault still open on the device."""

    incident_id: int
    fault: str
    state: str
    opened_at: datetime
    probability: float
    ticket_id: int | None


class DeviceDetail(DeviceItem):
    """One device, its owner, its latest reading and open incidents."""

    owner_name: str | None
    locale: str | None
    time_zone: str | None
    account_type: str | None = Field(description="consumer or enterprise")
    enterprise_account: str | None
    latest: Reading | None
    incidents: list[OpenIncident]


class Point(BaseModel):
    """One bucket of a telemetry chart."""

    t: datetime = Field(description="Start of the bucket")
    readings: int
    signal_dbm: float | None = Field(description="Mean")
    link_quality: float | None = Field(description="Mean")
    battery_pct: float | None = Field(description="Lowest")
    battery_v: float | None = Field(description="Lowest")
    temperature_c: float | None = Field(description="Mean")
    temperature_max: float | None = Field(description="Highest")
    reconnects: int | None = Field(description="Highest counter value")
    uptime_s: int | None = Field(description="Lowest (a drop means a reboot)")


class Telemetry(BaseModel):
    """A device's telemetry over a time range, bucketed."""

    device_id: str
    since: datetime
    until: datetime
    bucket_seconds: int
    points: list[Point]


class PredictionItem(BaseModel):
    """One prediction window of one fault on one device."""

    device_id: str
    fault: str
    window_start: datetime
    probability: float = Field(description="The latest score in the window")
    max_probability: float
    horizon_h: float = Field(description="How far ahead the model looks")
    hours_to_empty: float | None = Field(description="Battery only: estimated hours left")
    reasons: list[str] = Field(description="Why, in plain words")
    model_version: int | None = Field(
        description="The trained model version that predicted it; null: a label-free detector"
    )
    first_at: datetime
    last_at: datetime
    updates: int
