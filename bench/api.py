"""API benchmark: p50/p99 latency of the ticket queue and of one device's 24-hour chart.

What is measured, with the real app served by uvicorn in its own process over loopback:

1. ``queue``: GET /api/v1/tickets with the default filters and sort (open tickets, most
   urgent first), first page of 50. Target: p99 under 100 ms.
2. ``chart_<B>s``: GET /api/v1/devices/{id}/telemetry over the last 24 h of the data at
   ``--bucket`` seconds (300 by default, 288 points), and ``chart_60s`` at 60 s, the raw
   resolution of one reading a minute (1,440 points). Each request asks for another device.
   Target: p99 under 250 ms.
3. Baseline in the same run: GET /healthz (no key; one pooled connection, one SELECT), whose
   p50 and p99 divide each figure into a ratio, because the machine is shared and noisy.
   GET /api/v1/keys/me (the API-key check, nothing else) is measured too, to show what
   authentication adds to every /api/v1 route.

The probes are interleaved: each round sends one request of each, in an order that rotates
from round to round, so a burst of load elsewhere on the machine hits all of them alike. The
client is one httpx.Client with keep-alive, timing each request from send to the whole body
read; the first ``--warmup`` rounds are not counted. Every response is checked (status, page
size, points per chart) outside the timed section.

The data (``bench/_apidata.py``): a dedicated schema (``--schema``, default ``bench_api``)
with 2,000 devices of 5,000 readings at one a minute (10 million, about 3.5 days, in daily
partitions on the plain path) and 10,000 tickets with their incidents and timelines. It takes
minutes to load, so ``--keep`` leaves it in place and the next run reuses it when it holds the
same shape. The server's business clock is fixed at the end of the readings (the anchor), so
the queue's urgencies and the chart's window mean the same on every run.

Run it as a script (``.venv/bin/python bench/api.py --keep``). This file shadows the ``api``
package on ``sys.path`` when run this way, so it never imports ``api``: the API key is made
with ``create_key`` and the app served in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import psycopg

from cli.embedded import free_port
from forewarn.settings import Settings

from _apidata import Dataset, Shape, prepare
from _procs import sigterm_as_exit
from _services import REPO, BenchError, Deadline, log, one

TARGET_P99_MS = {"queue": 100.0, "chart": 250.0}
QUEUE_PAGE = 50

# `python -c KEY_SNIPPET`: a viewer key made the way `forewarn keys create` makes one; only
# its secret is printed.
KEY_SNIPPET = """
import psycopg
from api.keys.flows import create_key
from api.keys.types import Role
from forewarn.settings import Settings
with psycopg.connect(Settings().database_url) as conn:
    print(create_key(conn, name="bench/api.py", role=Role.VIEWER).secret)
"""

# `python -c SERVER_SNIPPET ANCHOR PORT`: the app as `forewarn api` builds it, with the
# business clock fixed at the data's anchor; uvicorn's defaults otherwise (one process).
SERVER_SNIPPET = """
import sys
from datetime import datetime
import uvicorn
from api.app import create_app
from forewarn.clock import FixedClock
from forewarn.settings import Settings
app = create_app(Settings(), clock=FixedClock(datetime.fromisoformat(sys.argv[1])))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


@dataclass(frozen=True, slots=True)
class Options:
    """Parsed command line."""

    database_url: str
    schema: str
    shape: Shape
    requests: int
    warmup: int
    bucket: int
    keep: bool
    fresh: bool
    timeout: float


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Command line to Options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--schema", default="bench_api", help="where the data lives (default bench_api)")
    p.add_argument("--devices", type=int, default=2000)
    p.add_argument("--readings", type=int, default=5000, help="per device, one a minute")
    p.add_argument("--tickets", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=500, help="timed requests per probe")
    p.add_argument("--warmup", type=int, default=50, help="untimed rounds first")
    p.add_argument("--bucket", type=int, default=300, help="chart bucket, seconds (and 60 s)")
    p.add_argument("--keep", action="store_true", help="keep the data for the next run")
    p.add_argument("--fresh", action="store_true", help="drop kept data and load it again")
    p.add_argument("--timeout", type=float, default=3600.0, help="budget for the whole run, s")
    a = p.parse_args(argv)
    if a.readings < 24 * 60:
        p.error("--readings must cover the 24-hour chart (at least 1440)")
    if not a.schema.isidentifier():
        p.error("--schema must be a plain identifier")
    return Options(
        database_url=a.database_url,
        schema=a.schema.lower(),
        shape=Shape(a.devices, a.readings, a.tickets),
        requests=max(a.requests, 1),
        warmup=max(a.warmup, 0),
        bucket=a.bucket,
        keep=a.keep,
        fresh=a.fresh,
        timeout=a.timeout,
    )


