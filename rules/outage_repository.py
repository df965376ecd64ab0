"""SQL for network outages: fleet incidents of fault ``outage`` and their devices
(``fleet_incident_devices``, migration 16). Keyword-only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from forewarn.domain import OUTAGE
from notifier.tickets.types import Priority
from rules.repository import Conn


@dataclass(frozen=True, slots=True)
class OpenOutage:
    """An open outage: its fleet incident, ticket, and when its first device fell silent."""

    fleet_incident_id: int
    ticket_id: int | None
    since: datetime | None
    priority: Priority


@dataclass(frozen=True, slots=True)
class Member:
    """A device in an outage, with what the reason may say it shares with the others."""

    device_id: str
    silent_since: datetime | None
    model: str | None
    firmware: str | None
    kind: str | None
    owner_id: str | None
    account: str | None  # the enterprise account, if the owner is one
    time_zone: str | None


def open_outages(conn: Conn) -> list[OpenOutage]:
    """The open outages, oldest first."""
    rows = conn.execute(
        """SELECT f.fleet_incident_id, f.ticket_id, min(m.silent_since), f.priority
           FROM fleet_incidents f
           LEFT JOIN fleet_incident_devices m USING (fleet_incident_id)
           WHERE f.fault = %s AND f.closed_at IS NULL
           GROUP BY f.fleet_incident_id ORDER BY f.fleet_incident_id""",
        (OUTAGE,),
    ).fetchall()
    return [OpenOutage(int(r[0]), r[1], r[2], Priority(r[3])) for r in rows]


def last_readings(conn: Conn, *, device_ids: Sequence[str]) -> dict[str, datetime | None]:
    """The newest reading time of each of `device_ids` that is registered (None: none yet)."""
    rows = conn.execute(
        "SELECT device_id, last_reading_at FROM devices WHERE device_id = ANY(%s)",
        (list(device_ids),),
    ).fetchall()
    return {str(r[0]): r[1] for r in rows}


def open_outage(conn: Conn, *, now: datetime, priority: Priority) -> int:
    """A new outage (no devices yet); returns its fleet incident's id."""
    row = conn.execute(
        """INSERT INTO fleet_incidents (fault, opened_at, devices, priority)
           VALUES (%s, %s, 0, %s) RETURNING fleet_incident_id""",
        (OUTAGE, now, priority.value),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_members(
    conn: Conn,
    *,
    fleet_incident_id: int,
    devices: Sequence[tuple[str, datetime | None]],
    now: datetime,
) -> int:
    """Put (device, silent since) into the outage; a device that had left it (it spoke, then
    fell silent again) is back in. Returns how many joined."""
    if not devices:
        return 0
    rows = conn.execute(
        """INSERT INTO fleet_incident_devices AS m
               (fleet_incident_id, device_id, silent_since, joined_at)
           SELECT %s, d, s, %s FROM unnest(%s::text[], %s::timestamptz[]) AS u (d, s)
           ON CONFLICT (fleet_incident_id, device_id) DO UPDATE
               SET silent_since = EXCLUDED.silent_since, joined_at = EXCLUDED.joined_at,
                   left_at = NULL
               WHERE m.left_at IS NOT NULL
           RETURNING device_id""",
        (fleet_incident_id, now, [d for d, _ in devices], [s for _, s in devices]),
    ).fetchall()
    return len(rows)


def members(conn: Conn, *, fleet_incident_id: int) -> list[Member]:
    """The devices still in the outage, with their model, owner and owner's time zone."""
    rows = conn.execute(
        """SELECT m.device_id, m.silent_since, d.model, d.firmware, d.kind, o.owner_id,
                  CASE WHEN o.account_type = 'enterprise'
                       THEN coalesce(o.enterprise_account, o.name) END,
                  o.time_zone
           FROM fleet_incident_devices m
           LEFT JOIN devices d USING (device_id)
           LEFT JOIN owners o USING (owner_id)
           WHERE m.fleet_incident_id = %s AND m.left_at IS NULL
           ORDER BY m.device_id""",
        (fleet_incident_id,),
    ).fetchall()
    return [Member(*r) for r in rows]


def set_outage(
    conn: Conn,
    *,
    fleet_incident_id: int,
    devices: int,
    reason: str,
    priority: Priority | None = None,
    ticket_id: int | None = None,
) -> None:
    """Record an outage's device count (all that ever joined), reason, priority and ticket."""
    conn.execute(
        """UPDATE fleet_incidents SET devices = greatest(devices, %s), reason = %s,
                  priority = coalesce(%s, priority), ticket_id = coalesce(%s, ticket_id)
           WHERE fleet_incident_id = %s""",
        (
            devices,
            reason,
            None if priority is None else priority.value,
            ticket_id,
            fleet_incident_id,
        ),
    )


def members_back(conn: Conn, *, now: datetime) -> list[tuple[int, str]]:
    """Mark the devices of open outages that have reported since they fell silent as left;
    returns (fleet incident, device) of each."""
    rows = conn.execute(
        """UPDATE fleet_incident_devices m SET left_at = %s
           FROM fleet_incidents f, devices d
           WHERE f.fleet_incident_id = m.fleet_incident_id AND f.closed_at IS NULL
             AND d.device_id = m.device_id AND m.left_at IS NULL
             AND d.last_reading_at > coalesce(m.silent_since, '-infinity')
           RETURNING m.fleet_incident_id, m.device_id""",
        (now,),
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def close_empty(conn: Conn, *, now: datetime) -> list[tuple[int, int | None]]:
    """Close the open outages none of whose devices is still silent; returns (fleet
    incident, ticket) of each."""
    rows = conn.execute(
        """UPDATE fleet_incidents f SET closed_at = greatest(%s, f.opened_at)
           WHERE f.fault = %s AND f.closed_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM fleet_incident_devices m
                             WHERE m.fleet_incident_id = f.fleet_incident_id
                               AND m.left_at IS NULL)
           RETURNING f.fleet_incident_id, f.ticket_id""",
        (now, OUTAGE),
    ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]
