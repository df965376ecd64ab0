"""Ingest benchmark: how close Forewarn's ingester gets to a bare MQTT subscriber.

What is measured, in one run, against the local Mosquitto and PostgreSQL:

1. ``bare_subscriber_msgs_per_s``: N QoS 1 messages from the first publish to
   the N-th message counted by a bare paho-mqtt subscriber (MQTT v5, auto ack,
   same shared-subscription form and Receive Maximum as the ingester) running in
   its own process. This is the ceiling of this broker + publisher setup.
2. ``end_to_end_msgs_per_s``: the same N messages, same publishers, from the
   first publish to the poll (``SELECT count(*) FROM telemetry`` every ~20 ms on
   its own connection) that sees N committed rows, with the Forewarn ingester(s)
   running in their own process(es).
3. ``lost`` (N minus distinct rows) and ``duplicated`` (rows minus distinct
   ``(device_id, ts)``); the run exits non-zero unless both are 0.
4. Latency. Each payload's ``ts`` is the publisher's wall clock when the message
   is handed to paho with an in-flight slot free (RFC 3339, microseconds,
   strictly increasing per device). ``latency_ms_*`` is ``ingested_at - ts``,
   where ``ingested_at`` is ``clock_timestamp()`` at INSERT inside the committing
   transaction; ``publish_to_receive_ms_*`` is ``received_at - ts``;
   ``commit_visible_ms_*`` ranks rows by ``ingested_at`` and takes the first poll
   whose count covered the row's rank (an upper bound, to a poll interval).
5. ``ratio_end_to_end_vs_bare``, the headline figure (target >= 0.70).

The publishers (``--publishers`` processes, one paho MQTT v5 client each, QoS 1,
1000 messages in flight, ``loop_start``) pre-encode every payload before the
clock starts; only the timestamp is spliced in at publish time. CPU time per
component (from /proc) is reported for both phases, since the two cores are
shared by publishers, broker, subscriber or ingester, and PostgreSQL.

Each run uses a fresh schema ``bench_<hex>`` (dropped afterwards), its own topic
prefix, client ids and share group, so it never meets the tests or the demo.

Run it as a script (``.venv/bin/python bench/ingest.py --quick``). Note that
this file shadows the ``ingest`` package on ``sys.path`` when run this way, so
it never imports ``ingest``; the ingester runs in subprocesses.
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from forewarn.embedded import free_port
from forewarn.schema.migrate import migrate, read_storage
from forewarn.settings import Settings

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_RATIO = 0.70
PUBLISHER_INFLIGHT = 1000
LATENCY_DEFINITION = "publish to INSERT inside the committing transaction"
COMMIT_VISIBLE_DEFINITION = (
    "publish to the first count(*) poll that covered the row's rank in ingested_at order "
    "(upper bound; resolution one poll interval plus the query time)"
)

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


# --- publishers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublisherJob:
    """What one publisher process sends: messages k with (k % devices) % publishers == index."""

    index: int
    publishers: int
    messages: int
    devices: int
    prefix: str
    host: str
    port: int
    qos: int
    client_id: str
    timeout: float
    window: int  # 0: open loop; else stay at most this many messages ahead of the consumer


def _plan(job: PublisherJob) -> list[tuple[str, int, bytes]]:
    """Pre-encoded (topic, device, payload tail) for this publisher; ts is spliced in later."""
    out: list[tuple[str, int, bytes]] = []
    for k in range(job.messages):
        device = k % job.devices
        if device % job.publishers != job.index:
            continue
        body = {
            "model": "lock-s2",
            "firmware": "2.4.1",
            "signal_dbm": -40.0 - (k % 61) * 0.5,
            "battery_pct": 100.0 - (k % 97),
            "battery_v": round(5.0 + (k % 80) / 100, 2),
            "temperature_c": round(15.0 + (k % 200) / 10, 1),
            "uptime_s": 3600 + k,
            "reconnects": k % 3,
            "error_codes": [] if k % 10 else ["E12"],
            "door": "locked" if k % 2 else "unlocked",
        }
        encoded = json.dumps(body, separators=(",", ":")).encode()
        out.append((f"{job.prefix}/devices/dev-{device:04d}/telemetry", device, encoded[1:]))
    return out


def _publisher_main(job: PublisherJob, conn: Connection, sent: Any, progress: Any) -> None:
    """Child process: connect, report ready, wait for "go", publish everything, report.

    ``sent`` is a shared array of messages handed to paho per publisher, ``progress``
    the consumer's count (bare: messages counted; end to end: rows committed).
    """
    try:
        conn.send(("result", _publish(job, conn, sent, progress)))
    except BaseException as exc:  # reported to the parent, which fails the run
        conn.send(("error", f"publisher {job.index}: {type(exc).__name__}: {exc}"))


def _publish(
    job: PublisherJob, conn: Connection, sent: Any, progress: Any
) -> dict[str, float | int]:
    plan = _plan(job)
    total = len(plan)
    slots = threading.Semaphore(PUBLISHER_INFLIGHT)
    acked = 0
    failures = 0
    all_acked = threading.Event()
    connected = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            connected.set()

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        nonlocal acked, failures
        acked += 1
        if rc.is_failure:
            failures += 1
        slots.release()
        if acked == total:
            all_acked.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=job.client_id, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(job.host, job.port, keepalive=60, clean_start=True)
    client.loop_start()
    try:
        if not connected.wait(15):
            raise BenchError("publisher could not connect to the broker")
        conn.send(("ready", total))
        if not conn.poll(job.timeout) or conn.recv() != "go":
            raise BenchError("no go signal")
        cpu0 = time.process_time()
        last = [0] * job.devices
        cached_sec = -1
        sec_text = b""
        qos = job.qos
        window = job.window
        me = job.index
        throttled = 0
        first = time.time()
        for i, (topic, device, tail) in enumerate(plan):
            if window and not i & 15:
                # Flow control: the broker drops QoS 1 messages for a subscriber whose
                # queue is full, so never run further ahead of the consumer than it holds.
                sent[me] = i
                while sum(sent) - progress.value >= window:
                    throttled += 1
                    time.sleep(0.0005)
            # Wait for a free in-flight slot first, so ts is when the message really leaves.
            slots.acquire()
            us = time.time_ns() // 1000
            if us <= last[device]:
                us = last[device] + 1
            last[device] = us
            sec, frac = divmod(us, 1_000_000)
            if sec != cached_sec:
                cached_sec = sec
                sec_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
            client.publish(topic, b'{"ts":"%s.%06dZ",%s' % (sec_text, frac, tail), qos)
        handed = time.time()
        if not all_acked.wait(job.timeout):
            raise BenchError(f"only {acked} of {total} publishes acknowledged")
        done = time.time()
        return {
            "count": total,
            "first": first,
            "handed": handed,
            "acked": done,
            "failures": failures,
            "throttled_sleeps": throttled,
            "cpu_s": time.process_time() - cpu0,
        }
    finally:
        client.disconnect()
        client.loop_stop()


# --- bare subscriber ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriberJob:
    """The bare subscriber: counts N messages and nothing else."""

    expected: int
    topic_filter: str
    host: str
    port: int
    client_id: str
    receive_maximum: int
    timeout: float


def _subscriber_main(job: SubscriberJob, conn: Connection, progress: Any) -> None:
    """Child process: subscribe, report ready, count to N, report first and last arrival."""
    try:
        conn.send(("result", _subscribe(job, conn, progress)))
    except BaseException as exc:
        conn.send(("error", f"bare subscriber: {type(exc).__name__}: {exc}"))


def _subscribe(job: SubscriberJob, conn: Connection, progress: Any) -> dict[str, float | int]:
    count = 0
    first = last = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe(job.topic_filter, options=SubscribeOptions(qos=1))

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        subscribed.set()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal count, first, last
        count += 1
        if not count & 31:
            progress.value = count
        if count == 1:
            first = time.time()
        if count == job.expected:
            last = time.time()
            progress.value = count
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=job.client_id, protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    props.ReceiveMaximum = job.receive_maximum
    client.connect(job.host, job.port, keepalive=60, clean_start=True, properties=props)
    client.loop_start()
    try:
        if not subscribed.wait(15):
            raise BenchError("bare subscriber could not subscribe")
        conn.send(("ready", 0))
        cpu0 = time.process_time()
        give_up = time.monotonic() + job.timeout
        seen, changed = 0, time.monotonic()
        while not done.wait(0.5):
            if count != seen:
                seen, changed = count, time.monotonic()
            if (count and time.monotonic() - changed > 15) or time.monotonic() > give_up:
                raise BenchError(f"bare subscriber got {count} of {job.expected} messages")
        return {"count": count, "first": first, "last": last, "cpu_s": time.process_time() - cpu0}
    finally:
        client.disconnect()
        client.loop_stop()


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


def _expect(conn: Connection, kind: str, deadline: Deadline, what: str) -> Any:
    while not conn.poll(min(deadline.left(what), 0.5)):
        pass
    tag, value = conn.recv()
    if tag == "error":
        raise BenchError(str(value))
    if tag != kind:
        raise BenchError(f"expected {kind!r} from a child, got {tag!r}")
    return value


def _cpu_seconds(pid: int) -> float:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
    return out


def _machine_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


class CpuMeter:
    """CPU seconds of named groups of processes over one phase, as % of one core."""

    def __init__(self, groups: dict[str, Sequence[int]]) -> None:
        self._groups = groups
        self._start = {name: sum(map(_cpu_seconds, pids)) for name, pids in groups.items()}
        self._machine = _machine_busy()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        """Percent of one core per group, plus the whole machine's busy percent (all cores)."""
        wall = time.monotonic() - self._wall
        out = {
            name: round(100 * (sum(map(_cpu_seconds, pids)) - self._start[name]) / wall, 1)
            for name, pids in self._groups.items()
        }
        busy, total = _machine_busy()
        out["machine_busy_pct_of_all_cores"] = round(
            100 * (busy - self._machine[0]) / max(total - self._machine[1], 1e-9), 1
        )
        return out


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """Parsed command line."""

    messages: int
    qos: int
    publishers: int
    devices: int
    ingesters: int
    connections: int
    batch_size: int | None
    batch_seconds: float | None
    receive_maximum: int | None
    database_url: str
    mqtt_url: str
    rounds: int
    poll_interval: float
    watch: str
    timeout: float
    keep_schema: bool
    profile: Path | None
    profile_gil: bool
    ingester_command: str
    window: int | None
    broker_queue: int
    private_broker: bool


