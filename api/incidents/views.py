"""Routes: /api/v1/incidents, /api/v1/fleet/incidents and /api/v1/fleet/health."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import ClockDep, ConnDep, Reader
from api.incidents import repository
from api.incidents.schemas import Cohort, Counts, FleetHealth, FleetIncident, Incident, IncidentPage
from api.responses import AUTH, NOT_FOUND
from forewarn.errors import NotFoundError

router = APIRouter(tags=["incidents"], responses=AUTH)


@router.get(
    "/api/v1/incidents",
    response_model=IncidentPage,
    summary="List incidents",
    description="Predicted faults per device, newest first; open ones by default.",
)
def list_incidents(
    conn: ConnDep,
    who: Reader,
    open: Annotated[bool, Query(description="Only incidents not closed")] = True,
    state: Annotated[Literal["watching", "guided", "ticketed", "closed"] | None, Query()] = None,
    fault: Annotated[str | None, Query(max_length=100)] = None,
    device_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> IncidentPage:
    """Incidents."""
    total, rows = repository.incidents(
        conn,
        open_only=open,
        fault=fault,
        device_id=device_id,
        state=state,
        limit=limit,
        offset=offset,
    )
    items = [Incident.model_validate(r) for r in rows]
    return IncidentPage(total=total, limit=limit, offset=offset, items=items)


@router.get(
    "/api/v1/incidents/{incident_id}",
    response_model=Incident,
    summary="One incident",
    responses=NOT_FOUND,
)
def get_incident(incident_id: int, conn: ConnDep, who: Reader) -> Incident:
    """One incident."""
    row = repository.incident(conn, incident_id=incident_id)
    if row is None:
        raise NotFoundError(f"no incident {incident_id}")
    return Incident.model_validate(row)


@router.get(
    "/api/v1/fleet/incidents",
    response_model=list[FleetIncident],
    summary="Fleet incidents",
    description="Fleet incidents, newest first: firmware cohorts with one fault, and "
    "outages (fault `outage`: many devices silent together) with their silent devices.",
)
def fleet_incidents(
    conn: ConnDep,
    who: Reader,
    open: Annotated[bool, Query(description="Only open ones")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[FleetIncident]:
    """Fleet incidents."""
    rows = repository.fleet_incidents(conn, open_only=open, limit=limit)
    return [FleetIncident.model_validate(r) for r in rows]


@router.get(
    "/api/v1/fleet/health",
    response_model=FleetHealth,
    summary="Fleet health",
    description="Devices online, offline, at risk and faulty, in all and by model and "
    "firmware, and the open fleet incidents.",
)
def fleet_health(conn: ConnDep, clock: ClockDep, who: Reader) -> FleetHealth:
    """Fleet health."""
    cohorts = [Cohort.model_validate(r) for r in repository.health_by_cohort(conn)]
    fields = ("total", "online", "offline", "at_risk", "faulty")
    totals = Counts(**{f: sum(getattr(c, f) for c in cohorts) for f in fields})
    fleet = [
        FleetIncident.model_validate(r)
        for r in repository.fleet_incidents(conn, open_only=True, limit=100)
    ]
    return FleetHealth(now=clock.now(), devices=totals, by_cohort=cohorts, fleet_incidents=fleet)
