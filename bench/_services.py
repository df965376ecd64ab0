"""Services the benchmarks start and watch: a private Mosquitto, a schema, ingester processes.

Shared by ``bench/ingest.py`` and ``bench/drain.py``: the private broker
(:func:`start_broker`), the run's schema (:func:`create_schema`,
:func:`drop_schema`), the ingester's Prometheus counter of committed rows
(:func:`committed`) and the loss and duplicate count (:func:`rows_and_distinct`).
:class:`Ingesters` (processes, warm-up, py-spy) and :class:`Children` serve
``bench/ingest.py`` only.

A helper module, not an entry point: the scripts import it from their own folder.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from cli.embedded import free_port
from forewarn.schema.migrate import migrate
from forewarn.settings import Settings

from _options import Options

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WRITTEN = 'forewarn_ingest_messages_total{outcome="written"}'

# The ingester when no `forewarn ingest` command exists: build Settings from the
# environment, start, wait for SIGTERM, stop (commit and acknowledge what is in hand).
INGESTER_SNIPPET = """
import dataclasses, logging, signal, sys, threading
from forewarn.settings import Settings
from ingest.service import Ingester
logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                    format="ingester[%(process)d] %(levelname)s %(name)s: %(message)s")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
ingester = Ingester(Settings())
ingester.start()
while not stop.wait(0.2):
    if ingester.failure is not None:
        sys.exit(3)
ingester.stop()
print(f"ingester[{__import__('os').getpid()}] stats {dataclasses.asdict(ingester.stats())}",
      file=sys.stderr)
"""


class BenchError(Exception):
    """The benchmark could not complete; the message says why."""


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the JSON line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Deadline:
    """One time budget for the whole run."""

    at: float

    def left(self, what: str) -> float:
        """Seconds left; raises BenchError naming ``what`` once the budget is spent."""
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"timed out while {what}")
        return remaining


# --- private broker -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broker:
    """A running private Mosquitto on loopback."""

    popen: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        """The broker as an ``mqtt://`` URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Terminate the broker and wait for it."""
        self.popen.terminate()
        self.popen.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_broker(
    limits: str, *, deadline: Deadline, workdir_prefix: str, output: IO[Any] | int | None
) -> Broker:
    """Start a Mosquitto of our own on a free port; return once it accepts connections.

    ``limits`` are configuration lines added after the listener (queue limits differ
    per benchmark); ``output`` takes the broker's stdout and stderr.
    """
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{limits}")
    popen = subprocess.Popen([binary, "-c", str(conf)], stdout=output, stderr=output)
    try:
        while True:
            deadline.left("starting the private broker")
            with socket.socket() as s, suppress(OSError):
                s.connect(("127.0.0.1", port))
                break
            if popen.poll() is not None:
                raise BenchError(f"mosquitto exited with {popen.returncode}")
            time.sleep(0.1)
    except BaseException:
        if popen.poll() is None:
            popen.terminate()
        popen.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Broker(popen, port, workdir)


# --- schema and rows ----------------------------------------------------------------------


def schema_url(database_url: str, schema: str) -> str:
    """``database_url`` with ``search_path`` set to ``schema``."""
    sep = "&" if "?" in database_url else "?"
    return f"{database_url}{sep}options=-csearch_path%3D{schema}"


def create_schema(admin_url: str, schema: str, settings: Settings) -> str:
    """Create ``schema`` and migrate it (``settings.database_url`` points into it); storage."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    with psycopg.connect(settings.database_url or "") as conn:
        return migrate(conn, settings=settings).storage


def drop_schema(admin_url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def one(conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: Any = None) -> Any:
    """The first column of the first row."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def scalar(conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: Any = None) -> int:
    """The first column of the first row, as an int."""
    return int(one(conn, sql, params))


def rows_and_distinct(conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[int, int]:
    """Telemetry rows and distinct ``(device_id, ts)``: lost = N - distinct, dup = rows - distinct."""
    row = conn.execute("SELECT count(*), count(DISTINCT (device_id, ts)) FROM telemetry").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def committed(port: int) -> int:
    """Rows one ingester has committed, from its Prometheus counter on ``port``.

    ``outcome="written"`` is counted after the commit and only for rows really
    inserted, so it is the same signal as count(*) at a fraction of the cost.
    """
    total = 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(WRITTEN):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


# --- process plumbing ---------------------------------------------------------------------


@dataclass(slots=True)
class Children:
    """Every process this run started, so they are stopped even on failure."""

    procs: list[mp.process.BaseProcess] = field(default_factory=list)
    popens: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop_all(self) -> None:
        """Terminate what is still running (SIGTERM, then SIGKILL after a grace period)."""
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        self.procs.clear()
        # Newest first: ingesters stop (and commit) before the private broker goes away.
        for popen in reversed(self.popens):
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                popen.wait(20)
        for popen in self.popens:
            try:
                popen.wait(20)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)
        self.popens.clear()


# --- ingester processes (bench/ingest.py) -------------------------------------------------


