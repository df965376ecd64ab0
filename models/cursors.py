"""SQL for the scorers' cursors: per slice of the devices, how far (by write time) readings
have been scored. Keyword-only; the caller owns the transaction (the scorer moves cursors in
the transaction that writes the predictions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from models.repository import Conn


def claim(
    conn: Conn, *, partitions: int, slices: Sequence[int], start: datetime
) -> dict[int, datetime]:
    """The cursors of `slices`; a slice never scored before starts at `start`."""
    conn.execute(
        """INSERT INTO scorer_cursors (partitions, slice, ingested_after)
           SELECT %s, s, %s FROM unnest(%s::int[]) AS s
           ON CONFLICT (partitions, slice) DO NOTHING""",
        (partitions, start, list(slices)),
    )
    rows = conn.execute(
        "SELECT slice, ingested_after FROM scorer_cursors "
        "WHERE partitions = %s AND slice = ANY(%s)",
        (partitions, list(slices)),
    ).fetchall()
    return {int(str(r[0])): r[1] for r in rows}  # type: ignore[misc]


def oldest(conn: Conn) -> datetime | None:
    """The oldest cursor of any split (where a new split of the devices starts)."""
    row = conn.execute("SELECT min(ingested_after) FROM scorer_cursors").fetchone()
    return None if row is None else row[0]  # type: ignore[return-value]


def advance(
    conn: Conn, *, partitions: int, moves: Mapping[int, tuple[datetime, datetime]]
) -> set[int]:
    """Move each slice's cursor from its old value to its new one, only where it still has
    the old one; returns the slices that did not (another scorer moved them)."""
    if not moves:
        return set()
    slices = sorted(moves)
    rows = conn.execute(
        """UPDATE scorer_cursors c
           SET ingested_after = v.new, updated_at = clock_timestamp()
           FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[]) AS v(slice, old, new)
           WHERE c.partitions = %s AND c.slice = v.slice AND c.ingested_after = v.old
           RETURNING c.slice""",
        (slices, [moves[s][0] for s in slices], [moves[s][1] for s in slices], partitions),
    ).fetchall()
    return set(slices) - {int(str(r[0])) for r in rows}
