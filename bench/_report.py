"""Results of ``bench/ingest.py``: loss, duplicates and latencies from the table; the JSON line.

A helper module, not an entry point: ``bench/ingest.py`` imports it from its own folder.
"""

from __future__ import annotations

import bisect
import os
import statistics
from typing import Any

import psycopg

from forewarn.settings import Settings

from _options import Options
from _procs import PUBLISHER_INFLIGHT, sample_payload
from _services import rows_and_distinct, scalar

TARGET_RATIO = 0.70
LATENCY_DEFINITION = "publish to INSERT inside the committing transaction"
COMMIT_VISIBLE_DEFINITION = (
    "publish to the first count(*) poll that covered the row's rank in ingested_at order "
    "(upper bound; resolution one poll interval plus the query time)"
)


def verify(
    conn: psycopg.Connection[tuple[Any, ...]], n: int, polls: list[tuple[float, int]]
) -> dict[str, Any]:
    """Loss, duplicates, dead letters and latencies from the table (N messages published).

    ``polls`` are (wall time, committed count) at each change the watcher saw.
    """
    rows, distinct = rows_and_distinct(conn)
    dead = scalar(conn, "SELECT count(*) FROM dead_letters")
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


def build_report(
    o: Options,
    rounds: list[tuple[dict[str, Any], dict[str, Any]]],
    *,
    storage: str,
    how: str,
    pg: str,
    settings: Settings,
    receive_maximum: int,
    window: int,
    broker_note: str,
) -> dict[str, Any]:
    """The JSON line: headline figures (medians over rounds), then config and breakdowns.

    ``settings`` supplies the ingester's defaults for what the command line left unset.
    """
    bare = statistics.median(b["msgs_per_s"] for b, _ in rounds)
    rates = [f["msgs_per_s"] for _, f in rounds]
    full = statistics.median(rates) if None not in rates else None
    # The headline pairs each round's two phases, measured back to back on the same
    # noisy machine, and takes the median of those ratios (not a ratio of medians).
    ratio = (
        statistics.median(f["msgs_per_s"] / b["msgs_per_s"] for b, f in rounds) if full else None
    )
    last_full = rounds[-1][1]
    out: dict[str, Any] = {
        "benchmark": "forewarn ingest",
        "bare_subscriber_msgs_per_s": round(bare),
        "end_to_end_msgs_per_s": round(full) if full else None,
        "ratio_end_to_end_vs_bare": round(ratio, 3) if ratio else None,
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
        "messages": o.messages,
        "qos": o.qos,
        "publishers": o.publishers,
        "publisher_max_inflight": PUBLISHER_INFLIGHT,
        "devices": o.devices,
        "payload_bytes": len(sample_payload()),
        "ingester_processes": o.ingesters,
        "ingester_command": how,
        "mqtt_connections_per_ingester": o.connections,
        "batch_size": o.batch_size or settings.ingest_batch_size,
        "batch_seconds": o.batch_seconds or settings.ingest_batch_seconds,
        "receive_maximum": receive_maximum,
        "flow_control": (
            "publishers stay at most `window` messages ahead of the consumer's progress "
            "(bare: messages counted; end to end: rows committed, polled), because "
            "Mosquitto drops QoS 1 messages past Receive Maximum + max_queued_messages "
            "per subscriber connection"
        ),
        "window": window,
        "broker": broker_note,
        "broker_max_queued_messages": 1_000_000 if o.private_broker else o.broker_queue,
        "bare_subscription": "$share/<group>/<prefix>/devices/+/telemetry, QoS 1, auto ack",
        "poll_interval_ms": o.poll_interval * 1000,
        "commit_watch": o.watch,
        "rounds": len(rounds),
        "cores": os.cpu_count(),
        "storage": storage,
        "postgres": pg,
        "profiled": o.profile is not None,
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
            {
                "bare": round(b["msgs_per_s"]),
                "end_to_end": round(f["msgs_per_s"] or 0),
                "ratio": round((f["msgs_per_s"] or 0) / b["msgs_per_s"], 3),
            }
            for b, f in rounds
        ]
    return out


def _ms(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) * 1000, 1)


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(int(q * len(sorted_values)), len(sorted_values) - 1)]
