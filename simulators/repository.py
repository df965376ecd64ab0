"""Registering a simulated fleet (through the registry, as a real fleet is) and its
ground-truth fault labels.

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

from forewarn import vault
from registry import repository as registry
from registry import validate
from registry.types import Outcome
from simulators.fleet import Device, FaultEpisode, Fleet, Owner

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
    """Register owners through the registry, as any owner is; returns rows written."""
    records = [
        validate.owner(
            {
                "owner_id": o.owner_id,
                "name": o.name,
                "contact": o.contact,
                "locale": o.locale,
                "time_zone": o.time_zone,
                "quiet_start": o.quiet_start,
                "quiet_end": o.quiet_end,
                "account_type": o.account_type.value,
                "enterprise_account": o.enterprise_account,
            }
        )
        for o in owners
    ]
    done = registry.upsert_owners(conn, owners=records)
    return sum(outcome is not Outcome.UNCHANGED for outcome in done)


def upsert_devices(*, conn: psycopg.Connection[Any], devices: Iterable[Device]) -> int:
    """Register devices through the registry (registered by 'simulator'); returns rows
    written. What the ingester learns of a device is never touched."""
    records = [
        validate.device(
            {
                "device_id": d.device_id,
                "model": d.model,
                "kind": d.kind.value,
                "firmware": d.firmware,
                "owner_id": d.owner_id,
                "installed_at": d.activated_at,
            }
        )
        for d in devices
    ]
    done = registry.upsert_devices(conn, devices=records, registered_by="simulator")
    return sum(outcome is not Outcome.UNCHANGED for outcome in done)


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
    """Give every owner without a notification target the URL `prefix` + owner id (encrypted
    at rest as every owner's targets are)."""
    bare = [r[0] for r in conn.execute("SELECT owner_id FROM owners WHERE notify_targets = '{}'")]
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE owners SET notify_targets = ARRAY[%s] WHERE owner_id = %s",
            [(vault.seal(prefix + owner_id), owner_id) for owner_id in bare],
        )
    return len(bare)


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
