"""Drain benchmark: how fast the ingester empties a backlog, against a bare subscriber.

Both consumers get the same work: N QoS 1 messages queued by a private
Mosquitto for their persistent sessions while they are away (as after an
outage), then they connect and drain it. With the publisher finished before
the clock starts, the two compete with nothing but the broker and PostgreSQL,
so the ratio isolates the consumer's own cost per message.

- bare: one paho MQTT v5 client (clean_start=False), auto-ack, counts messages;
  runs in its own process.
- ingester: ``forewarn ingest`` in its own process (default settings: 4 connections,
  shared subscription), measured until its Prometheus counter of committed rows
  reaches N; loss and duplicates are then checked in SQL.

Prints one JSON line. ``python bench/drain.py --messages 50000``

The private broker, the schema and the reading of the Prometheus counter come
from ``_services`` beside this file (shared with ``bench/ingest.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from cli.embedded import free_port
from forewarn.settings import Settings

from _services import (
    Deadline,
    committed,
    create_schema,
    drop_schema,
    rows_and_distinct,
    schema_url,
    start_broker,
)

REPO = Path(__file__).resolve().parent.parent
BARE = """
import sys, time, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
port, n, topic, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
got = [0]
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="drain-bare", protocol=mqtt.MQTTv5)
def on_message(client, userdata, message):
    got[0] += 1
c.on_message = on_message
props = Properties(PacketTypes.CONNECT)
props.SessionExpiryInterval = 600
props.ReceiveMaximum = 1000
c.connect("127.0.0.1", port, clean_start=False, properties=props)
if mode == "subscribe":
    c.subscribe(topic, qos=1)
    c.loop_start(); time.sleep(0.5); c.disconnect(); c.loop_stop()
    sys.exit(0)
start = time.monotonic()
c.loop_start()
while got[0] < n and time.monotonic() - start < 300:
    time.sleep(0.002)
print(n / (time.monotonic() - start), got[0])
c.disconnect(); c.loop_stop()
"""


def publish(port: int, prefix: str, n: int) -> None:
    """Queue n distinct readings (500 devices round-robin) and wait for every PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    base = datetime.now(UTC) - timedelta(hours=3)
    infos = []
    for i in range(n):
        body = {
            "ts": (base + timedelta(milliseconds=i)).isoformat(),
            "model": "lock-s2",
            "firmware": "2.4.1",
            "signal_dbm": -61.5,
            "battery_pct": 80.0,
            "battery_v": 5.6,
            "temperature_c": 22.5,
            "uptime_s": 86400 + i,
            "reconnects": 0,
            "error_codes": [],
        }
        infos.append(
            client.publish(f"{prefix}/devices/d{i % 500}/telemetry", json.dumps(body), qos=1)
        )
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def main() -> int:
    """Run both phases and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=4, help="MQTT connections")
    parser.add_argument(
        "--ingesters", type=int, default=1, help="ingester processes (one shared subscription)"
    )
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--receive-maximum", type=int, default=1000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    n, run = args.messages, secrets.token_hex(3)
    broker = start_broker(
        "max_queued_messages 0\nmax_queued_bytes 0\n",  # unlimited: the backlog must fit
        deadline=Deadline(time.monotonic() + 30),
        workdir_prefix="drain-",
        output=subprocess.DEVNULL,
    )
    port = broker.port
    schema = f"drain_{run}"
    url = args.database_url
    ingesters: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=schema_url(url, schema),
            mqtt_url=broker.url,
            topic_prefix=f"drain-{run}/v1",
            ingest_client_id=f"drain-{run}",
            ingest_share_group=f"drain{run}",
            ingest_connections=args.connections,
            ingest_batch_size=args.batch_size,
            ingest_receive_maximum=args.receive_maximum,
        )
        storage = create_schema(url, schema, settings)

        # bare: subscribe once (creates the session), go away, queue, drain.
        topic = f"{settings.topic_prefix}/bare/devices/+/telemetry"
        bare_cmd = [sys.executable, "-c", BARE, str(port), str(n), topic]
        subprocess.run([*bare_cmd, "subscribe"], check=True, timeout=60)
        publish(port, f"{settings.topic_prefix}/bare", n)
        out = subprocess.run([*bare_cmd, "drain"], check=True, timeout=400, capture_output=True)
        bare_rate, bare_got = out.stdout.decode().split()

        # ingesters: start once (sessions and subscriptions), stop, queue, start, drain.
        ports = [free_port() for _ in range(args.ingesters)]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
        base_env |= settings.as_environment()
        cmd = [sys.executable, "-m", "cli", "ingest", "--progress-every", "3600"]

        def start_all() -> list[subprocess.Popen[bytes]]:
            procs = []
            for i, port_i in enumerate(ports):
                env = base_env | {
                    "FOREWARN_METRICS_PORT": str(port_i),
                    "FOREWARN_INGEST_CLIENT_ID": f"{settings.ingest_client_id}-{i}",
                }
                procs.append(subprocess.Popen(cmd, env=env, cwd=REPO, stderr=subprocess.DEVNULL))
            return procs

        def total() -> int:
            return sum(committed(p) for p in ports)

        ingesters = start_all()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                total()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)  # subscriptions granted (the CLI serves metrics after start())
        for proc in ingesters:
            proc.terminate()
            proc.wait(30)
        publish(port, settings.topic_prefix, n)
        ingesters = start_all()
        start = time.monotonic()
        done = 0
        while done < n and time.monotonic() - start < 300:
            # 50 ms: prometheus_client serves each scrape on a new thread, a cost we pay.
            time.sleep(0.05)
            try:
                done = total()
            except OSError:
                continue  # not serving yet
        elapsed = time.monotonic() - start
        with psycopg.connect(settings.database_url or "") as conn:
            rows, distinct = rows_and_distinct(conn)
        result = {
            "benchmark": "forewarn drain",
            "messages": n,
            "bare_drain_msgs_per_s": round(float(bare_rate)),
            "bare_received": int(bare_got),
            "ingester_drain_msgs_per_s": round(n / elapsed) if done >= n else None,
            "ratio_ingester_vs_bare": round(n / elapsed / float(bare_rate), 3)
            if done >= n
            else None,
            "lost": n - distinct,
            "duplicated": rows - distinct,
            "config": {
                "storage": storage,
                "ingesters": args.ingesters,
                "ingest_connections": settings.ingest_connections,
                "receive_maximum": settings.ingest_receive_maximum,
                "batch_size": settings.ingest_batch_size,
                "qos": 1,
                "cores": os.cpu_count(),
            },
        }
        print(json.dumps(result))
        return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1
    finally:
        for proc in ingesters:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        broker.stop()
        drop_schema(url, schema)


if __name__ == "__main__":
    sys.exit(main())
