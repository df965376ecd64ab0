"""Versioned, idempotent schema migrations, with a TimescaleDB and a plain-PostgreSQL path."""