class Bench:
    """One benchmark run: schema, ingesters, rounds of bare and end-to-end phases."""

    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.run_id = secrets.token_hex(4)
        self.schema = f"bench_{self.run_id}"
        self.deadline = Deadline(time.monotonic() + opts.timeout)
        self.children = Children()
        self.mqtt_url = opts.mqtt_url
        parts = urlsplit(opts.mqtt_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.broker_note = f"shared broker at {opts.mqtt_url}"
        sep = "&" if "?" in opts.database_url else "?"
        self.db_url = f"{opts.database_url}{sep}options=-csearch_path%3D{self.schema}"
        self.prefix_bare = f"bench/{self.run_id}/bare"
        self.prefix_full = f"bench/{self.run_id}/full"  # same length: same bytes on the wire
        self.group = f"bench-{self.run_id}"
        self.app_name = f"bench-{self.run_id}-ing"
        self.ingester_pids: list[int] = []
        self.metrics_ports: list[int] = []
        self.broker_pids: list[int] = _pids_named("mosquitto")
        self.backend_pids: list[int] = []
        self.poll_pid = 0
        self.profilers: list[subprocess.Popen[bytes]] = []
        self.ctx = mp.get_context("spawn")
        self.receive_maximum = opts.receive_maximum or int(
            Settings.model_fields["ingest_receive_maximum"].default
        )

    # setup -----------------------------------------------------------------

    def create_schema(self) -> str:
        """Fresh schema, migrated; returns the storage path chosen."""
        with psycopg.connect(self.o.database_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.schema}")
        settings = Settings(database_url=self.db_url, mqtt_url=self.mqtt_url)
        with psycopg.connect(self.db_url) as conn:
            migrate(conn, settings=settings)
            storage = read_storage(conn)
        return storage or "unknown"

    def drop_schema(self) -> None:
        """Drop the run's schema (unless --keep-schema)."""
        if self.o.keep_schema:
            log(f"keeping schema {self.schema}")
            return
        with psycopg.connect(self.o.database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def ingester_argv(self) -> tuple[list[str], str]:
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

    def start_ingesters(self, argv: list[str]) -> None:
        """Start the ingester processes, then wait until each one has written a warm-up row."""
        for i in range(self.o.ingesters):
            env = dict(os.environ)
            env.update(
                FOREWARN_DATABASE_URL=self.db_url,
                FOREWARN_MQTT_URL=self.mqtt_url,
                FOREWARN_TOPIC_PREFIX=self.prefix_full,
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
            self.ingester_pids.append(popen.pid)
        log(f"ingesters started: pids {self.ingester_pids}")
        self.warm_up()

    def warm_up(self) -> None:
        """Publish warm-up rounds until every ingester has committed and a round fully landed."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{self.run_id}-warm", protocol=mqtt.MQTTv5
        )
        client.connect(self.host, self.port)
        client.loop_start()
        per_round = 4 * self.o.ingesters * self.o.connections
        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                for rnd in range(10_000):
                    self.check_ingesters()
                    now = time.time()
                    infos = [
                        client.publish(
                            f"{self.prefix_full}/devices/warmup-r{rnd}-{k}/telemetry",
                            json.dumps({"ts": _rfc3339(now), "model": "warm"}),
                            qos=1,
                        )
                        for k in range(per_round)
                    ]
                    for info in infos:
                        info.wait_for_publish(self.deadline.left("warming up"))
                    time.sleep(0.5)
                    landed = _scalar(
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

    def check_ingesters(self) -> None:
        """Fail fast if an ingester process died."""
        for popen in self.children.popens:
            if popen.poll() is not None:
                raise BenchError(f"ingester pid {popen.pid} exited with {popen.returncode}")

    # phases ----------------------------------------------------------------

    def window(self) -> int:
        """How far publishers may run ahead of the consumer.

        Mosquitto holds Receive Maximum in flight plus max_queued_messages queued per
        subscriber connection and drops QoS 1 messages past that. Shared-subscription
        messages go round-robin to the connections whatever their backlog, so one slow
        connection can hold all of it: the window is three quarters of what ONE
        connection holds, for every consumer (--window overrides; 0 is open loop, the
        default with --private-broker whose queues are as deep as deploy/'s).
        """
        if self.o.window is not None:
            return self.o.window
        if self.o.private_broker:
            return 0
        return int(0.75 * (self.receive_maximum + self.o.broker_queue))

    def start_private_broker(self) -> None:
        """A Mosquitto of our own with deploy/mosquitto/mosquitto.conf's queue limits."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        conf = Path(tempfile.mkdtemp(prefix="bench-mosquitto-")) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 1000000\nmax_queued_bytes 536870912\n"
            "max_inflight_messages 20\nlog_dest none\n"
        )
        popen = subprocess.Popen([binary, "-c", str(conf)], stdout=sys.stderr, stderr=sys.stderr)
        self.children.popens.append(popen)
        self.broker_pids = [popen.pid]
        while True:
            self.deadline.left("starting the private broker")
            with socket.socket() as s, suppress(OSError):
                s.connect(("127.0.0.1", port))
                break
            if popen.poll() is not None:
                raise BenchError(f"mosquitto exited with {popen.returncode}")
            time.sleep(0.1)
        self.mqtt_url, self.host, self.port = f"mqtt://127.0.0.1:{port}", "127.0.0.1", port
        self.broker_note = (
            f"private mosquitto on port {port}: max_queued_messages 1000000, "
            "max_queued_bytes 512 MiB, persistence false"
        )

    def start_publishers(
        self, prefix: str, tag: str, window: int, progress: Any
    ) -> list[tuple[Connection, int]]:
        """Spawn the publishers and wait until each is connected with its payloads encoded."""
        out = []
        sent = self.ctx.RawArray("q", self.o.publishers)
        for i in range(self.o.publishers):
            parent, child = self.ctx.Pipe()
            job = PublisherJob(
                index=i,
                publishers=self.o.publishers,
                messages=self.o.messages,
                devices=self.o.devices,
                prefix=prefix,
                host=self.host,
                port=self.port,
                qos=self.o.qos,
                client_id=f"bench-{self.run_id}-{tag}-pub{i}",
                timeout=self.deadline.left("starting publishers"),
                window=window,
            )
            proc = self.ctx.Process(
                target=_publisher_main, args=(job, child, sent, progress), daemon=True
            )
            proc.start()
            self.children.procs.append(proc)
            out.append((parent, proc.pid or 0))
        for parent, _ in out:
            _expect(parent, "ready", self.deadline, "waiting for publishers")
        return out

    def finish_publishers(self, pubs: list[tuple[Connection, int]]) -> dict[str, float | int]:
        """Collect the publishers' reports; first publish time and last PUBACK time."""
        results = [_expect(c, "result", self.deadline, "waiting for publishers") for c, _ in pubs]
        self.reap()
        failures = sum(int(r["failures"]) for r in results)
        if failures:
            raise BenchError(f"{failures} publishes were refused by the broker")
        return {
            "cpu_s": sum(float(r["cpu_s"]) for r in results),
            "first": min(float(r["first"]) for r in results),
            "acked": max(float(r["acked"]) for r in results),
            "count": sum(int(r["count"]) for r in results),
        }

    def reap(self) -> None:
        """Join finished child processes."""
        for p in list(self.children.procs):
            p.join(10)
            if not p.is_alive():
                self.children.procs.remove(p)

    def bare_phase(self) -> dict[str, Any]:
        """N messages to a subscriber that only counts."""
        parent, child = self.ctx.Pipe()
        job = SubscriberJob(
            expected=self.o.messages,
            topic_filter=f"$share/{self.group}-bare/{self.prefix_bare}/devices/+/telemetry",
            host=self.host,
            port=self.port,
            client_id=f"bench-{self.run_id}-bare",
            receive_maximum=self.receive_maximum,
            timeout=self.deadline.left("starting the bare subscriber"),
        )
        progress = self.ctx.RawValue("q", 0)
        sub = self.ctx.Process(target=_subscriber_main, args=(job, child, progress), daemon=True)
        sub.start()
        self.children.procs.append(sub)
        _expect(parent, "ready", self.deadline, "waiting for the bare subscriber")
        pubs = self.start_publishers(self.prefix_bare, "bare", self.window(), progress)
        meter = CpuMeter(
            {
                "bare_subscriber_pct": [sub.pid or 0],
                "mosquitto_pct": self.broker_pids,
            }
        )
        for conn, _ in pubs:
            conn.send("go")
        got = _expect(parent, "result", self.deadline, "waiting for the bare subscriber")
        cpu = meter.stop()
        published = self.finish_publishers(pubs)
        elapsed = float(got["last"]) - float(published["first"])
        return {
            "msgs_per_s": self.o.messages / elapsed,
            "seconds": elapsed,
            "publish_acked_msgs_per_s": self.o.messages
            / (float(published["acked"]) - float(published["first"])),
            "cpu": {"publishers_pct": _publisher_pct(published), **cpu},
        }

    def full_phase(self, poll: psycopg.Connection[tuple[Any, ...]]) -> dict[str, Any]:
        """N messages through the ingester(s) into PostgreSQL; polls count(*) until N."""
        n = self.o.messages
        progress = self.ctx.RawValue("q", 0)
        window = self.window()
        pubs = self.start_publishers(self.prefix_full, "full", window, progress)
        self.start_profilers()
        meter = CpuMeter(
            {
                "ingesters_pct": self.ingester_pids,
                "ingester_backends_pct": self.backend_pids,
                "poll_backend_pct": [self.poll_pid],
                "mosquitto_pct": self.broker_pids,
                "postgres_all_pct": _pids_named("postgres"),
            }
        )
        for conn, _ in pubs:
            conn.send("go")
        polls: list[tuple[float, int]] = []
        query_s: list[float] = []
        baseline = self.committed_by_metrics() if self.o.watch == "metrics" else 0
        count, changed, published = 0, time.monotonic(), None
        next_at = time.monotonic()
        while count < n:
            t0 = time.monotonic()
            if self.o.watch == "metrics":
                count = self.committed_by_metrics() - baseline
            else:
                count = _scalar(poll, "SELECT count(*) FROM telemetry")
            seen = time.time()
            progress.value = count
            query_s.append(time.monotonic() - t0)
            if not polls or count != polls[-1][1]:
                polls.append((seen, count))
                changed = time.monotonic()
            if published is None and all(c.poll() for c, _ in pubs):
                published = self.finish_publishers(pubs)
            self.check_ingesters()
            if time.monotonic() - changed > 30:
                log(f"no new rows for 30 s at {count} of {n}")
                break
            self.deadline.left(f"waiting for rows ({count} of {n} committed)")
            next_at += self.o.poll_interval
            time.sleep(max(next_at - time.monotonic(), 0))
        cpu = meter.stop()
        self.stop_profilers()
        if published is None:
            published = self.finish_publishers(pubs)
        end = polls[-1][0]
        elapsed = end - float(published["first"])
        result: dict[str, Any] = {
            "msgs_per_s": n / elapsed if count >= n else None,
            "seconds": elapsed,
            "publish_acked_msgs_per_s": n / (float(published["acked"]) - float(published["first"])),
            "poll_query_ms_mean": 1000 * statistics.fmean(query_s),
            "polls": len(query_s),
            "cpu": {"publishers_pct": _publisher_pct(published), **cpu},
        }
        result.update(self.verify(poll, polls))
        return result

    def committed_by_metrics(self) -> int:
        """Rows the ingesters have committed, from their Prometheus counters.

        ``outcome="written"`` is counted after the commit and only for rows really
        inserted, so it is the same signal as count(*) at a fraction of the cost.
        """
        total = 0
        for port in self.metrics_ports:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith('forewarn_ingest_messages_total{outcome="written"}'):
                        total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def verify(
        self, conn: psycopg.Connection[tuple[Any, ...]], polls: list[tuple[float, int]]
    ) -> dict[str, Any]:
        """Loss, duplicates, dead letters and latencies from the table."""
        n = self.o.messages
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, ts)) FROM telemetry"
        ).fetchone()
        assert row is not None
        rows, distinct = int(row[0]), int(row[1])
        dead = _scalar(conn, "SELECT count(*) FROM dead_letters")
        pct = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM ingested_at - ts)),"
            " percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM received_at - ts)),"
            " max(extract(epoch FROM ingested_at - ts)) FROM telemetry"
        ).fetchone()
        assert pct is not None
        stamps = conn.execute(
            "SELECT extract(epoch FROM ts)::float8 FROM telemetry ORDER BY ingested_at"
        ).fetchall()
        times = [t for t, _ in polls]
        counts = [c for _, c in polls]
        visible = []
        for rank, (ts,) in enumerate(stamps, start=1):
            i = bisect.bisect_left(counts, rank)
            if i < len(times):
                visible.append(times[i] - float(ts))
        visible.sort()
        return {
            "lost": n - distinct,
            "duplicated": rows - distinct,
            "dead_letters": dead,
            "latency_ms_p50": _ms(pct[0][0]),
            "latency_ms_p99": _ms(pct[0][1]),
            "latency_ms_max": _ms(pct[2]),
            "publish_to_receive_ms_p50": _ms(pct[1][0]),
            "publish_to_receive_ms_p99": _ms(pct[1][1]),
            "commit_visible_ms_p50": _ms(_quantile(visible, 0.5)),
            "commit_visible_ms_p99": _ms(_quantile(visible, 0.99)),
        }

    # profiling -------------------------------------------------------------

    def start_profilers(self) -> None:
        """py-spy on every ingester for the end-to-end phase (--profile DIR)."""
        if self.o.profile is None:
            return
        spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
        self.o.profile.mkdir(parents=True, exist_ok=True)
        for i, pid in enumerate(self.ingester_pids):
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

    # driver ----------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Set up, run the rounds, return the report (cleanup is the caller's finally)."""
        if self.o.private_broker:
            self.start_private_broker()
        storage = self.create_schema()
        log(f"schema {self.schema} ({storage}), topics bench/{self.run_id}/...")
        argv, how = self.ingester_argv()
        self.start_ingesters(argv)
        rounds = []
        with psycopg.connect(self.db_url, autocommit=True) as poll:
            self.poll_pid = _scalar(poll, "SELECT pg_backend_pid()")
            pg_version = str(_one(poll, "SHOW server_version"))
            for r in range(self.o.rounds):
                if r:
                    poll.execute("TRUNCATE telemetry")
                bare = self.bare_phase()
                log(f"round {r + 1}: bare {bare['msgs_per_s']:.0f} msg/s")
                full = self.full_phase(poll)
                rate = full["msgs_per_s"]
                log(
                    f"round {r + 1}: end-to-end {rate or 0:.0f} msg/s, lost {full['lost']}, "
                    f"duplicated {full['duplicated']}"
                )
                rounds.append((bare, full))
                if full["lost"] or full["duplicated"] or rate is None:
                    break
        return self.report(rounds, storage, how, pg_version)

    def report(
        self, rounds: list[tuple[dict[str, Any], dict[str, Any]]], storage: str, how: str, pg: str
    ) -> dict[str, Any]:
        """The JSON line: headline figures (median over rounds), then config and breakdowns."""
        bare = statistics.median(b["msgs_per_s"] for b, _ in rounds)
        rates = [f["msgs_per_s"] for _, f in rounds]
        full = statistics.median(rates) if None not in rates else None
        settings = Settings(database_url=self.db_url, mqtt_url=self.mqtt_url)
        last_full = rounds[-1][1]
        out: dict[str, Any] = {
            "benchmark": "forewarn ingest",
            "bare_subscriber_msgs_per_s": round(bare),
            "end_to_end_msgs_per_s": round(full) if full else None,
            "ratio_end_to_end_vs_bare": round(full / bare, 3) if full else None,
            "target_ratio": TARGET_RATIO,
            "lost": max(f["lost"] for _, f in rounds),
            "duplicated": max(f["duplicated"] for _, f in rounds),
            "dead_letters": max(f["dead_letters"] for _, f in rounds),
            "latency_definition": LATENCY_DEFINITION,
        }
        for key in (
            "latency_ms_p50",
            "latency_ms_p99",
            "latency_ms_max",
            "publish_to_receive_ms_p50",
            "publish_to_receive_ms_p99",
            "commit_visible_ms_p50",
            "commit_visible_ms_p99",
        ):
            out[key] = statistics.median(f[key] for _, f in rounds)
        out["commit_visible_definition"] = COMMIT_VISIBLE_DEFINITION
        out["config"] = {
            "messages": self.o.messages,
            "qos": self.o.qos,
            "publishers": self.o.publishers,
            "publisher_max_inflight": PUBLISHER_INFLIGHT,
            "devices": self.o.devices,
            "payload_bytes": len(_sample_payload()),
            "ingester_processes": self.o.ingesters,
            "ingester_command": how,
            "mqtt_connections_per_ingester": self.o.connections,
            "batch_size": self.o.batch_size or settings.ingest_batch_size,
            "batch_seconds": self.o.batch_seconds or settings.ingest_batch_seconds,
            "receive_maximum": self.receive_maximum,
            "flow_control": (
                "publishers stay at most `window` messages ahead of the consumer's progress "
                "(bare: messages counted; end to end: rows committed, polled), because "
                "Mosquitto drops QoS 1 messages past Receive Maximum + max_queued_messages "
                "per subscriber connection"
            ),
            "window": self.window(),
            "broker": self.broker_note,
            "broker_max_queued_messages": 1_000_000
            if self.o.private_broker
            else self.o.broker_queue,
            "bare_subscription": "$share/<group>/<prefix>/devices/+/telemetry, QoS 1, auto ack",
            "poll_interval_ms": self.o.poll_interval * 1000,
            "commit_watch": self.o.watch,
            "rounds": len(rounds),
            "cores": os.cpu_count(),
            "storage": storage,
            "postgres": pg,
            "profiled": self.o.profile is not None,
        }
        out["detail"] = {
            "bare_seconds": rounds[-1][0]["seconds"],
            "end_to_end_seconds": last_full["seconds"],
            "bare_publish_acked_msgs_per_s": round(rounds[-1][0]["publish_acked_msgs_per_s"]),
            "end_to_end_publish_acked_msgs_per_s": round(last_full["publish_acked_msgs_per_s"]),
            "poll_query_ms_mean": round(last_full["poll_query_ms_mean"], 2),
            "cpu_bare_pct_of_one_core": rounds[-1][0]["cpu"],
            "cpu_end_to_end_pct_of_one_core": last_full["cpu"],
        }
        if len(rounds) > 1:
            out["per_round"] = [
                {"bare": round(b["msgs_per_s"]), "end_to_end": round(f["msgs_per_s"] or 0)}
                for b, f in rounds
            ]
        return out


