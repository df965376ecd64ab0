"""Data of ``bench/api.py``: owners, devices, readings and tickets written server-side in SQL.

:func:`prepare` reuses the schema when it already holds the asked-for shape (loading takes
minutes), else drops it and loads it afresh: migrated with ``forewarn.schema.migrate``, the
readings' daily partitions made by the project's ``forewarn_ensure_partitions``, every row made
by ``INSERT ... SELECT generate_series`` (nothing crosses the wire), rollups refreshed by
``forewarn_refresh_rollups``, then VACUUM ANALYZE. Values are deterministic functions of the row
numbers (``hashint4`` where a row needs a pseudo-random draw), so two loads are identical but
for the anchor time.

A helper module, not an entry point: ``bench/api.py`` imports it from its own folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from forewarn.errors import MigrationError
from forewarn.schema.migrate import migrate
from forewarn.settings import Settings

from _services import BenchError, log, one, scalar

Conn = psycopg.Connection[tuple[Any, ...]]

# The bench's own record of what it loaded, in its own schema: the shape (to decide reuse) and
# the anchor (the end of the readings, which the server's business clock is set to).
META_TABLE = "bench_api_meta"
# Bumped whenever the generated rows change, so kept data made by older code is reloaded.
DATA_VERSION = 2
DEVICES_PER_STATEMENT = 100  # 500,000 readings a statement: progress every few seconds

# One row per product model, cycled through by device number (the simulator's catalogue).
_PREFIXES = "ARRAY['lock', 'ac', 'watch', 'cam', 'zbt']"
_MODELS = "ARRAY['lock-s2', 'ac-x1', 'watch-w3', 'cam-c2', 'zb-t1']"
_KINDS = "ARRAY['lock', 'air_conditioner', 'watch', 'camera', 'temperature_sensor']"
_FIRMWARES = "ARRAY['2.4.1', '5.2.0', '1.9.2', '3.0.4', '1.0.6']"
_DEVICE_ID = f"({_PREFIXES})[1 + mod({{n}}, 5)] || '-' || lpad({{n}}::text, 5, '0')"
_FAULTS = (
    "ARRAY['connectivity_loss', 'battery_failure', 'overheating', 'stuck_sensor', 'reboot_loop']"
)


@dataclass(frozen=True, slots=True)
class Shape:
    """How much data: devices by readings each (one a minute), tickets."""

    devices: int
    readings_per_device: int
    tickets: int

    @property
    def readings(self) -> int:
        """Readings in all."""
        return self.devices * self.readings_per_device

    @property
    def owners(self) -> int:
        """Owners: four for every five devices, so some own two."""
        return max(1, self.devices * 4 // 5)

    def key(self) -> str:
        """How the shape is recorded in the meta table."""
        return f"{self.devices}x{self.readings_per_device}+{self.tickets} v{DATA_VERSION}"


@dataclass(frozen=True, slots=True)
class Dataset:
    """What the schema holds and where its readings end."""

    storage: str
    anchor: datetime  # the readings run up to (not including) this minute
    device_ids: tuple[str, ...]
    open_tickets: int
    loaded_s: float | None  # None when reused


def prepare(
    admin_url: str, schema: str, settings: Settings, shape: Shape, *, fresh: bool
) -> Dataset:
    """The schema with ``shape``'s data: reused if it already holds it, else loaded afresh."""
    url = settings.database_url or ""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = one(admin, "SELECT to_regnamespace(%s) IS NOT NULL", (schema,))
        if exists and fresh:
            log(f"--fresh: dropping schema {schema}")
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
            exists = False
    if exists:
        found = _reusable(settings, shape)
        if found is not None:
            return found
        log(f"cannot reuse schema {schema} for {shape.key()}: dropping it and loading afresh")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    return _load(url, settings, shape)


def _reusable(settings: Settings, shape: Shape) -> Dataset | None:
    """The kept data if it has ``shape`` and its counts are right (migrations brought up)."""
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        if one(conn, "SELECT to_regclass(%s) IS NULL", (META_TABLE,)):
            return None
        rows = conn.execute(f"SELECT key, value FROM {META_TABLE}").fetchall()
        meta = {str(k): str(v) for k, v in rows}
        if meta.get("shape") != shape.key():
            return None
        # A migration added since the load (an index, say) is applied to the kept data; one
        # edited since then makes the kept schema unusable with this code.
        try:
            result = migrate(conn, settings=settings)
        except MigrationError as exc:
            log(f"kept data cannot be migrated by this code: {exc}")
            return None
        if result.applied:
            log(f"applied migrations {result.applied} to the kept data")
            _vacuum_analyze(conn, result.storage)
        started = time.monotonic()
        counts = (
            scalar(conn, "SELECT count(*) FROM telemetry"),
            scalar(conn, "SELECT count(*) FROM devices"),
            scalar(conn, "SELECT count(*) FROM tickets"),
        )
        if counts != (shape.readings, shape.devices, shape.tickets):
            log(f"kept data has {counts} readings, devices, tickets")
            return None
        log(f"reusing the kept data ({shape.key()}; counted in {time.monotonic() - started:.1f} s)")
        return _dataset(conn, result.storage, datetime.fromisoformat(meta["anchor"]), None)


