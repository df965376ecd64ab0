"""Security headers on every response, and the API's own documentation pages under a policy
that allows exactly what they load.

The console (api/console) loads only its own files: no inline script or style, no eval, so
its Content-Security-Policy allows ``'self'`` and nothing else, and no page may frame it. The
survey page sets a stricter policy of its own (no form posts, no referrer), which is kept.
``/docs`` and ``/redoc`` (FastAPI's Swagger UI and ReDoc, served only with
``FOREWARN_API_DOCS``) load their scripts from a CDN; their policy names the CDN and the
SHA-256 of the one inline script each page has, computed from the page served.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONSOLE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Sent with every response unless the route set its own.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
# A year, once a browser has reached the API over https (the reverse proxy says so).
HSTS = b"max-age=31536000"
_CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


class SecurityHeaders:
    """ASGI middleware adding the headers above, the console's policy where the route set
    none, ``Cache-Control: no-store`` on API answers, and HSTS on https."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [h for h in HEADERS if h[0] not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", CONSOLE_POLICY.encode()))
                if path.startswith("/api/") and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                if https:
                    extra.append((b"strict-transport-security", HSTS))
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, with_headers)


def _policy(page: str, *, styles_inline: bool, workers: bool) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(page)
    )
    style = f"style-src {_CDN} https://fonts.googleapis.com" + (
        " 'unsafe-inline'" if styles_inline else ""
    )
    return "; ".join(
        part
        for part in (
            "default-src 'none'",
            f"script-src {_CDN} {hashes}".strip(),
            style,
            "font-src https://fonts.gstatic.com",
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
            "connect-src 'self'",
            "worker-src blob:" if workers else "",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
        if part
    )


def add_docs(app: FastAPI, *, openapi_url: str) -> None:
    """Serve Swagger UI at /docs and ReDoc at /redoc, each with the policy its page needs
    (ReDoc styles itself with inline <style> elements and searches in a worker)."""
    swagger = get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - Swagger UI")
    redoc = get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc")
    pages = {
        "/docs": (
            swagger,
            _policy(bytes(swagger.body).decode(), styles_inline=False, workers=False),
        ),
        "/redoc": (redoc, _policy(bytes(redoc.body).decode(), styles_inline=True, workers=True)),
    }
    for path, (page, policy) in pages.items():
        body = bytes(page.body)

        def serve(body: bytes = body, policy: str = policy) -> HTMLResponse:
            return HTMLResponse(body, headers={"Content-Security-Policy": policy})

        app.add_api_route(path, serve, include_in_schema=False, methods=["GET"])
