"""Creating API keys and checking the ones requests carry."""

from __future__ import annotations

import hashlib
import secrets

from api.keys import repository
from api.keys.repository import Conn
from api.keys.types import NewKey, Permission, Principal, Role
from forewarn.errors import AuthError, ConfigError, ForbiddenError

# "fw_" marks a Forewarn key in logs and secret scanners; 32 random bytes make it unguessable,
# which is why a plain SHA-256 (not a slow password hash) is the right way to store it.
KEY_PREFIX = "fw_"
_SECRET_BYTES = 32
_SHOWN = 10  # characters kept in clear to tell keys apart in lists


def digest(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(conn: Conn, *, name: str, role: Role) -> NewKey:
    """A new key for `role`; its secret is returned once and only its hash is kept."""
    if not name.strip():
        raise ConfigError("an API key needs a name (who or what uses it)")
    secret = KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    key = repository.insert_key(
        conn, name=name.strip(), role=role, prefix=secret[:_SHOWN], sha256=digest(secret)
    )
    return NewKey(key, secret)


def authenticate(conn: Conn, *, secret: str | None) -> Principal:
    """Who holds `secret`; AuthError if it is missing, unknown or revoked."""
    if not secret:
        raise AuthError("missing API key: send it in the X-API-Key header")
    key = repository.key_by_hash(conn, sha256=digest(secret))
    if key is None:
        raise AuthError("unknown API key")
    if key.revoked_at is not None:
        raise AuthError(f"API key {key.prefix}… was revoked")
    return Principal(key.key_id, key.name, key.role)


def authorize(principal: Principal, permission: Permission) -> Principal:
    """`principal` if its role grants `permission`; ForbiddenError otherwise."""
    if not principal.may(permission):
        raise ForbiddenError(
            f"a {principal.role.value} key may not {permission.value.replace('_', ' ')}"
        )
    return principal