def _load(url: str, settings: Settings, shape: Shape) -> Dataset:
    """Migrate the empty schema and write every row; the anchor is the current hour."""
    started = time.monotonic()
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = anchor - timedelta(minutes=shape.readings_per_device)
    with psycopg.connect(url, autocommit=True) as conn:
        storage = migrate(conn, settings=settings).storage
        log(f"migrated ({storage}); loading {shape.key()} from {start:%Y-%m-%d %H:%M} UTC")
        if storage == "partitioned":
            made = scalar(conn, "SELECT forewarn_ensure_partitions(%s, %s)", (start, anchor))
            log(f"{made} daily partitions created by forewarn_ensure_partitions")
        _owners_and_devices(conn, shape, start, anchor)
        _readings(conn, shape, start)
        _tickets(conn, shape, anchor)
        log("refreshing the hourly rollups")
        if storage == "partitioned":
            conn.execute("SELECT forewarn_refresh_rollups(%s, %s)", (start, anchor))
        else:
            conn.execute(
                "CALL refresh_continuous_aggregate('telemetry_hourly', %s, %s)", (start, anchor)
            )
        _vacuum_analyze(conn, storage)
        conn.execute(f"CREATE TABLE {META_TABLE} (key text PRIMARY KEY, value text NOT NULL)")
        conn.execute(
            f"INSERT INTO {META_TABLE} VALUES ('shape', %s), ('anchor', %s)",
            (shape.key(), anchor.isoformat()),
        )
        loaded = time.monotonic() - started
        log(f"loaded in {loaded:.0f} s")
        return _dataset(conn, storage, anchor, loaded)


def _vacuum_analyze(conn: Conn, storage: str) -> None:
    """VACUUM ANALYZE the tables the bench writes or reads."""
    # Autovacuum would get there on its own; doing it now gives every run the same
    # visibility map and statistics instead of whatever autovacuum managed so far.
    log("VACUUM ANALYZE")
    tables = ["owners", "devices", "telemetry", "incidents", "tickets", "ticket_events"]
    if storage == "partitioned":
        tables.append("telemetry_hourly")  # on TimescaleDB a continuous aggregate: a view
    for table in tables:
        conn.execute(f"VACUUM (ANALYZE) {table}")


def _dataset(conn: Conn, storage: str, anchor: datetime, loaded_s: float | None) -> Dataset:
    ids = tuple(str(r[0]) for r in conn.execute("SELECT device_id FROM devices ORDER BY 1"))
    open_tickets = scalar(
        conn, "SELECT count(*) FROM tickets WHERE state IN ('new', 'acknowledged', 'in_progress')"
    )
    return Dataset(storage, anchor, ids, open_tickets, loaded_s)


def _owners_and_devices(conn: Conn, shape: Shape, start: datetime, anchor: datetime) -> None:
    conn.execute(
        """INSERT INTO owners (owner_id, name, contact, locale, time_zone, account_type,
                               enterprise_account, notify_targets)
           SELECT 'owner-' || lpad(o::text, 5, '0'), 'Owner ' || o, 'owner-' || o || '@example.com',
                  (ARRAY['en-US', 'zh-CN', 'en-GB'])[1 + mod(o, 3)],
                  (ARRAY['UTC', 'Asia/Shanghai', 'Europe/London'])[1 + mod(o, 3)],
                  CASE WHEN mod(o, 40) = 0 THEN 'enterprise' ELSE 'consumer' END,
                  CASE WHEN mod(o, 40) = 0 THEN 'acme-' || o END,
                  ARRAY['json://127.0.0.1:9/owner-' || o]
           FROM generate_series(0, %(owners)s - 1) o""",
        {"owners": shape.owners},
    )
    conn.execute(
        f"""INSERT INTO devices (device_id, model, kind, firmware, owner_id, activated_at,
                                 first_seen, last_seen, online, status_at, registered_by)
            SELECT {_DEVICE_ID.format(n="n")}, ({_MODELS})[1 + mod(n, 5)], ({_KINDS})[1 + mod(n, 5)],
                   ({_FIRMWARES})[1 + mod(n, 5)], 'owner-' || lpad(mod(n, %(owners)s)::text, 5, '0'),
                   %(start)s - make_interval(days => 1 + mod(n * 37, 400)), %(start)s,
                   %(anchor)s - interval '1 minute', mod(n, 50) <> 0, %(anchor)s, 'ingest'
            FROM generate_series(0, %(devices)s - 1) n""",
        {"owners": shape.owners, "devices": shape.devices, "start": start, "anchor": anchor},
    )
    log(f"{shape.owners} owners, {shape.devices} devices")


