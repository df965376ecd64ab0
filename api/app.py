"""The FastAPI application: routes, error mapping, metrics and the console's static files.

``create_app`` is the one way to build it; ``forewarn api`` and ``forewarn demo`` serve it
with uvicorn, tests drive it with TestClient.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from api import __doc__ as api_doc
from api.audits.views import router as audits
from api.deps import KEYED
from api.devices.views import router as devices
from api.guides.views import router as guides
from api.inbound.views import router as inbound
from api.incidents.views import router as incidents
from api.keys.guard import KeyGuard
from api.keys.views import router as keys
from api.kpis.views import router as kpis
from api.notifications.views import router as notifications
from api.ops.metrics import ApiMetrics
from api.ops.views import router as ops
from api.registry.views import router as registry
from api.responses import INVALID
from api.rules.views import router as rules
from api.security import SecurityHeaders, add_docs
from api.surveys.views import router as surveys
from api.tickets.views import router as tickets
from forewarn.clock import Clock, SystemClock
from forewarn.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    ForewarnError,
    NotFoundError,
    RecordError,
    SignatureError,
    StorageError,
    ThrottledError,
    TicketError,
)
from forewarn.settings import Settings
from forewarn.vault import install as install_vault
from rules.loader import load_rules

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"

# Most specific first: ForbiddenError is an AuthError, RuleError a ConfigError.
_STATUS: tuple[tuple[type[ForewarnError], int], ...] = (
    (ThrottledError, 429),
    (ForbiddenError, 403),
    (AuthError, 401),
    (NotFoundError, 404),
    (ExpiredError, 410),
    (TicketError, 409),
    (ConflictError, 409),
    (ConfigError, 422),
    (RecordError, 422),
    (StorageError, 503),
)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    registries: Sequence[CollectorRegistry] = (),
) -> FastAPI:
    """The API for `settings`' database, telling business time by `clock` (the wall clock by
    default) and exposing `registries` (an in-process ingester's, say) on /metrics."""
    if settings.database_url is None:
        raise ConfigError("the API needs a database (set FOREWARN_DATABASE_URL)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ConnectionPool(
            settings.database_url or "",
            min_size=1,
            max_size=settings.api_pool_size,
            timeout=settings.api_pool_timeout_seconds,
            open=False,
            kwargs={"connect_timeout": 10},
        ) as pool:
            app.state.pool = pool
            # Requests queue for these in the event loop before taking a connection.
            app.state.slots = anyio.Semaphore(settings.api_pool_size)
            # Everything imported and built so far lives as long as the process: move it out
            # of the collector's reach, or each full collection scans it (100-130 ms pauses
            # measured by bench/api.py, the 60 s chart's p99).
            gc.freeze()
            yield

    install_vault(settings)
    openapi_url = "/openapi.json" if settings.api_docs else None
    app = FastAPI(
        title="Forewarn",
        version="1",
        summary="Proactive support for smart products: devices, predictions, tickets, guides.",
        description=api_doc,
        lifespan=lifespan,
        openapi_url=openapi_url,
        # Served by add_docs, under a Content-Security-Policy of their own.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.rules = load_rules(settings.rules_path)
    app.state.metrics = ApiMetrics(extra=registries)
    app.state.guard = KeyGuard(
        ttl=settings.api_key_cache_seconds,
        limit=settings.api_auth_failures,
        window=settings.api_auth_window_seconds,
    )
    keyed = (
        devices,
        registry,
        tickets,
        incidents,
        guides,
        rules,
        notifications,
        kpis,
        audits,
        keys,
    )
    for router in (ops, *keyed, inbound, surveys):
        # Every route may answer 422 in words (our checks, values the database refuses) or
        # with FastAPI's field list; the document says both. Keyed routers check the key
        # before anything else (api/deps.py).
        app.include_router(router, responses=INVALID, dependencies=KEYED if router in keyed else ())
    if openapi_url is not None:
        add_docs(app, openapi_url=openapi_url)
    _errors(app)
    _measure(app)
    app.add_middleware(SecurityHeaders)
    app.mount("/console", _Console(directory=CONSOLE_DIR, html=True), name="console")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/console/")

    return app


class _Console(StaticFiles):
    """The console's files, revalidated on every load so an upgrade reaches browsers at once
    (the ETag still spares the transfer when nothing changed)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _errors(app: FastAPI) -> None:
    """Our errors as JSON ``{"detail": message}`` with the status their class means."""

    @app.exception_handler(ForewarnError)
    async def known(request: Request, exc: ForewarnError) -> JSONResponse:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
        headers = None
        if status == 401:
            # A bad signature is not a missing API key: do not invite one.
            scheme = "Signature" if isinstance(exc, SignatureError) else "APIKey"
            headers = {"WWW-Authenticate": scheme}
        elif isinstance(exc, ThrottledError):
            headers = {"Retry-After": str(exc.retry_after)}
        elif status == 503:
            headers = {"Retry-After": "5"}
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    @app.exception_handler(psycopg.DataError)
    async def refused(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # A value PostgreSQL cannot take (a NUL character, an out-of-range number) is the
        # request's fault, not the server's.
        return JSONResponse(
            {"detail": f"the database refused a value: {exc}".strip()}, status_code=422
        )

    @app.exception_handler(Exception)
    async def unknown(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); it has been logged"},
            status_code=500,
        )


def _measure(app: FastAPI) -> None:
    """Count and time every request by route template (not raw path: ids would explode it)."""
    metrics: ApiMetrics = app.state.metrics

    @app.middleware("http")
    async def timed(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.observe(
            request.method, template, response.status_code, time.perf_counter() - started
        )
        return response
