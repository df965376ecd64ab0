"""Scoring benchmark: feature rows scored per second, and publish-to-prediction latency.

1. Batch path. A model bundle is trained in process on a simulated fleet, then scores the
   feature rows of another one (all five fault predictors, three fold models each, and the
   anomaly score). Baseline in the same run: one scikit-learn HistGradientBoosting model's
   predict_proba over the same rows, so the ratio says what the whole bundle costs.
2. Streaming features: microseconds per reading to fold it into a device's compact state and
   compute its feature row (what the live scorer does per device and reading), against the
   day of five-minute buckets it replaced.
3. Latency. The demo's fleet size (200 devices) publishes at the demo's rate (one reading per
   device per second on average, as at speedup 300) with the wall-clock time as each
   reading's ts, through a private Mosquitto, the ingester and the streaming scorer, into a
   fresh schema of the configured PostgreSQL. Latency is scoring time minus the reading's
   ts; the baseline is the same readings' storage latency (ingested_at minus ts).

Prints one JSON line. ``python bench/scoring.py [--seconds 60]``
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from sklearn.ensemble import HistGradientBoostingClassifier

from _services import (
    Deadline,
    create_schema,
    drop_schema,
    log,
    schema_url,
    start_broker,
)

# bench/ingest.py would shadow the ingest package: look for packages outside bench/ first.
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))

from forewarn.settings import Settings
from ingest.service import Ingester
from models import repository
from models.buckets import DeviceBuckets, Sample
from models.bundle import ModelBundle, learn_bundle
from models.features import latest_features
from models.scorer import Scorer
from models.simulated import simulate
from models.state import FleetState

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"


def batch(devices: int) -> tuple[dict[str, Any], ModelBundle]:
    """Rows per second of the whole bundle, against one HistGradientBoosting model."""
    log(f"training a bundle on a simulated fleet of {devices} devices")
    train = simulate(devices=devices, seed=31, days=2.0, fault_rate=0.5)
    bundle, _ = learn_bundle(train.data, train.episodes, seed=0)
    data = simulate(devices=devices, seed=32, days=2.0, fault_rate=0.3).data
    y = (np.arange(len(data)) % 7 == 0).astype(int)
    single = HistGradientBoostingClassifier(max_iter=150, random_state=0).fit(data.x, y)
    bundle_s, single_s = [], []
    for _ in range(5):
        t = time.perf_counter()
        bundle.scores(data)
        bundle_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        single.predict_proba(data.x)
        single_s.append(time.perf_counter() - t)
    rows = len(data)
    bundle_rate = rows / statistics.median(bundle_s)
    single_rate = rows / statistics.median(single_s)
    streaming = _streaming_cost(train)
    return {
        "rows": rows,
        "bundle_rows_per_s": round(bundle_rate),
        "one_model_rows_per_s": round(single_rate),
        "bundle_vs_one_model": round(bundle_rate / single_rate, 3),
        "streaming_us_per_reading": streaming["compact_us"],
        "bucket_ring_us_per_reading": streaming["bucket_ring_us"],
    }, bundle


def _streaming_cost(ds: Any) -> dict[str, float]:
    """Median microseconds to fold one reading and compute its feature row.

    The live scorer's compact state (one device's row), against the bucket ring it replaced.
    """
    t0 = time.time() - 86400
    samples = [
        Sample(
            t0 + 120 * i,
            -60.0 + (i % 7),
            80.0 - i * 0.001,
            3.0,
            25.0 + (i % 5) * 0.1,
            float(i * 120),
            0.0,
        )
        for i in range(2000)
    ]
    ring, state = DeviceBuckets(), FleetState()
    compact, buckets = [], []
    for s in samples:
        t = time.perf_counter()
        state.add("d", s)
        state.features(["d"])
        compact.append(time.perf_counter() - t)
        t = time.perf_counter()
        ring.add(s)
        latest_features(ring.window(), ring.valid_from(), ring.head or 0)
        buckets.append(time.perf_counter() - t)
    return {
        "compact_us": round(statistics.median(compact[500:]) * 1e6, 1),
        "bucket_ring_us": round(statistics.median(buckets[500:]) * 1e6, 1),
    }


def latency(bundle: Any, seconds: float, devices: int) -> dict[str, Any]:
    """Publish-to-prediction latency at the demo's rate, against publish-to-stored."""
    admin = os.environ.get("FOREWARN_DATABASE_URL") or DEFAULT_DB
    schema = f"bench_{secrets.token_hex(4)}"
    deadline = Deadline(time.monotonic() + seconds + 300)
    broker = start_broker("", deadline=deadline, workdir_prefix="forewarn-score-", output=None)
    settings = Settings(database_url=schema_url(admin, schema), mqtt_url=broker.url)
    try:
        create_schema(admin, schema, settings)
        with psycopg.connect(settings.database_url or "") as conn:
            version = repository.save_version(
                conn,
                bundle=bundle,
                trained_from=datetime.now(UTC),
                trained_to=datetime.now(UTC),
                evaluation={},
                note="bench",
            )
            repository.activate(conn, version=version)
        ingester, scorer = Ingester(settings), Scorer(settings, warmup_hours=0)
        ingester.start()
        scorer.start()
        scorer.ready.wait(30)
        sent = _publish(settings, seconds, devices)
        time.sleep(3)
        ingester.stop()
        scorer.stop()
        stats = scorer.stats()
        with psycopg.connect(settings.database_url or "") as conn:
            row = conn.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
                "ingested_at - ts)), percentile_cont(0.99) WITHIN GROUP (ORDER BY "
                "extract(epoch FROM ingested_at - ts)), count(*) FROM telemetry"
            ).fetchone()
        assert row is not None
        stored_p50, stored_p99, stored = float(row[0]), float(row[1]), int(row[2])
    finally:
        broker.stop()
        drop_schema(admin, schema)
    p50, p99 = stats.latency_p50_s or float("nan"), stats.latency_p99_s or float("nan")
    return {
        "devices": devices,
        "seconds": seconds,
        "published": sent,
        "stored": stored,
        "scored": stats.scored,
        "late": stats.late,
        "prediction_p50_ms": round(p50 * 1000),
        "prediction_p99_ms": round(p99 * 1000),
        "stored_p50_ms": round(stored_p50 * 1000),
        "stored_p99_ms": round(stored_p99 * 1000),
        "p99_prediction_vs_stored": round(p99 / stored_p99, 2) if stored_p99 else None,
    }


