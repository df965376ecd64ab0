"""SQL for API keys and their audit. Functions take a connection and leave the transaction to
the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from api.keys.types import ApiKey, KeyEvent, Role

Conn = psycopg.Connection[tuple[Any, ...]]

_COLUMNS = (
    "key_id, name, role, prefix, created_at, last_used_at, revoked_at, expires_at, created_by, "
    "revoked_by, last_used_from"
)
# A use is written to the audit once an hour per key and address (every request would be
# a write per request; the cache already spares most lookups).
USE_AUDIT_EVERY = "1 hour"


def insert_key(
    conn: Conn,
    *,
    name: str,
    role: Role,
    prefix: str,
    sha256: str,
    expires_at: datetime | None = None,
    created_by: str | None = None,
) -> ApiKey:
    """Store a new key by its hash, and its creation in the audit."""
    row = conn.execute(
        f"INSERT INTO api_keys (name, role, prefix, sha256, expires_at, created_by) "
        f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (name, role.value, prefix, sha256, expires_at, created_by),
    ).fetchone()
    assert row is not None
    key = _key(row)
    conn.execute(
        "INSERT INTO api_key_events (key_id, event, actor) VALUES (%s, 'created', %s)",
        (key.key_id, created_by),
    )
    return key


def key_by_hash(conn: Conn, *, sha256: str, address: str | None = None) -> ApiKey | None:
    """The key whose secret hashes to `sha256` (revoked and expired ones included). A key that
    still works has its use stamped (time and address), and audited once an hour per address."""
    row = conn.execute(
        f"""
        WITH k AS (
            SELECT key_id, last_used_at, last_used_from FROM api_keys
             WHERE sha256 = %(h)s AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > clock_timestamp())
        ), used AS (
            UPDATE api_keys a SET last_used_at = clock_timestamp(), last_used_from = %(addr)s
              FROM k WHERE a.key_id = k.key_id
        ), audit AS (
            INSERT INTO api_key_events (key_id, event, address)
            SELECT key_id, 'used', %(addr)s FROM k
             WHERE last_used_at IS NULL
                OR last_used_at < clock_timestamp() - %(every)s::interval
                OR last_used_from IS DISTINCT FROM %(addr)s
        )
        SELECT {_COLUMNS} FROM api_keys WHERE sha256 = %(h)s
        """,
        {"h": sha256, "addr": address, "every": USE_AUDIT_EVERY},
    ).fetchone()
    return None if row is None else _key(row)


def list_keys(conn: Conn) -> list[ApiKey]:
    """Every key, oldest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY key_id").fetchall()
    return [_key(r) for r in rows]


def revoke(conn: Conn, *, key_id: int, actor: str | None = None) -> bool:
    """Revoke a key (audited); False if there is no such key or it was already revoked."""
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = clock_timestamp(), revoked_by = %s "
        "WHERE key_id = %s AND revoked_at IS NULL RETURNING key_id",
        (actor, key_id),
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        "INSERT INTO api_key_events (key_id, event, actor) VALUES (%s, 'revoked', %s)",
        (key_id, actor),
    )
    return True


def events(conn: Conn, *, key_id: int | None = None, limit: int = 200) -> list[KeyEvent]:
    """The audit, newest first: one key's, or every key's."""
    rows = conn.execute(
        "SELECT key_id, at, event, actor, address FROM api_key_events "
        "WHERE %(k)s::bigint IS NULL OR key_id = %(k)s ORDER BY at DESC, event_id DESC LIMIT %(n)s",
        {"k": key_id, "n": limit},
    ).fetchall()
    return [KeyEvent(*r) for r in rows]


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(row[0], row[1], Role(row[2]), *row[3:])
