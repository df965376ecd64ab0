"""Migration 15: scorers that share the devices. Each slice of the device hash
(``forewarn.leases``) has its scorer cursor: how far, by write time, that slice's readings
have been scored. A scorer moves it in the same transaction as the predictions it wrote, so
the next holder of the slice starts exactly there (docs/architecture.md, "Sharing the work")."""

from __future__ import annotations

SHARING = """
CREATE TABLE scorer_cursors (
    partitions integer NOT NULL CHECK (partitions > 0),
    slice integer NOT NULL CHECK (slice >= 0 AND slice < partitions),
    ingested_after timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partitions, slice)
);
"""
