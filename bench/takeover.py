"""Taking a slice over: from its checkpoint against rebuilding it from a day of readings.

A scorer that gains a slice (another scorer died or left) scores none of its slices until the
gained slice is warmed up. This benchmark stores ``--devices`` devices' readings, one a minute
for ``--hours`` (by default one slice of a 100,000-device fleet cut into 64: 1,563 devices, a
day and a half hour of readings, 2.3 million rows), and times, on a fresh schema, a real
``SlicedScorer`` (one slice, so it gains them all) from its start until it holds the slice:

- ``rebuild``: no checkpoint stored, the baseline: it folds every reading of the warm-up;
- ``checkpoint``: the slice's checkpoint, saved by a scorer that held it, stored: it loads it
  and folds only the readings written after it (``--since-minutes`` of them: the readings a
  slice's checkpoint is behind its cursor, up to ``CHECKPOINT_SECONDS`` in a running fleet).

``--rounds`` alternate the two. It prints one JSON line: the seconds of each (best round) and
their ratio, the checkpoint's bytes (and as stored, after PostgreSQL's own compression), and
the readings each folded.

    python bench/takeover.py [--devices 1563] [--hours 24.5] [--since-minutes 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

# bench/ingest.py would shadow the ingest package: look for packages outside bench/ first.
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from forewarn.settings import Settings
from models.sliced import SlicedScorer

from _services import BenchError, create_schema, drop_schema, log, scalar, schema_url

Conn = psycopg.Connection[tuple[Any, ...]]
_COLUMNS = (
    "device_id, ts, received_at, ingested_at, signal_dbm, battery_pct, battery_v, "
    "temperature_c, uptime_s, reconnects, source"
)


def _store(conn: Conn, devices: int, start: datetime, minutes: int) -> int:
    """`devices` devices (locks and air conditioners) reading once a minute from `start`."""
    conn.execute(
        "INSERT INTO devices (device_id, model) SELECT 'd-' || i, "
        "CASE WHEN i %% 2 = 1 THEN 'lock-s2' ELSE 'ac-x1' END FROM generate_series(0, %s) i",
        (devices - 1,),
    )
    conn.execute(
        "SELECT forewarn_ensure_partitions(%s, %s)", (start, start + timedelta(minutes=minutes))
    )
    rows = 0
    with conn.cursor() as cur, cur.copy(f"COPY telemetry ({_COLUMNS}) FROM STDIN") as copy:
        for k in range(minutes):
            ts = start + timedelta(minutes=k)
            for i in range(devices):
                lock = i % 2 == 1
                copy.write_row(
                    (
                        f"d-{i}",
                        ts + timedelta(seconds=i % 60),
                        ts,
                        ts,
                        -60.0 - (k + i) % 9,
                        90.0 - 0.001 * k if lock else None,
                        3.0 if lock else None,
                        22.0 + (k % 50) * 0.1 + i % 5,
                        60 * ((k + i) % 2000),
                        k // 300,
                        "bench",
                    )
                )
                rows += 1
            if k % 120 == 0:
                log(f"stored {k} of {minutes} minutes")
    conn.commit()
    return rows


def _hold(settings: Settings, hours: float) -> tuple[float, dict[str, int]]:
    """Start a scorer and time it until it holds its slice; its counters."""
    scorer = SlicedScorer(
        settings, slices=1, lag_seconds=1.0, warmup_hours=hours, checkpoint_seconds=0.0
    )
    t0 = time.monotonic()
    scorer.start()
    try:
        while len(scorer.held) < 1:
            if scorer.failure is not None or not scorer.alive:
                raise BenchError(f"the scorer stopped: {scorer.failure}")
            time.sleep(0.05)
        took = time.monotonic() - t0
    finally:
        scorer.stop(timeout=60)
    return took, scorer.counts()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=1563)
    p.add_argument("--hours", type=float, default=24.5)
    p.add_argument("--since-minutes", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    a = p.parse_args()
    schema = f"bench_{secrets.token_hex(4)}"
    settings = Settings(database_url=schema_url(a.database_url, schema))
    create_schema(a.database_url, schema, settings)
    try:
        with psycopg.connect(settings.database_url or "") as conn:
            minutes = round(a.hours * 60)
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            start = now - timedelta(minutes=minutes + a.since_minutes + 1)
            readings = _store(conn, a.devices, start, minutes)
            # Where the checkpoint is: the readings after it are the last `since` minutes.
            at = start + timedelta(minutes=minutes)
            since = _store_since(conn, a.devices, at, a.since_minutes)
            conn.execute("ANALYZE telemetry")
            conn.commit()
        times: dict[str, list[float]] = {"rebuild": [], "checkpoint": []}
        folded: dict[str, int] = {}
        stored_bytes = raw_bytes = 0
        for r in range(a.rounds):
            for case in ("rebuild", "checkpoint") if r % 2 == 0 else ("checkpoint", "rebuild"):
                with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
                    conn.execute("DELETE FROM scorer_checkpoints")
                    # The slice's cursor where the dead holder left it (after every reading).
                    conn.execute("DELETE FROM scorer_cursors")
                    if case == "checkpoint":
                        _save_at(settings, conn, a.hours, at)
                        stored_bytes = scalar(
                            conn, "SELECT pg_column_size(state) FROM scorer_checkpoints"
                        )
                        raw_bytes = scalar(
                            conn, "SELECT octet_length(state) FROM scorer_checkpoints"
                        )
                took, counts = _hold(settings, a.hours)
                if case == "checkpoint" and counts.get("restored") != 1:
                    raise BenchError(f"the checkpoint was not used: {counts}")
                times[case].append(took)
                folded[case] = counts.get("readings", 0)
                log(f"round {r + 1}: {case} {took:.1f} s, {folded[case]} readings folded")
        best = {k: min(v) for k, v in times.items()}
        print(
            json.dumps(
                {
                    "bench": "takeover",
                    "devices": a.devices,
                    "hours": a.hours,
                    "readings_stored": readings + since,
                    "rebuild_s": round(best["rebuild"], 2),
                    "checkpoint_s": round(best["checkpoint"], 2),
                    "ratio_rebuild_to_checkpoint": round(best["rebuild"] / best["checkpoint"], 1),
                    "rounds": {k: [round(t, 2) for t in v] for k, v in times.items()},
                    "readings_folded": folded,
                    "checkpoint_bytes": raw_bytes,
                    "checkpoint_bytes_stored": stored_bytes,
                }
            )
        )
    finally:
        drop_schema(a.database_url, schema)


def _store_since(conn: Conn, devices: int, at: datetime, minutes: int) -> int:
    """The readings written after the checkpoint: `minutes` more of every device."""
    rows = 0
    with conn.cursor() as cur, cur.copy(f"COPY telemetry ({_COLUMNS}) FROM STDIN") as copy:
        for k in range(minutes):
            ts = at + timedelta(minutes=k, seconds=30)
            for i in range(devices):
                copy.write_row((f"d-{i}", ts, ts, ts, -61.0, None, None, 23.0, 60 * k, 0, "bench"))
                rows += 1
    conn.commit()
    return rows


def _save_at(settings: Settings, conn: Conn, hours: float, at: datetime) -> None:
    """A checkpoint of the slice as its holder saved it with its cursor at `at`: a scorer
    holding the slice with its cursor there saves one, and its cursor is then put back where
    the dead holder left it (after every reading)."""
    conn.execute(
        "INSERT INTO scorer_cursors (partitions, slice, ingested_after) VALUES (1, 0, %s)", (at,)
    )
    # The saver's lag keeps its passes from moving the cursor past `at` before it saves:
    # its horizon is the database's clock minus the lag, before `at`.
    lag = (datetime.now(UTC) - at).total_seconds() + 3600.0
    saver = SlicedScorer(
        settings, slices=1, lag_seconds=lag, warmup_hours=hours, checkpoint_seconds=0.01
    )
    saver.start()
    try:
        while not saver.counts().get("checkpoints"):
            if saver.failure is not None or not saver.alive:
                raise BenchError(f"the saver stopped: {saver.failure}")
            time.sleep(0.05)
    finally:
        saver.stop(timeout=60)
    saved = scalar(conn, "SELECT count(*) FROM scorer_checkpoints WHERE ingested_after = %s", (at,))
    if saved != 1:
        raise BenchError("the checkpoint is not at the cursor it was saved at")
    conn.execute("DELETE FROM scorer_cursors")


if __name__ == "__main__":
    main()
