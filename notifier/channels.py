"""Where notifications go: Apprise (owners by URL, staff by configured tag) and ticket sinks.

Failures are values. ``send`` returns a ``SendResult`` and logs; it never raises into the
dispatcher's loop, so one broken target cannot stop the others.
"""

from __future__ import annotations

import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import apprise
import requests
from apprise import NotifyFormat

from forewarn.apprise_plugins import load_plugins
from forewarn.settings import Settings
from forewarn.signing import Signer
from notifier.types import (
    TAG_PREFIX,
    UNREADABLE_TARGET,
    WEBHOOK_TARGET,
    OutboundMessage,
    SendResult,
)

log = logging.getLogger(__name__)

# Re-read the Apprise configuration this often, so edited staff rotas apply without a restart.
CONFIG_CACHE_SECONDS = 60
# How much of a refusing endpoint's answer goes into the attempt row.
BODY_EXCERPT = 200


class Channel(ABC):
    """Sends an outbox row's title and body to its target."""

    @abstractmethod
    def send(self, message: OutboundMessage) -> SendResult:
        """Try once to deliver; a failure is returned (and logged), never raised."""

    @abstractmethod
    def redact(self, target: str) -> str:
        """The target as it may be stored: no tokens or passwords."""


class TicketSink(ABC):
    """Hands a ticket to a helpdesk."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The sink as it may be stored: no tokens or passwords."""

    @abstractmethod
    def send(self, ticket_payload: Mapping[str, Any], key: str) -> SendResult:
        """Try once to deliver the ticket; `key` lets the helpdesk drop a repeated delivery."""


class AppriseChannel(Channel):
    """Owners by their Apprise URL; staff by tags of the Apprise configuration."""

    def __init__(self, settings: Settings) -> None:
        load_plugins()
        self._timeout = settings.notify_timeout_seconds
        self._config_source = settings.notify_config
        self._staff: apprise.Apprise | None = None
        if settings.notify_config is not None:
            config = apprise.AppriseConfig(cache=CONFIG_CACHE_SECONDS)
            if not config.add(settings.notify_config):
                log.error("not an Apprise configuration source: %s", settings.notify_config)
            self._staff = apprise.Apprise()
            self._staff.add(config)

    def redact(self, target: str) -> str:
        """The URL as Apprise prints it with privacy on; tag targets are not secret."""
        return redact_target(target)

    def send(self, message: OutboundMessage) -> SendResult:
        """Notify the row's URL, or every configured target carrying one of its tags."""
        try:
            if message.target.startswith(TAG_PREFIX):
                return self._send_staff(message)
            return self._send_owner(message)
        except Exception as exc:  # a plugin bug must not become the loop's problem
            error = scrub(f"Apprise raised {exc!r}")
            log.error("%s while sending %s", error, message.key)
            return SendResult(False, error, self.redact(message.target))

    def _send_owner(self, message: OutboundMessage) -> SendResult:
        if message.target == UNREADABLE_TARGET:
            return _failed(
                message,
                "sealed://",
                "the target is encrypted with a key that is not "
                "in FOREWARN_TARGET_KEYS (add the old key back, then rotate)",
                True,
            )
        plugin = apprise.Apprise.instantiate(message.target)
        if plugin is None:
            redacted = self.redact(message.target)
            return _failed(message, redacted, f"not a valid Apprise URL: {redacted}", True)
        self._bound(plugin)
        target = _private_url(plugin)
        obj = apprise.Apprise()
        obj.add(plugin)
        return self._notify(obj, message, target, tags=None)

    def _send_staff(self, message: OutboundMessage) -> SendResult:
        tags = list(message.tags)
        if not tags:
            return _failed(message, message.target, "a tag: target names no tag", True)
        if self._staff is None:
            return _failed(
                message,
                message.target,
                "no Apprise configuration for staff tags (set FOREWARN_NOTIFY_CONFIG)",
            )
        if len(self._staff) == 0:
            return _failed(
                message,
                message.target,
                f"the Apprise configuration {self._config_source} has no targets "
                "(missing, unreadable or empty)",
            )
        services = list(self._staff.find(tag=tags))
        if not services:
            return _failed(message, message.target, f"no Apprise target has tag {', '.join(tags)}")
        for service in services:
            self._bound(service)
        target = ", ".join(_private_url(s) for s in services)
        return self._notify(self._staff, message, f"{message.target} -> {target}", tags=tags)

    def _notify(
        self, obj: apprise.Apprise, message: OutboundMessage, target: str, tags: list[str] | None
    ) -> SendResult:
        kwargs: dict[str, Any] = {"tag": tags} if tags else {}
        # Plain text, always: a service that shows HTML or Markdown gets the text escaped, so
        # nothing a guide, an agent or a device wrote becomes markup in the owner's app.
        with obj.notify(
            body=message.body,
            title=message.title,
            body_format=NotifyFormat.TEXT,
            timeout=self._timeout,
            **kwargs,
        ) as result:
            if result:
                return SendResult(True, None, target)
            # Apprise keeps each call's own log lines: the reason, even with other sends about.
            why = "; ".join(e.message for e in result.logs() if e.level != "DEBUG")
            error = f"Apprise {result.status.name.lower()}: {why or 'no reason given'}"
        return _failed(message, target, error)

    def _bound(self, service: Any) -> None:
        """Apply the send timeout to a plugin's connect and read."""
        service.socket_connect_timeout = self._timeout
        service.socket_read_timeout = self._timeout


