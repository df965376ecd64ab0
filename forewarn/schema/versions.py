"""The migrations, in order. Never edit one that has shipped: add a new one.

Each migration has SQL common to both storage paths and SQL specific to the
TimescaleDB path (hypertables, compression, continuous aggregates) or to the
plain-PostgreSQL path (native range partitions, a rollup table refreshed by a
function). Settings-dependent policies (retention, compression age) are not
migrations: ``forewarn.schema.migrate.apply_policies`` sets them on every migrate.
"""

from __future__ import annotations

from dataclasses import dataclass

from forewarn.schema.acting import ACTING
from forewarn.schema.checkpoints import CHECKPOINTS
from forewarn.schema.console import CONSOLE
from forewarn.schema.conversations import CONVERSATIONS
from forewarn.schema.detectors import DETECTORS
from forewarn.schema.hardening import HARDENING
from forewarn.schema.intake import INTAKE
from forewarn.schema.outages import OUTAGES
from forewarn.schema.registry import REGISTRY
from forewarn.schema.serving import SERVING
from forewarn.schema.sharing import SHARING
from forewarn.schema.telemetry_key import TELEMETRY_KEY_PLAIN, TELEMETRY_KEY_TIMESCALE
from forewarn.schema.withdrawn import WITHDRAWN


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step; ``timescale``/``plain`` run only on their storage path."""

    version: int
    name: str
    common: str
    timescale: str = ""
    plain: str = ""


CORE = """
CREATE TABLE owners (
    owner_id text PRIMARY KEY,
    name text NOT NULL,
    contact text,
    locale text NOT NULL DEFAULT 'en-US',
    time_zone text NOT NULL DEFAULT 'UTC',
    quiet_start time,
    quiet_end time,
    account_type text NOT NULL DEFAULT 'consumer'
        CHECK (account_type IN ('consumer', 'enterprise')),
    enterprise_account text,
    notify_targets text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    device_id text PRIMARY KEY,
    model text,
    kind text,
    firmware text,
    owner_id text REFERENCES owners (owner_id),
    activated_at timestamptz,
    first_seen timestamptz,
    last_seen timestamptz,
    online boolean,
    status_at timestamptz,
    registered_by text NOT NULL DEFAULT 'ingest'
);
CREATE INDEX devices_model_firmware ON devices (model, firmware);
CREATE INDEX devices_owner ON devices (owner_id);

CREATE TABLE device_status_events (
    device_id text NOT NULL,
    ts timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('online', 'offline')),
    source text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts, status)
);

CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    payload bytea NOT NULL,
    reason text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);

-- Ground truth from the simulator now, staff feedback on tickets later.
CREATE TABLE fault_labels (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id text NOT NULL,
    fault text NOT NULL,
    onset_at timestamptz NOT NULL,
    failure_at timestamptz,
    source text NOT NULL CHECK (source IN ('simulator', 'staff')),
    verdict text NOT NULL DEFAULT 'confirmed' CHECK (verdict IN ('confirmed', 'false_alarm')),
    cohort text,
    run_id text,
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, fault, onset_at, source)
);
"""

TELEMETRY_COLUMNS = """
    device_id text NOT NULL,
    ts timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    firmware text,
    signal_dbm real,
    link_quality real,
    battery_pct real,
    battery_v real,
    temperature_c real,
    uptime_s bigint,
    reconnects integer,
    error_codes text[] NOT NULL DEFAULT '{}',
    extra jsonb NOT NULL DEFAULT '{}',
    source text NOT NULL,
    PRIMARY KEY (device_id, ts)
"""

TELEMETRY_TIMESCALE = f"""
CREATE TABLE telemetry ({TELEMETRY_COLUMNS});
-- One-day chunks: a 200-device fleet at one reading a minute is ~290k rows a day,
-- small enough to compress in one go and to drop whole at retention.
SELECT create_hypertable('telemetry', 'ts',
                         chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE);
