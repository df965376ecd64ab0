"""SQL for API keys. Functions take a connection and leave the transaction to the caller."""

from __future__ import annotations

from typing import Any

import psycopg

from api.keys.types import ApiKey, Role

Conn = psycopg.Connection[tuple[Any, ...]]

_COLUMNS = "key_id, name, role, prefix, created_at, last_used_at, revoked_at"


def insert_key(conn: Conn, *, name: str, role: Role, prefix: str, sha256: str) -> ApiKey:
    """Store a new key by its hash."""
    row = conn.execute(
        f"INSERT INTO api_keys (name, role, prefix, sha256) VALUES (%s, %s, %s, %s) "
        f"RETURNING {_COLUMNS}",
        (name, role.value, prefix, sha256),
    ).fetchone()
    assert row is not None
    return _key(row)


def key_by_hash(conn: Conn, *, sha256: str) -> ApiKey | None:
    """The key whose secret hashes to `sha256` (revoked ones included), stamping its use."""
    row = conn.execute(
        f"UPDATE api_keys SET last_used_at = now() WHERE sha256 = %s RETURNING {_COLUMNS}",
        (sha256,),
    ).fetchone()
    return None if row is None else _key(row)


def list_keys(conn: Conn) -> list[ApiKey]:
    """Every key, oldest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY key_id").fetchall()
    return [_key(r) for r in rows]


def revoke(conn: Conn, *, key_id: int) -> bool:
    """Revoke a key; False if there is no such key or it was already revoked."""
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL "
        "RETURNING key_id",
        (key_id,),
    ).fetchone()
    return row is not None


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(row[0], row[1], Role(row[2]), row[3], row[4], row[5], row[6])
