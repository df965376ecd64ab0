"""The demo's stand-in for the outside world: one local HTTP endpoint that receives what
Forewarn sends to owners' apps (Apprise ``json://``), to staff channels (Apprise, by tag) and
to the helpdesk (the ticket webhook), and counts it. Only ``forewarn demo`` uses it: in
production those URLs point at real services."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from notifier.tickets.types import Tier, team_tag
from simulators.catalog import COMPANIES, COMPANY_CITIES

# Each tier's team and lead, and every simulated enterprise account's own team.
STAFF_TAGS = (
    *(tier.team for tier in Tier),
    *(tier.lead for tier in Tier),
    *sorted(
        {team_tag(f"enterprise:{c} {city}", Tier.L1) for c in COMPANIES for city in COMPANY_CITIES}
    ),
)


class DemoInbox:
    """A local HTTP server counting POSTs by their first path segment (owners, staff, helpdesk)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    json.loads(body or b"{}")
                    status = 200
                except ValueError:
                    status = 400
                with inbox._lock:
                    inbox._counts[self.path.strip("/").split("/", 1)[0]] += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # the demo's summary reports the counts instead

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="demo-inbox"
        )

    @property
    def base(self) -> str:
        """host:port of the inbox."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def counts(self) -> dict[str, int]:
        """POSTs received per first path segment."""
        with self._lock:
            return dict(self._counts)

    def owner_target(self) -> str:
        """The Apprise URL prefix for owners' app pushes (the owner id is appended)."""
        return f"json://{self.base}/owners/"

    def write_staff_config(self, path: Path) -> Path:
        """An Apprise YAML configuration tagging one staff target per support team."""
        lines = ["urls:"]
        for tag in STAFF_TAGS:
            lines += [f"  - json://{self.base}/staff/{tag}:", f"    - tag: {tag}"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def helpdesk_url(self) -> str:
        """The generic webhook ticket sink's URL."""
        return f"http://{self.base}/helpdesk/tickets"
