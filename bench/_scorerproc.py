"""The real scorer process's memory, for ``bench/memory.py --scorer-process``.

Starts ``forewarn score`` (``python -m cli score`` with a source tree first on its path, so a
baseline checkout can be measured beside this one in the same run) against a fresh schema with
a model active: the fleet benchmark's (``bench/_fleetmodel.py``: no fault predictor, no anomaly
forest) or, with ``trained``, a model trained on a simulated fleet (``trained_bundle``: five
fault predictors of three gradient-boosted fold models and a calibration each, an isolation
forest per device model; a checkout before serving forms unpickles it, loading scikit-learn and
the compiled trees, this one scores its serving form). It reads its resident set before
the first reading (idle), then stores ``devices`` devices' readings (``rounds`` each, one a
minute, written through the ingester's own write path without a broker) and reads it again
once the scorer's cursors have passed them all: the growth over the devices is what a device
costs the real process, dictionaries, allocator and all, which tracemalloc does not see.

A helper module, not an entry point: ``bench/memory.py`` imports it from its own folder.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _fleetmodel import activate, activate_alert_everything

from forewarn.settings import Settings
from models.bundle import ModelBundle

from _services import BenchError, create_schema, drop_schema, schema_url

SLICES = 64


def memory_of(pid: int) -> dict[str, int]:
    """VmRSS (VmHWM: its peak), RssAnon and RssFile of a process, and its proportional share (Pss), in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "Pss":
            out["Pss"] = int(value.split()[0]) * 1024
    return out


def _activate(conn: psycopg.Connection[tuple[Any, ...]], bundle: bytes | None) -> None:
    if bundle is None:
        activate_alert_everything(conn)
    else:
        activate(conn, ModelBundle.loads(bundle), note="bench/memory trained")


def _store(settings: Settings, devices: int, rounds: int) -> datetime:
    """`rounds` readings of each device, one a minute up to now; the newest ingested_at."""
    # Here, not above: bench/ingest.py shadows the ingest package until memory.py takes bench/
    # off the path.
    from ingest.direct import DirectWriter

    # Small transactions, as the ingesters commit: each pass of the scorer then sees a few
    # hundred devices, as in the fleet benchmark's steady state, not the whole fleet at once.
    writer = DirectWriter(settings, batch=500)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        for k in range(rounds):
            ts = now - timedelta(minutes=rounds - 1 - k)
            ms = int(ts.timestamp() * 1000)
            for d in range(devices):
                body = {
                    "ts": ms + d % 60_000,
                    "model": "lock-s2",
                    "signal_dbm": -60.0 - (d + k) % 7,
                    "battery_pct": 90.0 - k * 0.01,
                    "temperature_c": 21.0 + (d + k) % 5 * 0.1,
                    "uptime_s": 3600 + 60 * k,
                    "reconnects": d % 3,
                }
                topic = f"{settings.topic_prefix}/devices/mem-{d:06d}/telemetry"
                writer.publish(topic, json.dumps(body).encode(), retain=False)
    finally:
        writer.close()
    with psycopg.connect(settings.database_url or "") as conn:
        row = conn.execute("SELECT max(ingested_at) FROM telemetry").fetchone()
    assert row is not None and row[0] is not None
    return row[0]  # type: ignore[no-any-return]


def _wait_scored(settings: Settings, newest: datetime, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until every slice's cursor is past `newest`."""
    t0 = time.monotonic()
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        while True:
            if proc.poll() is not None:
                raise BenchError(f"the scorer exited with {proc.returncode}")
            row = conn.execute(
                "SELECT count(*) FROM scorer_cursors WHERE ingested_after >= %s", (newest,)
            ).fetchone()
            if row is not None and row[0] >= SLICES:
                return time.monotonic() - t0
            if time.monotonic() - t0 > 900:
                raise BenchError("the scorer did not catch up within 15 minutes")
            time.sleep(0.5)


def measure_process(
    admin_url: str,
    tree: Path,
    *,
    devices: int,
    rounds: int,
    bundle: bytes | None = None,
    idle_s: float = 8.0,
) -> dict[str, Any]:
    """Idle and loaded memory of one ``forewarn score`` process running `tree`'s code, with
    the fleet benchmark's model or `bundle` (``trained_bundle``) active."""
    schema = f"bench_mem_{secrets.token_hex(4)}"
    url = schema_url(admin_url, schema)
    settings = Settings(database_url=url, auto_register=True)
    create_schema(admin_url, schema, settings)
    proc: subprocess.Popen[bytes] | None = None
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            _activate(conn, bundle)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
        env |= {"FOREWARN_DATABASE_URL": url, "PYTHONPATH": str(tree)}
        argv = [sys.executable, "-m", "cli", "score", "--slices", str(SLICES), "--lag", "0.5"]
        proc = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.DEVNULL)
        time.sleep(idle_s)  # it connects, takes every slice and reads the model
        if proc.poll() is not None:
            raise BenchError(f"the scorer exited with {proc.returncode}")
        idle = memory_of(proc.pid)
        t = time.monotonic()
        newest = _store(settings, devices, rounds)
        stored_s = time.monotonic() - t
        caught_up_s = _wait_scored(settings, newest, proc)
        # Past the scorer's next model check (every 15 s), where it also returns free memory.
        time.sleep(16.0)
        loaded = memory_of(proc.pid)
        return {
            "tree": str(tree),
            "model": "fleet benchmark's" if bundle is None else "trained",
            "devices": devices,
            "readings_per_device": rounds,
            "idle": idle,
            "loaded": loaded,
            "added_rss_bytes_per_device": round((loaded["VmRSS"] - idle["VmRSS"]) / devices),
            "rss_bytes_per_device": round(loaded["VmRSS"] / devices),
            "store_s": round(stored_s, 1),
            "caught_up_s": round(caught_up_s, 1),
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        drop_schema(admin_url, schema)
