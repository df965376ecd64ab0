"""Routes: /api/v1/devices (list, detail, telemetry) and /api/v1/predictions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import ClockDep, ConnDep, Reader
from api.devices import repository
from api.devices.repository import DeviceFilter
from api.devices.schemas import (
    DeviceDetail,
    DeviceItem,
    DevicePage,
    OpenIncident,
    Point,
    PredictionItem,
    Reading,
    Telemetry,
)
from api.responses import AUTH, INVALID, NOT_FOUND
from forewarn.errors import ConfigError, NotFoundError

router = APIRouter(tags=["devices"], responses=AUTH)

MAX_SPAN = timedelta(days=31)
MAX_POINTS = 5000
# Chart buckets are rounded up to one of these so charts line up across devices and pages.
NICE_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
AUTO_POINTS = 300

Health = Literal["faulty", "at_risk", "online", "offline", "unknown"]
Text = Annotated[str | None, Query(max_length=200)]


@router.get(
    "/api/v1/devices",
    response_model=DevicePage,
    summary="List devices",
    description="Devices by id, narrowed by model, firmware, kind, owner, health, or a "
    "part of the device id (q).",
)
def list_devices(
    conn: ConnDep,
    who: Reader,
    model: Text = None,
    firmware: Text = None,
    kind: Text = None,
    owner_id: Text = None,
    health: Annotated[Health | None, Query()] = None,
    q: Text = None,
    sort: Annotated[
        Literal["id", "health"],
        Query(description="id (default), or health: faulty, at risk, offline first"),
    ] = "id",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DevicePage:
    """Devices."""
    where = DeviceFilter(model, firmware, kind, owner_id, health, q)
    total, rows = repository.devices(conn, where=where, sort=sort, limit=limit, offset=offset)
    items = [DeviceItem.model_validate(r) for r in rows]
    return DevicePage(total=total, limit=limit, offset=offset, items=items)


@router.get(
    "/api/v1/devices/{device_id}",
    response_model=DeviceDetail,
    summary="One device",
    description="The device, its owner, its latest reading and its open predicted faults.",
    responses=NOT_FOUND,
)
def get_device(device_id: str, conn: ConnDep, who: Reader) -> DeviceDetail:
    """One device."""
    row = repository.device(conn, device_id=device_id)
    if row is None:
        raise NotFoundError(f"no device {device_id!r}")
    latest = repository.latest_reading(conn, device_id=device_id)
    incidents = repository.open_incidents(conn, device_id=device_id)
    return DeviceDetail.model_validate(
        row
        | {
            "latest": None if latest is None else Reading.model_validate(latest),
            "incidents": [OpenIncident.model_validate(i) for i in incidents],
        }
    )


def bucket_for(span: timedelta, asked: int | None) -> int:
    """The bucket size: as asked, or the smallest nice size giving at most AUTO_POINTS."""
    if asked is not None:
        if span.total_seconds() / asked > MAX_POINTS:
            raise ConfigError(
                f"{asked} s buckets over {span} give more than {MAX_POINTS} points; "
                "ask for larger buckets or a shorter range"
            )
        return asked
    wanted = math.ceil(span.total_seconds() / AUTO_POINTS)
    return next((b for b in NICE_BUCKETS if b >= wanted), NICE_BUCKETS[-1])


@router.get(
    "/api/v1/devices/{device_id}/telemetry",
    response_model=Telemetry,
    summary="Telemetry over a time range",
    description=(
        "The device's readings in [since, until) in buckets of `bucket` seconds: means, and "
        "the extremes a chart needs (lowest battery, hottest temperature). Defaults: the last "
        f"24 h, buckets sized for about {AUTO_POINTS} points. At most 31 days and "
        f"{MAX_POINTS} points."
    ),
    responses=NOT_FOUND | INVALID,
)
def telemetry(
    device_id: str,
    conn: ConnDep,
    clock: ClockDep,
    who: Reader,
    since: Annotated[
        datetime | None, Query(description="Start (ISO 8601); default until-24h")
    ] = None,
    until: Annotated[datetime | None, Query(description="End (ISO 8601); default now")] = None,
    bucket: Annotated[int | None, Query(ge=1, le=86400, description="Seconds")] = None,
) -> Telemetry:
    """Bucketed telemetry."""
    end = _aware(until) if until else clock.now()
    start = _aware(since) if since else end - timedelta(hours=24)
    if start >= end:
        raise ConfigError("since must be before until")
    if end - start > MAX_SPAN:
        raise ConfigError(f"at most {MAX_SPAN.days} days at a time")
    size = bucket_for(end - start, bucket)
    if repository.device(conn, device_id=device_id) is None:
        raise NotFoundError(f"no device {device_id!r}")
    rows = repository.telemetry(
        conn, device_id=device_id, since=start, until=end, bucket_seconds=size
    )
    return Telemetry(
        device_id=device_id,
        since=start,
        until=end,
        bucket_seconds=size,
        points=[Point.model_validate(r) for r in rows],
    )


@router.get(
    "/api/v1/predictions",
    response_model=list[PredictionItem],
    summary="Predictions",
    description="Prediction windows, newest first, narrowed by device, fault, a lowest "
    "probability and a start time.",
)
def predictions(
    conn: ConnDep,
    who: Reader,
    device_id: Text = None,
    fault: Text = None,
    min_probability: Annotated[float, Query(ge=0, le=1)] = 0.0,
    since: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PredictionItem]:
    """Predictions."""
    rows = repository.predictions(
        conn,
        device_id=device_id,
        fault=fault,
        min_probability=min_probability,
        since=_aware(since) if since else None,
        limit=limit,
    )
    return [PredictionItem.model_validate(r) for r in rows]


def _aware(value: datetime) -> datetime:
    """Times without a zone are taken as UTC, as the API documents."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