def _publish(settings: Settings, seconds: float, devices: int) -> int:
    """Readings stamped with the wall clock, one per device per second on average."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    rng = np.random.default_rng(1)
    sent, start, stop = 0, time.monotonic(), threading.Event()
    while time.monotonic() - start < seconds and not stop.is_set():
        tick = time.monotonic()
        for d in range(devices):
            now = datetime.now(UTC)
            body = {
                "ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                "device_id": f"dev-{d:04d}",
                "signal_dbm": round(-60 + rng.normal(0, 2), 1),
                "temperature_c": round(30 + rng.normal(0, 0.3), 2),
                "uptime_s": sent + 1000,
                "reconnects": 0,
                "error_codes": [],
            }
            client.publish(
                f"{settings.topic_prefix}/devices/dev-{d:04d}/telemetry", json.dumps(body), qos=1
            )
            sent += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    client.loop_stop()
    client.disconnect()
    return sent


def main() -> None:
    """Run both parts and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Latency run length.")
    parser.add_argument("--devices", type=int, default=200, help="Fleet size for latency.")
    parser.add_argument("--train-devices", type=int, default=150)
    args = parser.parse_args()
    figures, bundle = batch(args.train_devices)
    log(f"batch: {figures}")
    figures["latency"] = latency(bundle, args.seconds, args.devices)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
