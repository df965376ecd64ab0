"""SQL that registers a simulated fleet and its ground-truth fault labels.

Keyword-only functions taking a connection; none of them commits: the caller owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from simulators.fleet import Device, FaultEpisode, Fleet, Owner

_UPSERT_OWNER = """
INSERT INTO owners (owner_id, name, contact, locale, time_zone, quiet_start, quiet_end,
                    account_type, enterprise_account)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (owner_id) DO UPDATE SET
    name = EXCLUDED.name,
    contact = EXCLUDED.contact,
    locale = EXCLUDED.locale,
    time_zone = EXCLUDED.time_zone,
    quiet_start = EXCLUDED.quiet_start,
    quiet_end = EXCLUDED.quiet_end,
    account_type = EXCLUDED.account_type,
    enterprise_account = EXCLUDED.enterprise_account
"""

# first_seen, last_seen, online and status_at belong to the ingester: never touched here.
_UPSERT_DEVICE = """
INSERT INTO devices (device_id, model, kind, firmware, owner_id, activated_at, registered_by)
VALUES (%s, %s, %s, %s, %s, %s, 'simulator')
ON CONFLICT (device_id) DO UPDATE SET
    model = EXCLUDED.model,
    kind = EXCLUDED.kind,
    firmware = EXCLUDED.firmware,
    owner_id = EXCLUDED.owner_id,
    activated_at = EXCLUDED.activated_at
"""

_INSERT_LABEL = """
INSERT INTO fault_labels (device_id, fault, onset_at, failure_at, source, cohort, run_id, detail)
VALUES (%s, %s, %s, %s, 'simulator', %s, %s, %s)
ON CONFLICT (device_id, fault, onset_at, source) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class Registered:
    """Rows written by `register_fleet` (labels counts only new ones)."""

    owners: int
    devices: int
    labels: int


def upsert_owners(*, conn: psycopg.Connection[Any], owners: Iterable[Owner]) -> int:
    """Insert or update owners (notify_targets is left alone); returns rows affected."""
    rows = [
        (
            o.owner_id,
            o.name,
            o.contact,
            o.locale,
            o.time_zone,
            o.quiet_start,
            o.quiet_end,
            o.account_type.value,
            o.enterprise_account,
        )
        for o in owners
    ]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_OWNER, rows)
        return max(cur.rowcount, 0)


def upsert_devices(*, conn: psycopg.Connection[Any], devices: Iterable[Device]) -> int:
    """Register devices as the simulator; ingest-owned columns are never overwritten."""
    rows = [
        (d.device_id, d.model, d.kind.value, d.firmware, d.owner_id, d.activated_at)
        for d in devices
    ]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(_UPSERT_DEVICE, rows)
        return max(cur.rowcount, 0)


def insert_fault_labels(
    *,
    conn: psycopg.Connection[Any],
    episodes: Iterable[FaultEpisode],
    run_id: str | None,
    devices: Iterable[Device] = (),
) -> int:
    """Insert ground-truth labels (source 'simulator'); existing ones are kept; returns new rows."""
    by_id = {d.device_id: d for d in devices}
    rows = []
    for e in episodes:
        device = by_id.get(e.device_id)
        detail = {"model": device.model, "firmware": device.firmware} if device else {}
        rows.append(
            (e.device_id, e.fault.value, e.onset_at, e.failure_at, e.cohort, run_id, Jsonb(detail))
        )
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(_INSERT_LABEL, rows)
        return max(cur.rowcount, 0)


def register_fleet(
    *, conn: psycopg.Connection[Any], fleet: Fleet, run_id: str | None
) -> Registered:
    """Owners, then devices, then fault labels, in the caller's transaction."""
    return Registered(
        owners=upsert_owners(conn=conn, owners=fleet.owners),
        devices=upsert_devices(conn=conn, devices=fleet.devices),
        labels=insert_fault_labels(
            conn=conn, episodes=fleet.episodes, run_id=run_id, devices=fleet.devices
        ),
    )


def default_owner_targets(*, conn: psycopg.Connection[Any], prefix: str) -> int:
    """Give every owner without a notification target the URL `prefix` + owner id."""
    cur = conn.execute(
        "UPDATE owners SET notify_targets = ARRAY[%s || owner_id] WHERE notify_targets = '{}'",
        (prefix,),
    )
    return cur.rowcount


def record_owner_fixes(
    *, conn: psycopg.Connection[Any], fixes: Iterable[tuple[str, str, datetime]]
) -> int:
    """Note in the truth that owners fixed these faults after a guide: ``detail.owner_fixed_at``
    on the simulator's label of that device and fault (its latest episode before the fix);
    returns how many labels were noted."""
    noted = 0
    for device_id, fault, fixed_at in fixes:
        noted += conn.execute(
            """UPDATE fault_labels SET detail = detail || jsonb_build_object(
                       'owner_fixed_at', %s::timestamptz)
               WHERE id = (SELECT id FROM fault_labels
                           WHERE device_id = %s AND fault = %s AND source = 'simulator'
                             AND onset_at <= %s ORDER BY onset_at DESC LIMIT 1)""",
            (fixed_at, device_id, fault, fixed_at),
        ).rowcount
    return noted
