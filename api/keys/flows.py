"""Creating API keys and checking the ones requests carry."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from api.keys import repository
from api.keys.repository import Conn
from api.keys.types import NewKey, Permission, Principal, Role
from forewarn.errors import AuthError, ConfigError, ForbiddenError

# "fw_" marks a Forewarn key in logs and secret scanners; 32 random bytes make it unguessable,
# which is why a plain SHA-256 (not a slow password hash) is the right way to store it.
KEY_PREFIX = "fw_"
_SECRET_BYTES = 32
_SHOWN = 10  # characters kept in clear to tell keys apart in lists
# Longer is not a key a request can carry: refused before it is hashed.
MAX_SECRET_CHARS = 200


def digest(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def expiry(days: int | None, *, now: datetime | None = None) -> datetime | None:
    """When a key made now for `days` days expires (None or 0: never)."""
    if not days:
        return None
    return (now or datetime.now(UTC)) + timedelta(days=days)


def create_key(
    conn: Conn,
    *,
    name: str,
    role: Role,
    expires_at: datetime | None = None,
    created_by: str | None = None,
) -> NewKey:
    """A new key for `role`, expiring at `expires_at` (None: never); its secret is returned
    once and only its hash is kept. The creation is audited with `created_by`."""
    if not name.strip():
        raise ConfigError("an API key needs a name (who or what uses it)")
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ConfigError("an API key must expire in the future")
    secret = KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    key = repository.insert_key(
        conn,
        name=name.strip(),
        role=role,
        prefix=secret[:_SHOWN],
        sha256=digest(secret),
        expires_at=expires_at,
        created_by=created_by,
    )
    return NewKey(key, secret)


def authenticate(conn: Conn, *, secret: str | None, address: str | None = None) -> Principal:
    """Who holds `secret`; AuthError if it is missing, unknown, revoked or expired. A good
    key's use is stamped with `address`."""
    if not secret:
        raise AuthError("missing API key: send it in the X-API-Key header")
    if len(secret) > MAX_SECRET_CHARS:
        raise AuthError("unknown API key")
    key = repository.key_by_hash(conn, sha256=digest(secret), address=address)
    if key is None:
        raise AuthError("unknown API key")
    if key.revoked_at is not None:
        raise AuthError(f"API key {key.prefix}… was revoked")
    if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
        raise AuthError(f"API key {key.prefix}… expired at {key.expires_at:%Y-%m-%d %H:%M} UTC")
    return Principal(key.key_id, key.name, key.role, key.expires_at)


def authorize(principal: Principal, permission: Permission) -> Principal:
    """`principal` if its role grants `permission`; ForbiddenError otherwise."""
    if not principal.may(permission):
        raise ForbiddenError(
            f"a {principal.role.value} key may not {permission.value.replace('_', ' ')}"
        )
    return principal