class Ingesters:
    """The ingester processes of one ingest run: started, warmed up, watched, profiled."""

    def __init__(
        self,
        opts: Options,
        *,
        run_id: str,
        db_url: str,
        prefix: str,
        group: str,
        deadline: Deadline,
        children: Children,
    ) -> None:
        self.o = opts
        self.run_id = run_id
        self.db_url = db_url
        self.prefix = prefix
        self.group = group
        self.app_name = f"bench-{run_id}-ing"
        self.deadline = deadline
        self.children = children
        self.pids: list[int] = []
        self.metrics_ports: list[int] = []
        self.backend_pids: list[int] = []
        self.profilers: list[subprocess.Popen[bytes]] = []

    def argv(self) -> tuple[list[str], str]:
        """`forewarn ingest` if the CLI has it, else the in-process snippet."""
        cli = VENV_BIN / "forewarn"
        if self.o.ingester_command in ("auto", "cli") and cli.exists():
            probe = subprocess.run(
                [str(cli), "ingest", "--help"], capture_output=True, timeout=60, cwd=REPO
            )
            if probe.returncode == 0:
                return [str(cli), "ingest"], "forewarn ingest"
            if self.o.ingester_command == "cli":
                raise BenchError("`forewarn ingest` is not available")
        return [sys.executable, "-c", INGESTER_SNIPPET], "python snippet: Ingester(Settings())"

    def start(self, argv: list[str], mqtt_url: str) -> None:
        """Start the ingester processes, then wait until each one has written a warm-up row."""
        for i in range(self.o.ingesters):
            env = dict(os.environ)
            env.update(
                FOREWARN_DATABASE_URL=self.db_url,
                FOREWARN_MQTT_URL=mqtt_url,
                FOREWARN_TOPIC_PREFIX=self.prefix,
                FOREWARN_ZIGBEE2MQTT_BASE=f"bench-{self.run_id}-z2m",  # no foreign traffic
                FOREWARN_INGEST_CLIENT_ID=f"bench-{self.run_id}-ing{i}",
                FOREWARN_INGEST_SHARE_GROUP=self.group,
                FOREWARN_INGEST_CONNECTIONS=str(self.o.connections),
                FOREWARN_INGEST_SESSION_EXPIRY_SECONDS="60",  # do not litter the broker
                PGAPPNAME=f"{self.app_name}{i}",
            )
            port = free_port()
            self.metrics_ports.append(port)
            env["FOREWARN_METRICS_PORT"] = str(port)
            for key, value in (
                ("FOREWARN_INGEST_BATCH_SIZE", self.o.batch_size),
                ("FOREWARN_INGEST_BATCH_SECONDS", self.o.batch_seconds),
                ("FOREWARN_INGEST_RECEIVE_MAXIMUM", self.o.receive_maximum),
            ):
                if value is not None:
                    env[key] = str(value)
            popen = subprocess.Popen(argv, env=env, cwd=REPO, stdout=sys.stderr)
            self.children.popens.append(popen)
            self.pids.append(popen.pid)
        log(f"ingesters started: pids {self.pids}")
        self.warm_up(mqtt_url)

    def warm_up(self, mqtt_url: str) -> None:
        """Publish warm-up rounds until every ingester has committed and a round fully landed."""
        parts = urlsplit(mqtt_url)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{self.run_id}-warm", protocol=mqtt.MQTTv5
        )
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        client.loop_start()
        per_round = 4 * self.o.ingesters * self.o.connections
        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                for rnd in range(10_000):
                    self.check()
                    now = time.time()
                    infos = [
                        client.publish(
                            f"{self.prefix}/devices/warmup-r{rnd}-{k}/telemetry",
                            json.dumps({"ts": _rfc3339(now), "model": "warm"}),
                            qos=1,
                        )
                        for k in range(per_round)
                    ]
                    for info in infos:
                        info.wait_for_publish(self.deadline.left("warming up"))
                    time.sleep(0.5)
                    landed = scalar(
                        conn,
                        "SELECT count(*) FROM telemetry WHERE device_id LIKE %s",
                        (f"warmup-r{rnd}-%",),
                    )
                    rows = conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                        (f"{self.app_name}%",),
                    ).fetchall()
                    if landed == per_round and len(rows) >= self.o.ingesters:
                        self.backend_pids = [int(r[0]) for r in rows]
                        break
                    self.deadline.left("waiting for the ingesters to come up")
                conn.execute("TRUNCATE telemetry")
        finally:
            client.disconnect()
            client.loop_stop()
        log(f"ingesters ready (postgres backends {self.backend_pids})")

    def check(self) -> None:
        """Fail fast if an ingester process (or any other started service) died."""
        for popen in self.children.popens:
            if popen.poll() is not None:
                raise BenchError(f"ingester pid {popen.pid} exited with {popen.returncode}")

    def committed(self) -> int:
        """Rows all ingesters have committed, from their Prometheus counters."""
        return sum(committed(port) for port in self.metrics_ports)

    def start_profilers(self) -> None:
        """py-spy on every ingester for the end-to-end phase (--profile DIR)."""
        if self.o.profile is None:
            return
        spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
        self.o.profile.mkdir(parents=True, exist_ok=True)
        for i, pid in enumerate(self.pids):
            out = self.o.profile / f"ingester{i}-{self.run_id}.txt"
            argv = [spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
            argv += ["--threads", "--nonblocking", "--output", str(out)]
            argv += ["--gil"] if self.o.profile_gil else []
            self.profilers.append(subprocess.Popen(argv, stdout=sys.stderr, stderr=sys.stderr))
            self.children.popens.append(self.profilers[-1])
        time.sleep(1.0)  # let py-spy attach before the clock starts

    def stop_profilers(self) -> None:
        """Stop py-spy (SIGINT makes it write its output)."""
        for p in self.profilers:
            p.send_signal(signal.SIGINT)
        for p in self.profilers:
            with suppress(subprocess.TimeoutExpired):
                p.wait(30)
        self.profilers.clear()


def _rfc3339(epoch: float) -> str:
    us = int(epoch * 1_000_000)
    sec, frac = divmod(us, 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(sec))}.{frac:06d}Z"
