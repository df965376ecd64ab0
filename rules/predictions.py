"""SQL that reads predictions for the rules: the ones written since the responder's cursor,
an incident's latest, and a device's stored ones for a replay. Keyword-only; the caller owns
the transaction; nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forewarn.domain import Prediction
from rules.repository import Conn


def _prediction(r: Sequence[Any]) -> Prediction:
    """A prediction from (device, fault, probability, at, horizon, hours to empty, reasons,
    model version)."""
    return Prediction(
        device_id=r[0],
        fault=r[1],
        probability=float(r[2]),
        at=r[3],
        horizon_h=float(r[4]),
        hours_to_empty=None if r[5] is None else float(r[5]),
        reasons=tuple(r[6]),
        model_version=r[7],
    )


def signals_since(
    conn: Conn, *, updated_after: datetime, limit: int
) -> list[tuple[Prediction, datetime]]:
    """Predictions written after `updated_after`, oldest write first, with their write time."""
    rows = conn.execute(
        """SELECT device_id, fault, probability, last_at, horizon_h, hours_to_empty, reasons,
                  model_version, updated_at
           FROM predictions WHERE updated_at > %s ORDER BY updated_at LIMIT %s""",
        (updated_after, limit),
    ).fetchall()
    return [
        (
            _prediction(r),
            r[8],
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Written:
    """A prediction row as the responder first reads it: its key, probability and write time,
    without its reasons (most rows are hints no rule acts on, read again in the overlap)."""

    device_id: str
    fault: str
    window_start: datetime
    probability: float
    written: datetime
    slice: int = 0


def written_since(
    conn: Conn,
    *,
    updated_after: datetime,
    limit: int,
    slices: Sequence[int] | None = None,
    partitions: int = 1,
) -> list[Written]:
    """Predictions written after `updated_after`, oldest write first, as ``Written`` rows;
    given `slices`, only those of the devices in them (by ``forewarn.leases``' hash), each
    with its slice."""
    if slices is None:
        rows = conn.execute(
            """SELECT device_id, fault, window_start, probability, updated_at, 0
               FROM predictions WHERE updated_at > %s ORDER BY updated_at LIMIT %s""",
            (updated_after, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            """SELECT device_id, fault, window_start, probability, updated_at, s
               FROM (SELECT device_id, fault, window_start, probability, updated_at,
                            (abs(hashtext(device_id)::bigint) %% %(p)s)::int AS s
                     FROM predictions WHERE updated_at > %(after)s) p
               WHERE s = ANY(%(slices)s) ORDER BY updated_at LIMIT %(limit)s""",
            {"p": partitions, "after": updated_after, "slices": list(slices), "limit": limit},
        ).fetchall()
    return [Written(r[0], r[1], r[2], float(r[3]), r[4], int(r[5])) for r in rows]


def signals_of(conn: Conn, *, rows: Sequence[Written]) -> list[tuple[Prediction, datetime]]:
    """The whole predictions of `rows`, in their order, with their write time now (later than
    the row's when the scorer updated it since; a row gone since is left out)."""
    if not rows:
        return []
    found = conn.execute(
        """SELECT p.device_id, p.fault, p.probability, p.last_at, p.horizon_h, p.hours_to_empty,
                  p.reasons, p.model_version, p.updated_at, k.n
           FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) WITH ORDINALITY
                AS k(device_id, fault, window_start, n)
           JOIN predictions p USING (device_id, fault, window_start)
           ORDER BY k.n""",
        (
            [r.device_id for r in rows],
            [r.fault for r in rows],
            [r.window_start for r in rows],
        ),
    ).fetchall()
    return [(_prediction(r), r[8]) for r in found]


def incident_signal(conn: Conn, *, incident_id: int) -> Prediction:
    """An incident's latest prediction, as a signal (for a ticket opened later)."""
    row = conn.execute(
        """SELECT i.device_id, i.fault, i.probability, i.last_predicted_at,
                  coalesce(p.horizon_h, 24), i.hours_to_empty, i.reasons, i.model_version
           FROM incidents i
           LEFT JOIN LATERAL (SELECT horizon_h FROM predictions
                              WHERE device_id = i.device_id AND fault = i.fault
                              ORDER BY window_start DESC LIMIT 1) p ON true
           WHERE i.incident_id = %s""",
        (incident_id,),
    ).fetchone()
    assert row is not None
    return _prediction(row)


def device_signals(
    conn: Conn, *, device_id: str, since: datetime, until: datetime
) -> list[Prediction]:
    """A device's stored predictions whose latest reading falls in (`since`, `until`], oldest
    first: one per fault and hour, as the scorer keeps them (for replaying a rule set)."""
    rows = conn.execute(
        """SELECT device_id, fault, probability, last_at, horizon_h, hours_to_empty, reasons,
                  model_version
           FROM predictions WHERE device_id = %s AND last_at > %s AND last_at <= %s
           ORDER BY last_at, fault""",
        (device_id, since, until),
    ).fetchall()
    return [_prediction(r) for r in rows]
