"""The fleet benchmark's publisher: N simulated devices in real time from one process.

Run by ``bench/fleet.py`` as its own process. The simulator (``simulators.engine``, with its
fault plan and status messages) decides what each device says; its clock runs
faster than the wall clock by the factor that makes the fleet as a whole report once a
minute per device (models with a shorter interval a little more often, longer less),
and each payload's ``ts`` is replaced by the wall-clock time of the publish, so that
``ts`` to the prediction's write is the publish-to-prediction latency. Messages go out at
QoS 1 over ``--connections`` paho clients (a device always on the same one, so its messages
stay in order), each with its own network thread. Each device first announces itself
online (a retained status), so the first simulated interval (up to 90 s) carries about
twice the steady rate: the benchmark's warm-up covers it. Every five seconds it prints a JSON line
``{"published": n, "acked": n, "late_s": s, "cpu_s": s}`` (``late_s``: how far the
publishing loop lags the simulated schedule) on stdout.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.catalog import model_named
from simulators.engine import FleetEngine
from simulators.fleet import generate_fleet

# Steps of the publishing loop: short enough that a message leaves within this of its time.
STEP_SECONDS = 0.05
# QoS 1 messages a connection keeps unacknowledged: enough for a second of the whole fleet.
INFLIGHT = 2000


def main() -> int:
    """Publish until SIGTERM."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--seed", type=int, default=19)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--fault-rate", type=float, default=0.15)
    p.add_argument("--span-s", type=float, default=900.0, help="run length the faults fit in")
    a = p.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    now = datetime.now(UTC)
    fleet = generate_fleet(devices=a.devices, seed=a.seed, start=now, fault_rate=a.fault_rate)
    # Simulated seconds per wall second that make the fleet's mean rate one reading a minute.
    per_s = sum(1 / model_named(d.model).interval_s for d in fleet.devices) / len(fleet.devices)
    speed = 1 / (60 * per_s)
    # The fault plan is spread over the simulated span the run covers.
    fleet = generate_fleet(
        devices=a.devices,
        seed=a.seed,
        start=now,
        span=timedelta(seconds=a.span_s * speed),
        fault_rate=a.fault_rate,
    )
    engine = FleetEngine(fleet)
    acked = [0]
    lock = threading.Lock()

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with lock:
            acked[0] += 1

    clients = []
    for i in range(a.connections):
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{a.prefix.replace('/', '-')}-pub{i}",
            protocol=mqtt.MQTTv5,
        )
        c.max_inflight_messages_set(INFLIGHT)
        c.max_queued_messages_set(0)
        c.on_publish = on_publish
        c.connect(a.host, a.port)
        c.loop_start()
        clients.append(c)

    published, late, next_report = 0, 0.0, time.monotonic() + 5
    t0, sim0 = time.time(), fleet.start
    while not stop.is_set():
        wall = time.time()
        for m in engine.step_until(sim0 + timedelta(seconds=(wall - t0) * speed)):
            body = json.loads(m.payload)
            stamp = time.time()
            body["ts"] = datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")
            late = max(late, stamp - t0 - (m.sim_ts - sim0).total_seconds() / speed)
            client = clients[zlib.crc32(m.device_id.encode()) % len(clients)]
            client.publish(
                f"{a.prefix}/{m.topic_suffix}",
                json.dumps(body, separators=(",", ":")),
                qos=1,
                retain=m.retain,
            )
            published += 1
        if time.monotonic() >= next_report:
            with lock:
                done = acked[0]
            cpu = time.process_time()
            print(
                json.dumps({"published": published, "acked": done, "late_s": late, "cpu_s": cpu}),
                flush=True,
            )
            late, next_report = 0.0, time.monotonic() + 5
        stop.wait(max(0.0, STEP_SECONDS - (time.time() - wall)))
    for c in clients:
        c.disconnect()
        c.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
