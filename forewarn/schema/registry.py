"""Migration 8: the registry of a real fleet (owners' and devices' own fields, devices' states),
the broker credentials Forewarn keeps for devices, and what a dead letter keeps of an
oversized payload. Plain SQL common to both storage paths."""

from __future__ import annotations

REGISTRY = """
ALTER TABLE owners
    ADD COLUMN customer_since date,
    ADD COLUMN enterprise_team text,        -- the enterprise account's dedicated team (a tag)
    ADD COLUMN contact_person text,
    ADD COLUMN department text,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT clock_timestamp();

-- A device's life in the registry. Only active (and provisioned, which its first message
-- makes active) devices are listened to; suspended and decommissioned ones are refused.
ALTER TABLE devices
    ADD COLUMN serial text,
    ADD COLUMN state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('provisioned', 'active', 'suspended', 'decommissioned')),
    ADD COLUMN state_at timestamptz,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The newest reading's own stamp, never later than its arrival: how long the device has
    -- reported cleanly (recovery) is measured on it; last_seen is the arrival itself.
    ADD COLUMN last_reading_at timestamptz;
CREATE INDEX devices_updated ON devices (updated_at);

-- Broker credentials of devices (and of bridges such as Zigbee2MQTT, which publish for many
-- devices). Only a PBKDF2-SHA512 hash of the secret is kept, with its salt (ASCII, so that
-- EMQX's PostgreSQL authenticator can use the same row) and iteration count.
CREATE TABLE broker_credentials (
    credential_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL,
    device_id text NOT NULL REFERENCES devices (device_id),
    bridge_base text,                       -- set: a bridge, which may publish under base/#
    salt text NOT NULL,
    password_hash text NOT NULL,            -- hex
    iterations integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX broker_credentials_active ON broker_credentials (username)
    WHERE revoked_at IS NULL;

-- An oversized payload is kept only in part: its first bytes, its length and its SHA-256.
ALTER TABLE dead_letters
    ADD COLUMN payload_bytes integer,
    ADD COLUMN payload_sha256 text;
CREATE INDEX dead_letters_reason ON dead_letters (reason text_pattern_ops);
"""
