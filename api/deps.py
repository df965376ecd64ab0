"""What routes take as parameters: a connection, the clock, the settings, the caller.

Routes declare ``conn: ConnDep`` and ``who: Reader`` (or ``Agent``...) and never open
connections or read headers themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from psycopg_pool import ConnectionPool

from api.keys.flows import authenticate, authorize
from api.keys.types import Permission, Principal
from forewarn.clock import Clock
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


def get_conn(request: Request) -> Iterator[Conn]:
    """A pooled connection; its transaction commits if the request succeeds."""
    pool: ConnectionPool[Conn] = request.app.state.pool
    with pool.connection() as conn:
        yield conn


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


def _caller(request: Request, secret: str | None = Security(API_KEY_HEADER)) -> Principal:
    """The holder of the request's API key (its own short transaction)."""
    pool: ConnectionPool[Conn] = request.app.state.pool
    with pool.connection() as conn:
        return authenticate(conn, secret=secret)


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that admits keys whose role grants `permission`."""

    def check(who: Annotated[Principal, Depends(_caller)]) -> Principal:
        return authorize(who, permission)

    return check


Reader = Annotated[Principal, Depends(require(Permission.READ))]
Agent = Annotated[Principal, Depends(require(Permission.ACT_TICKETS))]
Editor = Annotated[Principal, Depends(require(Permission.EDIT_GUIDES))]
RulesAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_RULES))]
KeysAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_KEYS))]
Registrar = Annotated[Principal, Depends(require(Permission.MANAGE_REGISTRY))]
