"""SQL for devices, their telemetry at a chosen bucket size, and predictions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Conn = psycopg.Connection[tuple[Any, ...]]

# A device's health: faulty while a ticket about it is open (its own, or its fleet ticket's
# child, or the ticket of an outage it is still silent in), at risk while a predicted fault
# is open without one, else online or offline.
HEALTH = """
    CASE WHEN EXISTS (SELECT 1 FROM tickets t WHERE t.device_id = d.device_id
                      AND t.state NOT IN ('resolved', 'closed'))
           OR EXISTS (SELECT 1 FROM fleet_incident_devices m
                      JOIN fleet_incidents f USING (fleet_incident_id)
                      JOIN tickets t ON t.ticket_id = f.ticket_id
                      WHERE m.device_id = d.device_id AND m.left_at IS NULL
                        AND t.state NOT IN ('resolved', 'closed')) THEN 'faulty'
         WHEN EXISTS (SELECT 1 FROM incidents i WHERE i.device_id = d.device_id
                      AND i.closed_at IS NULL) THEN 'at_risk'
         WHEN d.online THEN 'online'
         WHEN NOT d.online THEN 'offline'
         ELSE 'unknown' END"""

DEVICE_COLUMNS = f"""
    d.device_id, d.model, d.kind, d.serial, d.firmware, d.owner_id, d.activated_at,
    d.state, d.first_seen, d.last_seen, d.online, d.status_at, {HEALTH} AS health"""


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """What the device list is narrowed to; None means any."""

    model: str | None = None
    firmware: str | None = None
    kind: str | None = None
    owner_id: str | None = None
    health: str | None = None
    q: str | None = None  # a part of the device id


SORTS = {
    "id": sql.SQL("d.device_id"),
    # Worst first: what needs attention leads the fleet page.
    "health": sql.SQL(
        "array_position(ARRAY['faulty', 'at_risk', 'offline', 'unknown', 'online'], health), "
        "d.device_id"
    ),
}


def devices(
    conn: Conn, *, where: DeviceFilter, sort: str, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page of them in `sort` order)."""
    conds: list[sql.Composable] = [sql.SQL("true")]
    args: list[object] = []
    for column in ("model", "firmware", "kind", "owner_id"):
        value = getattr(where, column)
        if value is not None:
            conds.append(sql.SQL("d.{} = %s").format(sql.Identifier(column)))
            args.append(value)
    if where.q:
        conds.append(sql.SQL("d.device_id ILIKE %s"))
        args.append("%" + where.q.replace("%", r"\%").replace("_", r"\_") + "%")
    if where.health is not None:
        conds.append(sql.SQL(HEALTH + " = %s"))
        args.append(where.health)
    cond = sql.SQL(" AND ").join(conds)
    with conn.cursor(row_factory=dict_row) as cur:
        n = cur.execute(
            sql.SQL("SELECT count(*) AS n FROM devices d WHERE {}").format(cond), args
        ).fetchone()
        rows = cur.execute(
            sql.SQL(
                "SELECT {} FROM devices d WHERE {} ORDER BY d.device_id LIMIT %s OFFSET %s"
            ).format(sql.SQL(DEVICE_COLUMNS), cond),
            [*args, limit, offset],
        ).fetchall()
    return (int(n["n"]) if n else 0), rows


def device(conn: Conn, *, device_id: str) -> dict[str, Any] | None:
    """One device with its owner's details."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {DEVICE_COLUMNS}, o.name AS owner_name, o.locale, o.time_zone, "
            "o.account_type, o.enterprise_account FROM devices d "
            "LEFT JOIN owners o ON o.owner_id = d.owner_id WHERE d.device_id = %s",
            (device_id,),
        ).fetchone()


def latest_reading(conn: Conn, *, device_id: str) -> dict[str, Any] | None:
    """The device's newest reading."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT ts, firmware, signal_dbm, link_quality, battery_pct, battery_v, "
            "temperature_c, uptime_s, reconnects, error_codes FROM telemetry "
            "WHERE device_id = %s ORDER BY ts DESC LIMIT 1",
            (device_id,),
        ).fetchone()


def telemetry(
    conn: Conn, *, device_id: str, since: datetime, until: datetime, bucket_seconds: int
) -> list[dict[str, Any]]:
    """The device's readings in [since, until) averaged per bucket (min/max where a chart
    needs the extreme: the lowest battery, the hottest temperature), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT date_bin(make_interval(secs => %(b)s), ts, %(since)s) AS t,
                      count(*) AS readings,
                      avg(signal_dbm) AS signal_dbm, avg(link_quality) AS link_quality,
                      min(battery_pct) AS battery_pct, min(battery_v) AS battery_v,
                      avg(temperature_c) AS temperature_c, max(temperature_c) AS temperature_max,
                      max(reconnects) AS reconnects, min(uptime_s) AS uptime_s
               FROM telemetry
               WHERE device_id = %(d)s AND ts >= %(since)s AND ts < %(until)s
               GROUP BY 1 ORDER BY 1""",
            {"b": bucket_seconds, "since": since, "until": until, "d": device_id},
        ).fetchall()


def predictions(
    conn: Conn,
    *,
    device_id: str | None,
    fault: str | None,
    min_probability: float,
    since: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Predictions, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT device_id, fault, window_start, probability, max_probability, horizon_h,
                      hours_to_empty, reasons, model_version, first_at, last_at, updates
               FROM predictions
               WHERE (%(d)s::text IS NULL OR device_id = %(d)s)
                 AND (%(f)s::text IS NULL OR fault = %(f)s)
                 AND max_probability >= %(p)s
                 AND (%(s)s::timestamptz IS NULL OR last_at >= %(s)s)
               ORDER BY last_at DESC, device_id, fault LIMIT %(n)s""",
            {"d": device_id, "f": fault, "p": min_probability, "s": since, "n": limit},
        ).fetchall()


def open_incidents(conn: Conn, *, device_id: str) -> list[dict[str, Any]]:
    """The device's open incidents."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT incident_id, fault, state, opened_at, probability, ticket_id "
            "FROM incidents WHERE device_id = %s AND closed_at IS NULL ORDER BY opened_at",
            (device_id,),
        ).fetchall()
