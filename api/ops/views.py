"""Routes: /healthz and /metrics, open without a key (for load balancers and Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from api.deps import ClockDep, Conn, ConnDep
from api.ops import repository
from api.ops.metrics import ApiMetrics

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """Whether the API can serve."""

    status: str = Field(description="'ok', or 'unavailable' when the database does not answer")
    schema_version: int = Field(description="The database's schema version (0 if unknown)")
    now: str = Field(description="Business time as this service reads it (ISO 8601)")


@router.get(
    "/healthz",
    response_model=Health,
    summary="Health check",
    description="200 when the database answers, 503 otherwise. Needs no API key.",
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
def healthz(request: Request, clock: ClockDep) -> Response:
    """Whether the database answers."""
    pool: ConnectionPool[Conn] = request.app.state.pool
    now = clock.now().isoformat()
    try:
        with pool.connection(timeout=5) as conn:
            version = repository.ping(conn)
    except Exception as exc:  # any failure to reach the database means "unavailable"
        body = Health(status="unavailable", schema_version=0, now=now)
        return JSONResponse(body.model_dump() | {"detail": str(exc)}, status_code=503)
    return JSONResponse(Health(status="ok", schema_version=version, now=now).model_dump())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Request counts and latency by route; devices by status, open tickets by priority, "
        "breached tickets, the outbox by status and dead letters, read from the database; "
        "and the ingester's counters when it runs in this process (`forewarn demo`). "
        "Needs no API key."
    ),
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text format"}},
)
def metrics(request: Request, conn: ConnDep) -> Response:
    """Every metric in the Prometheus text format."""
    registry: ApiMetrics = request.app.state.metrics
    registry.set_state(repository.state(conn))
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
