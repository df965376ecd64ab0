"""SQL the owner notices read: the owner a ticket is for, with how to reach them.
Keyword-only; the caller owns the transaction; nothing here writes."""

from __future__ import annotations

from typing import Any

import psycopg

from forewarn import vault
from forewarn.domain import Owner

Conn = psycopg.Connection[Any]


def owner(conn: Conn, *, owner_id: str | None) -> Owner | None:
    """The owner with this id, or None (no id, or no such owner)."""
    if owner_id is None:
        return None
    row = conn.execute(
        """SELECT owner_id, name, contact, locale, time_zone, quiet_start, quiet_end,
                  account_type, enterprise_account, notify_targets
           FROM owners WHERE owner_id = %s""",
        (owner_id,),
    ).fetchone()
    if row is None:
        return None
    enterprise = (row[8] or row[1]) if row[7] == "enterprise" else None
    return Owner(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], enterprise, vault.open_all(row[9])
    )


def device_kind(conn: Conn, *, device_id: str | None) -> str | None:
    """The product kind of a device (lock, watch...), for the words a notice calls it by."""
    if device_id is None:
        return None
    row = conn.execute("SELECT kind FROM devices WHERE device_id = %s", (device_id,)).fetchone()
    return None if row is None else row[0]