-- Segment by device so a device's compressed history is one run of columns.
ALTER TABLE telemetry SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'ts DESC'
);
"""

TELEMETRY_PLAIN = f"""
CREATE TABLE telemetry ({TELEMETRY_COLUMNS}) PARTITION BY RANGE (ts);

-- Daily partitions named telemetry_pYYYYMMDD, created ahead by maintenance and on
-- demand by the ingester for every day a batch touches. An advisory lock keeps
-- concurrent ingesters from racing on the same CREATE.
CREATE FUNCTION forewarn_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date := (from_ts AT TIME ZONE 'UTC')::date;
    last_day date := (to_ts AT TIME ZONE 'UTC')::date;
    part text;
    created integer := 0;
BEGIN
    IF last_day - day > 366 THEN
        RAISE EXCEPTION 'refusing to create % daily partitions at once', last_day - day;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.telemetry_partitions'));
    WHILE day <= last_day LOOP
        part := format('telemetry_p%s', to_char(day, 'YYYYMMDD'));
        IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF %I.telemetry FOR VALUES FROM (%L) TO (%L)',
                current_schema(), part, current_schema(),
                (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END $$;

-- Retention: drop whole partitions whose upper bound is older than the cut-off.
CREATE FUNCTION forewarn_drop_partitions(older_than timestamptz)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.telemetry_partitions'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = format('%I.telemetry', current_schema())::regclass
          AND c.relname ~ '^telemetry_p[0-9]{{8}}$'
          AND (to_date(substr(c.relname, 12), 'YYYYMMDD') + 1)::timestamp
              AT TIME ZONE 'UTC' <= older_than
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I.%I', current_schema(), part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END $$;
"""

ROLLUP_SELECT = """
    count(*) AS readings,
    avg(signal_dbm) AS signal_dbm_avg,
    min(signal_dbm) AS signal_dbm_min,
    min(battery_pct) AS battery_pct_min,
    min(battery_v) AS battery_v_min,
    avg(temperature_c) AS temperature_c_avg,
    max(temperature_c) AS temperature_c_max,
    max(reconnects) AS reconnects_max,
    min(uptime_s) AS uptime_s_min
"""

ROLLUP_TIMESCALE = f"""
CREATE MATERIALIZED VIEW telemetry_hourly WITH (timescaledb.continuous) AS
SELECT device_id, time_bucket(INTERVAL '1 hour', ts) AS bucket, {ROLLUP_SELECT}
FROM telemetry
GROUP BY device_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;
-- Refresh every 15 minutes, three days back: late readings from devices that were
-- offline for a while still land in their hour.
SELECT add_continuous_aggregate_policy('telemetry_hourly',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => TRUE);
"""

ROLLUP_PLAIN = f"""
CREATE TABLE telemetry_hourly (
    device_id text NOT NULL,
    bucket timestamptz NOT NULL,
    readings bigint NOT NULL,
    signal_dbm_avg double precision,
    signal_dbm_min real,
    battery_pct_min real,
    battery_v_min real,
    temperature_c_avg double precision,
    temperature_c_max real,
    reconnects_max integer,
    uptime_s_min bigint,
    PRIMARY KEY (device_id, bucket)
);

-- The plain-PostgreSQL stand-in for a continuous aggregate: recompute every hour
-- bucket from the one holding from_ts to the one holding to_ts (both included).
-- The ingester calls it for the span it wrote since the last refresh.
CREATE FUNCTION forewarn_refresh_rollups(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := date_bin('1 hour', from_ts, TIMESTAMPTZ '2000-01-01 00:00+00');
    hi timestamptz := date_bin('1 hour', to_ts, TIMESTAMPTZ '2000-01-01 00:00+00')
                      + INTERVAL '1 hour';
    n integer;
BEGIN
    DELETE FROM telemetry_hourly WHERE bucket >= lo AND bucket < hi;
    INSERT INTO telemetry_hourly
    SELECT device_id, date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00+00') AS bucket,
           {ROLLUP_SELECT}
    FROM telemetry
    WHERE ts >= lo AND ts < hi
    GROUP BY 1, 2;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
"""

PREDICTION = """
-- Trained model versions. The bundle is a pickle of models.bundle.ModelBundle, loaded only
-- from this table; sha256 guards against a truncated or altered blob.
CREATE TABLE model_versions (
    version integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    trained_from timestamptz,
    trained_to timestamptz,
    features text[] NOT NULL,
    horizon_h real NOT NULL,
    seed integer NOT NULL,
    training jsonb NOT NULL DEFAULT '{}',
    evaluation jsonb NOT NULL DEFAULT '{}',
    thresholds jsonb NOT NULL DEFAULT '{}',
    sha256 text NOT NULL,
    bundle bytea NOT NULL,
    active boolean NOT NULL DEFAULT false,
    activated_at timestamptz,
    note text
);
CREATE UNIQUE INDEX model_versions_one_active ON model_versions (active) WHERE active;

-- One row per device, fault and hour: the scorer updates it in place as readings arrive,
-- so a fault that stays predicted is one row an hour, never a duplicate.
CREATE TABLE predictions (
    device_id text NOT NULL,
    fault text NOT NULL,
    window_start timestamptz NOT NULL,
    probability real NOT NULL,
    max_probability real NOT NULL,
    horizon_h real NOT NULL,
    hours_to_empty real,
    reasons text[] NOT NULL DEFAULT '{}',
    model_version integer NOT NULL REFERENCES model_versions (version),
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updates integer NOT NULL DEFAULT 1,
    PRIMARY KEY (device_id, fault, window_start)
);
CREATE INDEX predictions_updated ON predictions (updated_at);

-- The streaming scorer follows new rows by the time they were written: a BRIN index stays
-- tiny and cheap to keep up because rows are appended in that order.
CREATE INDEX telemetry_ingested ON telemetry USING brin (ingested_at);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "owners, devices, status events, dead letters, fault labels", common=CORE),
    Migration(
        2,
        "telemetry readings",
        common="",
        timescale=TELEMETRY_TIMESCALE,
        plain=TELEMETRY_PLAIN,
    ),
    Migration(3, "hourly rollups", common="", timescale=ROLLUP_TIMESCALE, plain=ROLLUP_PLAIN),
    Migration(4, "model versions, predictions", common=PREDICTION),
    Migration(5, "guides, snoozes, incidents, tickets, notifications outbox", common=ACTING),
    Migration(6, "API keys, ticket feedback, guide embeddings", common=CONSOLE),
    Migration(7, "withdrawn incidents, cancelled notifications", common=WITHDRAWN),
    Migration(8, "registry, broker credentials, dead-letter digests", common=REGISTRY),
    Migration(
        9, "detector thresholds; detector predictions without a model version", common=DETECTORS
    ),
    Migration(
        10,
        "telemetry keyed by device, time and content digest; dropped values",
        common="",
        timescale=TELEMETRY_KEY_TIMESCALE,
        plain=TELEMETRY_KEY_PLAIN,
    ),
    Migration(
        11,
        "owner conversations: opened tier, waiting, owner tickets, surveys, replies, onboarding",
        common=CONVERSATIONS,
    ),
    Migration(
        12,
        "staff-made tickets (type, contact person, department, complaint dues), guide versions, "
        "ticket audits",
        common=INTAKE,
    ),
    Migration(
        13,
        "API key expiry and audit, forgotten owners, erased ticket data, retention indexes",
        common=HARDENING,
    ),
    Migration(15, "scorer cursors per slice of the devices", common=SHARING),
    Migration(16, "network outages as fleet incidents, with their devices", common=OUTAGES),
    Migration(17, "scorer checkpoints per slice of the devices", common=CHECKPOINTS),
    Migration(18, "model versions' serving forms", common=SERVING),
)
