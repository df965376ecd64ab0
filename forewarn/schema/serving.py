"""Migration 18: each model version's serving form (``models.serving``): the same model as
plain arrays and ONNX trees, which the live scorer loads without scikit-learn or pickle.
Versions stored before it have none; the scorer scores those from the bundle, as before."""

from __future__ import annotations

SERVING = """
ALTER TABLE model_versions
    ADD COLUMN serving bytea,
    ADD COLUMN serving_sha256 text,
    ADD CONSTRAINT model_versions_serving_digest
        CHECK ((serving IS NULL) = (serving_sha256 IS NULL));
"""
