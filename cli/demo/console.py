"""The demo's staff console: the API on a background thread, on the demo's scaled clock, with
keys made for this run so a person can sign in at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from rich.console import Console

from forewarn.clock import Clock
from forewarn.db import connect
from forewarn.errors import ServiceError
from forewarn.settings import Settings


@contextlib.contextmanager
def console(
    settings: Settings, *, clock: Clock, registries: Sequence[CollectorRegistry], say: Console
) -> Iterator[str | None]:
    """Serve the API and console for the demo; yields its URL, or None if it could not start
    (the demo goes on without it: a busy port should not stop the fleet)."""
    from api.keys.flows import create_key
    from api.keys.types import Role
    from api.server import BackgroundServer, config

    server = BackgroundServer(config(settings, clock=clock, registries=registries))
    try:
        server.start()
    except ServiceError as exc:
        say.print(f"[yellow]console not started:[/yellow] {exc}")
        yield None
        return
    try:
        with connect(settings) as conn:
            made = {
                r: create_key(conn, name=f"demo {r.value}", role=r)
                for r in (Role.AGENT, Role.VIEWER, Role.ADMIN)
            }
            conn.commit()
        say.print(f"console: {server.url}/  (API docs: {server.url}/docs)")
        for role, new in made.items():
            say.print(f"  sign in as {role.value + ':':7} {new.secret}")
        yield server.url
    finally:
        server.stop()
