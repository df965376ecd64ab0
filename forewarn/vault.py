"""Notification targets encrypted at rest: owners' Apprise URLs (``owners.notify_targets``) and
the outbox's targets (``notifications.target``) hold tokens and passwords.

A sealed value is ``enc:v1:`` and a Fernet token (AES-128-CBC with HMAC-SHA256, from the
``cryptography`` library). The keys come from ``FOREWARN_TARGET_KEYS``, newest first: the
first encrypts, every one decrypts (``MultiFernet``), so a key is rotated by putting a new one
in front, running ``forewarn secrets rotate`` (which re-encrypts every stored target with the
first key) and then dropping the old one. Without keys values are stored in clear, and a value
stored in clear (before keys were set) is read as it is; ``rotate`` encrypts those too.

The repositories that store targets seal and open them here, with the vault the process
installed at start (``install``): the keys are a property of the process, like its logging,
and threading them through every caller of the outbox would add nothing but parameters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from forewarn.errors import ConfigError

if TYPE_CHECKING:
    from forewarn.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "enc:v1:"


class SealError(ConfigError):
    """A sealed value that none of the configured keys opens."""


def new_key() -> str:
    """A fresh Fernet key (url-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


def _fernets(keys: str) -> list[Fernet]:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    out: list[Fernet] = []
    for n, key in enumerate(parts, start=1):
        try:
            out.append(Fernet(key.encode()))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"key {n} of FOREWARN_TARGET_KEYS is not a Fernet key (url-safe base64 of 32 "
                "bytes; make one with `forewarn secrets new-key`)"
            ) from exc
    return out


def check_keys(keys: str) -> str:
    """The keys if each is a Fernet key; ValueError naming the bad one otherwise."""
    if not _fernets(keys):
        raise ValueError("FOREWARN_TARGET_KEYS holds no key")
    return keys


class Vault:
    """Seals and opens target strings with the configured keys (or passes them in clear)."""

    def __init__(self, keys: str | None) -> None:
        fernets = _fernets(keys) if keys else []
        self._fernet = MultiFernet(fernets) if fernets else None

    @property
    def encrypting(self) -> bool:
        """Whether values are sealed (keys are configured)."""
        return self._fernet is not None

    def seal(self, value: str) -> str:
        """The value as it is stored: sealed with the newest key, or in clear without keys."""
        if self._fernet is None or value.startswith(PREFIX):
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        """The value a stored one holds; SealError when no configured key opens it."""
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise SealError("a target is encrypted but FOREWARN_TARGET_KEYS is not set")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SealError(
                "a target is encrypted with a key that is not in FOREWARN_TARGET_KEYS"
            ) from exc

    def reseal(self, stored: str) -> str:
        """The stored value sealed with the newest key (what ``rotate`` writes back)."""
        if self._fernet is None:
            return self.open(stored)
        if not stored.startswith(PREFIX):
            return self.seal(stored)
        token = self._fernet.rotate(stored[len(PREFIX) :].encode())
        return PREFIX + token.decode()


_lock = threading.Lock()
_current = Vault(None)


def install(settings: Settings) -> Vault:
    """Make the settings' keys the process's vault (entry points call it once)."""
    global _current
    keys = settings.target_keys.get_secret_value() if settings.target_keys else None
    vault = Vault(keys)
    with _lock:
        _current = vault
    if not vault.encrypting:
        log.debug("FOREWARN_TARGET_KEYS is not set: notification targets are stored in clear")
    return vault


def current() -> Vault:
    """The process's vault."""
    return _current


def seal(value: str) -> str:
    """`value` as stored, with the process's vault."""
    return _current.seal(value)


def open_value(stored: str) -> str:
    """What a stored value holds, with the process's vault (SealError if it cannot)."""
    return _current.open(stored)


def open_all(stored: Sequence[str] | None) -> tuple[str, ...]:
    """Stored targets (an owner's) as Apprise URLs; one that no configured key opens is left
    out and logged, so one lost key does not stop the owner's other targets."""
    out: list[str] = []
    for value in stored or ():
        try:
            out.append(_current.open(value))
        except SealError as exc:
            log.warning("a notification target cannot be read: %s", exc)
    return tuple(out)
