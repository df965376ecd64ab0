"""Database connections. Every connection Forewarn opens comes from here."""

from __future__ import annotations

import psycopg

from forewarn.errors import ConfigError, StorageError
from forewarn.settings import Settings


def connect(
    settings: Settings, *, autocommit: bool = False
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection to the configured database, with a clear error if it cannot."""
    if settings.database_url is None:
        raise ConfigError("no database configured (set FOREWARN_DATABASE_URL)")
    try:
        return psycopg.connect(settings.database_url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StorageError(f"cannot connect to the database: {exc}".strip()) from exc
