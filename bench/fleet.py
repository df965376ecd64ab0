"""Fleet benchmark: N simulated devices reporting once a minute, in real time, through the
broker, the ingesters, the scorers and the responder, each its own process on this machine.

    python bench/fleet.py --devices 10000 --minutes 3

What runs: a private Mosquitto on a free port (deploy/'s queue limits); a fresh schema
``bench_<hex>`` (dropped afterwards); ``--ingesters`` ``forewarn ingest``, ``--scorers``
``forewarn score`` (sharing the devices' slices) and ``--responders`` (1) ``forewarn respond``
(no outbox sending) processes; the publisher (``bench/_fleetpub.py``: the simulator's devices, faults
and status messages, once a minute per device, QoS 1, several connections, one process).

The active model is a real model bundle whose anomaly threshold is 0, so that every scored
reading writes (updates) its device's prediction row: the worst case for the write path, and
what makes each reading's publish-to-prediction time visible as ``updated_at - last_at``
(``last_at`` is the reading's ``ts``, the publisher's wall clock at publish). With
``--trained-model`` it is a model trained on a simulated fleet
(``bench/_fleetmodel.trained_bundle``), scored from its serving form; its fault predictions
are scored and left to the label-free detectors, as a version without an evaluation's
comparison is, so the responder's work is the other runs'.

After ``--warmup`` seconds, for ``--minutes`` minutes it samples every 5 s: the predictions
written since the last sample (their latency), the broker's queued messages
(``$SYS/broker/store/messages/count`` minus ``retained messages/count``), the scorers' lag (database clock minus the oldest
slice cursor) and the responder's (minus its oldest cursor). It prints one JSON line:
``devices``, ``readings_per_s`` (rows stored in the window over its length),
``publish_to_prediction_p50_ms``/``p99_ms``, ``scorer_bytes_per_device`` (the scorers'
resident memory at the end over devices) with ``scorer_idle_rss_bytes`` (the same processes
before the first reading: the baseline) and ``scorer_added_bytes_per_device`` (the growth
over that baseline, per device), ``backlog_growing`` (as the issue defines it: the broker's
stored messages or the scorers' lag rising from the window's first third to its last; the
parts in ``backlog``), ``responder_lag_growing`` (the same test on the responders' cursor lag,
reported apart, with ``responder_lag_s_first``/``_max``/``_last``), and
``cpu_pct_of_one_core`` per process (and PostgreSQL's, which the machine's other users share).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

# bench/ingest.py would shadow the ingest package (the trained model simulates a fleet):
# packages from the repository first, this folder's helpers last.
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from _fleetmodel import activate, activate_alert_everything, trained_bundle

from forewarn.settings import Settings

from _procs import CpuMeter, pids_named
from _services import (
    REPO,
    VENV_BIN,
    BenchError,
    Children,
    Deadline,
    create_schema,
    drop_schema,
    log,
    schema_url,
    start_broker,
)

LIMITS = (
    "max_queued_messages 1000000\nmax_queued_bytes 536870912\n"
    "max_inflight_messages 20\nlog_dest none\nsys_interval 5\n"
)
SAMPLE_SECONDS = 5.0


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _growing(samples: list[float], *, slack: float) -> bool:
    """Whether the last third of a series sits above its first third by more than `slack`
    (and a fifth)."""
    if len(samples) < 6:
        return False
    third = len(samples) // 3
    first, last = mean(samples[:third]), mean(samples[-third:])
    return last > first * 1.2 + slack


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Fleet:
    """One run."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.run_id = secrets.token_hex(4)
        self.schema = f"bench_{self.run_id}"
        self.prefix = f"bench-{self.run_id}/v1"
        self.children = Children()
        self.deadline = Deadline(time.monotonic() + a.warmup + 60 * a.minutes + 600)
        self.db_url = schema_url(a.database_url, self.schema)
        self.pids: dict[str, int] = {}
        self.stored: list[float] = []

    def env(self, broker_url: str, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
        return env | {
            "FOREWARN_DATABASE_URL": self.db_url,
            "FOREWARN_MQTT_URL": broker_url,
            "FOREWARN_TOPIC_PREFIX": self.prefix,
            "FOREWARN_ZIGBEE2MQTT_BASE": f"bench-{self.run_id}-z2m",
            "FOREWARN_INGEST_CLIENT_ID": f"bench-{self.run_id}-{name}",
            "FOREWARN_INGEST_SHARE_GROUP": f"bench-{self.run_id}",
            "FOREWARN_INGEST_SESSION_EXPIRY_SECONDS": "60",
            "FOREWARN_AUTO_REGISTER": "true",
            "PGAPPNAME": f"bench-{self.run_id}-{name}",
        }

    def spawn(self, name: str, argv: list[str], broker_url: str) -> subprocess.Popen[bytes]:
        popen = subprocess.Popen(
            argv, env=self.env(broker_url, name), cwd=REPO, stdout=subprocess.DEVNULL
        )
        self.children.popens.append(popen)
        self.pids[name] = popen.pid
        return popen

    def run(self) -> dict[str, Any]:
        a = self.a
        broker = start_broker(
            LIMITS, deadline=self.deadline, workdir_prefix="bench-fleet-", output=sys.stderr
        )
        self.children.popens.append(broker.popen)
        self.pids["broker"] = broker.popen.pid
        settings = Settings(database_url=self.db_url, mqtt_url=broker.url)
        storage = create_schema(a.database_url, self.schema, settings)
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            if a.trained_model:
                from models.bundle import ModelBundle

                bundle = ModelBundle.loads(trained_bundle())
                activate(conn, bundle, note="bench/fleet trained")
            else:
                activate_alert_everything(conn)
        log(f"schema {self.schema} ({storage}); broker on port {broker.port}")
        forewarn = str(VENV_BIN / "forewarn")
        for i in range(a.ingesters):
            self.spawn(f"ingester{i}", [forewarn, "ingest"], broker.url)
        scorers = [
            self.spawn(
                f"scorer{i}",
                [forewarn, "score", "--slices", str(a.slices), "--lag", str(a.lag)],
                broker.url,
            )
            for i in range(a.scorers)
        ]
        for i in range(a.responders):
            self.spawn(f"responder{i}", [forewarn, "respond", "--no-dispatch"], broker.url)
        time.sleep(8)  # the services connect and take their slices
        for name, popen in [("scorer", s) for s in scorers]:
            if popen.poll() is not None:
                raise BenchError(f"a {name} exited with {popen.returncode}")
        idle_rss = sum(_rss(s.pid) for s in scorers)
        watcher = self.watch_broker(broker.port)
        publisher = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).parent / "_fleetpub.py"),
                f"--port={broker.port}",
                f"--prefix={self.prefix}",
                f"--devices={a.devices}",
                f"--connections={a.connections}",
                f"--span-s={a.warmup + 60 * a.minutes}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.children.popens.append(publisher)  # type: ignore[arg-type]
        self.pids["publisher"] = publisher.pid
        pub_lines: list[dict[str, Any]] = []

        def follow() -> None:
            for line in publisher.stdout or ():
                pub_lines.append(json.loads(line))

        threading.Thread(target=follow, daemon=True).start()
        log(f"publishing {a.devices} devices; warm-up {a.warmup} s")
        time.sleep(a.warmup)
        return self.measure(idle_rss, scorers, pub_lines, watcher)

    def watch_broker(self, port: int) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{self.run_id}-sys")
        retained = [0.0]

        def on_message(_c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
            # Queued for subscribers = stored minus the retained statuses the broker keeps.
            if m.topic.endswith("retained messages/count"):
                retained[0] = float(m.payload)
            else:
                self.stored.append(float(m.payload) - retained[0])

        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.subscribe([("$SYS/broker/retained messages/count", 0)])
        client.subscribe([("$SYS/broker/store/messages/count", 0)])
        client.loop_start()
        return client

    def measure(
        self,
        idle_rss: int,
        scorers: list[subprocess.Popen[bytes]],
        pub_lines: list[dict[str, Any]],
        watcher: mqtt.Client,
    ) -> dict[str, Any]:
        a = self.a
        groups: dict[str, Sequence[int]] = {name: [pid] for name, pid in self.pids.items()}
        groups["postgres_all"] = pids_named("postgres")
        meter = CpuMeter(groups)
        latencies: list[float] = []
        scorer_lag: list[float] = []
        responder_lag: list[float] = []
        stored_from = len(self.stored)
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            start_row = conn.execute("SELECT clock_timestamp()").fetchone()
            assert start_row is not None
            started = last = start_row[0]
            end = time.monotonic() + 60 * a.minutes
            while time.monotonic() < end:
                time.sleep(SAMPLE_SECONDS)
                self.check_alive()
                rows = conn.execute(
                    "SELECT extract(epoch FROM updated_at - last_at)::float8, updated_at "
                    "FROM predictions WHERE updated_at > %s",
                    (last,),
                ).fetchall()
                latencies += [float(r[0]) for r in rows]
                last = max([last, *(r[1] for r in rows)])
                lag = conn.execute(
                    "SELECT extract(epoch FROM clock_timestamp() - min(ingested_after))::float8 "
                    "FROM scorer_cursors"
                ).fetchone()
                scorer_lag.append(float(lag[0]) if lag and lag[0] is not None else 0.0)
                rlag = conn.execute(
                    "SELECT extract(epoch FROM clock_timestamp() - min(updated_after))::float8 "
                    "FROM responder_cursors"
                ).fetchone()
                responder_lag.append(float(rlag[0]) if rlag and rlag[0] is not None else 0.0)
            stored_rows = conn.execute(
                "SELECT count(*), extract(epoch FROM clock_timestamp() - %s)::float8 "
                "FROM telemetry WHERE ingested_at > %s",
                (started, started),
            ).fetchone()
            assert stored_rows is not None
        cpu = meter.stop()
        rss = sum(_rss(s.pid) for s in scorers)
        watcher.loop_stop()
        stored = self.stored[stored_from:]
        # The issue's backlog is the broker's or the scorers'; the responder's lag is
        # reported beside it (responder_lag_growing), not folded into the headline.
        growing = {
            "broker_stored_messages": _growing(stored, slack=a.devices / 600),
            "scorer_lag": _growing(scorer_lag, slack=1.0),
        }
        responder_growing = _growing(responder_lag, slack=1.0)
        p50, p99 = _q(latencies, 0.5), _q(latencies, 0.99)
        last_pub = pub_lines[-1] if pub_lines else {}
        return {
            "bench": "fleet",
            "devices": a.devices,
            "minutes": a.minutes,
            "warmup_s": a.warmup,
            "ingesters": a.ingesters,
            "scorers": a.scorers,
            "responders": a.responders,
            "model": "trained" if a.trained_model else "alert-everything",
            "readings_per_s": round(int(stored_rows[0]) / float(stored_rows[1]), 1),
            "predictions_sampled": len(latencies),
            "publish_to_prediction_p50_ms": None if p50 is None else round(1000 * p50),
            "publish_to_prediction_p99_ms": None if p99 is None else round(1000 * p99),
            "scorer_bytes_per_device": round(rss / a.devices),
            "scorer_rss_bytes": rss,
            "scorer_idle_rss_bytes": idle_rss,
            "scorer_added_bytes_per_device": round((rss - idle_rss) / a.devices),
            "backlog_growing": any(growing.values()),
            "backlog": growing,
            "scorer_lag_s_last": scorer_lag[-1] if scorer_lag else None,
            "responder_lag_growing": responder_growing,
            "responder_lag_s_first": responder_lag[0] if responder_lag else None,
            "responder_lag_s_max": max(responder_lag, default=None),
            "responder_lag_s_last": responder_lag[-1] if responder_lag else None,
            "broker_stored_last": stored[-1] if stored else None,
            "publisher_late_s_max": max((p.get("late_s", 0.0) for p in pub_lines), default=None),
            "published": last_pub.get("published"),
            "cpu_pct_of_one_core": cpu,
            "meets_p99_5s": p99 is not None and p99 <= 5.0,
        }

    def check_alive(self) -> None:
        for popen in self.children.popens:
            if popen.poll() is not None:
                raise BenchError(f"process {popen.args!r} exited with {popen.returncode}")


def run_once(a: argparse.Namespace) -> dict[str, Any] | None:
    """One run at ``a.devices``; None if it failed (the reason is logged)."""
    run = Fleet(a)
    try:
        return run.run()
    except BenchError as exc:
        log(f"failed: {exc}")
        return None
    finally:
        run.children.stop_all()
        if not a.keep_schema:
            drop_schema(a.database_url, run.schema)


def find_max(a: argparse.Namespace) -> dict[str, Any]:
    """Bisect between 0 and ``--devices`` (to ``--resolution``) for the largest fleet whose
    p99 publish-to-prediction is at most 5 s with no growing backlog; one run per step."""
    lo, hi, n = 0, a.devices, a.devices
    runs: list[dict[str, Any]] = []
    while n > lo:
        a.devices = n
        report = run_once(a)
        good = bool(report and report["meets_p99_5s"] and not report["backlog_growing"])
        runs.append(report or {"devices": n, "failed": True})
        log(f"{n} devices: {'meets' if good else 'misses'} p99 <= 5 s without a growing backlog")
        lo, hi = (n, hi) if good else (lo, n)
        n = (lo + hi) // 2 // a.resolution * a.resolution
        if hi - lo <= a.resolution:
            break
    return {"bench": "fleet-find-max", "largest_devices_meeting_p99_5s": lo, "runs": runs}


def main() -> int:
    """Run once (or bisect with --find-max) and print the JSON line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=10.0, help="measured, after the warm-up")
    p.add_argument("--warmup", type=float, default=90.0, help="seconds before measuring")
    p.add_argument("--ingesters", type=int, default=2)
    p.add_argument("--scorers", type=int, default=2)
    p.add_argument("--responders", type=int, default=1)
    p.add_argument("--slices", type=int, default=64)
    p.add_argument("--lag", type=float, default=1.0, help="the scorers' --lag")
    p.add_argument("--connections", type=int, default=4, help="the publisher's")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--keep-schema", action="store_true")
    p.add_argument(
        "--trained-model",
        action="store_true",
        help="score with every part of a trained model (bench/_fleetmodel.trained_bundle)",
    )
    p.add_argument(
        "--find-max",
        action="store_true",
        help="bisect up to --devices for the largest fleet meeting p99 <= 5 s",
    )
    p.add_argument("--resolution", type=int, default=5000, help="--find-max stops this close")
    a = p.parse_args()
    report = find_max(a) if a.find_max else run_once(a)
    if report is None:
        return 2
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
