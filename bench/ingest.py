"""Ingest benchmark: how close Forewarn's ingester gets to a bare MQTT subscriber.

What is measured, in one run, against the local Mosquitto and PostgreSQL:

1. ``bare_subscriber_msgs_per_s``: N QoS 1 messages from the first publish to
   the N-th message counted by a bare paho-mqtt subscriber (MQTT v5, auto ack,
   same shared-subscription form and Receive Maximum as the ingester) running in
   its own process. This is the ceiling of this broker + publisher setup.
2. ``end_to_end_msgs_per_s``: the same N messages, same publishers, from the
   first publish to the poll (every ``--poll-ms``, 50 ms by default) that sees N
   committed rows, with the Forewarn ingester(s) running in their own process(es).
   Commits are watched through the ingesters' Prometheus counter of committed rows,
   or with ``--watch sql`` by ``SELECT count(*) FROM telemetry`` on its own connection.
3. ``lost`` (N minus distinct rows) and ``duplicated`` (rows minus distinct
   ``(device_id, ts)``); the run exits non-zero unless both are 0.
4. Latency. Each payload's ``ts`` is the publisher's wall clock when the message
   is handed to paho with an in-flight slot free (RFC 3339, microseconds,
   strictly increasing per device). ``latency_ms_*`` is ``ingested_at - ts``,
   where ``ingested_at`` is ``clock_timestamp()`` at INSERT inside the committing
   transaction; ``publish_to_receive_ms_*`` is ``received_at - ts``;
   ``commit_visible_ms_*`` ranks rows by ``ingested_at`` and takes the first poll
   whose count covered the row's rank (an upper bound, to a poll interval).
5. ``ratio_end_to_end_vs_bare``, the headline figure (target >= 0.70): the median over
   rounds of each round's end-to-end rate divided by its own bare rate.

The publishers (``--publishers`` processes, one paho MQTT v5 client each, QoS 1,
1000 messages in flight, ``loop_start``) pre-encode every payload before the
clock starts; only the timestamp is spliced in at publish time. CPU time per
component (from /proc) is reported for both phases, since the two cores are
shared by publishers, broker, subscriber or ingester, and PostgreSQL.

Each run uses a fresh schema ``bench_<hex>`` (dropped afterwards), its own topic
prefix, client ids and share group, so it never meets the tests or the demo.

Run it as a script (``.venv/bin/python bench/ingest.py --quick``). Note that
this file shadows the ``ingest`` package on ``sys.path`` when run this way, so
it never imports ``ingest``; the ingester runs in subprocesses. Its helpers sit
beside it and are imported from this folder: ``_options`` (command line),
``_procs`` (publisher and bare-subscriber processes, CPU metering), ``_services``
(private broker, schema, ingester processes) and ``_report`` (checks, JSON line).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import psycopg

from forewarn.settings import Settings

from _options import Options, parse_args
from _procs import (
    CpuMeter,
    PublisherJob,
    SubscriberJob,
    expect,
    pids_named,
    publisher_main,
    publisher_pct,
    sigterm_as_exit,
    subscriber_main,
)
from _report import build_report, verify
from _services import (
    BenchError,
    Children,
    Deadline,
    Ingesters,
    create_schema,
    drop_schema,
    log,
    one,
    scalar,
    schema_url,
    start_broker,
)

# deploy/mosquitto/mosquitto.conf's queue limits (see bench/README.md).
PRIVATE_BROKER_LIMITS = (
    "max_queued_messages 1000000\nmax_queued_bytes 536870912\n"
    "max_inflight_messages 20\nlog_dest none\n"
)


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
        self.db_url = schema_url(opts.database_url, self.schema)
        self.prefix_bare = f"bench/{self.run_id}/bare"
        self.prefix_full = f"bench/{self.run_id}/full"  # same length: same bytes on the wire
        self.group = f"bench-{self.run_id}"
        self.ingesters = Ingesters(
            opts,
            run_id=self.run_id,
            db_url=self.db_url,
            prefix=self.prefix_full,
            group=self.group,
            deadline=self.deadline,
            children=self.children,
        )
        self.broker_pids: list[int] = pids_named("mosquitto")
        self.poll_pid = 0
        self.ctx = mp.get_context("spawn")
        self.receive_maximum = opts.receive_maximum or int(
            Settings.model_fields["ingest_receive_maximum"].default
        )

    # setup -----------------------------------------------------------------

    def start_private_broker(self) -> None:
        """A Mosquitto of our own with deploy/mosquitto/mosquitto.conf's queue limits."""
        broker = start_broker(
            PRIVATE_BROKER_LIMITS,
            deadline=self.deadline,
            workdir_prefix="bench-mosquitto-",
            output=sys.stderr,
        )
        self.children.popens.append(broker.popen)
        self.broker_pids = [broker.popen.pid]
        self.mqtt_url, self.host, self.port = broker.url, "127.0.0.1", broker.port
        self.broker_note = (
            f"private mosquitto on port {broker.port}: max_queued_messages 1000000, "
            "max_queued_bytes 512 MiB, persistence false"
        )

    def drop_schema(self) -> None:
        """Drop the run's schema (unless --keep-schema)."""
        if self.o.keep_schema:
            log(f"keeping schema {self.schema}")
            return
        drop_schema(self.o.database_url, self.schema)

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
                target=publisher_main, args=(job, child, sent, progress), daemon=True
            )
            proc.start()
            self.children.procs.append(proc)
            out.append((parent, proc.pid or 0))
        for parent, _ in out:
            expect(parent, "ready", self.deadline, "waiting for publishers")
        return out

    def finish_publishers(self, pubs: list[tuple[Connection, int]]) -> dict[str, float | int]:
        """Collect the publishers' reports; first publish time and last PUBACK time."""
        results = [expect(c, "result", self.deadline, "waiting for publishers") for c, _ in pubs]
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
        sub = self.ctx.Process(target=subscriber_main, args=(job, child, progress), daemon=True)
        sub.start()
        self.children.procs.append(sub)
        expect(parent, "ready", self.deadline, "waiting for the bare subscriber")
        pubs = self.start_publishers(self.prefix_bare, "bare", self.window(), progress)
        meter = CpuMeter(
            {
                "bare_subscriber_pct": [sub.pid or 0],
                "mosquitto_pct": self.broker_pids,
            }
        )
        for conn, _ in pubs:
            conn.send("go")
        got = expect(parent, "result", self.deadline, "waiting for the bare subscriber")
        cpu = meter.stop()
        published = self.finish_publishers(pubs)
        elapsed = float(got["last"]) - float(published["first"])
        return {
            "msgs_per_s": self.o.messages / elapsed,
            "seconds": elapsed,
            "publish_acked_msgs_per_s": self.o.messages
            / (float(published["acked"]) - float(published["first"])),
            "cpu": {"publishers_pct": publisher_pct(published), **cpu},
        }

    def full_phase(self, poll: psycopg.Connection[tuple[Any, ...]]) -> dict[str, Any]:
        """N messages through the ingester(s) into PostgreSQL; polls count(*) until N."""
        n = self.o.messages
        progress = self.ctx.RawValue("q", 0)
        window = self.window()
        pubs = self.start_publishers(self.prefix_full, "full", window, progress)
        self.ingesters.start_profilers()
        meter = CpuMeter(
            {
                "ingesters_pct": self.ingesters.pids,
                "ingester_backends_pct": self.ingesters.backend_pids,
                "poll_backend_pct": [self.poll_pid],
                "mosquitto_pct": self.broker_pids,
                "postgres_all_pct": pids_named("postgres"),
            }
        )
        for conn, _ in pubs:
            conn.send("go")
        polls: list[tuple[float, int]] = []
        query_s: list[float] = []
        baseline = self.ingesters.committed() if self.o.watch == "metrics" else 0
        count, changed, published = 0, time.monotonic(), None
        next_at = time.monotonic()
        while count < n:
            t0 = time.monotonic()
            if self.o.watch == "metrics":
                count = self.ingesters.committed() - baseline
            else:
                count = scalar(poll, "SELECT count(*) FROM telemetry")
            seen = time.time()
            progress.value = count
            query_s.append(time.monotonic() - t0)
            if not polls or count != polls[-1][1]:
                polls.append((seen, count))
                changed = time.monotonic()
            if published is None and all(c.poll() for c, _ in pubs):
                published = self.finish_publishers(pubs)
            self.ingesters.check()
            if time.monotonic() - changed > 30:
                log(f"no new rows for 30 s at {count} of {n}")
                break
            self.deadline.left(f"waiting for rows ({count} of {n} committed)")
            next_at += self.o.poll_interval
            time.sleep(max(next_at - time.monotonic(), 0))
        cpu = meter.stop()
        self.ingesters.stop_profilers()
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
            "cpu": {"publishers_pct": publisher_pct(published), **cpu},
        }
        result.update(verify(poll, n, polls))
        return result

    # driver ----------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Set up, run the rounds, return the report (cleanup is the caller's finally)."""
        if self.o.private_broker:
            self.start_private_broker()
        settings = Settings(database_url=self.db_url, mqtt_url=self.mqtt_url)
        storage = create_schema(self.o.database_url, self.schema, settings)
        log(f"schema {self.schema} ({storage}), topics bench/{self.run_id}/...")
        argv, how = self.ingesters.argv()
        self.ingesters.start(argv, self.mqtt_url)
        rounds = []
        with psycopg.connect(self.db_url, autocommit=True) as poll:
            self.poll_pid = scalar(poll, "SELECT pg_backend_pid()")
            pg_version = str(one(poll, "SHOW server_version"))
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
        return build_report(
            self.o,
            rounds,
            storage=storage,
            how=how,
            pg=pg_version,
            settings=settings,
            receive_maximum=self.receive_maximum,
            window=self.window(),
            broker_note=self.broker_note,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print one JSON line; 0 only if nothing was lost or duplicated."""
    opts = parse_args(argv, description=__doc__.splitlines()[0] if __doc__ else None)
    bench = Bench(opts)
    report: dict[str, Any] | None = None
    with sigterm_as_exit():
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
