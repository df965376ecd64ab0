"""Parsing benchmark: microseconds per message through ``ingest.router.route``, by adapter.

The baseline, in the same run, is the built-in Forewarn v1 adapter on a typical health
reading. Measured against it, on the same machine and in alternating rounds (the minimum of
each is kept, the least disturbed by other processes on a shared machine):

- ``v1_as_mapping``: the same message through the v1 contract written as a mapping file
  (ingest/mappings/examples/forewarn-v1.yaml), which is why v1 stays code;
- ``zigbee2mqtt``: a Zigbee2MQTT sensor state (battery, voltage, temperature, last_seen);
- ``tasmota_state``: a Tasmota STATE through the shipped example mapping.

No broker, no database: this is the parser's share of the ingester's CPU. Prints one JSON line.
Run from the repository root as a module, so ``ingest`` is the package and not bench/ingest.py:
``.venv/bin/python -m bench.parsing [--messages 20000 --rounds 7]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ingest.mappings.adapter import MappingAdapter
from ingest.mappings.loader import example_path
from ingest.payloads import ForewarnV1Adapter, PayloadAdapter
from ingest.router import route
from ingest.timestamps import TimeWindow
from ingest.zigbee2mqtt import Zigbee2MqttAdapter

WINDOW = TimeWindow(max_age=timedelta(days=90), max_skew=timedelta(days=30))


def cases(now: datetime) -> dict[str, tuple[Sequence[PayloadAdapter], str, bytes]]:
    """Each case's adapters, topic and payload."""
    reading = {
        "ts": now.isoformat(),
        "model": "lock-s2",
        "firmware": "2.4.1",
        "signal_dbm": -67.5,
        "battery_pct": 81.0,
        "battery_v": 5.62,
        "temperature_c": 22.4,
        "uptime_s": 86400,
        "reconnects": 0,
        "error_codes": [],
        "door": "locked",
    }
    v1 = json.dumps(reading).encode()
    z2m = {"battery": 87, "humidity": 41, "linkquality": 96, "temperature": 22.5, "voltage": 2950}
    state = {"Time": now.strftime("%Y-%m-%dT%H:%M:%S"), "UptimeSec": 1210, "Heap": 19}
    state["Wifi"] = {"AP": 1, "Channel": 11, "RSSI": 28, "Signal": -86, "LinkCount": 1}
    topic = "forewarn/v1/devices/lock-1/telemetry"
    return {
        "v1_built_in": ([ForewarnV1Adapter("forewarn/v1")], topic, v1),
        "v1_as_mapping": ([MappingAdapter([example_path("forewarn-v1")], WINDOW)], topic, v1),
        "zigbee2mqtt": (
            [Zigbee2MqttAdapter("zigbee2mqtt", WINDOW)],
            "zigbee2mqtt/hall sensor",
            json.dumps(z2m | {"last_seen": now.isoformat()}).encode(),
        ),
        "tasmota_state": (
            [MappingAdapter([example_path("tasmota")], WINDOW)],
            "tele/plug/STATE",
            json.dumps(state).encode(),
        ),
    }


def main() -> None:
    """Measure and print one JSON line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=20_000, help="messages per case per round")
    p.add_argument("--rounds", type=int, default=7, help="alternating rounds; the minimum counts")
    args = p.parse_args()
    now = datetime.now(UTC)
    runs = cases(now)
    best = {name: float("inf") for name in runs}
    for _ in range(args.rounds):
        for name, (adapters, topic, payload) in runs.items():
            route(adapters, topic, payload, received_at=now)  # warm, and checked below
            started = time.perf_counter()
            for _ in range(args.messages):
                route(adapters, topic, payload, received_at=now)
            micros = (time.perf_counter() - started) / args.messages * 1e6
            best[name] = min(best[name], micros)
    kinds = {
        name: type(route(a, t, b, received_at=now)).__name__ for name, (a, t, b) in runs.items()
    }
    base = best["v1_built_in"]
    print(
        json.dumps(
            {
                "bench": "parsing",
                "messages": args.messages,
                "rounds": args.rounds,
                "us_per_message": {k: round(v, 2) for k, v in best.items()},
                "ratio_vs_v1_built_in": {k: round(v / base, 2) for k, v in best.items()},
                "outcome": kinds,
            }
        )
    )


if __name__ == "__main__":
    main()
