"""SQL only the demo needs: the highest ids in the acting tables when a run starts, and the
figures its summary prints from the tables. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from simulators.owners import GuideRead

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Marks:
    """The highest ids in the acting tables at a moment: a run counts only rows above them."""

    incident: int = 0
    ticket: int = 0
    fleet: int = 0
    notification: int = 0


def marks(conn: Conn) -> Marks:
    """The current highest ids."""
    row = conn.execute(
        """SELECT (SELECT coalesce(max(incident_id), 0) FROM incidents),
                  (SELECT coalesce(max(ticket_id), 0) FROM tickets),
                  (SELECT coalesce(max(fleet_incident_id), 0) FROM fleet_incidents),
                  (SELECT coalesce(max(notification_id), 0) FROM notifications)"""
    ).fetchone()
    assert row is not None
    return Marks(*(int(v) for v in row))


def summary_counts(conn: Conn, *, after: Marks = Marks()) -> dict[str, int]:
    """The figures the demo prints, straight from the tables (rows created after `after`)."""
    row = conn.execute(
        """SELECT
             (SELECT count(*) FROM incidents WHERE incident_id > %(i)s),
             (SELECT count(*) FROM incidents i WHERE incident_id > %(i)s
                AND outcome = 'recovered_after_guide'
                AND NOT EXISTS (SELECT 1 FROM fleet_incidents f
                                WHERE f.fleet_incident_id = i.fleet_incident_id
                                  AND f.ticket_id IS NOT NULL)),
             (SELECT count(*) FROM notifications WHERE notification_id > %(n)s
                AND audience = 'owner' AND guide_id IS NOT NULL AND incident_id IS NOT NULL
                AND status = 'sent'),
             (SELECT count(*) FROM notifications WHERE notification_id > %(n)s
                AND audience = 'owner' AND guide_id IS NOT NULL AND incident_id IS NOT NULL),
             (SELECT count(*) FROM tickets WHERE ticket_id > %(t)s AND kind = 'device'),
             (SELECT count(*) FROM tickets WHERE ticket_id > %(t)s AND priority = 'critical'
                AND kind = 'device'),
             (SELECT count(*) FROM fleet_incidents WHERE fleet_incident_id > %(f)s),
             (SELECT coalesce(max(devices), 0) FROM fleet_incidents
                WHERE fleet_incident_id > %(f)s),
             (SELECT count(*) FROM ticket_events
                WHERE ticket_id > %(t)s AND kind = 'escalated'),
             (SELECT count(*) FROM ticket_events
                WHERE ticket_id > %(t)s AND kind = 'breach_warning'),
             (SELECT count(*) FROM notifications WHERE notification_id > %(n)s
                AND status = 'failed'),
             (SELECT count(*) FROM notifications WHERE notification_id > %(n)s
                AND audience = 'owner' AND key LIKE 'onboarding:%%'),
             (SELECT count(*) FROM notifications WHERE notification_id > %(n)s
                AND audience = 'owner' AND key LIKE 'notice:%%')
        """,
        {"i": after.incident, "t": after.ticket, "f": after.fleet, "n": after.notification},
    ).fetchone()
    assert row is not None
    keys = (
        "incidents",
        "recovered_after_guide",
        "guides_sent",
        "guides_queued",
        "device_tickets",
        "critical_tickets",
        "fleet_incidents",
        "fleet_devices",
        "escalations",
        "breach_warnings",
        "notifications_failed",
        "onboarded",
        "owner_notices",
    )
    return dict(zip(keys, (int(v) for v in row), strict=True))


def next_number(conn: Conn, *, below: int) -> tuple[int, int]:
    """How many simulated devices are numbered under `below`, and the number after the
    highest of them (1 when there are none): where a new fleet's numbers can start."""
    row = conn.execute(
        """SELECT count(*), coalesce(max(n), 0) + 1 FROM (
               SELECT substring(device_id FROM '-([0-9]+)$')::bigint AS n FROM devices
               WHERE registered_by = 'simulator' AND device_id ~ '-[0-9]+$') s
           WHERE n < %s""",
        (below,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def guides_delivered(conn: Conn, *, after: int) -> list[tuple[int, GuideRead]]:
    """Fault guides sent to owners with ids above `after`: (id, device, fault, sent at)."""
    rows = conn.execute(
        """SELECT n.notification_id, n.device_id, i.fault, n.sent_at
           FROM notifications n JOIN incidents i USING (incident_id)
           WHERE n.notification_id > %s AND n.audience = 'owner' AND n.status = 'sent'
             AND n.guide_id IS NOT NULL AND n.device_id IS NOT NULL AND n.sent_at IS NOT NULL
           ORDER BY n.notification_id""",
        (after,),
    ).fetchall()
    return [(int(r[0]), GuideRead(str(r[1]), str(r[2]), r[3])) for r in rows]
