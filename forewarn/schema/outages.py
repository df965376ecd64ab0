"""Migration 16: network outages. Many devices falling silent together are one fleet
incident of fault ``outage`` (``forewarn.domain.OUTAGE``) that no firmware cohort owns: its
model and firmware may be empty, it says in words what its devices share, and its devices are
listed in ``fleet_incident_devices`` (no device incident each), each until it reports again."""

from __future__ import annotations

OUTAGES = """
ALTER TABLE fleet_incidents ALTER COLUMN model DROP NOT NULL;
ALTER TABLE fleet_incidents ALTER COLUMN firmware DROP NOT NULL;
ALTER TABLE fleet_incidents ADD COLUMN reason text;
ALTER TABLE fleet_incidents ADD CONSTRAINT fleet_incidents_cohort
    CHECK (fault = 'outage' OR (model IS NOT NULL AND firmware IS NOT NULL));

-- An outage's devices: since when each was silent, and when it reported again (left).
CREATE TABLE fleet_incident_devices (
    fleet_incident_id bigint NOT NULL REFERENCES fleet_incidents (fleet_incident_id),
    device_id text NOT NULL,
    silent_since timestamptz,
    joined_at timestamptz NOT NULL,
    left_at timestamptz,
    PRIMARY KEY (fleet_incident_id, device_id)
);
CREATE INDEX fleet_incident_devices_in ON fleet_incident_devices (device_id)
    WHERE left_at IS NULL;
"""
