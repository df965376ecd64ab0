"""A real local HTTP endpoint for tests: records what Forewarn sends, and misbehaves on request.

    with HttpReceiver() as rx:
        rx.fail("/owner", status=500, times=2)   # the next two requests to /owner get a 500
        gate = rx.hold("/slow")                  # the next request to /slow waits for gate.set()
        ...                                      # point Apprise (json://...) or a webhook at rx.url
        rx.wait_for(3, path="/owner")
        [r.json for r in rx.requests("/owner")]

Every request is recorded the moment it arrives (before it is held or answered), so a request
whose sender died while it was held still counts as received. Answers default to 200 with
``{"ok": true}``. Paths are compared without the query string.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as it arrived."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any  # the parsed body, or None when it is not JSON
    at: float  # time.monotonic() on arrival
    held: bool  # it was held until released


@dataclass(slots=True)
class _Rule:
    path: str | None  # None: any path
    times: int
    status: int = 200
    body: bytes = b""
    gate: threading.Event | None = None
    content_type: str = "application/json"


@dataclass(slots=True)
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)
    requests: list[ReceivedRequest] = field(default_factory=list)
    failures: deque[_Rule] = field(default_factory=deque)
    holds: deque[_Rule] = field(default_factory=deque)
    gates: list[threading.Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)


def _take(rules: deque[_Rule], path: str) -> _Rule | None:
    """The first rule matching `path`, consuming one of its uses (caller holds the lock)."""
    for rule in rules:
        if rule.path is None or rule.path == path:
            rule.times -= 1
            if rule.times <= 0:
                rules.remove(rule)
            return rule
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        with state.lock:
            hold = _take(state.holds, parts.path)
            fail = _take(state.failures, parts.path)
            state.requests.append(
                ReceivedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parts.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=raw,
                    json=parsed,
                    at=time.monotonic(),
                    held=hold is not None,
                )
            )
            state.arrived.notify_all()
        if hold is not None and hold.gate is not None:
            hold.gate.wait()
        status, body, ctype = 200, b'{"ok": true}', "application/json"
        if fail is not None:
            status, body, ctype = fail.status, fail.body, fail.content_type
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the sender went away while its request was held (the crash test does this)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded requests are the log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class HttpReceiver:
    """A local HTTP server on 127.0.0.1 (a free port) that records every request."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-receiver", daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpReceiver:
        """Start serving (the context manager does this)."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Release every held request and stop serving."""
        with self._server.state.lock:
            gates = list(self._server.state.gates)
        for gate in gates:
            gate.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fail(
        self, path: str | None, *, status: int, times: int = 1, body: str = "simulated failure"
    ) -> None:
        """Answer the next `times` requests to `path` (None: any path) with `status`."""
        rule = _Rule(path, times, status=status, body=body.encode(), content_type="text/plain")
        with self._server.state.lock:
            self._server.state.failures.append(rule)

    def hold(self, path: str | None = None, *, times: int = 1) -> threading.Event:
        """Hold the next `times` requests to `path` (None: any path) until the event is set.

        They are recorded on arrival; set the returned event (or close the receiver) to answer.
        """
        gate = threading.Event()
        with self._server.state.lock:
            self._server.state.holds.append(_Rule(path, times, gate=gate))
            self._server.state.gates.append(gate)
        return gate

    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        """Every request received so far, oldest first; only those to `path` if given."""
        with self._server.state.lock:
            return [r for r in self._server.state.requests if path is None or r.path == path]

    def wait_for(
        self, count: int, *, path: str | None = None, timeout: float = 20.0
    ) -> list[ReceivedRequest]:
        """Wait until at least `count` requests (to `path`, if given) arrived; return them all."""
        deadline = time.monotonic() + timeout
        state = self._server.state
        with state.arrived:
            while True:
                found = [r for r in state.requests if path is None or r.path == path]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:.0f} s: {len(found)} of {count} requests"
                        f" to {path or 'any path'}"
                    )
                state.arrived.wait(left)
