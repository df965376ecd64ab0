"""Database connections. Every connection Forewarn opens comes from here."""

from __future__ import annotations

import psycopg

from forewarn.errors import ConfigError, StorageError
from forewarn.settings import Settings

Conn = psycopg.Connection[tuple[object, ...]]

# NOTIFY channels: a writer notifies at commit, its followers LISTEN and wake at once.
TELEMETRY_CHANNEL = "forewarn_telemetry"  # the ingester wrote readings; scorers follow
PREDICTIONS_CHANNEL = "forewarn_predictions"  # a scorer wrote predictions; responders follow
OUTBOX_CHANNEL = "forewarn_outbox"  # a decision queued notifications; dispatchers send


def connect(settings: Settings, *, autocommit: bool = False) -> Conn:
    """Open a connection to the configured database, with a clear error if it cannot."""
    if settings.database_url is None:
        raise ConfigError("no database configured (set FOREWARN_DATABASE_URL)")
    try:
        return psycopg.connect(settings.database_url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StorageError(f"cannot connect to the database: {exc}".strip()) from exc
