"""SQL for incidents, fleet incidents and the fleet's health."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.devices.repository import HEALTH

Conn = psycopg.Connection[tuple[Any, ...]]

INCIDENT_COLUMNS = """
    incident_id, device_id, fault, owner_id, segment, rule, state, opened_at, last_predicted_at,
    probability, max_probability, hours_to_empty, reasons, model_version, guide_id,
    guide_sent_at, ticket_due_at, ticket_id, fleet_incident_id, recurrence_of, recovered_at,
    closed_at, outcome"""


def incidents(
    conn: Conn,
    *,
    open_only: bool,
    fault: str | None,
    device_id: str | None,
    state: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, one page of them, newest first)."""
    cond = """(NOT %(open)s OR closed_at IS NULL)
              AND (%(fault)s::text IS NULL OR fault = %(fault)s)
              AND (%(device)s::text IS NULL OR device_id = %(device)s)
              AND (%(state)s::text IS NULL OR state = %(state)s)"""
    args = {
        "open": open_only,
        "fault": fault,
        "device": device_id,
        "state": state,
        "limit": limit,
        "offset": offset,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        n = cur.execute(f"SELECT count(*) AS n FROM incidents WHERE {cond}", args).fetchone()
        rows = cur.execute(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {cond} "
            "ORDER BY opened_at DESC, incident_id DESC LIMIT %(limit)s OFFSET %(offset)s",
            args,
        ).fetchall()
    return (int(n["n"]) if n else 0), rows


def incident(conn: Conn, *, incident_id: int) -> dict[str, Any] | None:
    """One incident."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE incident_id = %s", (incident_id,)
        ).fetchone()


def fleet_incidents(conn: Conn, *, open_only: bool, limit: int) -> list[dict[str, Any]]:
    """Fleet incidents (a firmware cohort with one fault, or an outage with the devices
    still silent in it), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT fleet_incident_id, model, firmware, fault, opened_at, closed_at, devices,
                      priority, ticket_id, reason,
                      ARRAY(SELECT m.device_id FROM fleet_incident_devices m
                            WHERE m.fleet_incident_id = f.fleet_incident_id
                              AND m.left_at IS NULL ORDER BY m.device_id) AS silent
               FROM fleet_incidents f WHERE NOT %s OR closed_at IS NULL
               ORDER BY opened_at DESC LIMIT %s""",
            (open_only, limit),
        ).fetchall()


def health_by_cohort(conn: Conn) -> list[dict[str, Any]]:
    """Devices per model and firmware by health."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"""SELECT coalesce(model, '?') AS model, coalesce(firmware, '?') AS firmware,
                       min(kind) AS kind, count(*) AS total,
                       count(*) FILTER (WHERE online) AS online,
                       count(*) FILTER (WHERE NOT online) AS offline,
                       count(*) FILTER (WHERE health = 'at_risk') AS at_risk,
                       count(*) FILTER (WHERE health = 'faulty') AS faulty
                FROM (SELECT d.model, d.firmware, d.kind, d.online, {HEALTH} AS health
                      FROM devices d) h
                GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
