"""Memory of the streaming scorer's window state: bytes per device, compact against buckets.

Folds the same readings (one a minute for ``--hours``, a simulated signal, temperature,
battery, uptime and reconnect counter) into the live scorer's compact state
(``models.state.FleetState``) for ``--devices`` devices, and, as the baseline in the same run,
into the day of five-minute buckets it replaced (``models.buckets.DeviceBuckets`` in a dict,
as the old scorer kept them) for ``--baseline-devices`` devices. Each is measured two ways:
the bytes Python's tracemalloc sees allocated (numpy reports its arrays to it) and the growth
of the resident set of a fresh process, both divided by the devices; the device-id strings and the
index are counted, as the scorer holds them too. Also times folding a reading and computing
a batch of feature rows.

Beside the window state the scorer holds each device's label-free detectors
(``models.live.Live``: the ``Watch`` of every device, and when each was last heard from).
They are measured the same way after ``--detector-hours`` of readings a device, one every five
minutes (a day by default, so the overheat detector's 24 hourly means are all filled), for
``--detector-devices`` devices: the detectors alone, and the window state and the detectors
built together in one process, as the scorer holds them.

Prints one JSON line. ``python bench/memory.py [--devices 100000] [--baseline-devices 2000]
[--detector-devices 2048] [--detector-hours 24]``

``--scorer-process`` measures the real ``forewarn score`` process instead (``bench/_scorerproc.py``):
its resident set before the first reading (the idle process: imports, the model) and its
growth per device once ``--process-devices`` devices' readings are scored, for this checkout
and, as the baseline in the same run, for ``--baseline-tree`` (another checkout, such as
main's), alternating ``--process-runs`` times; ``--trained-model`` gives it a model with
every trained part instead of the fleet benchmark's. Needs the database (``--database-url``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np

# bench/ingest.py would shadow the ingest package: look for packages outside bench/ first
# (its helper modules are still found, last), and in this checkout first (the editable install
# points at another).
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from _fleetmodel import trained_bundle
from _scorerproc import measure_process

from forewarn.settings import Settings
from models.buckets import HISTORY_BUCKETS, DeviceBuckets, Sample
from models.features import latest_features
from models.live import Live
from models.state import FleetState
from models.telemetry import NewReading

START = 1_790_000_000.0  # a fixed epoch second, so every run folds the same readings


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _samples(minutes: int, device: int) -> list[Sample]:
    rng = np.random.default_rng(device)
    noise = rng.normal(0, 1.5, minutes)
    return [
        Sample(
            START + 60.0 * m + device % 60,
            round(-62.0 + noise[m], 1),
            round(90.0 - m * 0.01, 2),
            round(3.9 - m * 0.0002, 3),
            round(24.0 + (m % 30) * 0.1, 1),
            float(60 * m),
            float(m // 200),
        )
        for m in range(minutes)
    ]


def _measure(
    devices: int, minutes: int, build: Callable[[int, list[Sample]], Any]
) -> dict[str, Any]:
    """Bytes per device of the state `build` makes, with its readings made outside the count."""
    template = _samples(minutes, 0)
    gc.collect()
    rss0 = _rss()
    tracemalloc.start()
    state = build(devices, template)
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    rss = _rss() - rss0
    # Timed apart from the count, after it: tracemalloc slows every allocation down, and
    # memory this freed before the count would be reused by it, hiding growth.
    timed = min(devices, 500)
    t = time.perf_counter()
    build(timed, template)
    elapsed = time.perf_counter() - t
    out = {
        "devices": devices,
        "traced_bytes_per_device": round(traced / devices),
        "rss_bytes_per_device": round(rss / devices),
        "fold_us_per_reading": round(elapsed / (timed * minutes) * 1e6, 2),
    }
    del state
    return out


def _compact(devices: int, template: list[Sample]) -> FleetState:
    state = FleetState()
    for d in range(devices):
        device_id = f"dev-{d:06d}"
        for s in template:
            state.add(device_id, s)
    return state


def _buckets(devices: int, template: list[Sample]) -> dict[str, DeviceBuckets]:
    rings: dict[str, DeviceBuckets] = {}
    for d in range(devices):
        ring = rings.setdefault(f"dev-{d:06d}", DeviceBuckets())
        for s in template:
            ring.add(s)
    return rings


def _live(template: list[Sample]) -> tuple[Live, list[NewReading]]:
    """The scorer's detectors, and the template as stored readings (of device "")."""
    live = Live(Settings())
    # Every device's model counts as just read, so folding never asks the database.
    live._models_read = math.inf
    at = datetime.fromtimestamp(START, UTC)
    rows = [
        NewReading(
            "",
            datetime.fromtimestamp(s.ts, UTC),
            at,
            s.signal,
            s.battery,
            None,
            s.temp,
            s.uptime,
            s.reconnects,
            (),
        )
        for s in template[::5]  # one every five minutes: the size does not depend on the count
    ]
    return live, rows


def _fold_detectors(live: Live, devices: int, rows: list[NewReading]) -> None:
    # No connection is needed: the models were "just read" (see _live).
    conn = cast(Any, None)
    for d in range(devices):
        device_id = f"dev-{d:06d}"
        for r in rows:
            live.fold(conn, dataclasses.replace(r, device_id=device_id), score=True)
        live.take()  # the scorer takes the predictions after each read


def _detectors(devices: int, template: list[Sample]) -> Live:
    live, rows = _live(template)
    _fold_detectors(live, devices, rows)
    return live