def with_search_path(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to the schema, then public (as tests/conftest.py)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema},public')}"


# --- the server ---------------------------------------------------------------------------


class Server:
    """The app under uvicorn in a child process, and the API key requests carry."""

    def __init__(self, settings: Settings, data: Dataset, deadline: Deadline) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
        self.env = env | settings.as_environment()
        self.data = data
        self.deadline = deadline
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.popen: subprocess.Popen[bytes] | None = None
        self.secret = ""

    def start(self) -> None:
        """Make a key, start uvicorn, return once /healthz answers 200."""
        made = subprocess.run(
            [sys.executable, "-c", KEY_SNIPPET],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if made.returncode:
            raise BenchError(f"could not make an API key: {made.stderr.strip()}")
        self.secret = made.stdout.strip()
        argv = [sys.executable, "-c", SERVER_SNIPPET, self.data.anchor.isoformat(), str(self.port)]
        self.popen = subprocess.Popen(argv, env=self.env, cwd=REPO, stdout=sys.stderr)
        while True:
            self.check()
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    break
            self.deadline.left("waiting for the API server")
            time.sleep(0.2)
        log(f"uvicorn pid {self.popen.pid} serving on {self.url}")

    def check(self) -> None:
        """Fail fast if the server died."""
        if self.popen is not None and self.popen.poll() is not None:
            raise BenchError(f"the API server exited with {self.popen.returncode}")

    def stop(self) -> None:
        """SIGTERM (uvicorn closes the pool in its lifespan), then SIGKILL if it hangs."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


# --- the probes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One kind of request: its URL and query for round ``i``, and a check of its body."""

    name: str
    request: Callable[[int], tuple[str, dict[str, str]]]
    check: Callable[[Any], str | None]  # the parsed body -> what is wrong with it, or None


def probes(data: Dataset, bucket: int) -> list[Probe]:
    """/healthz, /api/v1/keys/me, the queue, and the 24-hour chart at ``bucket`` and 60 s."""
    ids = data.device_ids
    until = data.anchor
    since = until - timedelta(hours=24)
    window = {"since": since.isoformat(), "until": until.isoformat()}
    expected_open = min(data.open_tickets, QUEUE_PAGE)

    def chart(size: int, offset: int) -> Probe:
        # A stride coprime with the fleet size visits every device before repeating one.
        stride = next(s for s in range(7919, 10**6) if math.gcd(s, len(ids)) == 1)
        points = (24 * 3600) // size

        def request(i: int) -> tuple[str, dict[str, str]]:
            device = ids[(i * stride + offset) % len(ids)]
            return f"/api/v1/devices/{device}/telemetry", window | {"bucket": str(size)}

        def check(body: Any) -> str | None:
            n = len(body["points"])
            return None if n == points else f"{n} points, expected {points}"

        return Probe(f"chart_{size}s", request, check)

    def queue_check(body: Any) -> str | None:
        n = len(body["items"])
        return None if n == expected_open else f"{n} tickets, expected {expected_open}"

    charts = [chart(bucket, 0)] + ([chart(60, len(ids) // 2)] if bucket != 60 else [])
    return [
        Probe("healthz", lambda i: ("/healthz", {}), lambda b: None),
        Probe("me", lambda i: ("/api/v1/keys/me", {}), lambda b: None),
        Probe("queue", lambda i: ("/api/v1/tickets", {}), queue_check),
        *charts,
    ]


def measure(
    server: Server, plan: list[Probe], *, rounds: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Milliseconds per timed request and the last body's bytes, by probe; all checked."""
    samples: dict[str, list[float]] = {p.name: [] for p in plan}
    sizes: dict[str, int] = {}
    headers = {"X-API-Key": server.secret}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        for i in range(warmup + rounds):
            k = i % len(plan)
            for probe in plan[k:] + plan[:k]:
                path, params = probe.request(i)
                t0 = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = time.perf_counter() - t0
                if response.status_code != 200:
                    raise BenchError(f"{probe.name}: {path} {response.status_code} {response.text}")
                problem = probe.check(response.json())
                if problem:
                    raise BenchError(f"{probe.name}: {path} {params}: {problem}")
                if i >= warmup:
                    samples[probe.name].append(elapsed * 1000)
                    sizes[probe.name] = len(response.content)
            if i == warmup - 1:
                log(f"warmed up ({warmup} rounds)")
            elif i >= warmup and (i - warmup + 1) % 100 == 0:
                server.check()
                log(f"{i - warmup + 1} of {rounds} rounds")
    return samples, sizes


def summary(ms: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank), mean and max, in milliseconds."""
    ordered = sorted(ms)
    p99 = ordered[max(math.ceil(0.99 * len(ordered)) - 1, 0)]
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "max_ms": round(ordered[-1], 2),
    }


def report(
    opts: Options,
    data: Dataset,
    samples: dict[str, list[float]],
    sizes: dict[str, int],
    pg: str,
    load: tuple[float, float],
) -> dict[str, Any]:
    """The JSON line: each probe's figures, its ratios to /healthz, and the targets."""
    base = summary(samples["healthz"]) | {"response_bytes": sizes["healthz"]}
    out: dict[str, Any] = {"benchmark": "forewarn api", "baseline_healthz": base}
    met = True
    for name, ms in samples.items():
        if name == "healthz":
            continue
        fig: dict[str, Any] = summary(ms)
        fig["p50_ratio"] = round(fig["p50_ms"] / base["p50_ms"], 2)
        fig["p99_ratio"] = round(fig["p99_ms"] / base["p99_ms"], 2)
        fig["response_bytes"] = sizes[name]
        target = TARGET_P99_MS.get(name.split("_")[0])
        if target is not None:
            fig["target_p99_ms"] = target
            fig["met"] = fig["p99_ms"] < target
            met = met and fig["met"]
        out[name] = fig
    out["targets_met"] = met
    out["config"] = {
        "requests_per_probe": opts.requests,
        "warmup_rounds": opts.warmup,
        "readings": opts.shape.readings,
        "devices": opts.shape.devices,
        "readings_per_device": opts.shape.readings_per_device,
        "tickets": opts.shape.tickets,
        "open_tickets": data.open_tickets,
        "queue_page": QUEUE_PAGE,
        "chart_window": f"{(data.anchor - timedelta(hours=24)).isoformat()} to "
        f"{data.anchor.isoformat()}",
        "schema": opts.schema,
        "storage": data.storage,
        "postgres": pg,
        "loaded_s": None if data.loaded_s is None else round(data.loaded_s),
        "server": "uvicorn, 1 process, default loop and HTTP parser; client httpx keep-alive",
        "cores": os.cpu_count(),
        "loadavg_1m_before_after": [round(v, 2) for v in load],
    }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Load or reuse the data, serve the app, measure; print one JSON line; 0 if targets met."""
    opts = parse_args(argv)
    deadline = Deadline(time.monotonic() + opts.timeout)
    settings = Settings(
        database_url=with_search_path(opts.database_url, opts.schema), _env_file=None
    )  # type: ignore[call-arg]
    server: Server | None = None
    with sigterm_as_exit():
        try:
            data = prepare(opts.database_url, opts.schema, settings, opts.shape, fresh=opts.fresh)
            with psycopg.connect(opts.database_url) as conn:
                pg = str(one(conn, "SHOW server_version"))
            server = Server(settings, data, deadline)
            server.start()
            plan = probes(data, opts.bucket)
            log(f"{opts.requests} timed requests per probe: {', '.join(p.name for p in plan)}")
            load_before = os.getloadavg()[0]
            samples, sizes = measure(server, plan, rounds=opts.requests, warmup=opts.warmup)
            out = report(opts, data, samples, sizes, pg, (load_before, os.getloadavg()[0]))
        except (BenchError, psycopg.Error, httpx.HTTPError) as exc:
            log(f"FAILED: {type(exc).__name__}: {exc}")
            return 2
        finally:
            if server is not None:
                server.stop()
            with suppress(psycopg.Error), psycopg.connect(opts.database_url, autocommit=True) as c:
                if opts.keep:
                    c.execute(f"DELETE FROM {opts.schema}.api_keys WHERE name = 'bench/api.py'")
                else:
                    log(f"dropping schema {opts.schema} (--keep keeps it for the next run)")
                    c.execute(f"DROP SCHEMA IF EXISTS {opts.schema} CASCADE")
    for name in samples:
        fig = out["baseline_healthz"] if name == "healthz" else out[name]
        ratio = "" if name == "healthz" else f" ({fig['p50_ratio']}x / {fig['p99_ratio']}x healthz)"
        log(f"{name:>11}: p50 {fig['p50_ms']:7.2f} ms, p99 {fig['p99_ms']:7.2f} ms{ratio}")
    print(json.dumps(out), flush=True)
    return 0 if out["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
