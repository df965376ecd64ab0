"""SQL for the registry: owners, the registration columns of devices, device states.

Keyword-only functions taking a connection; none commits: the caller owns the transaction.
The ingester's columns of ``devices`` (first_seen, last_seen, online, status_at) are never
written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from forewarn import vault
from registry.types import (
    AccountType,
    DeviceRecord,
    DeviceState,
    Outcome,
    OwnerRecord,
    StoredCredential,
)

Conn = psycopg.Connection[Any]

_OWNER_COLUMNS = (
    "owner_id, name, contact, notify_targets, locale, time_zone, quiet_start, quiet_end, "
    "account_type, customer_since, enterprise_account, enterprise_team, contact_person, "
    "department"
)
_OWNER_TYPES = (  # notify_targets travels as text: an array literal per owner
    "text[], text[], text[], text[], text[], text[], time[], time[], text[], date[], text[], "
    "text[], text[], text[]"
)
_OWNER_UPDATES = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in _OWNER_COLUMNS.split(", ") if c != "owner_id"
)


def upsert_owners(conn: Conn, *, owners: Sequence[OwnerRecord]) -> list[Outcome]:
    """Insert or update owners; a row equal to what is stored is left alone. Returns what
    happened to each, in order."""
    if not owners:
        return []
    sealed = _sealed_targets(conn, owners)
    columns = [list(c) for c in zip(*(_owner_row(o, sealed) for o in owners), strict=True)]
    names = _OWNER_COLUMNS.split(", ")
    casts = ", ".join(f"%s::{t}" for t in _OWNER_TYPES.split(", "))
    # Each owner's targets travel as one array literal: unnest would flatten an array of arrays.
    select = ", ".join(
        "t.notify_targets::text[]" if c == "notify_targets" else f"t.{c}" for c in names
    )
    stored = ", ".join(f"o.{c}" for c in names)
    incoming = ", ".join(f"EXCLUDED.{c}" for c in names)
    rows = conn.execute(
        f"""INSERT INTO owners AS o ({_OWNER_COLUMNS})
            SELECT {select} FROM unnest({casts}) AS t({_OWNER_COLUMNS})
            ON CONFLICT (owner_id) DO UPDATE SET {_OWNER_UPDATES}, updated_at = clock_timestamp()
            WHERE ({stored}) IS DISTINCT FROM ({incoming})
            RETURNING owner_id, xmax = 0""",
        columns,
    ).fetchall()
    changed = _changed(rows)
    return [changed.get(o.owner_id, Outcome.UNCHANGED) for o in owners]


def _sealed_targets(conn: Conn, owners: Sequence[OwnerRecord]) -> dict[str, list[str]]:
    """Each owner's targets as they will be stored: encrypted (forewarn/vault.py), reusing the
    stored ciphertext when the targets did not change (encryption is randomised, and a row
    equal to what is stored must stay unchanged)."""
    stored = dict(
        conn.execute(
            "SELECT owner_id, notify_targets FROM owners WHERE owner_id = ANY(%s)",
            ([o.owner_id for o in owners],),
        ).fetchall()
    )
    out: dict[str, list[str]] = {}
    for o in owners:
        before = stored.get(o.owner_id)
        try:
            same = before is not None and [vault.open_value(t) for t in before] == list(o.targets)
        except vault.SealError:
            same = False
        out[o.owner_id] = list(before) if same and before else [vault.seal(t) for t in o.targets]
    return out


def _owner_row(o: OwnerRecord, sealed: dict[str, list[str]]) -> tuple[Any, ...]:
    return (
        o.owner_id,
        o.name,
        o.contact,
        "{" + ",".join(_quoted(t) for t in sealed[o.owner_id]) + "}",
        o.locale,
        o.time_zone,
        o.quiet_start,
        o.quiet_end,
        o.account_type.value,
        o.customer_since,
        o.enterprise_account,
        o.enterprise_team,
        o.contact_person,
        o.department,
    )


def _quoted(text: str) -> str:
    """An element of a PostgreSQL array literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _changed(rows: list[tuple[Any, ...]]) -> dict[str, Outcome]:
    return {str(r[0]): Outcome.CREATED if r[1] else Outcome.UPDATED for r in rows}


_DEVICE_COLUMNS = "device_id, model, kind, serial, firmware, owner_id, activated_at, state"
_DEVICE_TYPES = "text[], text[], text[], text[], text[], text[], timestamptz[], text[]"


