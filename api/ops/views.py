"""Routes: /healthz (open, for load balancers: no internals) and /metrics (a bearer token, or
this host only; for Prometheus)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from api.deps import ClockDep, ConnDep, SettingsDep, client_address, connection
from api.ops import repository
from api.ops.metrics import ApiMetrics
from forewarn.errors import AuthError, ForbiddenError

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


def _scraper(request: Request, settings: SettingsDep) -> None:
    """The bearer token when one is configured; otherwise a loopback client."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise AuthError("/metrics needs Authorization: Bearer <FOREWARN_METRICS_TOKEN>")
        return
    try:
        loopback = ipaddress.ip_address(client_address(request)).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ForbiddenError(
            "/metrics answers this host only; set FOREWARN_METRICS_TOKEN to scrape from elsewhere"
        )


Scraper = Annotated[None, Depends(_scraper)]


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
async def healthz(request: Request, clock: ClockDep) -> Response:
    """Whether the database answers."""
    now = clock.now().isoformat()
    try:
        async with connection(request) as conn:
            version = await anyio.to_thread.run_sync(repository.ping, conn)
    except Exception as exc:  # any failure to reach the database means "unavailable"
        # The reason names hosts and users: it goes to the log, not to whoever asks.
        log.warning("health check: the database does not answer (%s)", exc)
        body = Health(status="unavailable", schema_version=0, now=now)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", schema_version=version, now=now).model_dump())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Request counts and latency by route; devices by status, open tickets by priority, "
        "breached tickets, the outbox by status and dead letters, read from the database; "
        "and the ingester's counters when it runs in this process (`forewarn demo`). "
        "With FOREWARN_METRICS_TOKEN set it needs `Authorization: Bearer <token>`; unset, "
        "it answers clients on this host (loopback) only."
    ),
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text format"},
        401: {"description": "Missing or wrong bearer token"},
        403: {"description": "No token is configured and the client is not on this host"},
    },
)
def metrics(request: Request, allowed: Scraper, conn: ConnDep) -> Response:
    """Every metric in the Prometheus text format (the scraper is checked before a connection
    is taken)."""
    registry: ApiMetrics = request.app.state.metrics
    registry.set_state(repository.state(conn))
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