class WebhookSink(TicketSink):
    """POSTs each ticket as JSON, with an ``Idempotency-Key`` header carrying the outbox key,
    signed in the Standard Webhooks scheme (``webhook-id`` = the outbox key, the same on every
    retry; ``webhook-timestamp``; ``webhook-signature: v1,<base64 HMAC-SHA256 of
    "<id>.<timestamp>.<body>">``) with the sink's secret."""

    def __init__(self, url: str, timeout: float, secret: str | None = None) -> None:
        self._url = url
        self._timeout = timeout
        self._signer = Signer(secret) if secret else None
        parts = urlsplit(url)
        # Keep scheme, host and path; drop credentials and the query (tokens live there).
        self._name = (
            f"webhook {parts.scheme}://{parts.hostname or ''}"
            + (f":{parts.port}" if parts.port else "")
            + parts.path
        )

    @property
    def name(self) -> str:
        """``webhook <scheme>://<host>[:port]<path>``: no credentials, no query string."""
        return self._name

    def send(self, ticket_payload: Mapping[str, Any], key: str) -> SendResult:
        """POST the ticket; a status of 400 or more is a failure naming it and the answer."""
        try:
            body = json.dumps(dict(ticket_payload), default=str).encode()
            headers = {"Content-Type": "application/json", "Idempotency-Key": key}
            if self._signer is not None:
                headers |= self._signer.headers(message_id=key, body=body, at=datetime.now(UTC))
            # One connection per ticket: tickets are few, and nothing is left open between them.
            response = requests.post(
                self._url, data=body, timeout=(self._timeout, self._timeout), headers=headers
            )
        except (requests.RequestException, TypeError, ValueError) as exc:
            # requests names the URL's path and query (tokens) in its messages.
            error = scrub(f"{type(exc).__name__}: {exc}")
            log.warning("ticket %s not delivered to %s: %s", key, self._name, error)
            return SendResult(False, error, self._name)
        if response.status_code < 400:
            return SendResult(True, None, self._name)
        excerpt = scrub(" ".join(response.text[:BODY_EXCERPT].split()))
        error = f"HTTP {response.status_code} {response.reason}: {excerpt}".rstrip(": ")
        # A refusal stays a refusal; timeouts, throttling and server errors may pass later.
        permanent = response.status_code < 500 and response.status_code not in (408, 425, 429)
        log.warning("ticket %s refused by %s: %s", key, self._name, error)
        return SendResult(False, error, self._name, permanent)


