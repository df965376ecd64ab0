"""Small factories for API tests: an owner and device, readings, an incident and its ticket.

They write rows the way the responder does (tickets through ``insert_ticket`` with dues from
``rules.sla.dues``) so the API reads what production writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from forewarn.domain import Segment
from notifier.tickets import repository as tickets
from notifier.tickets.sla import dues
from notifier.tickets.types import Priority, Tier
from rules.loader import load_rules

Conn = psycopg.Connection[tuple[Any, ...]]
RULES = load_rules()


def device(
    db: Conn,
    device_id: str,
    *,
    model: str = "lock-s1",
    firmware: str = "2.1.0",
    kind: str = "lock",
    online: bool = True,
    owner_id: str | None = None,
) -> str:
    """An owner (named after the device unless given) and a device."""
    owner_id = owner_id or f"owner-{device_id}"
    db.execute(
        "INSERT INTO owners (owner_id, name, contact, locale) VALUES (%s, %s, %s, 'en-US') "
        "ON CONFLICT DO NOTHING",
        (owner_id, f"Owner of {device_id}", f"{owner_id}@example.com"),
    )
    db.execute(
        "INSERT INTO devices (device_id, model, kind, firmware, owner_id, online, last_seen) "
        "VALUES (%s, %s, %s, %s, %s, %s, now())",
        (device_id, model, kind, firmware, owner_id, online),
    )
    return device_id


def readings(
    db: Conn,
    device_id: str,
    *,
    start: datetime,
    minutes: int,
    battery_from: float = 80.0,
    step_minutes: int = 1,
) -> int:
    """A reading every `step_minutes` from `start`, battery falling 0.05 % a reading."""
    rows = [
        (
            device_id,
            start + timedelta(minutes=i),
            -60.0 - (i % 7),
            battery_from - 0.05 * n,
            25.0 + (i % 5) * 0.3,
        )
        for n, i in enumerate(range(0, minutes, step_minutes))
    ]
    if rows:
        # The days the readings fall on, as the ingester makes them: tests pin their own clock,
        # and a migration only makes partitions around the wall clock's today.
        telemetry_days(db, first=rows[0][1], last=rows[-1][1])
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry (device_id, ts, received_at, signal_dbm, battery_pct, "
            "temperature_c, source) VALUES (%s, %s, now(), %s, %s, %s, 'test')",
            rows,
        )
    return len(rows)


def incident(
    db: Conn,
    device_id: str,
    *,
    fault: str = "battery_failure",
    opened_at: datetime,
    probability: float = 0.9,
    state: str = "ticketed",
) -> int:
    """An open incident with a prediction and reasons."""
    row = db.execute(
        """INSERT INTO incidents (device_id, fault, owner_id, segment, rule, state, opened_at,
               last_predicted_at, probability, max_probability, reasons, model_version)
           SELECT %s, %s, owner_id, 'regular', 'test-rule', %s, %s, %s, %s, %s, %s, NULL
           FROM devices WHERE device_id = %s RETURNING incident_id""",
        (
            device_id,
            fault,
            state,
            opened_at,
            opened_at,
            probability,
            probability,
            ["battery fell 12 % in 6 h", "voltage sagging under load"],
            device_id,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def ticket(
    db: Conn,
    device_id: str,
    *,
    opened_at: datetime,
    priority: Priority = Priority.MINOR,
    tier: Tier = Tier.L1,
    fault: str = "battery_failure",
    incident_id: int | None = None,
) -> int:
    """A device ticket opened at `opened_at`, with dues from the shipped rule set."""
    if incident_id is None:
        incident_id = incident(db, device_id, fault=fault, opened_at=opened_at)
    team = tier.team
    fields = {
        "kind": "device",
        "incident_id": incident_id,
        "customer_id": f"owner-{device_id}",
        "contact": f"owner-{device_id}@example.com",
        "device_id": device_id,
        "model": "lock-s1",
        "firmware": "2.1.0",
        "fault": fault,
        "symptom": f"{fault.replace('_', ' ')} predicted",
        "trigger": "test",
        "scope": f"1 device ({device_id})",
        "evidence": {"reasons": ["test"]},
        "segment": "regular",
        "priority": priority.value,
        "tier": tier.value,
        "team": team,
        # As open_device_ticket writes it, so each language can say the symptom.
        "phrasing": {
            "symptom": {"code": "predicted", "fault": fault, "hours": 24, "probability": 0.87},
            "scope": {"code": "device", "device_id": device_id},
        },
    }
    due = dues(RULES, priority=priority, tier=tier, segment=Segment.REGULAR, opened_at=opened_at)
    tid = tickets.insert_ticket(db, fields=fields, dues=due, opened_at=opened_at)
    tickets.add_event(db, ticket_id=tid, at=opened_at, kind="opened", detail={"test": True})
    db.execute("UPDATE incidents SET ticket_id = %s WHERE incident_id = %s", (tid, incident_id))
    return tid


def guide_notification(
    db: Conn, *, incident_id: int, device_id: str, at: datetime, status: str = "sent"
) -> int:
    """An owner guide in the outbox for an incident."""
    row = db.execute(
        """INSERT INTO notifications (key, channel, audience, target, title, body, payload,
               owner_id, device_id, incident_id, guide_id, locale, created_at, not_before,
               status, attempts, sent_at)
           VALUES (%s, 'apprise', 'owner', 'json://127.0.0.1:9/', 'Battery low', 'Change it',
                   %s, %s, %s, %s, 'battery-low', 'en-US', %s, %s, %s,
                   CASE WHEN %s = 'pending' THEN 0 ELSE 1 END,
                   CASE WHEN %s = 'sent' THEN %s END)
           RETURNING notification_id""",
        (
            f"guide:{incident_id}:{at.isoformat()}",
            Jsonb({}),
            f"owner-{device_id}",
            device_id,
            incident_id,
            at,
            at,
            status,
            status,
            status,
            at,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def telemetry_days(db: Conn, *, first: datetime, last: datetime) -> None:
    """Make room for readings from `first` to `last`: the daily partitions the plain-PostgreSQL
    storage path needs (TimescaleDB makes its chunks itself)."""
    has = db.execute("SELECT to_regproc('forewarn_ensure_partitions') IS NOT NULL").fetchone()
    if has is not None and has[0]:
        db.execute("SELECT forewarn_ensure_partitions(%s, %s)", (first, last))


def fleet_incident(
    db: Conn,
    *,
    model: str,
    firmware: str,
    fault: str,
    opened_at: datetime,
    devices: int,
    priority: Priority = Priority.MAJOR,
    ticket_id: int | None = None,
) -> int:
    """An open fleet incident: one fault on many devices of one model and firmware."""
    row = db.execute(
        """INSERT INTO fleet_incidents (model, firmware, fault, opened_at, devices, priority,
               ticket_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING fleet_incident_id""",
        (model, firmware, fault, opened_at, devices, priority.value, ticket_id),
    ).fetchone()
    assert row is not None
    return int(row[0])
