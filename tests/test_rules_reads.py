"""The responder's two-step read of predictions (rules/predictions.py), on the real database.

A page is first read without reasons (most rows are hints no rule acts on, read again in the
overlap); only the rows worth deciding are then read whole. A row the scorer updated between
the two reads comes back with its new values and write time, so it is decided once, as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from rules import predictions
from tests import factories
from tests.conftest import count

Db = psycopg.Connection[tuple[Any, ...]]
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _write(db: Db, device: str, fault: str, p: float, reasons: str, version: int) -> None:
    db.execute(
        "INSERT INTO predictions (device_id, fault, window_start, probability, max_probability, "
        "horizon_h, reasons, model_version, first_at, last_at) "
        "VALUES (%s, %s, %s, %s, %s, 24, %s, %s, %s, %s) "
        "ON CONFLICT (device_id, fault, window_start) DO UPDATE SET probability = "
        "excluded.probability, reasons = excluded.reasons, updated_at = clock_timestamp()",
        (device, fault, AT, p, p, [reasons], version, AT, AT),
    )
    db.commit()


def test_light_read_then_whole_rows_in_order_with_updates(db: Db) -> None:
    for d in ("lock-a", "lock-b", "lock-c"):
        factories.device(db, d)
    db.execute(
        "INSERT INTO model_versions (trained_from, trained_to, features, horizon_h, seed, "
        "training, evaluation, thresholds, sha256, bundle) "
        "VALUES (now(), now(), '{}', 24, 1, '{}', '{}', '{}', 'x', '')"
    )
    version = count(db, "SELECT max(version) FROM model_versions")
    before = db.execute("SELECT clock_timestamp() - interval '1 second'").fetchone()
    assert before is not None
    _write(db, "lock-a", "battery_failure", 0.9, "low", version)
    _write(db, "lock-b", "anomaly", 0.7, "odd", version)
    _write(db, "lock-c", "overheating", 0.8, "hot", version)

    rows = predictions.written_since(db, updated_after=before[0], limit=10)
    assert [(r.device_id, r.fault, round(r.probability, 6)) for r in rows] == [
        ("lock-a", "battery_failure", 0.9),
        ("lock-b", "anomaly", 0.7),
        ("lock-c", "overheating", 0.8),
    ]
    sliced = predictions.written_since(
        db, updated_after=before[0], limit=10, slices=[0, 1, 2, 3], partitions=4
    )
    assert sorted(r.device_id for r in sliced) == ["lock-a", "lock-b", "lock-c"]
    assert {r.slice for r in sliced} <= {0, 1, 2, 3}
    assert (
        predictions.written_since(db, updated_after=before[0], limit=10, slices=[], partitions=4)
        == []
    )

    # lock-a's row is updated after the light read: the whole read carries the update.
    _write(db, "lock-a", "battery_failure", 0.95, "lower", version)
    whole = predictions.signals_of(db, rows=[rows[2], rows[0]])
    assert [(p.device_id, p.reasons) for p, _ in whole] == [
        ("lock-c", ("hot",)),
        ("lock-a", ("lower",)),
    ]
    assert whole[1][1] > rows[0].written
    assert whole[0][1] == rows[2].written
    assert predictions.signals_of(db, rows=[]) == []
    gone = rows[1]
    db.execute("DELETE FROM predictions WHERE device_id = %s", (gone.device_id,))
    db.commit()
    assert predictions.signals_of(db, rows=[gone]) == []
    assert timedelta(0) < whole[1][1] - rows[0].written < timedelta(minutes=1)
