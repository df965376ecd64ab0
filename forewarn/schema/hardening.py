"""Migration 13: security hardening and the lifecycle of personal data (issue 18).

API keys get an expiry, who made and revoked them, where they were last used, and an audit
table of creations, uses and revocations; owners can be forgotten; tickets record when their
personal data was erased; retention deletes by time need indexes. Plain SQL common to both
storage paths."""

from __future__ import annotations

HARDENING = """
ALTER TABLE api_keys
    ADD COLUMN expires_at timestamptz,          -- NULL: no expiry
    ADD COLUMN created_by text,
    ADD COLUMN revoked_by text,
    ADD COLUMN last_used_from text;             -- the client address of the latest use

CREATE TABLE api_key_events (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id bigint NOT NULL REFERENCES api_keys (key_id),
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    event text NOT NULL CHECK (event IN ('created', 'used', 'revoked')),
    actor text,                                 -- who created or revoked it
    address text                                -- where a use came from
);
CREATE INDEX api_key_events_key ON api_key_events (key_id, at);
INSERT INTO api_key_events (key_id, at, event, actor)
    SELECT key_id, created_at, 'created', 'before migration 13' FROM api_keys;
INSERT INTO api_key_events (key_id, at, event, actor)
    SELECT key_id, revoked_at, 'revoked', 'before migration 13' FROM api_keys
     WHERE revoked_at IS NOT NULL;

ALTER TABLE owners ADD COLUMN forgotten_at timestamptz;
ALTER TABLE tickets ADD COLUMN personal_data_erased_at timestamptz;

CREATE INDEX device_status_events_ts ON device_status_events (ts);
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX tickets_finished ON tickets (coalesce(closed_at, resolved_at))
    WHERE personal_data_erased_at IS NULL AND state IN ('resolved', 'closed');
"""
