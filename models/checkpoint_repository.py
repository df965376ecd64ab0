"""SQL for the scorers' slice checkpoints (``models.checkpoints``). Keyword-only; the caller
owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.repository import Conn


@dataclass(frozen=True, slots=True)
class Stored:
    """A slice's checkpoint as stored: the state holds every reading written up to
    `ingested_after`."""

    ingested_after: datetime
    layout: str
    devices: int
    state: bytes


def save(
    conn: Conn,
    *,
    partitions: int,
    slice_: int,
    ingested_after: datetime,
    layout: str,
    devices: int,
    state: bytes,
) -> bool:
    """Store a slice's checkpoint unless a newer one is stored; whether it was."""
    row = conn.execute(
        """INSERT INTO scorer_checkpoints AS c
               (partitions, slice, ingested_after, layout, devices, state)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (partitions, slice) DO UPDATE
           SET ingested_after = EXCLUDED.ingested_after, layout = EXCLUDED.layout,
               devices = EXCLUDED.devices, state = EXCLUDED.state,
               written_at = clock_timestamp()
           WHERE c.ingested_after <= EXCLUDED.ingested_after
           RETURNING c.slice""",
        (partitions, slice_, ingested_after, layout, devices, state),
    ).fetchone()
    return row is not None


def load(conn: Conn, *, partitions: int, slice_: int) -> Stored | None:
    """The slice's checkpoint, if one is stored."""
    row = conn.execute(
        "SELECT ingested_after, layout, devices, state FROM scorer_checkpoints "
        "WHERE partitions = %s AND slice = %s",
        (partitions, slice_),
    ).fetchone()
    if row is None:
        return None
    at, layout, devices, state = row
    assert isinstance(at, datetime) and isinstance(state, bytes | memoryview)
    return Stored(at, str(layout), int(str(devices)), bytes(state))