def _readings(conn: Conn, shape: Shape, start: datetime) -> None:
    """One reading a minute per device, device by device (as the primary key is ordered)."""
    sql = f"""
        WITH d AS (
            SELECT n, {_DEVICE_ID.format(n="n")} AS device_id, ({_FIRMWARES})[1 + mod(n, 5)] AS fw
            FROM generate_series(%(lo)s, %(hi)s - 1) n)
        INSERT INTO telemetry (device_id, ts, received_at, ingested_at, firmware, signal_dbm,
                               link_quality, battery_pct, battery_v, temperature_c, uptime_s,
                               reconnects, error_codes, source)
        SELECT d.device_id, r.ts, r.ts + interval '300 ms', r.ts + interval '800 ms', d.fw,
               -55 - mod(d.n, 20) - 4 * sin(m / 37.0),
               CASE WHEN mod(d.n, 5) = 4 THEN 140 - mod(d.n, 60) + 10 * sin(m / 53.0) END,
               CASE mod(d.n, 5) WHEN 2 THEN 100 - mod(m + d.n, 1440) * 0.055
                            WHEN 0 THEN 95 - mod(d.n, 50) - m * 0.0003
                            WHEN 4 THEN 90 - mod(d.n, 40) - m * 0.00005 END,
               CASE mod(d.n, 5) WHEN 2 THEN 4.3 - mod(m + d.n, 1440) * 0.0006
                            WHEN 0 THEN 6.1 - mod(d.n, 50) * 0.02
                            WHEN 4 THEN 3.0 - mod(d.n, 40) * 0.01 END,
               (ARRAY[18, 30, 31, 38, 20])[1 + mod(d.n, 5)] + 3 * sin((m + d.n * 7) * pi() / 720),
               mod(d.n * 8191, 2000000) + m * 60,
               (mod(d.n + m, 211) = 0)::int,
               CASE WHEN mod(d.n * 31 + m, 997) = 0 THEN ARRAY['E12'] ELSE '{{}}'::text[] END,
               'forewarn/v1'
        FROM d, LATERAL generate_series(0, %(per)s - 1) m,
             LATERAL (SELECT %(start)s + make_interval(mins => m, secs => mod(d.n, 60)) AS ts) r"""
    t0 = time.monotonic()
    for lo in range(0, shape.devices, DEVICES_PER_STATEMENT):
        hi = min(lo + DEVICES_PER_STATEMENT, shape.devices)
        conn.execute(sql, {"lo": lo, "hi": hi, "per": shape.readings_per_device, "start": start})
        done = hi * shape.readings_per_device
        rate = done / (time.monotonic() - t0)
        eta = (shape.readings - done) / rate
        log(f"readings: {done:,} of {shape.readings:,} ({rate:,.0f}/s, {eta:.0f} s to go)")


