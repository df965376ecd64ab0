"""What routes take as parameters: a connection, the clock, the settings, the caller.

Routes declare ``conn: ConnDep`` and ``who: Reader`` (or ``Agent``...) and never open
connections or read headers themselves.

A key is checked before the request takes anything it could hold: ``gate`` (a dependency of
every keyed router, resolved before the route's own) answers from the key cache, refuses a
missing key, a key just found wrong, and an address past its failed-key limit (429), all
without a connection; only a key it does not know is looked up, on the request's own pooled
connection (``_caller`` shares ``get_conn`` with the route), so a request never holds two.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
import psycopg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from psycopg_pool import ConnectionPool, PoolTimeout

from api.keys.flows import MAX_SECRET_CHARS, authenticate, authorize, digest
from api.keys.guard import KeyGuard
from api.keys.types import Permission, Principal
from forewarn.clock import Clock
from forewarn.errors import AuthError, StorageError, ThrottledError
from forewarn.settings import Settings
from notifier.tickets.actions import Outreach
from rules.feedback import outreach
from rules.types import RuleSet

Conn = psycopg.Connection[tuple[Any, ...]]

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API key made with `forewarn keys create`; its role limits what it may do.",
)


@contextlib.asynccontextmanager
async def connection(request: Request) -> AsyncIterator[Conn]:
    """A pooled connection whose transaction commits if the block succeeds.

    A request first waits for one of the pool's slots in the event loop, holding no worker
    thread: were it to wait for the pool on a thread, a burst of requests would take every
    thread while the requests holding connections waited for one to give them back. A wait
    longer than ``api_pool_timeout_seconds`` is a 503, never a hung request.
    """
    slots: anyio.Semaphore = request.app.state.slots
    pool: ConnectionPool[Conn] = request.app.state.pool
    settings: Settings = request.app.state.settings
    timeout = settings.api_pool_timeout_seconds
    with anyio.move_on_after(timeout) as waited:
        await slots.acquire()
    if waited.cancelled_caught:
        raise StorageError("the API is busy: no database connection came free in time")
    try:
        held = pool.connection(timeout=timeout)
        try:
            conn = await anyio.to_thread.run_sync(held.__enter__)
        except PoolTimeout as exc:
            raise StorageError("the database did not give a connection in time") from exc
        try:
            yield conn
        except BaseException as exc:
            await anyio.to_thread.run_sync(held.__exit__, type(exc), exc, exc.__traceback__)
            raise
        await anyio.to_thread.run_sync(held.__exit__, None, None, None)
    finally:
        slots.release()


async def get_conn(request: Request) -> AsyncIterator[Conn]:
    """The request's one pooled connection (see ``connection``)."""
    async with connection(request) as conn:
        yield conn


def client_address(request: Request) -> str:
    """The client's address (the proxy's X-Forwarded-For when it is a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def get_clock(request: Request) -> Clock:
    """The business clock (the wall clock, or the demo's scaled one)."""
    clock: Clock = request.app.state.clock
    return clock


def get_rules(request: Request) -> RuleSet:
    """The rule set the API works tickets by (loaded once, at start)."""
    rules: RuleSet = request.app.state.rules
    return rules


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_outreach(request: Request) -> Outreach:
    """What telling owners needs: survey links point at the configured public URL, else at
    the address this request came to."""
    return outreach(request.app.state.settings, request.app.state.rules, str(request.base_url))


ConnDep = Annotated[Conn, Depends(get_conn)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RulesDep = Annotated[RuleSet, Depends(get_rules)]
OutreachDep = Annotated[Outreach, Depends(get_outreach)]


async def gate(request: Request, secret: str | None = Security(API_KEY_HEADER)) -> None:
    """Settle what can be settled about the key without a connection (see the module)."""
    if not secret:
        raise AuthError("missing API key: send it in the X-API-Key header")
    guard: KeyGuard = request.app.state.guard
    address = client_address(request)
    if len(secret) > MAX_SECRET_CHARS:
        guard.failed(address, None)
        raise AuthError("unknown API key")
    hashed = digest(secret)
    principal = guard.cached(hashed, wall_now=time.time())
    if principal is not None:
        request.state.principal = principal
        return
    wait = guard.retry_after(address, hashed)
    if wait is not None:
        raise ThrottledError(f"too many failed API keys from {address}; retry later", wait)
    if guard.known_bad(hashed):
        guard.failed(address, hashed)
        raise AuthError("unknown API key")


def _caller(
    request: Request, conn: ConnDep, secret: str | None = Security(API_KEY_HEADER)
) -> Principal:
    """The holder of the request's API key: from the gate's cache, or looked up on the
    request's own connection (the lookup is part of the request's transaction)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    guard: KeyGuard = request.app.state.guard
    address = client_address(request)
    try:
        principal = authenticate(conn, secret=secret, address=address)
    except AuthError:
        guard.failed(address, digest(secret) if secret else None)
        raise
    # The stamp of its use commits now, whatever the route does with the transaction.
    conn.commit()
    guard.good(digest(secret or ""), principal)
    request.state.principal = principal
    return principal


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that admits keys whose role grants `permission`."""

    def check(who: Annotated[Principal, Depends(_caller)]) -> Principal:
        return authorize(who, permission)

    return check


Reader = Annotated[Principal, Depends(require(Permission.READ))]
Agent = Annotated[Principal, Depends(require(Permission.ACT_TICKETS))]
Editor = Annotated[Principal, Depends(require(Permission.EDIT_GUIDES))]
Reviewer = Annotated[Principal, Depends(require(Permission.REVIEW_GUIDES))]
RulesAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_RULES))]
KeysAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_KEYS))]
Registrar = Annotated[Principal, Depends(require(Permission.MANAGE_REGISTRY))]
# Every keyed router is included with this, so its gate runs before the route's dependencies.
KEYED = [Depends(gate)]
