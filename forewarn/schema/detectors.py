"""Migration 9: the label-free detectors' alert thresholds, one row per fault, set by
``forewarn calibrate`` from the fleet's own stored telemetry (no labels) so that healthy history
raises no more alerts than the false-alarm budget allows. No row: the detector's own bar.

The detectors' predictions come from no trained model version, so a prediction's
``model_version`` may now be NULL (a detector's)."""

from __future__ import annotations

DETECTORS = """
CREATE TABLE detector_thresholds (
    fault text PRIMARY KEY,
    threshold double precision NOT NULL CHECK (threshold > 0 AND threshold <= 1),
    alerts_per_1000_device_days double precision NOT NULL,
    device_days double precision NOT NULL,
    budget double precision NOT NULL,
    calibrated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE predictions ALTER COLUMN model_version DROP NOT NULL;
"""