# The default rule set's SLA table and tiers (rules/default.yaml), in SQL: per priority the
# first response and resolution; per tier the hand-over respond and solve times.
_PLAN = f"""
CREATE TEMP TABLE plan ON COMMIT DROP AS
WITH k AS (
    SELECT k, mod(abs(hashint4(k)::bigint), 1000) AS u1, mod(abs(hashint4(-k)::bigint), 1000) AS u2,
           mod(abs(hashint4(k * 7 + 3)::bigint), 1000) AS u3, mod(abs(hashint4(k * 13 + 5)::bigint), 1000) AS u4
    FROM generate_series(1, %(tickets)s) k),
a AS (
    SELECT k, u4, mod(k - 1, %(devices)s) AS n, ({_FAULTS})[1 + mod((k - 1) / %(devices)s, 5)] AS fault,
           CASE WHEN u1 < 100 THEN 'new' WHEN u1 < 170 THEN 'acknowledged'
                WHEN u1 < 250 THEN 'in_progress' WHEN u1 < 450 THEN 'resolved'
                ELSE 'closed' END AS state,
           CASE WHEN u2 < 100 THEN 'critical' WHEN u2 < 400 THEN 'major' ELSE 'minor' END AS priority,
           CASE WHEN mod(u3, 100) < 5 THEN 'enterprise' WHEN mod(u3, 100) < 25 THEN 'novice'
                WHEN mod(u3, 100) < 75 THEN 'regular' ELSE 'senior' END AS segment,
           u3 >= 920 AS escalated
    FROM k),
b AS (
    SELECT a.*, {_DEVICE_ID.format(n="n")} AS device_id, ({_MODELS})[1 + mod(n, 5)] AS model,
           ({_FIRMWARES})[1 + mod(n, 5)] AS firmware,
           'owner-' || lpad(mod(n, %(owners)s)::text, 5, '0') AS owner_id,
           CASE priority WHEN 'critical' THEN interval '30 min' WHEN 'major' THEN interval '1 h'
                ELSE interval '2 h' END AS sla_first,
           CASE priority WHEN 'critical' THEN interval '4 h' WHEN 'major' THEN interval '8 h'
                ELSE interval '24 h' END AS sla_res,
           CASE WHEN segment = 'enterprise' AND priority = 'critical' THEN 'L3'
                WHEN segment = 'enterprise' THEN 'L2' ELSE 'L1' END AS first_tier
    FROM a),
c AS (
    SELECT b.*,
           CASE WHEN segment = 'enterprise' THEN least(sla_first, interval '10 min')
                ELSE sla_first END AS first,
           CASE WHEN state IN ('new', 'acknowledged', 'in_progress')
                -- Open tickets were opened within 1.2 resolution times: most in time, some late.
                THEN %(anchor)s - sla_res * 1.2 * u4 / 1000
                ELSE %(anchor)s - interval '2 days' - interval '58 days' * u4 / 1000
           END AS opened_at,
           CASE WHEN escalated THEN (CASE first_tier WHEN 'L1' THEN 'L2' ELSE 'L3' END)
                ELSE first_tier END AS tier
    FROM b)
SELECT c.*,
       CASE WHEN escalated THEN opened_at + first ELSE opened_at END AS tier_since,
       CASE WHEN tier = 'L1' THEN first WHEN escalated THEN (CASE tier WHEN 'L2'
            THEN interval '1 h' ELSE interval '30 min' END)
            ELSE least(first, CASE tier WHEN 'L2' THEN interval '1 h' ELSE interval '30 min' END)
       END AS respond,
       CASE tier WHEN 'L1' THEN sla_res WHEN 'L2' THEN interval '2 h' ELSE interval '4 h' END AS solve,
       'support-' || lower(tier) AS team
FROM c
"""

_INCIDENTS = """
INSERT INTO incidents (device_id, fault, owner_id, segment, rule, state, opened_at,
                       last_predicted_at, probability, max_probability, reasons, model_version,
                       guide_id, guide_sent_at, closed_at, outcome)
SELECT device_id, fault, owner_id, segment, 'bench rule',
       CASE WHEN state IN ('resolved', 'closed') THEN 'closed' ELSE 'ticketed' END,
       opened_at - interval '2 h', opened_at, 0.6 + mod(u4, 400) / 1000.0, 0.62 + mod(u4, 380) / 1000.0,
       ARRAY[replace(fault, '_', ' ') || ' risk rising', 'signal below -80 dBm for 2 h'], NULL,
       CASE WHEN segment = 'novice' THEN fault || '-guide' END,
       CASE WHEN segment = 'novice' THEN opened_at - interval '1 h' END,
       CASE WHEN state IN ('resolved', 'closed') THEN opened_at + sla_res * 0.6 END,
       CASE WHEN state IN ('resolved', 'closed') THEN 'ticket_closed' END
FROM plan ORDER BY k
"""