def upsert_devices(
    conn: Conn, *, devices: Sequence[DeviceRecord], registered_by: str
) -> list[Outcome]:
    """Insert or update devices (a firmware left out keeps the one stored: devices report
    theirs); a change of state stamps state_at. Returns what happened to each, in order."""
    if not devices:
        return []
    rows = [astuple(d) for d in devices]
    columns = [list(c) for c in zip(*rows, strict=True)]
    columns[7] = [d.state.value for d in devices]
    casts = ", ".join(f"%s::{t}" for t in _DEVICE_TYPES.split(", "))
    changed = _changed(
        conn.execute(  # registered_by is the first parameter: it appears first in the text
            f"""INSERT INTO devices AS d ({_DEVICE_COLUMNS}, registered_by, state_at)
                SELECT t.*, %s, clock_timestamp()
                FROM unnest({casts}) AS t({_DEVICE_COLUMNS})
                ON CONFLICT (device_id) DO UPDATE SET
                    model = EXCLUDED.model, kind = EXCLUDED.kind, serial = EXCLUDED.serial,
                    firmware = coalesce(EXCLUDED.firmware, d.firmware),
                    owner_id = EXCLUDED.owner_id, activated_at = EXCLUDED.activated_at,
                    state = EXCLUDED.state,
                    state_at = CASE WHEN d.state <> EXCLUDED.state THEN clock_timestamp()
                                    ELSE d.state_at END,
                    updated_at = clock_timestamp()
                WHERE (d.model, d.kind, d.serial, d.owner_id, d.activated_at, d.state)
                      IS DISTINCT FROM (EXCLUDED.model, EXCLUDED.kind, EXCLUDED.serial,
                                        EXCLUDED.owner_id, EXCLUDED.activated_at, EXCLUDED.state)
                   OR (EXCLUDED.firmware IS NOT NULL AND EXCLUDED.firmware <> d.firmware)
                RETURNING device_id, xmax = 0""",
            [registered_by, *columns],
        ).fetchall()
    )
    return [changed.get(d.device_id, Outcome.UNCHANGED) for d in devices]


def set_state(conn: Conn, *, device_id: str, state: DeviceState) -> DeviceState | None:
    """Move a device to `state`; returns the state it had (None: no such device)."""
    row = conn.execute(
        """UPDATE devices d SET state = %s, state_at = clock_timestamp(),
                  updated_at = clock_timestamp()
           FROM (SELECT state FROM devices WHERE device_id = %s FOR UPDATE) before
           WHERE d.device_id = %s RETURNING before.state""",
        (state.value, device_id, device_id),
    ).fetchone()
    return None if row is None else DeviceState(row[0])


def owner(conn: Conn, *, owner_id: str) -> OwnerRecord | None:
    """One owner."""
    row = conn.execute(
        f"SELECT {_OWNER_COLUMNS} FROM owners WHERE owner_id = %s", (owner_id,)
    ).fetchone()
    return None if row is None else _owner(row)


def device(conn: Conn, *, device_id: str) -> DeviceRecord | None:
    """One device's registration."""
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = %s", (device_id,)
    ).fetchone()
    return None if row is None else _device(row)


def owner_ids(conn: Conn, *, among: Sequence[str]) -> set[str]:
    """Which of these owner ids exist."""
    rows = conn.execute(
        "SELECT owner_id FROM owners WHERE owner_id = ANY(%s)", (list(among),)
    ).fetchall()
    return {str(r[0]) for r in rows}


def owners(conn: Conn) -> Iterator[OwnerRecord]:
    """Every owner, by id (for export)."""
    with conn.cursor(name="registry_owners") as cur:
        cur.execute(f"SELECT {_OWNER_COLUMNS} FROM owners ORDER BY owner_id")
        for row in cur:
            yield _owner(row)


def devices(conn: Conn) -> Iterator[DeviceRecord]:
    """Every device, by id (for export)."""
    with conn.cursor(name="registry_devices") as cur:
        cur.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY device_id")
        for row in cur:
            yield _device(row)