def _window_and_detectors(devices: int, template: list[Sample]) -> tuple[FleetState, Live]:
    live, rows = _live(template)
    _fold_detectors(live, devices, rows)
    return _compact(devices, template), live


def _feature_cost(devices: int, batch: int) -> dict[str, Any]:
    """Microseconds per device of a feature row: compact in batches, against the ring."""
    template = _samples(26 * 60, 0)
    state = FleetState()
    ids = [f"dev-{d:06d}" for d in range(devices)]
    for d in ids:
        for s in template:
            state.add(d, s)
    ring = DeviceBuckets()
    for s in template:
        ring.add(s)
    head = ring.head
    assert head is not None
    compact, old = [], []
    for _ in range(7):
        t = time.perf_counter()
        state.features(ids[:batch])
        compact.append((time.perf_counter() - t) / batch)
        t = time.perf_counter()
        for _ in range(20):
            latest_features(ring.window(), ring.valid_from(), head)
        old.append((time.perf_counter() - t) / 20)
    # The two paths agree (their values, not only their speed, are what is compared).
    np.testing.assert_allclose(
        state.features(ids[:1])[0],
        latest_features(ring.window(), ring.valid_from(), head)[0],
        rtol=1e-5,
        atol=1e-4,
    )
    c, o = statistics.median(compact), statistics.median(old)
    return {
        "batch": batch,
        "compact_features_us_per_device": round(c * 1e6, 1),
        "bucket_ring_features_us_per_device": round(o * 1e6, 1),
        "features_speedup": round(o / c, 1),
    }


def _processes(args: argparse.Namespace) -> None:
    """The real scorer process of this checkout and of the baseline, alternating."""
    here = Path(__file__).resolve().parent.parent
    trees = [here] if args.baseline_tree is None else [args.baseline_tree.resolve(), here]
    runs: dict[str, list[dict[str, Any]]] = {str(t): [] for t in trees}
    bundle = trained_bundle() if args.trained_model else None
    for _ in range(args.process_runs):
        for tree in trees:
            got = measure_process(
                args.database_url,
                tree,
                devices=args.process_devices,
                rounds=args.process_rounds,
                bundle=bundle,
            )
            print(f"scorer process: {got}", file=sys.stderr)
            runs[str(tree)].append(got)
    out: dict[str, Any] = {"runs": runs}
    if args.baseline_tree is not None:
        base, mine = runs[str(trees[0])], runs[str(here)]
        for key in ("idle", "loaded"):
            b = statistics.median(r[key]["VmRSS"] for r in base)
            m = statistics.median(r[key]["VmRSS"] for r in mine)
            out[f"{key}_rss_ratio_to_baseline"] = round(m / b, 3)
        b = statistics.median(r["added_rss_bytes_per_device"] for r in base)
        m = statistics.median(r["added_rss_bytes_per_device"] for r in mine)
        out["added_per_device_ratio_to_baseline"] = round(m / b, 3)
    print(json.dumps(out))


def main() -> None:
    """Measure both states and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000, help="devices, compact state")
    parser.add_argument(
        "--baseline-devices", type=int, default=2_000, help="devices, bucket ring (52 KB each)"
    )
    parser.add_argument("--hours", type=float, default=2.0, help="readings a device, one a minute")
    parser.add_argument(
        "--detector-devices", type=int, default=2_048, help="devices, label-free detectors"
    )
    parser.add_argument(
        "--detector-hours", type=float, default=24.0, help="readings a device for the detectors"
    )
    parser.add_argument(
        "--scorer-process", action="store_true", help="measure the real scorer process only"
    )
    parser.add_argument("--process-devices", type=int, default=20_000)
    parser.add_argument("--process-rounds", type=int, default=5, help="readings a device")
    parser.add_argument("--process-runs", type=int, default=1)
    parser.add_argument(
        "--trained-model",
        action="store_true",
        help="the process scores with a bundle of every trained part, not the fleet bench's",
    )
    parser.add_argument("--baseline-tree", type=Path, help="a checkout to measure beside this")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.scorer_process:
        _processes(args)
        return
    minutes = max(2, int(args.hours * 60))
    detector_minutes = max(2, int(args.detector_hours * 60))
    # Each in a fresh process: memory one freed would be reused by the next, hiding its growth.
    fresh = mp.get_context("fork")

    def run(devices: int, minutes: int, build: Callable[[int, list[Sample]], Any]) -> Any:
        with ProcessPoolExecutor(max_workers=1, mp_context=fresh) as pool:
            return pool.submit(_measure, devices, minutes, build).result()

    compact = run(args.devices, minutes, _compact)
    print(f"compact: {compact}", file=sys.stderr)
    baseline = run(args.baseline_devices, minutes, _buckets)
    print(f"buckets: {baseline}", file=sys.stderr)
    detectors = run(args.detector_devices, detector_minutes, _detectors)
    print(f"detectors: {detectors}", file=sys.stderr)
    both = run(args.detector_devices, detector_minutes, _window_and_detectors)
    print(f"window and detectors: {both}", file=sys.stderr)
    figures = {
        "readings_per_device": minutes,
        "compact": compact,
        "bucket_ring_baseline": baseline,
        "detector_readings_per_device": len(range(0, detector_minutes, 5)),  # see _live
        "detectors": detectors,
        "window_and_detectors": both,
        "history_buckets": HISTORY_BUCKETS,
        "traced_ratio": round(
            baseline["traced_bytes_per_device"] / compact["traced_bytes_per_device"], 1
        ),
        "features": _feature_cost(min(args.devices, 2_000), min(args.devices, 1_000)),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
