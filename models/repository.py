"""SQL for fault prediction. Keyword-only functions; the caller owns the transaction."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from forewarn.db import PREDICTIONS_CHANNEL
from forewarn.domain import Prediction
from forewarn.schema.migrate import read_storage
from models.buckets import (
    AGGREGATES,
    CRASH_CODES,
    LINK_CODES,
    POWER_CODES,
    TEMP_CODES,
    Matrix,
    empty_buckets,
)
from models.bundle import ModelBundle
from models.labels import Episode

if TYPE_CHECKING:
    # onnxruntime loads with the serving form, in the scorer only (not the API, the responder).
    from models.serving import ServingModel

Conn = psycopg.Connection[tuple[object, ...]]

# One statement for both storage paths; only the bucketing function differs. Each aggregate
# follows models.buckets.fold reading by reading: lag() is "the device's previous reading".
_BUCKETS_SQL = """
WITH r AS (
    SELECT device_id, ts,
           signal_dbm::float8 AS sig, battery_pct::float8 AS bat, battery_v::float8 AS volt,
           temperature_c::float8 AS tmp, uptime_s::float8 AS up, reconnects::float8 AS rc,
           error_codes,
           lag(ts) OVER w AS p_ts,
           lag(temperature_c::float8) OVER w AS p_tmp,
           lag(uptime_s::float8) OVER w AS p_up,
           lag(reconnects::float8) OVER w AS p_rc
    FROM telemetry
    WHERE ts >= %(since)s AND ts < %(until)s {device_filter}
    WINDOW w AS (PARTITION BY device_id ORDER BY ts)
)
SELECT device_id,
       floor(extract(epoch FROM {bucket}) / 300)::bigint AS b,
       count(*)::float8,
       count(sig)::float8, coalesce(sum(sig), 0), min(sig),
       (array_agg(bat ORDER BY ts) FILTER (WHERE bat IS NOT NULL))[1],
       extract(epoch FROM min(ts) FILTER (WHERE bat IS NOT NULL))::float8,
       (array_agg(bat ORDER BY ts DESC) FILTER (WHERE bat IS NOT NULL))[1],
       extract(epoch FROM max(ts) FILTER (WHERE bat IS NOT NULL))::float8,
       (array_agg(volt ORDER BY ts DESC) FILTER (WHERE volt IS NOT NULL))[1],
       count(tmp)::float8, coalesce(sum(tmp), 0), min(tmp), max(tmp),
       (count(*) FILTER (WHERE tmp = p_tmp))::float8,
       max(abs(tmp - p_tmp)),
       (count(*) FILTER (WHERE up < p_up))::float8,
       coalesce(sum(CASE WHEN rc IS NULL OR p_rc IS NULL THEN 0
                         WHEN rc >= p_rc THEN rc - p_rc ELSE rc END), 0),
       max(extract(epoch FROM ts) - extract(epoch FROM p_ts))::float8,
       (count(*) FILTER (WHERE error_codes && %(link)s))::float8,
       (count(*) FILTER (WHERE error_codes && %(crash)s))::float8,
       (count(*) FILTER (WHERE error_codes && %(power)s))::float8,
       (count(*) FILTER (WHERE error_codes && %(temp)s))::float8
FROM r
GROUP BY device_id, b
ORDER BY device_id, b
"""
_BUCKET_EXPR = {
    "timescaledb": "time_bucket(INTERVAL '5 minutes', ts)",
    "partitioned": "date_bin(INTERVAL '5 minutes', ts, TIMESTAMPTZ '1970-01-01 00:00+00')",
}


@dataclass(frozen=True, slots=True)
class DeviceSeries:
    """One device's consecutive five-minute buckets from the database."""

    device_id: str
    first_bucket: int
    buckets: Matrix


