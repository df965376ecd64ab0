"""SQL the rule API adds to rules.repository's readers: a transaction that cannot write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


@contextmanager
def read_only(conn: Conn) -> Iterator[None]:
    """A transaction that refuses writes and is rolled back at the end, whatever ran in it."""
    # Belt and braces for the dry run: READ ONLY makes a write an error, the forced rollback
    # drops anything else (advisory locks, temporary state) the readers might have left.
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION READ ONLY")
        yield
