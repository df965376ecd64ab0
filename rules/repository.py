"""SQL the responder needs: facts about devices, their history, incidents, fleet incidents,
snoozes and the predictions to follow. Keyword-only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from forewarn.domain import Device, Prediction, Segment
from notifier.tickets.types import Priority
from rules.decide import Decision
from rules.types import OpenIncident

Conn = psycopg.Connection[Any]


def lock(conn: Conn, *, key: str) -> None:
    """Serialise deciders on `key` until the transaction ends (two scorers, one incident)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


_COLUMNS = (
    "incident_id",
    "state",
    "rule",
    "segment",
    "opened_at",
    "last_predicted_at",
    "guide_sent_at",
    "ticket_due_at",
    "ticket_id",
    "fleet_incident_id",
)
INCIDENT_COLUMNS = ", ".join(_COLUMNS)


def incident_from_row(r: tuple[Any, ...]) -> OpenIncident:
    """An open incident from a row of INCIDENT_COLUMNS."""
    return OpenIncident(r[0], r[1], r[2], Segment(r[3]), r[4], r[5], r[6], r[7], r[8], r[9])


def insert_incident(
    conn: Conn,
    *,
    signal: Prediction,
    device: Device,
    decision: Decision,
    now: datetime,
    recurrence_of: int | None,
) -> int | None:
    """Open an incident; None if one is already open (the partial unique index says so)."""
    assert decision.segment is not None and decision.rule is not None
    row = conn.execute(
        """INSERT INTO incidents (device_id, fault, owner_id, segment, rule, state, opened_at,
               last_predicted_at, probability, max_probability, hours_to_empty, reasons,
               model_version, ticket_due_at, recurrence_of)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (device_id, fault) WHERE closed_at IS NULL DO NOTHING
           RETURNING incident_id""",
        (
            signal.device_id,
            signal.fault,
            device.owner.owner_id if device.owner else None,
            decision.segment.value,
            decision.rule,
            decision.state,
            now,
            signal.at,
            signal.probability,
            signal.probability,
            signal.hours_to_empty,
            list(signal.reasons),
            signal.model_version,
            decision.ticket_due_at,
            recurrence_of,
        ),
    ).fetchone()
    return None if row is None else int(row[0])


def track(conn: Conn, *, incident_id: int, signal: Prediction) -> None:
    """Note a further prediction on an open incident."""
    conn.execute(
        """UPDATE incidents SET last_predicted_at = greatest(last_predicted_at, %s),
                  probability = %s, max_probability = greatest(max_probability, %s),
                  hours_to_empty = coalesce(%s, hours_to_empty), reasons = %s,
                  model_version = %s, updated_at = clock_timestamp()
           WHERE incident_id = %s""",
        (
            signal.at,
            signal.probability,
            signal.probability,
            signal.hours_to_empty,
            list(signal.reasons),
            signal.model_version,
            incident_id,
        ),
    )


def update_incident(conn: Conn, *, incident_id: int, **values: Any) -> None:
    """Set some columns of an incident (state, guide_id, guide_sent_at, ticket_id...)."""
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    conn.execute(
        f"UPDATE incidents SET {sets}, updated_at = clock_timestamp() "
        "WHERE incident_id = %(incident_id)s",
        values | {"incident_id": incident_id},
    )


@dataclass(frozen=True, slots=True)
class Watched:
    """An open incident the clock may act on."""

    device_id: str
    fault: str
    incident: OpenIncident


def open_incident(conn: Conn, *, incident_id: int) -> OpenIncident | None:
    """One incident if it is still open."""
    row = conn.execute(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE incident_id = %s AND closed_at IS NULL",
        (incident_id,),
    ).fetchone()
    return None if row is None else incident_from_row(row)


def open_fleet(
    conn: Conn,
    *,
    model: str,
    firmware: str,
    fault: str,
    now: datetime,
    devices: int,
    priority: Priority,
) -> int:
    """A new fleet incident for a firmware cohort; returns its id."""
    row = conn.execute(
        """INSERT INTO fleet_incidents (model, firmware, fault, opened_at, devices, priority)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING fleet_incident_id""",
        (model, firmware, fault, now, devices, priority.value),
    ).fetchone()
    assert row is not None
    return int(row[0])


def link_cohort(
    conn: Conn, *, fleet_incident_id: int, model: str, firmware: str, fault: str, since: datetime
) -> list[int]:
    """Tie the cohort's open incidents since `since` to the fleet incident; returns the
    device tickets they had, to be linked to the fleet ticket."""
    rows = conn.execute(
        """UPDATE incidents i SET fleet_incident_id = %s, updated_at = clock_timestamp()
           FROM devices d
           WHERE d.device_id = i.device_id AND d.model = %s AND d.firmware = %s
             AND i.fault = %s AND i.closed_at IS NULL AND i.opened_at >= %s
             AND i.fleet_incident_id IS NULL
           RETURNING i.ticket_id""",
        (fleet_incident_id, model, firmware, fault, since),
    ).fetchall()
    return [int(r[0]) for r in rows if r[0] is not None]