def load_buckets(
    conn: Conn, *, since: datetime, until: datetime, device_ids: Sequence[str] | None = None
) -> Iterator[DeviceSeries]:
    """Bucket aggregates per device over [since, until), gaps filled with empty buckets."""
    storage = read_storage(conn) or "partitioned"
    sql = _BUCKETS_SQL.format(
        bucket=_BUCKET_EXPR[storage],
        device_filter="AND device_id = ANY(%(ids)s)" if device_ids is not None else "",
    )
    params: dict[str, Any] = {
        "since": since,
        "until": until,
        "ids": list(device_ids or ()),
        "link": sorted(LINK_CODES),
        "crash": sorted(CRASH_CODES),
        "power": sorted(POWER_CODES),
        "temp": sorted(TEMP_CODES),
    }
    width = len(AGGREGATES)
    current: str | None = None
    rows: list[tuple[int, list[float]]] = []

    def flush() -> DeviceSeries:
        assert current is not None
        first = rows[0][0]
        m = empty_buckets(rows[-1][0] - first + 1)
        for b, values in rows:
            m[b - first] = values
        return DeviceSeries(current, first, m)

    # A server-side cursor streams the rows; it needs a transaction (a savepoint if the
    # caller already has one open).
    with conn.transaction(), conn.cursor(name="forewarn_buckets") as cur:
        cur.itersize = 20_000
        cur.execute(sql, params)
        for record in cur:
            device_id, b = str(record[0]), int(str(record[1]))
            values = [np.nan if v is None else float(str(v)) for v in record[2 : 2 + width]]
            if device_id != current:
                if current is not None:
                    yield flush()
                current, rows = device_id, []
            rows.append((b, values))
    if current is not None:
        yield flush()


def telemetry_span(conn: Conn) -> tuple[datetime, datetime] | None:
    """Oldest and newest reading time stored, or None with no telemetry."""
    row = conn.execute("SELECT min(ts), max(ts) FROM telemetry").fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    assert isinstance(row[0], datetime) and isinstance(row[1], datetime)
    return row[0], row[1]


def device_models(conn: Conn) -> dict[str, str]:
    """Device id to product model, for every registered device that has one."""
    rows = conn.execute("SELECT device_id, model FROM devices WHERE model IS NOT NULL")
    # Interned: a fleet has few models, and a scorer's window state and detectors key the
    # same device ids.
    return {sys.intern(str(d)): sys.intern(str(m)) for d, m in rows}


@dataclass(frozen=True, slots=True)
class LabelSet:
    """Episodes to learn from, and what the labels held."""

    episodes: list[Episode]
    runs: tuple[str, ...]  # simulator runs whose truth is among them
    staff_confirmed: int
    staff_false_alarms: int


def load_labels(conn: Conn, *, since: datetime, until: datetime) -> LabelSet:
    """Confirmed fault episodes overlapping [since, until), less those staff called false.

    A staff "false alarm" on a device and fault cancels any confirmed episode of that fault
    on that device whose span it falls in (within a day either side).
    """
    rows = conn.execute(
        "SELECT device_id, fault, onset_at, failure_at, source, verdict, run_id "
        "FROM fault_labels WHERE onset_at < %s AND coalesce(failure_at, onset_at) >= %s",
        (until, since),
    ).fetchall()
    confirmed, false_alarms, runs = [], [], set()
    staff_confirmed = 0
    for device_id, fault, onset, failure, source, verdict, run_id in rows:
        assert isinstance(onset, datetime)
        episode = Episode.of(
            str(device_id), str(fault), onset, failure if isinstance(failure, datetime) else None
        )
        if verdict == "false_alarm":
            false_alarms.append(episode)
            continue
        confirmed.append(episode)
        staff_confirmed += source == "staff"
        if run_id:
            runs.add(str(run_id))
    day = 86400.0
    kept = [
        e
        for e in confirmed
        if not any(
            f.device_id == e.device_id
            and f.fault == e.fault
            and e.onset - day <= f.onset <= e.failure + day
            for f in false_alarms
        )
    ]
    return LabelSet(kept, tuple(sorted(runs)), staff_confirmed, len(false_alarms))


