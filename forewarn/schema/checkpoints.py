"""Migration 17: scorer checkpoints. Per slice of the device hash, the latest state of its
devices a scorer saved (window state and detectors, ``models.checkpoints``) and the slice
cursor it holds every reading up to. A scorer taking the slice over loads it and folds only
the readings written since, instead of rebuilding a day of readings per device."""

from __future__ import annotations

CHECKPOINTS = """
CREATE TABLE scorer_checkpoints (
    partitions integer NOT NULL CHECK (partitions > 0),
    slice integer NOT NULL CHECK (slice >= 0 AND slice < partitions),
    ingested_after timestamptz NOT NULL,
    layout text NOT NULL,
    devices integer NOT NULL CHECK (devices >= 0),
    state bytea NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partitions, slice)
);
"""