def update_fleet(
    conn: Conn,
    *,
    fleet_incident_id: int,
    devices: int,
    priority: Priority | None = None,
    ticket_id: int | None = None,
) -> None:
    """Record a fleet incident's device count and priority (never lower) and ticket."""
    conn.execute(
        """UPDATE fleet_incidents SET devices = greatest(devices, %(devices)s),
                  priority = CASE WHEN array_position(%(ranks)s, %(priority)s::text)
                                       > array_position(%(ranks)s, priority)
                                  THEN %(priority)s ELSE priority END,
                  ticket_id = coalesce(%(ticket)s, ticket_id)
           WHERE fleet_incident_id = %(id)s""",
        {
            "devices": devices,
            "priority": None if priority is None else priority.value,
            "ticket": ticket_id,
            "id": fleet_incident_id,
            "ranks": ["minor", "major", "critical"],
        },
    )


def fleet_ticket(conn: Conn, *, fleet_incident_id: int) -> int | None:
    """The fleet incident's ticket."""
    row = conn.execute(
        "SELECT ticket_id FROM fleet_incidents WHERE fleet_incident_id = %s",
        (fleet_incident_id,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def add_snooze(
    conn: Conn,
    *,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    device_id: str | None = None,
    model: str | None = None,
    firmware: str | None = None,
    fault: str | None = None,
    created_by: str | None = None,
) -> int:
    """A snooze for a device, or a maintenance window for a firmware cohort."""
    row = conn.execute(
        """INSERT INTO snoozes (device_id, model, firmware, fault, starts_at, ends_at, reason,
                                created_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING snooze_id""",
        (device_id, model, firmware, fault, starts_at, ends_at, reason, created_by),
    ).fetchone()
    assert row is not None
    return int(row[0])


def cursor(conn: Conn, *, name: str) -> datetime | None:
    """Where the responder `name` has read predictions up to."""
    row = conn.execute(
        "SELECT updated_after FROM responder_cursors WHERE name = %s", (name,)
    ).fetchone()
    return None if row is None else row[0]


def cursors(conn: Conn, *, names: Sequence[str]) -> dict[str, datetime]:
    """Where each of the responder cursors `names` stands (those that exist)."""
    rows = conn.execute(
        "SELECT name, updated_after FROM responder_cursors WHERE name = ANY(%s)", (list(names),)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def save_cursor(conn: Conn, *, name: str, updated_after: datetime) -> None:
    """Move the responder's cursor (never backwards)."""
    conn.execute(
        """INSERT INTO responder_cursors (name, updated_after) VALUES (%s, %s)
           ON CONFLICT (name) DO UPDATE
           SET updated_after = greatest(responder_cursors.updated_after, EXCLUDED.updated_after)""",
        (name, updated_after),
    )


def db_now(conn: Conn) -> datetime:
    """The database's clock (prediction write times are on it)."""
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def guides_sent(conn: Conn, *, incident_id: int) -> list[dict[str, Any]]:
    """The guides queued to the owner for an incident, with where they stand."""
    rows = conn.execute(
        """SELECT guide_id, locale, status, created_at, sent_at FROM notifications
           WHERE incident_id = %s AND audience = 'owner' ORDER BY notification_id""",
        (incident_id,),
    ).fetchall()
    return [
        {
            "guide_id": r[0],
            "locale": r[1],
            "status": r[2],
            "queued_at": r[3].isoformat(),
            "sent_at": None if r[4] is None else r[4].isoformat(),
        }
        for r in rows
    ]


def due_incidents(
    conn: Conn,
    *,
    now: datetime,
    clear_after: timedelta,
    slices: Sequence[int] | None = None,
    partitions: int = 1,
) -> list[Watched]:
    """Open incidents the clock may act on: their device looks recovered, or their ticket
    wait has passed (only devices in `slices` of `partitions`, when given)."""
    rows = conn.execute(
        f"""SELECT i.device_id, i.fault, {", ".join("i." + c for c in _COLUMNS)}
            FROM incidents i JOIN devices d USING (device_id)
            WHERE i.closed_at IS NULL
              AND (d.last_reading_at - i.last_predicted_at >= %(clear)s
                   OR (i.ticket_due_at <= %(now)s AND i.ticket_id IS NULL))
              AND (%(slices)s::int[] IS NULL
                   OR (abs(hashtext(i.device_id)::bigint) %% %(p)s)::int = ANY(%(slices)s))
            ORDER BY i.incident_id""",
        {
            "clear": clear_after,
            "now": now,
            "slices": None if slices is None else list(slices),
            "p": partitions,
        },
    ).fetchall()
    return [Watched(r[0], r[1], incident_from_row(r[2:])) for r in rows]


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """Open work closed by `withdraw_incidents`."""

    incidents: int
    fleet_incidents: int


def withdraw_incidents(conn: Conn, *, registered_by: str, at: datetime) -> Withdrawn:
    """Close the open incidents of devices registered by `registered_by` (outcome
    'withdrawn'), and the open fleet incidents (outages too) made only of such devices."""
    args = {"at": at, "by": registered_by}
    incidents = conn.execute(
        """UPDATE incidents SET state = 'closed', closed_at = greatest(%(at)s, opened_at),
                  outcome = 'withdrawn', updated_at = clock_timestamp()
           WHERE closed_at IS NULL
             AND device_id IN (SELECT device_id FROM devices WHERE registered_by = %(by)s)""",
        args,
    ).rowcount
    fleet = conn.execute(
        """UPDATE fleet_incidents f SET closed_at = greatest(%(at)s, f.opened_at)
           WHERE f.closed_at IS NULL
             AND EXISTS (SELECT 1 FROM incidents i JOIN devices d USING (device_id)
                         WHERE i.fleet_incident_id = f.fleet_incident_id
                           AND d.registered_by = %(by)s)
             AND NOT EXISTS (SELECT 1 FROM incidents i JOIN devices d USING (device_id)
                             WHERE i.fleet_incident_id = f.fleet_incident_id
                               AND d.registered_by <> %(by)s)""",
        args,
    ).rowcount
    fleet += conn.execute(
        """UPDATE fleet_incidents f SET closed_at = greatest(%(at)s, f.opened_at)
           WHERE f.closed_at IS NULL AND f.fault = 'outage'
             AND NOT EXISTS (SELECT 1 FROM fleet_incident_devices m JOIN devices d USING (device_id)
                             WHERE m.fleet_incident_id = f.fleet_incident_id
                               AND d.registered_by <> %(by)s)""",
        args,
    ).rowcount
    return Withdrawn(incidents, fleet)


def ticket_incidents(conn: Conn, *, ticket_id: int) -> list[tuple[str, str, datetime]]:
    """(device, fault, opened at) of the incidents a ticket is about: its own, or for a fleet
    ticket every incident of its fleet incident."""
    rows = conn.execute(
        """SELECT i.device_id, i.fault, i.opened_at FROM tickets t
           JOIN incidents i ON i.incident_id = t.incident_id
                            OR (t.kind = 'fleet' AND i.fleet_incident_id = t.fleet_incident_id)
           WHERE t.ticket_id = %s ORDER BY i.incident_id""",
        (ticket_id,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), r[2]) for r in rows]


def close_ticket_incidents(conn: Conn, *, ticket_id: int, at: datetime) -> int:
    """Close the open incidents a resolved ticket was about (outcome 'ticket_closed'): its
    own, or for a fleet ticket its fleet incident and every device incident in it. Returns
    how many device incidents were closed."""
    args = {"id": ticket_id, "at": at}
    closed = conn.execute(
        """UPDATE incidents i SET state = 'closed', closed_at = %(at)s,
                  outcome = 'ticket_closed', updated_at = clock_timestamp()
           FROM tickets t
           WHERE t.ticket_id = %(id)s AND i.closed_at IS NULL
             AND (i.incident_id = t.incident_id
                  OR (t.kind = 'fleet' AND i.fleet_incident_id = t.fleet_incident_id))""",
        args,
    ).rowcount
    conn.execute(
        """UPDATE fleet_incidents f SET closed_at = %(at)s FROM tickets t
           WHERE t.ticket_id = %(id)s AND t.kind = 'fleet' AND f.closed_at IS NULL
             AND f.fleet_incident_id = t.fleet_incident_id""",
        args,
    )
    return closed


def not_onboarded(conn: Conn, *, activated_since: datetime, limit: int = 200) -> list[str]:
    """Devices activated since `activated_since` that have reported, whose consumer owner has
    a notification target and no onboarding yet for the device's kind; first reported first."""
    rows = conn.execute(
        """SELECT d.device_id FROM devices d JOIN owners o USING (owner_id)
           WHERE d.first_seen IS NOT NULL AND d.kind IS NOT NULL
             AND d.activated_at >= %s
             AND o.account_type = 'consumer' AND o.notify_targets <> '{}'
             AND NOT EXISTS (SELECT 1 FROM onboarded b
                             WHERE b.owner_id = d.owner_id AND b.kind = d.kind)
           ORDER BY d.first_seen, d.device_id LIMIT %s""",
        (activated_since, limit),
    ).fetchall()
    return [str(r[0]) for r in rows]


def mark_onboarded(
    conn: Conn, *, owner_id: str, kind: str, device_id: str, guide_id: str, at: datetime
) -> bool:
    """Record that the owner got (or is getting) the onboarding for `kind`; False if they
    already had."""
    row = conn.execute(
        """INSERT INTO onboarded (owner_id, kind, device_id, guide_id, at)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING owner_id""",
        (owner_id, kind, device_id, guide_id, at),
    ).fetchone()
    return row is not None
