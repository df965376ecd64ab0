"""Responder benchmark: how many predictions a second one responder decides on, per kind.

    python bench/responder.py [--devices 3000] [--rounds 3]

What runs: a fresh schema ``bench_r<hex>`` (dropped afterwards) with the default rule set and
a real model version (the predictions' foreign key); ``--devices`` devices registered in
cohorts of 500 (one model and firmware each, their own in every set; the newer half of every cohort owned by novices
whose devices report in, the rest regular owners), no notification targets (nothing leaves the
machine). Then, per round and per case, one prediction for each device of a fresh set of
devices is written and a ``Responder`` (no slices) is timed from its first read until it has
caught up with them (``Responder.run_once``'s prediction pass):

- ``anomaly``: "anomaly" hints, which the default rule set ignores for every owner (what the
  fleet benchmark's model writes for every reading);
- ``acting``: faults a rule acts on (battery_failure, connectivity_loss, overheating, in turn):
  each opens an incident, and the fifth device of a cohort with one fault opens that fault's
  fleet incident (the default rule set's threshold), which the rest join.

Each case runs once through ``Responder`` as shipped (``batched``) and once with every
prediction decided on its own (``one_by_one``: ``rules.flows.apply_signal`` per prediction, as
the responder did before it skipped ignored hints a page at a time), on different devices of the same shape, in alternating
order per round. It prints one JSON line: decisions a second per case and path (the best
round) and the ratio of the shipped path to the one-by-one path measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from _fleetmodel import activate_alert_everything

from forewarn.clock import SystemClock
from forewarn.domain import ANOMALY
from forewarn.settings import Settings
from rules.flows import apply_signal
from rules.loader import load_rules
from rules.predictions import signals_since
from rules.responder import Responder
from rules.types import RuleSet

from _services import create_schema, drop_schema, log, schema_url

COHORT = 500
ACTING = ("battery_failure", "connectivity_loss", "overheating")
Conn = psycopg.Connection[tuple[Any, ...]]


def register(conn: Conn, *, prefix: str, devices: int, now: datetime) -> list[str]:
    """Register `devices` devices in cohorts of ``COHORT``, half of each owned by novices."""
    ids = [f"{prefix}-{i:06d}" for i in range(devices)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO owners (owner_id, name, locale, account_type) VALUES (%s, %s, 'en', "
            "'consumer')",
            [(f"o-{d}", f"owner {d}") for d in ids],
        )
        cur.executemany(
            "INSERT INTO devices (device_id, model, kind, firmware, owner_id, activated_at, "
            "first_seen, last_seen, last_reading_at) VALUES (%s, %s, 'lock', %s, %s, %s, %s, %s, %s)",
            [
                (
                    d,
                    f"{prefix}-model-{i // COHORT}",
                    "1.0.0",
                    f"o-{d}",
                    now - timedelta(days=3 if i % 2 else 200),
                    now - timedelta(days=1),
                    now,
                    now,
                )
                for i, d in enumerate(ids)
            ],
        )
    conn.commit()
    return ids


def write_predictions(
    conn: Conn, *, ids: list[str], faults: tuple[str, ...], version: int, now: datetime
) -> None:
    """One prediction per device (its fault taken in turn from `faults`), as the scorer writes."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO predictions (device_id, fault, window_start, probability, "
            "max_probability, horizon_h, reasons, model_version, first_at, last_at) "
            "VALUES (%s, %s, %s, 0.9, 0.9, 24, ARRAY['bench'], %s, %s, %s)",
            [
                (d, faults[i % len(faults)], now.replace(minute=0, second=0), version, now, now)
                for i, d in enumerate(ids)
            ],
        )
    conn.commit()


def batched(conn: Conn, settings: Settings, rules: RuleSet, after: datetime) -> None:
    """The shipped responder's prediction pass, from `after` until caught up."""
    responder = Responder(settings, rules, SystemClock())
    responder.run_signals(conn, after)


def one_by_one(conn: Conn, settings: Settings, rules: RuleSet, after: datetime) -> None:
    """Every prediction decided in its own transaction (the responder's loop before it
    skipped ignored hints a page at a time)."""
    rows = signals_since(conn, updated_after=after, limit=1_000_000)
    conn.commit()
    for signal, _ in rows:
        apply_signal(conn, settings, rules, signal=signal, now=datetime.now(UTC))


PATHS = {"batched": batched, "one_by_one": one_by_one}


def run(a: argparse.Namespace) -> dict[str, Any]:
    """Register, write, time; the report."""
    schema = f"bench_r{secrets.token_hex(4)}"
    settings = Settings(database_url=schema_url(a.database_url, schema))
    storage = create_schema(a.database_url, schema, settings)
    rules = load_rules()
    best: dict[str, float] = {}
    try:
        with psycopg.connect(settings.database_url or "") as conn:
            conn.autocommit = True
            version = activate_alert_everything(conn)
            conn.autocommit = False
            log(f"schema {schema} ({storage})")
            for rnd in range(a.rounds):
                order = list(PATHS) if rnd % 2 == 0 else list(PATHS)[::-1]
                for case, faults in (("anomaly", (ANOMALY,)), ("acting", ACTING)):
                    for path in order:
                        now = datetime.now(UTC)
                        ids = register(
                            conn, prefix=f"{case}-{path}-{rnd}", devices=a.devices, now=now
                        )
                        row = conn.execute("SELECT clock_timestamp()").fetchone()
                        assert row is not None
                        after = row[0]
                        conn.commit()
                        write_predictions(conn, ids=ids, faults=faults, version=version, now=now)
                        started = time.perf_counter()
                        PATHS[path](conn, settings, rules, after)
                        rate = a.devices / (time.perf_counter() - started)
                        log(f"round {rnd} {case} {path}: {rate:.0f} decisions/s")
                        key = f"{case}_{path}"
                        best[key] = max(best.get(key, 0.0), rate)
            incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()
            fleets = conn.execute("SELECT count(*) FROM fleet_incidents").fetchone()
    finally:
        drop_schema(a.database_url, schema)
    return {
        "bench": "responder",
        "devices_per_case": a.devices,
        "rounds": a.rounds,
        "storage": storage,
        "decisions_per_s": {k: round(v, 1) for k, v in sorted(best.items())},
        "ratio_batched_to_one_by_one": {
            case: round(best[f"{case}_batched"] / best[f"{case}_one_by_one"], 2)
            for case in ("anomaly", "acting")
        },
        "incidents": None if incidents is None else int(incidents[0]),
        "fleet_incidents": None if fleets is None else int(fleets[0]),
    }


def main() -> int:
    """Parse, run, print the JSON line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=3000, help="per case, path and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    print(json.dumps(run(p.parse_args())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
