"""Where notifications go: Apprise (owners by URL, staff by configured tag) and ticket sinks.

Failures are values. ``send`` returns a ``SendResult`` and logs; it never raises into the
dispatcher's loop, so one broken target cannot stop the others.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import apprise
import requests

from forewarn.apprise_plugins import load_plugins
from forewarn.settings import Settings
from notifier.types import TAG_PREFIX, WEBHOOK_TARGET, OutboundMessage, SendResult

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
        if target.startswith(TAG_PREFIX):
            return target
        plugin = apprise.Apprise.instantiate(target)
        if plugin is None:
            return f"{urlsplit(target).scheme or '?'}://(not a valid Apprise URL)"
        return _private_url(plugin)

    def send(self, message: OutboundMessage) -> SendResult:
        """Notify the row's URL, or every configured target carrying one of its tags."""
        try:
            if message.target.startswith(TAG_PREFIX):
                return self._send_staff(message)
            return self._send_owner(message)
        except Exception as exc:  # a plugin bug must not become the loop's problem
            log.exception("Apprise raised while sending %s", message.key)
            return SendResult(False, f"Apprise raised {exc!r}", self.redact(message.target))

    def _send_owner(self, message: OutboundMessage) -> SendResult:
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
        with obj.notify(
            body=message.body, title=message.title, timeout=self._timeout, **kwargs
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
    """POSTs each ticket as JSON, with an ``Idempotency-Key`` header carrying the outbox key."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
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
            body = json.dumps(dict(ticket_payload), default=str)
            # One connection per ticket: tickets are few, and nothing is left open between them.
            response = requests.post(
                self._url,
                data=body,
                timeout=(self._timeout, self._timeout),
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
            )
        except (requests.RequestException, TypeError, ValueError) as exc:
            log.warning("ticket %s not delivered to %s: %s", key, self._name, exc)
            return SendResult(False, f"{type(exc).__name__}: {exc}", self._name)
        if response.status_code < 400:
            return SendResult(True, None, self._name)
        excerpt = " ".join(response.text[:BODY_EXCERPT].split())
        error = f"HTTP {response.status_code} {response.reason}: {excerpt}".rstrip(": ")
        # A refusal stays a refusal; timeouts, throttling and server errors may pass later.
        permanent = response.status_code < 500 and response.status_code not in (408, 425, 429)
        log.warning("ticket %s refused by %s: %s", key, self._name, error)
        return SendResult(False, error, self._name, permanent)


def _failed(
    message: OutboundMessage, target: str, error: str, permanent: bool = False
) -> SendResult:
    log.warning("notification %s to %s failed: %s", message.key, target, error)
    return SendResult(False, error, target, permanent)


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
        sink = None
        if settings.ticket_webhook_url is not None:
            sink = WebhookSink(settings.ticket_webhook_url, settings.notify_timeout_seconds)
        return cls(AppriseChannel(settings), sink)

    def __call__(self, target: str) -> str:
        """The target as it may be stored."""
        if target == WEBHOOK_TARGET:
            return self._sink
        if target not in self._seen:
            if len(self._seen) >= REDACTED_CACHE:
                self._seen.clear()
            self._seen[target] = self._channel.redact(target)
        return self._seen[target]
