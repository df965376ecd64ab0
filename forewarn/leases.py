"""Sharing work among processes with PostgreSQL's own locks: no cluster manager.

A keyspace (devices) is cut into ``partitions`` slices by a hash of the key. Each member of
a group (the scorers, the responders) holds the slices it works on as session-level advisory
locks on a connection of its own, and a membership lock that says it is alive. Every
``rebalance`` it counts the live members (PostgreSQL's ``pg_locks`` shows every session's
advisory locks), lets go of slices beyond its fair share, and tries to take free ones up to
it. A member that dies loses its connection, PostgreSQL releases its locks at once, and the
others take its slices at their next rebalance: within seconds, with nothing to configure.

What makes a hand-over exact is the caller's part: work on a slice only between two
rebalances, and commit its progress (a cursor per slice) in the same transaction as its
results; the next owner starts from that cursor.
"""

from __future__ import annotations

import math
import secrets
from contextlib import suppress

import psycopg

from forewarn.db import Conn, connect
from forewarn.settings import Settings

# Membership locks live above the slices' numbers in the same lock space.
_MEMBER_BASE = 1 << 20


class Leases:
    """This process's slices of a group's keyspace."""

    def __init__(self, settings: Settings, group: str, *, partitions: int = 64) -> None:
        if not 1 <= partitions < _MEMBER_BASE:
            raise ValueError(f"partitions must be 1 to {_MEMBER_BASE - 1}")
        self.group = group
        self.partitions = partitions
        self._settings = settings
        self._conn: Conn | None = None
        self._space = 0
        self._owned: set[int] = set()
        # Where this member starts looking for free slices: members look in different orders.
        self._start = secrets.randbelow(partitions)

    @property
    def owned(self) -> frozenset[int]:
        """The slices this member holds now."""
        return frozenset(self._owned)

    def join(self) -> None:
        """Open the lock connection and announce this member (idempotent)."""
        if self._conn is not None and not self._conn.closed:
            return
        conn = connect(self._settings, autocommit=True)
        row = conn.execute(
            "SELECT hashtext(current_schema() || '.lease.' || %s)", (self.group,)
        ).fetchone()
        assert row is not None
        self._space = int(str(row[0]))
        for _ in range(100):  # a free member number
            member = _MEMBER_BASE + secrets.randbelow(1 << 30)
            if self._try(conn, member):
                break
        else:
            raise RuntimeError("no free member lock")
        self._conn, self._owned = conn, set()

    def rebalance(self) -> tuple[frozenset[int], frozenset[int]]:
        """Move toward a fair share of the slices; returns (gained, lost)."""
        self.join()
        conn = self._conn
        assert conn is not None
        members = max(1, self._members(conn))
        share = math.ceil(self.partitions / members)
        lost: set[int] = set()
        while len(self._owned) > share:
            slice_ = max(self._owned)
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self._space, slice_))
            self._owned.discard(slice_)
            lost.add(slice_)
        gained: set[int] = set()
        for i in range(self.partitions):
            if len(self._owned) >= share:
                break
            slice_ = (self._start + i) % self.partitions
            if slice_ not in self._owned and self._try(conn, slice_):
                self._owned.add(slice_)
                gained.add(slice_)
        return frozenset(gained), frozenset(lost)

    def leave(self) -> None:
        """Release every slice and the membership (closing the connection does it)."""
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
        self._conn, self._owned = None, set()

    def slice_of_sql(self, column: str) -> str:
        """A SQL expression giving the slice of `column` (a text key), as ``slice_of`` does."""
        return f"(abs(hashtext({column})::bigint) % {self.partitions})"

    def _members(self, conn: Conn) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid::int = %s AND objid >= %s AND objsubid = 2",
            (self._space, _MEMBER_BASE),
        ).fetchone()
        return int(str(row[0])) if row else 1

    def _try(self, conn: Conn, key: int) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (self._space, key)).fetchone()
        return bool(row and row[0])