def owners_page(
    conn: Conn, *, q: str | None, account_type: AccountType | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """A page of owners (by id) matching a search in id, name, contact or account, with how
    many devices each has; and how many match in all."""
    where = ["true"]
    args: dict[str, Any] = {"limit": limit, "offset": offset}
    if q:
        where.append(
            "(o.owner_id ILIKE %(q)s OR o.name ILIKE %(q)s OR o.contact ILIKE %(q)s "
            "OR o.enterprise_account ILIKE %(q)s)"
        )
        args["q"] = f"%{_like(q)}%"
    if account_type is not None:
        where.append("o.account_type = %(account_type)s")
        args["account_type"] = account_type.value
    clause = " AND ".join(where)
    with conn.cursor(row_factory=dict_row) as cur:
        total = cur.execute(f"SELECT count(*) AS n FROM owners o WHERE {clause}", args).fetchone()
        rows = cur.execute(
            f"""SELECT {_OWNER_COLUMNS.replace("notify_targets", "notify_targets AS targets")},
                       (SELECT count(*) FROM devices d WHERE d.owner_id = o.owner_id) AS devices
                FROM owners o WHERE {clause}
                ORDER BY owner_id LIMIT %(limit)s OFFSET %(offset)s""",
            args,
        ).fetchall()
    return int(total["n"]) if total else 0, rows


def device_states(conn: Conn, *, changed_after: datetime | None) -> list[tuple[str, str, datetime]]:
    """(device id, state, updated at) of devices changed after the time (all when None)."""
    rows = conn.execute(
        "SELECT device_id, state, updated_at FROM devices "
        "WHERE updated_at > coalesce(%s, '-infinity'::timestamptz)",
        (changed_after,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), r[2]) for r in rows]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _owner(r: Sequence[Any]) -> OwnerRecord:
    return OwnerRecord(
        owner_id=r[0],
        name=r[1],
        contact=r[2],
        targets=vault.open_all(r[3]),
        locale=r[4],
        time_zone=r[5],
        quiet_start=r[6],
        quiet_end=r[7],
        account_type=AccountType(r[8]),
        customer_since=r[9],
        enterprise_account=r[10],
        enterprise_team=r[11],
        contact_person=r[12],
        department=r[13],
    )


def _device(r: Sequence[Any]) -> DeviceRecord:
    return DeviceRecord(
        device_id=r[0],
        model=r[1],
        kind=r[2],
        serial=r[3],
        firmware=r[4],
        owner_id=r[5],
        installed_at=r[6],
        state=DeviceState(r[7]),
    )


def insert_credential(
    conn: Conn,
    *,
    username: str,
    device_id: str,
    bridge_base: str | None,
    salt: str,
    password_hash: str,
    iterations: int,
) -> None:
    """Store a new broker credential (its hash only)."""
    conn.execute(
        """INSERT INTO broker_credentials
               (username, device_id, bridge_base, salt, password_hash, iterations)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (username, device_id, bridge_base, salt, password_hash, iterations),
    )


def revoke_credentials(conn: Conn, *, device_id: str) -> int:
    """Revoke a device's active credentials; returns how many there were."""
    return conn.execute(
        "UPDATE broker_credentials SET revoked_at = clock_timestamp() "
        "WHERE device_id = %s AND revoked_at IS NULL",
        (device_id,),
    ).rowcount


def active_credentials(conn: Conn) -> list[StoredCredential]:
    """Every credential the broker should accept, by username: not revoked, of a device
    that is listened to (a suspended device's credential stops working until it resumes)."""
    rows = conn.execute(
        """SELECT c.username, c.salt, c.password_hash, c.iterations, c.bridge_base
           FROM broker_credentials c JOIN devices d USING (device_id)
           WHERE c.revoked_at IS NULL AND d.state IN ('provisioned', 'active')
           ORDER BY c.username"""
    ).fetchall()
    return [StoredCredential(*r) for r in rows]


def reseal_targets(conn: Conn, *, reseal: Callable[[str], str]) -> int:
    """Rewrite every owner's targets through `reseal` (key rotation); returns owners changed."""
    rows = conn.execute(
        "SELECT owner_id, notify_targets FROM owners WHERE notify_targets <> '{}' FOR UPDATE"
    ).fetchall()
    changed = [
        (new, owner_id) for owner_id, old in rows if (new := [reseal(t) for t in old]) != old
    ]
    with conn.cursor() as cur:
        cur.executemany("UPDATE owners SET notify_targets = %s WHERE owner_id = %s", changed)
    return len(changed)


FORGOTTEN_NAME = "(forgotten)"


def forget_owner(conn: Conn, *, owner_id: str) -> bool:
    """Erase an owner's personal fields; the row stays (devices and tickets refer to its id),
    marked forgotten. False if there is no such owner."""
    row = conn.execute(
        "UPDATE owners SET name = %s, contact = NULL, notify_targets = '{}', "
        "contact_person = NULL, department = NULL, forgotten_at = clock_timestamp(), "
        "updated_at = clock_timestamp() WHERE owner_id = %s RETURNING owner_id",
        (FORGOTTEN_NAME, owner_id),
    ).fetchone()
    return row is not None
