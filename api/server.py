"""Serving the app with uvicorn: in the foreground (``forewarn api``) or on a background thread
beside other work (``forewarn demo``, the console test)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import uvicorn
from prometheus_client import CollectorRegistry

from api.app import create_app
from forewarn.clock import Clock
from forewarn.errors import ServiceError
from forewarn.settings import Settings


def config(
    settings: Settings,
    *,
    clock: Clock | None = None,
    host: str | None = None,
    port: int | None = None,
    registries: Sequence[CollectorRegistry] = (),
) -> uvicorn.Config:
    """uvicorn's configuration for the app on `settings`."""
    app = create_app(settings, clock=clock, registries=registries)
    return uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=settings.api_port if port is None else port,
        log_level="warning",
        access_log=False,
        # The client address (failed-key throttle, /metrics for this host) and https come from
        # X-Forwarded-For/-Proto only when the reverse proxy in front is trusted.
        proxy_headers=True,
        forwarded_allow_ips=settings.api_trusted_proxies,
    )


class BackgroundServer:
    """The API on a daemon thread; ``start`` returns once it accepts connections."""

    def __init__(self, cfg: uvicorn.Config) -> None:
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, name="forewarn-api", daemon=True)

    def start(self, timeout: float = 20.0) -> None:
        """Start serving; ServiceError if it does not come up (a port in use, say)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                cfg = self.server.config
                raise ServiceError(
                    f"the API did not start on {cfg.host}:{cfg.port} "
                    "(is the port in use? set FOREWARN_API_PORT)"
                )
            time.sleep(0.05)

    @property
    def url(self) -> str:
        """Where it serves (the real port, when 0 asked for any free one)."""
        servers = self.server.servers
        port = servers[0].sockets[0].getsockname()[1] if servers else self.server.config.port
        return f"http://{self.server.config.host}:{port}"

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