_TICKETS = """
INSERT INTO tickets (kind, incident_id, customer_id, contact, device_id, model, firmware, fault,
                     symptom, trigger, scope, evidence, segment, priority, tier, team, state,
                     guide_sent, opened_at, first_response_due, resolution_due, tier_since,
                     tier_respond_due, tier_solve_due, tier_acknowledged_at, first_response_at,
                     resolved_at, closed_at, assignee, resolution_code, escalations, feedback)
SELECT 'device', i.incident_id, p.owner_id, p.owner_id || '@example.com', p.device_id, p.model,
       p.firmware, p.fault,
       replace(p.fault, '_', ' ') || ' predicted within 24 h (p='
           || round(i.probability::numeric, 2) || '): ' || i.reasons[1],
       'prediction by model v3 at ' || to_char(p.opened_at, 'YYYY-MM-DD HH24:MI')
           || ' UTC, rule ''bench rule''',
       '1 device (' || p.device_id || ')',
       -- Evidence as notifier.tickets.flows writes it: the prediction, the reasons and the
       -- last 6 h of readings (EVIDENCE_ROWS = 120). Floats from real columns keep their long
       -- decimals, so it compresses as the real one does: to ~6 kB, stored out of line.
       jsonb_build_object(
           'prediction', jsonb_build_object('fault', p.fault, 'probability', i.probability,
               'at', p.opened_at, 'horizon_h', 24, 'hours_to_empty', NULL, 'model_version', 3),
           'reasons', i.reasons, 'guides_sent', '[]'::jsonb,
           'telemetry', (SELECT jsonb_agg(jsonb_build_object(
                   'ts', p.opened_at - make_interval(mins => 3 * (120 - r)),
                   'firmware', p.firmware,
                   'signal_dbm', (-62 - 7 * sin(r * 0.7 + p.k))::real::float8,
                   'link_quality', NULL,
                   'battery_pct', (60 - r * 0.037 - mod(p.k, 9))::real::float8,
                   'battery_v', (4.1 - r * 0.0011 + sin(r) * 0.01)::real::float8,
                   'temperature_c', (31 + 2 * sin(r * 0.3 + p.k))::real::float8,
                   'uptime_s', 86400 + p.k * 97 + r * 180, 'reconnects', mod(r + p.k, 4),
                   'error_codes', '[]'::jsonb) ORDER BY r)
               FROM generate_series(1, 120) r)),
       p.segment, p.priority, p.tier, p.team, p.state, p.segment = 'novice', p.opened_at,
       p.opened_at + p.first, p.opened_at + p.sla_res, p.tier_since,
       p.tier_since + p.respond, p.tier_since + p.solve,
       CASE WHEN p.state <> 'new' THEN p.tier_since + p.respond * 0.5 END,
       CASE WHEN p.state <> 'new' THEN p.opened_at + p.first * 0.5 END,
       CASE WHEN p.state IN ('resolved', 'closed') THEN p.opened_at + p.sla_res * 0.6 END,
       CASE WHEN p.state = 'closed' THEN p.opened_at + p.sla_res * 0.6 + interval '1 day' END,
       CASE WHEN p.state <> 'new' THEN 'agent-' || mod(p.u4, 25) END,
       CASE WHEN p.state IN ('resolved', 'closed') THEN (ARRAY['fixed_remotely', 'fixed_by_guide',
            'firmware_update', 'part_replaced', 'no_fault_found', 'false_alarm'])[1 + mod(p.u4, 6)]
       END,
       p.escalated::int,
       CASE WHEN p.state = 'closed' AND mod(p.u4, 3) = 0 THEN 'confirmed' END
FROM plan p JOIN incidents i ON i.device_id = p.device_id AND i.fault = p.fault
ORDER BY p.k
"""

_EVENTS = """
INSERT INTO ticket_events (ticket_id, at, kind, actor, detail)
SELECT ticket_id, e.at, e.kind, e.actor, '{}'
FROM tickets t, LATERAL (VALUES
    (t.opened_at, 'opened', 'forewarn', true),
    (t.tier_since, 'escalated', 'forewarn', t.escalations > 0),
    (t.tier_acknowledged_at, 'acknowledge', t.assignee, t.tier_acknowledged_at IS NOT NULL),
    (t.resolved_at, 'resolve', t.assignee, t.resolved_at IS NOT NULL),
    (t.closed_at, 'close', t.assignee, t.closed_at IS NOT NULL)) e(at, kind, actor, present)
WHERE e.present
"""


def _tickets(conn: Conn, shape: Shape, anchor: datetime) -> None:
    """Incidents and their tickets in a realistic mix, then each ticket's timeline."""
    if shape.tickets > 5 * shape.devices:
        # Each (device, fault) pair gets one ticket: open incidents are unique per pair.
        raise BenchError("at most 5 tickets per device (one per fault)")
    args = {
        "tickets": shape.tickets,
        "devices": shape.devices,
        "owners": shape.owners,
        "anchor": anchor,
    }
    with conn.transaction():
        conn.execute(_PLAN, args)
        conn.execute(_INCIDENTS)
        conn.execute(_TICKETS)
        conn.execute(
            "UPDATE incidents i SET ticket_id = t.ticket_id FROM tickets t "
            "WHERE t.incident_id = i.incident_id"
        )
        conn.execute(_EVENTS)
    mix = conn.execute(
        "SELECT state, count(*) FROM tickets GROUP BY state ORDER BY count(*) DESC"
    ).fetchall()
    log(f"{shape.tickets} tickets: " + ", ".join(f"{s} {n}" for s, n in mix))
