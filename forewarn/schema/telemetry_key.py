"""Migration 10: one device may send several readings stamped with the same time.

Zigbee2MQTT's ``last_seen`` and Tasmota's ``Time`` have one-second resolution, and a door
sensor reports closed-then-open, or a bridge republishes a state with a new link quality,
within one second. Keyed by ``(device_id, ts)`` only the first of them was kept. The key
becomes ``(device_id, ts, digest)``, where ``digest`` is a 64-bit hash of the message as it
arrived, topic and bytes (ingest.writer): different messages at one time are all kept, in the
order of their ``received_at``, and a redelivered message (QoS 1 is at-least-once) still makes
no second row because it hashes the same. Rows written before this migration have digest 0.

``dropped`` holds the values an adapter left out as implausible (signal -> why, JSON), NULL
when nothing was dropped.

TimescaleDB: every unique index of a hypertable must include its time column, which
``(device_id, ts, digest)`` does. TimescaleDB releases before 2.19 refuse to add a unique
constraint while compression is enabled, so the compressed chunks are decompressed, compression
is turned off for the key change and on again with ``digest`` in its order (the policy is set
again by ``apply_policies`` after every migrate, and recompresses the old chunks on its next
runs). On a large history this migration takes as long as decompressing it.
"""

from __future__ import annotations

_KEY = """
ALTER TABLE telemetry ADD COLUMN digest bigint NOT NULL DEFAULT 0;
ALTER TABLE telemetry ADD COLUMN dropped jsonb;
ALTER TABLE telemetry DROP CONSTRAINT telemetry_pkey;
ALTER TABLE telemetry ADD PRIMARY KEY (device_id, ts, digest);
"""

TELEMETRY_KEY_PLAIN = _KEY

TELEMETRY_KEY_TIMESCALE = f"""
SELECT remove_compression_policy('telemetry', if_exists => TRUE);
SELECT decompress_chunk(c, if_compressed => TRUE) FROM show_chunks('telemetry') AS c;
ALTER TABLE telemetry SET (timescaledb.compress = false);
{_KEY}
ALTER TABLE telemetry SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'ts DESC, digest'
);
"""
