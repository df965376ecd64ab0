"""Child processes of ``bench/ingest.py``: publishers, the bare subscriber, CPU metering.

Publishers and the bare subscriber run in their own processes (``spawn``), talk to
the parent over a pipe (``("ready", n)``, then ``"go"``, then ``("result", {...})``
or ``("error", text)``) and share counters through ``multiprocessing`` raw values.
:class:`CpuMeter` reads /proc to report each component's CPU over a phase;
:func:`sigterm_as_exit` lets the parent's cleanup run when it is terminated.

A helper module, not an entry point: ``bench/ingest.py`` imports it from its own folder.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from _services import BenchError, Deadline

CLK_TCK = os.sysconf("SC_CLK_TCK")
PUBLISHER_INFLIGHT = 1000


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


def publisher_main(job: PublisherJob, conn: Connection, sent: Any, progress: Any) -> None:
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


def subscriber_main(job: SubscriberJob, conn: Connection, progress: Any) -> None:
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


# --- pipe and CPU -------------------------------------------------------------------------


def expect(conn: Connection, kind: str, deadline: Deadline, what: str) -> Any:
    """The next message of ``kind`` from a child; a child's error becomes BenchError."""
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


def pids_named(name: str) -> list[int]:
    """Pids of the processes whose command name is ``name``."""
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


def sample_payload() -> bytes:
    """One payload as the publishers send it, for the reported size."""
    job = PublisherJob(0, 1, 1, 1, "x", "", 0, 1, "", 0, 0)
    return b'{"ts":"2026-11-23T08:15:00.000000Z",' + _plan(job)[0][2]


# --- run plumbing -------------------------------------------------------------------------


def publisher_pct(published: dict[str, float | int]) -> float:
    """Publisher CPU (self-reported, from go to the last PUBACK) as % of one core."""
    span = float(published["acked"]) - float(published["first"])
    return round(100 * float(published["cpu_s"]) / span, 1)


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so the finally blocks clean up."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