def save_version(
    conn: Conn,
    *,
    bundle: ModelBundle,
    trained_from: datetime,
    trained_to: datetime,
    evaluation: dict[str, Any],
    note: str | None,
) -> int:
    """Store a bundle and its serving form as a new (inactive) version; returns its number."""
    blob = bundle.dumps()
    serving = bundle.serving()
    row = conn.execute(
        "INSERT INTO model_versions (trained_from, trained_to, features, horizon_h, seed, "
        "training, evaluation, thresholds, sha256, bundle, note, serving, serving_sha256) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING version",
        (
            trained_from,
            trained_to,
            list(bundle.features),
            bundle.horizon_h,
            bundle.seed,
            Jsonb(bundle.training),
            Jsonb(evaluation),
            Jsonb(bundle.thresholds),
            hashlib.sha256(blob).hexdigest(),
            blob,
            note,
            serving,
            None if serving is None else hashlib.sha256(serving).hexdigest(),
        ),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def activate(conn: Conn, *, version: int) -> None:
    """Make `version` the one the scorer uses."""
    conn.execute(
        "UPDATE model_versions SET active = false WHERE active AND version <> %s", (version,)
    )
    conn.execute(
        "UPDATE model_versions SET active = true, activated_at = now() WHERE version = %s",
        (version,),
    )


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A stored model version without its bundle."""

    version: int
    created_at: datetime
    active: bool
    training: dict[str, Any]
    evaluation: dict[str, Any]
    note: str | None


def versions(conn: Conn, *, active_only: bool = False) -> list[VersionInfo]:
    """Every stored version (or only the active one), newest first."""
    rows = conn.execute(
        "SELECT version, created_at, active, training, evaluation, note FROM model_versions "
        f"{'WHERE active ' if active_only else ''}ORDER BY version DESC"
    ).fetchall()
    return [
        VersionInfo(int(str(v)), c, bool(a), dict(t), dict(e), None if n is None else str(n))  # type: ignore[arg-type, call-overload]
        for v, c, a, t, e, n in rows
    ]


def active_version(conn: Conn) -> VersionInfo | None:
    """The active version's record, or None."""
    return next(iter(versions(conn, active_only=True)), None)


def load_version(conn: Conn, *, version: int | None = None) -> ModelBundle | None:
    """A stored bundle (the active one when `version` is None), checked against its digest."""
    where = "active" if version is None else "version = %s"
    row = conn.execute(
        f"SELECT version, sha256, bundle FROM model_versions WHERE {where}",
        () if version is None else (version,),
    ).fetchone()
    if row is None:
        return None
    blob = bytes(row[2])  # type: ignore[call-overload]
    if hashlib.sha256(blob).hexdigest() != row[1]:
        raise ValueError(f"model version {row[0]} does not match its digest; retrain it")
    bundle = ModelBundle.loads(blob)
    bundle.version = int(str(row[0]))
    return bundle


def load_serving(conn: Conn, *, version: int) -> ServingModel | None:
    """A version's serving form, checked against its digest; None for a version stored
    without one (before migration 18, or trees the form cannot hold)."""
    row = conn.execute(
        "SELECT serving_sha256, serving FROM model_versions WHERE version = %s", (version,)
    ).fetchone()
    if row is None or row[1] is None:
        return None
    blob = bytes(row[1])  # type: ignore[call-overload]
    if hashlib.sha256(blob).hexdigest() != row[0]:
        raise ValueError(f"model version {version}'s serving form does not match its digest")
    from models.serving import ServingModel

    return ServingModel.loads(blob, version=version)


def load_active(conn: Conn) -> ModelBundle | None:
    """The active model bundle, or None before the first training."""
    return load_version(conn)


def active_number(conn: Conn) -> int | None:
    """The active version's number (cheap: no bundle)."""
    row = conn.execute("SELECT version FROM model_versions WHERE active").fetchone()
    return None if row is None else int(str(row[0]))


def upsert_predictions(conn: Conn, *, predictions: Sequence[Prediction]) -> int:
    """Write predictions, one row per device, fault and hour (updated in place)."""
    if not predictions:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO predictions AS p (device_id, fault, window_start, probability,
                max_probability, horizon_h, hours_to_empty, reasons, model_version,
                first_at, last_at)
            VALUES (%(device_id)s, %(fault)s, date_trunc('hour', %(at)s::timestamptz),
                %(probability)s, %(probability)s, %(horizon_h)s, %(hours_to_empty)s,
                %(reasons)s, %(model_version)s, %(at)s, %(at)s)
            ON CONFLICT (device_id, fault, window_start) DO UPDATE SET
                probability = EXCLUDED.probability,
                max_probability = greatest(p.max_probability, EXCLUDED.probability),
                horizon_h = EXCLUDED.horizon_h,
                hours_to_empty = EXCLUDED.hours_to_empty,
                reasons = EXCLUDED.reasons,
                model_version = EXCLUDED.model_version,
                last_at = greatest(p.last_at, EXCLUDED.last_at),
                updated_at = clock_timestamp(),
                updates = p.updates + 1
            """,
            [
                {
                    "device_id": p.device_id,
                    "fault": p.fault,
                    "at": p.at,
                    "probability": p.probability,
                    "horizon_h": p.horizon_h,
                    "hours_to_empty": p.hours_to_empty,
                    "reasons": list(p.reasons),
                    "model_version": p.model_version,
                }
                for p in predictions
            ],
        )
        # Wakes the responders (rules.responder) at commit; a poll covers a missed one.
        cur.execute("SELECT pg_notify(%s, '')", (PREDICTIONS_CHANNEL,))
    return len(predictions)


def prediction_counts(conn: Conn, *, since: datetime | None = None) -> dict[str, int]:
    """Devices with at least one prediction, per fault (optionally only rows updated since)."""
    rows = conn.execute(
        "SELECT fault, count(DISTINCT device_id) FROM predictions "
        "WHERE updated_at >= coalesce(%s, '-infinity'::timestamptz) GROUP BY fault ORDER BY 1",
        (since,),
    ).fetchall()
    return {str(f): int(str(n)) for f, n in rows}


def latest_predictions(
    conn: Conn, *, limit: int, since: datetime | None = None
) -> list[Prediction]:
    """The newest prediction per device and fault, most probable first."""
    rows = conn.execute(
        "SELECT DISTINCT ON (device_id, fault) device_id, fault, last_at, probability, "
        "horizon_h, reasons, model_version, hours_to_empty FROM predictions "
        "WHERE updated_at >= coalesce(%s, '-infinity'::timestamptz) "
        "ORDER BY device_id, fault, window_start DESC",
        (since,),
    ).fetchall()
    found = [
        Prediction(
            device_id=str(r[0]),
            fault=str(r[1]),
            at=r[2],  # type: ignore[arg-type]
            probability=float(str(r[3])),
            horizon_h=float(str(r[4])),
            reasons=tuple(r[5]),  # type: ignore[arg-type]
            model_version=None if r[6] is None else int(str(r[6])),
            hours_to_empty=None if r[7] is None else float(str(r[7])),
        )
        for r in rows
    ]
    return sorted(found, key=lambda p: -p.probability)[:limit]


def upsert_staff_label(
    conn: Conn,
    *,
    device_id: str,
    fault: str,
    onset_at: datetime,
    until: datetime,
    verdict: str,
    ticket_id: int,
    by: str,
) -> None:
    """A 'staff' fault label for training; a later verdict on the same episode replaces it."""
    conn.execute(
        """INSERT INTO fault_labels (device_id, fault, onset_at, failure_at, source, verdict, detail)
           VALUES (%s, %s, %s, %s, 'staff', %s, %s)
           ON CONFLICT (device_id, fault, onset_at, source) DO UPDATE
           SET verdict = EXCLUDED.verdict, failure_at = EXCLUDED.failure_at,
               detail = EXCLUDED.detail, created_at = now()""",
        (device_id, fault, onset_at, until, verdict, Jsonb({"ticket_id": ticket_id, "by": by})),
    )