# --- helpers ------------------------------------------------------------------------------


def _one(conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _scalar(conn: psycopg.Connection[tuple[Any, ...]], sql: str, params: Any = None) -> int:
    return int(_one(conn, sql, params))


def _publisher_pct(published: dict[str, float | int]) -> float:
    """Publisher CPU (self-reported, from go to the last PUBACK) as % of one core."""
    span = float(published["acked"]) - float(published["first"])
    return round(100 * float(published["cpu_s"]) / span, 1)


def _ms(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) * 1000, 1)


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(int(q * len(sorted_values)), len(sorted_values) - 1)]


def _rfc3339(epoch: float) -> str:
    us = int(epoch * 1_000_000)
    sec, frac = divmod(us, 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(sec))}.{frac:06d}Z"


def _sample_payload() -> bytes:
    job = PublisherJob(0, 1, 1, 1, "x", "", 0, 1, "", 0, 0)
    return b'{"ts":"2026-11-23T08:15:00.000000Z",' + _plan(job)[0][2]


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so the finally blocks clean up."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Command line to Options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=100_000, help="N (default 100000)")
    p.add_argument("--quick", action="store_true", help="N = 20000")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1)
    p.add_argument("--publishers", type=int, default=2, help="publisher processes")
    p.add_argument("--devices", type=int, default=500, help="devices, round-robin")
    p.add_argument("--ingesters", type=int, default=1, help="ingester processes")
    p.add_argument("--connections", type=int, default=4, help="MQTT connections per ingester")
    p.add_argument("--batch-size", type=int, default=None, help="FOREWARN_INGEST_BATCH_SIZE")
    p.add_argument("--batch-seconds", type=float, default=None)
    p.add_argument("--receive-maximum", type=int, default=None)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument(
        "--mqtt-url",
        default=None,
        help="use this broker, with publisher flow control (default: a private Mosquitto)",
    )
    p.add_argument("--rounds", type=int, default=1, help="bare + end-to-end rounds (median)")
    p.add_argument(
        "--poll-ms",
        type=float,
        default=50.0,
        help="commit poll interval (each metrics scrape costs the ingester a thread)",
    )
    p.add_argument(
        "--watch",
        choices=("metrics", "sql"),
        default="metrics",
        help="how commits are watched: the ingesters' Prometheus counter of committed rows "
        "(cheap) or SELECT count(*) (costs the database a scan per poll)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="budget for the whole run, s")
    p.add_argument("--keep-schema", action="store_true")
    p.add_argument("--profile", type=Path, default=None, help="py-spy raw profiles into DIR")
    p.add_argument("--profile-gil", action="store_true", help="py-spy --gil")
    p.add_argument("--ingester-command", choices=("auto", "cli", "snippet"), default="auto")
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="publisher flow-control window (default: 3/4 of what the broker holds; 0 = none)",
    )
    p.add_argument(
        "--broker-queue", type=int, default=1000, help="the broker's max_queued_messages"
    )
    a = p.parse_args(argv)
    if a.publishers < 1 or a.ingesters < 1 or a.devices < a.publishers:
        p.error("need publishers >= 1, ingesters >= 1 and devices >= publishers")
    return Options(
        messages=20_000 if a.quick else a.messages,
        qos=a.qos,
        publishers=a.publishers,
        devices=a.devices,
        ingesters=a.ingesters,
        connections=a.connections,
        batch_size=a.batch_size,
        batch_seconds=a.batch_seconds,
        receive_maximum=a.receive_maximum,
        database_url=a.database_url,
        mqtt_url=a.mqtt_url or "mqtt://127.0.0.1:1883",
        rounds=max(a.rounds, 1),
        poll_interval=a.poll_ms / 1000,
        watch=a.watch,
        timeout=a.timeout,
        keep_schema=a.keep_schema,
        profile=a.profile,
        profile_gil=a.profile_gil,
        ingester_command=a.ingester_command,
        window=a.window,
        broker_queue=a.broker_queue,
        private_broker=a.mqtt_url is None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print one JSON line; 0 only if nothing was lost or duplicated."""
    opts = parse_args(argv)
    bench = Bench(opts)
    report: dict[str, Any] | None = None
    with _sigterm_as_exit():
        try:
            report = bench.run()
        except BenchError as exc:
            log(f"FAILED: {exc}")
            return 2
        finally:
            bench.children.stop_all()
            with suppress(psycopg.Error):
                bench.drop_schema()
    print(json.dumps(report), flush=True)
    if report["lost"] or report["duplicated"] or report["end_to_end_msgs_per_s"] is None:
        log("FAILED: messages were lost or duplicated")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
