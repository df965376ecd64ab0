"""Forewarn: the shared package (settings, schema, database access, domain types, CLI)."""

__version__ = "0.1.0"
