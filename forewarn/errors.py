"""Every exception Forewarn raises on purpose, in one place.

    ForewarnError
    ├── ConfigError          settings that cannot work (bad URL, impossible window)
    │   ├── RuleError        a rule set that cannot be loaded (names file, line, problem)
    │   ├── MappingError     a payload mapping file that cannot be loaded (file, line, problem)
    │   └── GuideError       a knowledge-base guide that cannot be loaded (names the file)
    ├── PayloadError         an MQTT message that cannot become a reading
    │   ├── TopicError       the topic is not one we know how to read
    │   └── ValidationError  the body is malformed, or disagrees with its topic
    ├── StorageError         the database refused or could not be reached
    │   └── MigrationError   a schema migration failed or the schema is too new
    ├── ServiceError         an embedded or external service would not start
    ├── TicketError          a ticket action its current state does not allow
    ├── NotFoundError        a thing asked for by id that does not exist
    ├── ConflictError        creating a thing that already exists
    ├── RecordError          an owner or device record that cannot be registered
    ├── ExpiredError         a signed link whose time is up (a survey after its days)
    └── AuthError            a missing, unknown, expired or revoked API key
        ├── ForbiddenError   a known key whose role may not do this
        ├── SignatureError   a signed request or link that is forged, stale or malformed
        └── ThrottledError   too many failed keys from one address: wait ``retry_after`` s

Callers catch the narrowest class they can act on; everything is raised with
``raise ... from exc`` so the original cause stays attached.
"""

from __future__ import annotations


class ForewarnError(Exception):
    """Base class of every error Forewarn raises on purpose."""


class ConfigError(ForewarnError):
    """Settings that cannot work."""


class RuleError(ConfigError):
    """A rule set that cannot be loaded; the message names the file, the line and the problem."""


class MappingError(ConfigError):
    """A payload mapping file that cannot be loaded; names the file, the line and the problem."""


class GuideError(ConfigError):
    """A guide file that cannot be loaded; the message names the file and the problem."""


class PayloadError(ForewarnError):
    """An MQTT message that cannot become a reading; ``reason`` goes to the dead-letter table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TopicError(PayloadError):
    """The topic is not one we know how to read."""


class ValidationError(PayloadError):
    """The body is malformed or disagrees with its topic."""


class StorageError(ForewarnError):
    """The database refused or could not be reached."""


class MigrationError(StorageError):
    """A schema migration failed, or the database holds a newer schema than this code."""


class ServiceError(ForewarnError):
    """An embedded or external service would not start."""


class TicketError(ForewarnError):
    """A ticket action that the ticket's current state does not allow."""


class NotFoundError(ForewarnError):
    """A thing asked for by id (ticket, device, guide...) that does not exist."""


class ConflictError(ForewarnError):
    """Creating a thing (a guide in a locale...) that already exists."""


class RecordError(ForewarnError):
    """An owner or device record that cannot be registered; ``field`` names what to fix."""

    def __init__(self, problem: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.problem = problem
        self.field = field


class AuthError(ForewarnError):
    """A missing, unknown or revoked API key."""


class ForbiddenError(AuthError):
    """A known API key whose role does not allow the action."""


class SignatureError(AuthError):
    """A signed request or link (an owner's reply, a survey token) that is forged, outside the
    timestamp tolerance, or malformed."""


class ThrottledError(AuthError):
    """Too many failed API keys from one client address; ``retry_after`` seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ExpiredError(ForewarnError):
    """A correctly signed link whose time is up."""