def redact_target(target: str) -> str:
    """An Apprise URL as Apprise prints it with privacy on (tag targets are not secret)."""
    if target.startswith(TAG_PREFIX) or target == UNREADABLE_TARGET:
        return target
    load_plugins()
    plugin = apprise.Apprise.instantiate(target)
    if plugin is None:
        return f"{urlsplit(target).scheme or '?'}://(not a valid Apprise URL)"
    return _private_url(plugin)


def _failed(
    message: OutboundMessage, target: str, error: str, permanent: bool = False
) -> SendResult:
    error = scrub(error)
    log.warning("notification %s to %s failed: %s", message.key, target, error)
    return SendResult(False, error, target, permanent)


# An address with a scheme; what requests calls "url: /path?query"; key=value secrets.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://([^\s'\"<>]+)")
_URL_PATH = re.compile(r"(?i)\b(url:?\s*)(/[^\s'\"<>)]*)")
_SECRET_PAIR = re.compile(
    r"(?i)\b(token|key|secret|password|passwd|pwd|auth|signature|sig|apikey|api_key|"
    r"access_token)=([^\s&'\"<>]+)"
)


def scrub(text: str) -> str:
    """Error text as it may be stored or logged: addresses cut to scheme and host (no user,
    password, path or query), bare paths replaced, ``token=...`` values hidden."""

    def host_only(found: re.Match[str]) -> str:
        rest = found.group(2)
        host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
        cut = len(rest) > len(host) or "@" in rest.split("/", 1)[0]
        return f"{found.group(1)}://{host}" + ("/..." if cut else "")

    text = _URL.sub(host_only, text)
    text = _URL_PATH.sub(lambda m: f"{m.group(1)}/...", text)
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=****", text)


# Apprise's generic HTTP services keep custom headers (``?+X-Token=...``) and path tokens in
# their private URL; for these only the host is kept.
_GENERIC_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


def _private_url(service: Any) -> str:
    """A plugin's URL with Apprise's privacy on (its ``url`` is untyped), less its query (where
    custom headers and tokens live) and, for the generic HTTP services, less its path."""
    parts = urlsplit(str(service.url(privacy=True)))
    path = parts.path
    if parts.scheme in _GENERIC_SCHEMES and path not in ("", "/"):
        path = "/..."
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


# Targets a Redactor remembers; a long-running dispatcher sees every owner's URL.
REDACTED_CACHE = 4096


class Redactor:
    """The one way a notification target is stored, logged or shown: an Apprise URL as Apprise
    prints it with privacy on, staff tags as they are, the ticket sink by its name. Results
    are cached per target (a page often names one staff tag or owner URL many times)."""

    def __init__(self, channel: Channel, sink: TicketSink | None) -> None:
        self._channel = channel
        self._sink = sink.name if sink is not None else "webhook (no sink configured)"
        self._seen: dict[str, str] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> Redactor:
        """The redactor of a dispatcher with these settings."""
        return cls(AppriseChannel(settings), webhook_sink(settings))

    @staticmethod
    def error(text: str | None) -> str | None:
        """An error as it may be stored or logged (``scrub``)."""
        return None if text is None else scrub(text)

    def __call__(self, target: str) -> str:
        """The target as it may be stored."""
        if target == WEBHOOK_TARGET:
            return self._sink
        if target not in self._seen:
            if len(self._seen) >= REDACTED_CACHE:
                self._seen.clear()
            self._seen[target] = self._channel.redact(target)
        return self._seen[target]


def webhook_sink(settings: Settings) -> WebhookSink | None:
    """The ticket sink the settings configure, signing with its secret; None without one."""
    if settings.ticket_webhook_url is None:
        return None
    secret = settings.ticket_webhook_secret
    return WebhookSink(
        settings.ticket_webhook_url,
        settings.notify_timeout_seconds,
        secret.get_secret_value() if secret else None,
    )
