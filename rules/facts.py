"""SQL that gathers what a decision needs to know: the device with its owner, and the
device's history for one fault (its open incident, recurrences, cooldown, snoozes, cohort).
Keyword-only; the caller owns the transaction; nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from forewarn import vault
from forewarn.domain import Device, Owner
from notifier.tickets.types import Priority
from rules.repository import INCIDENT_COLUMNS, Conn, incident_from_row
from rules.types import History, RuleSet


def device(conn: Conn, *, device_id: str) -> Device | None:
    """A device with its owner, or None if it is not registered."""
    row = conn.execute(
        """SELECT d.device_id, d.model, d.kind, d.firmware, d.activated_at, d.last_reading_at,
                  o.owner_id, o.name, o.contact, o.locale, o.time_zone, o.quiet_start,
                  o.quiet_end, o.account_type, o.enterprise_account, o.notify_targets
           FROM devices d LEFT JOIN owners o USING (owner_id) WHERE d.device_id = %s""",
        (device_id,),
    ).fetchone()
    if row is None:
        return None
    owner = None
    if row[6] is not None:
        enterprise = (row[14] or row[7]) if row[13] == "enterprise" else None
        owner = Owner(
            row[6],
            row[7],
            row[8],
            row[9],
            row[10],
            row[11],
            row[12],
            enterprise,
            vault.open_all(row[15]),
        )
    return Device(row[0], row[1], row[2], row[3], row[4], owner, row[5])


def history(
    conn: Conn,
    *,
    device: Device,
    fault: str,
    now: datetime,
    rules: RuleSet,
    cohort: bool = True,
) -> History:
    """What a decision about `fault` on `device` needs to know of the past; without `cohort`,
    all but its firmware cohort's count and fleet incident (read them with ``with_cohort``
    once the cohort's lock is held, if the decision needs them)."""
    since = now - rules.timing.recurrence_window
    # One round trip for every query (a pipeline): a decision waits on the database, not
    # on Python, so the number of round trips sets how many decisions a second one makes.
    with conn.pipeline():
        open_q = conn.execute(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE device_id = %s AND fault = %s "
            "AND closed_at IS NULL",
            (device.device_id, fault),
        )
        prev_q = conn.execute(
            """SELECT incident_id, ticket_id,
                      count(*) OVER () FROM incidents
               WHERE device_id = %s AND fault = %s AND closed_at IS NOT NULL AND opened_at >= %s
                 AND outcome IS DISTINCT FROM 'withdrawn'
               ORDER BY opened_at DESC LIMIT 1""",
            (device.device_id, fault, since),
        )
        # Read whether or not there is a previous incident: in the pipeline it costs no
        # round trip, and it is used only when there is one.
        ticket_q = conn.execute(
            "SELECT max(ticket_id) FROM tickets WHERE device_id = %s AND fault = %s "
            "AND kind = 'device' AND opened_at >= %s",
            (device.device_id, fault, since),
        )
        # The cooldown is between fault guides: a welcome or a notice about a ticket (which
        # the owner must get whatever came before) does not hold the next guide back.
        told_q = None
        if device.owner is not None:
            told_q = conn.execute(
                "SELECT max(created_at) FROM notifications WHERE owner_id = %s "
                "AND audience = 'owner' AND incident_id IS NOT NULL",
                (device.owner.owner_id,),
            )
        snooze_q = conn.execute(
            """SELECT ends_at, reason FROM snoozes
               WHERE starts_at <= %(now)s AND ends_at > %(now)s
                 AND (fault IS NULL OR fault = %(fault)s)
                 AND (device_id = %(device)s OR (model = %(model)s AND firmware = %(firmware)s))
               ORDER BY ends_at DESC LIMIT 1""",
            {
                "now": now,
                "fault": fault,
                "device": device.device_id,
                "model": device.model,
                "firmware": device.firmware,
            },
        )
        row = open_q.fetchone()
        prev = prev_q.fetchone()
        t = ticket_q.fetchone()
        r = None if told_q is None else told_q.fetchone()
        snooze = snooze_q.fetchone()
    found = History(
        open=None if row is None else incident_from_row(row),
        last_owner_notice_at=None if r is None else r[0],
        previous_incident_id=None if prev is None else prev[0],
        previous_ticket_id=None if prev is None or t is None else t[0],
        recurrences=0 if prev is None else int(prev[2]),
        snoozed_until=None if snooze is None else snooze[0],
        snooze_reason=None if snooze is None else snooze[1],
    )
    return (
        with_cohort(conn, found, device=device, fault=fault, now=now, rules=rules)
        if cohort
        else found
    )


def with_cohort(
    conn: Conn, found: History, *, device: Device, fault: str, now: datetime, rules: RuleSet
) -> History:
    """`found` with its firmware cohort's incident count in the fleet window and open fleet
    incident (read under the cohort's lock, so two deciders do not both miss the threshold)."""
    if device.model is None or device.firmware is None:
        return found
    with conn.pipeline():
        count_q = conn.execute(
            """SELECT count(DISTINCT i.device_id) FROM incidents i JOIN devices d USING (device_id)
               WHERE i.fault = %s AND d.model = %s AND d.firmware = %s AND i.opened_at >= %s
                 AND i.outcome IS DISTINCT FROM 'withdrawn'""",
            (fault, device.model, device.firmware, now - rules.fleet.window),
        )
        fleet_q = conn.execute(
            "SELECT fleet_incident_id, priority FROM fleet_incidents "
            "WHERE model = %s AND firmware = %s AND fault = %s AND closed_at IS NULL",
            (device.model, device.firmware, fault),
        )
        c = count_q.fetchone()
        f = fleet_q.fetchone()
    return replace(
        found,
        cohort_devices=0 if c is None else int(c[0]),
        fleet_incident_id=None if f is None else int(f[0]),
        fleet_priority=None if f is None else Priority(f[1]),
    )


def open_keys(conn: Conn, *, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the (device, fault) `keys` have an open incident (one query for a page)."""
    if not keys:
        return set()
    rows = conn.execute(
        """SELECT i.device_id, i.fault FROM incidents i
           JOIN unnest(%s::text[], %s::text[]) AS k (device_id, fault)
             ON i.device_id = k.device_id AND i.fault = k.fault
           WHERE i.closed_at IS NULL""",
        ([d for d, _ in keys], [f for _, f in keys]),
    ).fetchall()
    return {(r[0], r[1]) for r in rows}
