"""Scoring benchmark: feature rows scored per second, and publish-to-prediction latency.

1. Batch path. A model bundle is trained in process on a simulated fleet, then scores the
   feature rows of another one (all five fault predictors, three fold models each, and the
   anomaly score), through ModelBundle.scores. Baseline in the same run: the same bundle over
   the same rows with its trees walked by scikit-learn (predict_proba for the fault
   predictors, score_samples for the isolation forests: the path before issue 19), with one
   thread and with two; the ratio is compiled over scikit-learn, and the scores are checked
   equal.
2. Streaming features: microseconds per reading to fold it into a device's compact state and
   compute its feature row (what the live scorer does per device and reading), against the
   day of five-minute buckets it replaced.
3. Latency. The demo's fleet size (200 devices) publishes at the demo's rate (one reading per
   device per second on average, as at speedup 300) with the wall-clock time as each
   reading's ts, through a private Mosquitto, the ingester and the streaming scorer, into a
   fresh schema of the configured PostgreSQL. Latency is scoring time minus the reading's
   ts; the baseline is the same readings' storage latency (ingested_at minus ts).

Prints one JSON line. ``python bench/scoring.py [--seconds 60] [--no-latency]``
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
from models.base import FeatureSet
from models.buckets import DeviceBuckets, Sample
from models.bundle import ModelBundle, learn_bundle
from models.features import latest_features
from models.scorer import Scorer
from models.simulated import simulate
from models.state import FleetState

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"


def _bundle_scores(
    bundle: ModelBundle, data: FeatureSet, *, compiled: bool, threads: int
) -> dict[str, Any]:
    """ModelBundle.scores (compiled), or the same scores with scikit-learn walking every tree."""
    if compiled:
        return dict(bundle.scores(data, threads=threads))
    out: dict[str, Any] = {}
    for fault, p in bundle.predictors.items():
        out[fault.value] = p.score_sklearn(data.x, threads=threads)
    anomaly = np.zeros(len(data))
    for model, scorer in bundle.anomaly.items():
        rows = data.device_models == model
        if rows.any():
            anomaly[rows] = scorer.score_sklearn(data.x[rows], threads=threads)
    out["anomaly"] = anomaly
    return out


def batch(devices: int, rounds: int) -> tuple[dict[str, Any], ModelBundle]:
    """Rows per second of the whole bundle: compiled trees against scikit-learn's own walk.

    The baseline is the same bundle (5 faults x 3 fold models x 150 trees, and the anomaly
    forests) scoring the same rows through scikit-learn's predict_proba and score_samples, as
    before issue 19; both with one thread and with two (for the baseline, scikit-learn's
    OpenMP threads in predict_proba, and the isolation forests' rows split between two
    threads, as scikit-learn walks trees without the GIL), rounds alternating so that load
    elsewhere on the machine hits both alike. The scores of the two are checked equal, bit
    for bit.
    """
    log(f"training a bundle on a simulated fleet of {devices} devices")
    train = simulate(devices=devices, seed=31, days=2.0, fault_rate=0.5)
    bundle, _ = learn_bundle(train.data, train.episodes, seed=0)
    data = simulate(devices=devices, seed=32, days=2.0, fault_rate=0.3).data
    rows = len(data)
    figures: dict[str, Any] = {"rows": rows, "rounds": rounds}
    # Untimed: the first compiled call compiles the kernel (about a second), once per process.
    _bundle_scores(bundle, data.subset(np.arange(rows) < 100), compiled=True, threads=1)
    for threads in (1, 2):
        fast, slow = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            new = _bundle_scores(bundle, data, compiled=True, threads=threads)
            fast.append(time.perf_counter() - t)
            t = time.perf_counter()
            old = _bundle_scores(bundle, data, compiled=False, threads=threads)
            slow.append(time.perf_counter() - t)
            for name, scores in old.items():
                if not np.array_equal(scores, new[name]):
                    raise AssertionError(f"{name}: compiled trees scored differently")
        ratios = [s / f for f, s in zip(fast, slow, strict=True)]
        figures[f"threads_{threads}"] = {
            "bundle_rows_per_s": round(rows / statistics.median(fast)),
            "sklearn_bundle_rows_per_s": round(rows / statistics.median(slow)),
            "ratio_median": round(statistics.median(ratios), 2),
            "ratios": [round(r, 2) for r in ratios],
        }
        log(f"batch, {threads} thread(s): {figures[f'threads_{threads}']}")
    streaming = _streaming_cost(train)
    figures["streaming_us_per_reading"] = streaming["compact_us"]
    figures["bucket_ring_us_per_reading"] = streaming["bucket_ring_us"]
    return figures, bundle


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
    # The simulated devices are not in the registry: let the ingester register them.
    settings = Settings(
        database_url=schema_url(admin, schema), mqtt_url=broker.url, auto_register=True
    )
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
    parser.add_argument("--rounds", type=int, default=5, help="Batch rounds of each path.")
    parser.add_argument("--no-latency", action="store_true", help="Batch and streaming only.")
    args = parser.parse_args()
    figures, bundle = batch(args.train_devices, args.rounds)
    log(f"batch: {figures}")
    if not args.no_latency:
        figures["latency"] = latency(bundle, args.seconds, args.devices)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
