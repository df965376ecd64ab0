"""Acting on predictions, on the real database and a real local HTTP receiver.

Predictions are written with the scorer's own writer (``models.repository.upsert_predictions``)
and readings with the ingester's write path (``DirectWriter``); the responder and the
dispatcher then run pass by pass against a clock the test moves (the one edge we fake).
The full broker → ingester → scorer → responder path is ``test_live_pipeline_acts`` below.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from forewarn.clock import FixedClock
from forewarn.db import connect
from forewarn.domain import ANOMALY, Prediction
from forewarn.settings import Settings
from forewarn.signing import new_secret
from ingest.direct import DirectWriter
from models.repository import upsert_predictions
from notifier.dispatcher import Dispatcher
from notifier.guides.flows import default_directory, load_directory
from rules import repository as rules_repo
from rules.loader import default_rules_path, load_rules, parse_rules
from rules.responder import OVERLAP, Responder
from simulators import repository as simulated
from tests.conftest import count
from tests.receiver import HttpReceiver

DB = psycopg.Connection[tuple[Any, ...]]
RULES = load_rules()
# 10:00 UTC: 11:00 in Berlin, outside the default owner's quiet hours (22:00-07:00).
T0 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
H = timedelta(hours=1)
M = timedelta(minutes=1)


@dataclass
class World:
    """A test's database, receiver, clock and the two moving parts, driven pass by pass."""

    settings: Settings
    db: DB
    receiver: HttpReceiver
    clock: FixedClock
    conn: psycopg.Connection[Any]
    responder: Responder
    dispatcher: Dispatcher
    cursor: datetime
    version: int

    def owner(
        self,
        owner_id: str,
        *,
        quiet: tuple[time, time] | None = (time(22), time(7)),
        zone: str = "Europe/Berlin",
        locale: str = "en-US",
        enterprise: str | None = None,
        targets: int = 1,
    ) -> None:
        urls = [
            f"json://127.0.0.1:{self.receiver.port}/owners/{owner_id}/{i}" for i in range(targets)
        ]
        self.db.execute(
            """INSERT INTO owners (owner_id, name, contact, locale, time_zone, quiet_start,
                   quiet_end, account_type, enterprise_account, notify_targets)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                owner_id,
                f"Owner {owner_id}",
                f"{owner_id}@example.com",
                locale,
                zone,
                quiet[0] if quiet else None,
                quiet[1] if quiet else None,
                "enterprise" if enterprise else "consumer",
                enterprise,
                urls,
            ),
        )

    def device(
        self,
        device_id: str,
        owner_id: str,
        *,
        model: str = "lock-s2",
        kind: str = "lock",
        firmware: str = "2.4.1",
        owned_days: float = 90,
    ) -> None:
        self.db.execute(
            """INSERT INTO devices (device_id, model, kind, firmware, owner_id, activated_at,
                   last_seen, registered_by) VALUES (%s, %s, %s, %s, %s, %s, %s, 'test')""",
            (device_id, model, kind, firmware, owner_id, T0 - timedelta(days=owned_days), T0),
        )

    def predict(
        self,
        device_id: str,
        fault: str,
        *,
        at: datetime,
        p: float = 0.97,
        hours_to_empty: float | None = None,
    ) -> None:
        upsert_predictions(
            self.db,
            predictions=[
                Prediction(
                    device_id,
                    fault,
                    at,
                    p,
                    24.0,
                    ("battery draining 3x faster than usual",),
                    self.version,
                    hours_to_empty,
                )
            ],
        )

    def readings(self, device_id: str, start: datetime, end: datetime, **values: float) -> None:
        writer = DirectWriter(self.settings)
        at = start
        while at <= end:
            body = {"ts": at.isoformat(), **values}
            topic = f"{self.settings.topic_prefix}/devices/{device_id}/telemetry"
            writer.publish(topic, json.dumps(body).encode(), retain=False)
            at += 10 * M
        writer.close()

    def step(self) -> None:
        """One responder pass, then one dispatcher pass per due notification."""
        self.cursor = self.responder.run_once(self.conn, self.cursor)
        while self.dispatcher.run_once():
            pass


@pytest.fixture
def world(settings: Settings, db: DB) -> Iterator[World]:
    with HttpReceiver() as receiver:
        config = settings.data_dir.parent / f"apprise-{settings.topic_prefix.split('/')[0]}.yaml"
        config.write_text(
            "urls:\n"
            + "".join(
                f"  - json://127.0.0.1:{receiver.port}/staff/{t}:\n    - tag: {t}\n"
                for t in ("support-l1", "support-l2", "support-l3", "lead-l1", "lead-l2", "lead-l3")
            ),
            encoding="utf-8",
        )
        live = settings.with_overrides(
            notify_config=str(config),
            notify_backoff_seconds=0.05,
            ticket_webhook_url=f"http://127.0.0.1:{receiver.port}/helpdesk",
            ticket_webhook_secret=new_secret(),
            ticket_webhook_allow_http=True,
        )
        clock = FixedClock(T0)
        with connect(live) as conn:
            load_directory(conn, default_directory())
            row = conn.execute(
                """INSERT INTO model_versions (features, horizon_h, seed, sha256, bundle)
                   VALUES ('{}', 24, 0, 'test', '') RETURNING version"""
            ).fetchone()
            conn.commit()
            assert row is not None
            cursor = rules_repo.db_now(conn) - OVERLAP
            conn.commit()
            w = World(
                live,
                db,
                receiver,
                clock,
                conn,
                Responder(live, RULES, clock),
                Dispatcher(live, clock),
                cursor,
                int(row[0]),
            )
            yield w
        config.unlink(missing_ok=True)


def ticket(db: DB, device_id: str) -> dict[str, Any]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM tickets WHERE device_id = %s", (device_id,)).fetchone()
    assert row is not None, f"no ticket for {device_id}"
    return row


def test_battery_guide_first_then_ticket_with_sla_dues(world: World) -> None:
    w, db = world, world.db
    w.owner("o1")
    w.device("lock-1", "o1")
    w.readings("lock-1", T0 - 2 * H, T0, battery_pct=9.0)
    w.predict("lock-1", "battery_failure", at=T0, hours_to_empty=120.0)
    w.step()
    [guide] = w.receiver.wait_for(1, path="/owners/o1/0")
    assert "5 days" in guide.json["title"], guide.json
    assert count(db, "SELECT count(*) FROM incidents WHERE state = 'guided'") == 1
    assert count(db, "SELECT count(*) FROM tickets") == 0

    # The battery keeps sinking: predictions go on; after the rule's 6 h wait, a ticket.
    for hours in (1, 3, 5):
        w.clock.advance(2 * H)
        w.readings("lock-1", T0 + (hours - 1) * H, T0 + hours * H, battery_pct=8.0 - hours)
        w.predict("lock-1", "battery_failure", at=T0 + hours * H, hours_to_empty=100.0)
        w.step()
    assert count(db, "SELECT count(*) FROM tickets") == 1
    t = ticket(db, "lock-1")
    opened = t["opened_at"]
    assert opened == T0 + 6 * H
    assert (t["priority"], t["tier"], t["guide_sent"]) == ("minor", "L1", True)
    assert t["first_response_due"] == opened + 2 * H  # Minor: 2 h
    assert t["resolution_due"] == opened + 24 * H  # Minor: 24 h
    assert "guide was sent" in t["trigger"]
    evidence = t["evidence"]
    assert evidence["prediction"]["fault"] == "battery_failure" and evidence["reasons"]
    assert evidence["telemetry"] and evidence["guides_sent"][0]["status"] == "sent"
    assert (t["customer_id"], t["contact"], t["model"], t["firmware"]) == (
        "o1",
        "o1@example.com",
        "lock-s2",
        "2.4.1",
    )
    # Staff were told, and the helpdesk webhook got the ticket.
    assert w.receiver.wait_for(1, path="/staff/support-l1")
    [sink] = w.receiver.wait_for(1, path="/helpdesk")
    assert sink.json["ticket_id"] == t["ticket_id"] and sink.headers["idempotency-key"]


def test_overheating_opens_a_critical_ticket_and_warns_in_quiet_hours(world: World) -> None:
    w, db = world, world.db
    night = T0.replace(hour=23, minute=30)  # 00:30 in Berlin: quiet hours
    w.clock.at = night
    w.owner("o1")
    w.device("ac-1", "o1", model="ac-x1", kind="air_conditioner", firmware="5.2.0")
    w.owner("o2")
    w.device("lock-2", "o2")
    w.predict("ac-1", "overheating", at=night)
    w.predict("lock-2", "battery_failure", at=night, hours_to_empty=50.0)
    w.step()
    t = ticket(db, "ac-1")
    assert (t["priority"], t["tier"]) == ("critical", "L3")
    assert t["first_response_due"] == night + 30 * M and t["resolution_due"] == night + 4 * H
    # The owner is warned at once despite quiet hours, and told the ticket's number (a
    # critical ticket's notice does not wait either); the battery guide waits for 07:00.
    told = w.receiver.wait_for(2, path="/owners/o1/0")
    titles = sorted(r.json["title"] for r in told)
    assert "too hot" in titles[1] and titles[0].startswith(f"Ticket #{t['ticket_id']}:")
    assert w.receiver.requests("/owners/o2/0") == []
    deferred = db.execute(
        "SELECT not_before, status FROM notifications WHERE owner_id = 'o2'"
    ).fetchone()
    assert deferred == (T0 + timedelta(hours=20), "pending")  # 07:00 Berlin = 06:00 UTC
    w.clock.at = T0 + timedelta(hours=20)
    w.step()
    assert w.receiver.wait_for(1, path="/owners/o2/0")


def test_firmware_cohort_is_one_fleet_incident(world: World) -> None:
    w, db = world, world.db
    for i in range(8):
        w.owner(f"c{i}")
        w.device(f"cam-{i}", f"c{i}", model="cam-c2", kind="camera", firmware="3.1.0")
    for i in range(8):
        w.predict(f"cam-{i}", "reboot_loop", at=T0 + i * M)
        w.clock.advance(M)
        w.step()
    assert count(db, "SELECT count(*) FROM fleet_incidents") == 1
    devices, priority, fleet_ticket = db.execute(
        "SELECT devices, priority, ticket_id FROM fleet_incidents"
    ).fetchone() or (0, "", 0)
    assert (devices, priority) == (8, "major")
    # The first four opened device tickets (reboot loop: ticket at once); the fifth made the
    # fleet incident, which took them as children; the rest opened no ticket of their own.
    assert count(db, "SELECT count(*) FROM tickets WHERE kind = 'device'") == 4
    assert count(db, "SELECT count(*) FROM tickets WHERE parent_ticket_id = %s", fleet_ticket) == 4
    assert count(db, "SELECT count(*) FROM incidents WHERE fleet_incident_id IS NULL") == 0
    assert count(db, "SELECT count(*) FROM incidents WHERE state <> 'ticketed'") == 0
    assert ticket_tier(db, fleet_ticket) == "L3"


def ticket_tier(db: DB, ticket_id: int) -> str:
    row = db.execute("SELECT tier FROM tickets WHERE ticket_id = %s", (ticket_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_two_responders_racing_open_one_ticket_per_device(world: World) -> None:
    w, db = world, world.db
    for i in range(12):
        w.owner(f"r{i}")
        w.device(f"ac-{i}", f"r{i}", model="ac-x1", kind="air_conditioner", firmware=f"5.{i}.0")
    racers = [Responder(w.settings, RULES, w.clock, name=f"racer-{n}") for n in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def race(r: Responder) -> None:
        try:
            with connect(w.settings) as conn:
                start = rules_repo.db_now(conn) - timedelta(minutes=5)
                conn.commit()
                barrier.wait()
                r.run_once(conn, start)
        except BaseException as exc:
            errors.append(exc)

    for i in range(12):
        w.predict(f"ac-{i}", "overheating", at=T0)
    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert count(db, "SELECT count(*) FROM incidents") == 12
    assert count(db, "SELECT count(*) FROM tickets") == 12
    assert count(db, "SELECT count(DISTINCT device_id) FROM tickets") == 12
    owners = "SELECT count(*) FROM notifications WHERE audience = 'owner' AND guide_id IS "
    assert count(db, owners + "NOT NULL") == 12  # one guide each
    assert count(db, owners + "NULL") == 12  # one notice of the ticket each


def test_two_responders_racing_on_one_cohort_open_one_fleet_incident(world: World) -> None:
    # The cohort's lock is taken only by decisions that may open or join a fleet incident,
    # after the device's: two responders deciding on one cohort at once still make one.
    w, db = world, world.db
    for i in range(12):
        w.owner(f"f{i}")
        w.device(f"cam-{i}", f"f{i}", model="cam-c2", kind="camera", firmware="3.1.0")
    racers = [Responder(w.settings, RULES, w.clock, name=f"racer-{n}") for n in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def race(r: Responder) -> None:
        try:
            with connect(w.settings) as conn:
                start = rules_repo.db_now(conn) - timedelta(minutes=5)
                conn.commit()
                barrier.wait()
                r.run_once(conn, start)
        except BaseException as exc:
            errors.append(exc)

    for i in range(12):
        w.predict(f"cam-{i}", "reboot_loop", at=T0)
    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert count(db, "SELECT count(*) FROM incidents") == 12
    assert count(db, "SELECT count(*) FROM fleet_incidents") == 1
    assert count(db, "SELECT devices FROM fleet_incidents") == 12
    assert count(db, "SELECT count(*) FROM incidents WHERE fleet_incident_id IS NULL") == 0


def test_ignored_hints_are_skipped_unless_an_incident_is_open(world: World) -> None:
    # The responder skips predictions no rule acts on without a transaction each, but a
    # device whose incident for that fault is open (opened under another rule set) still has
    # it tracked, as when every prediction was decided on its own.
    w, db = world, world.db
    text = default_rules_path().read_text(encoding="utf-8")
    acting = text.replace(
        "    faults: [anomaly]\n    action: ignore", "    faults: [anomaly]\n    action: guide"
    )
    assert acting != text
    for i in range(3):
        w.owner(f"a{i}")
        w.device(f"lock-{i}", f"a{i}")
    w.predict("lock-0", ANOMALY, at=T0)
    w.responder = Responder(w.settings, parse_rules(acting, source="acting.yaml"), w.clock)
    w.step()
    assert count(db, "SELECT count(*) FROM incidents WHERE fault = %s", ANOMALY) == 1
    w.responder = Responder(w.settings, RULES, w.clock)
    w.clock.advance(10 * M)
    for i in range(3):
        w.predict(f"lock-{i}", ANOMALY, at=T0 + 10 * M, p=0.99)
    w.step()
    assert w.responder.stats().signals == 3
    assert count(db, "SELECT count(*) FROM incidents") == 1
    tracked = db.execute(
        "SELECT last_predicted_at, probability FROM incidents WHERE device_id = 'lock-0'"
    ).fetchone()
    assert tracked is not None
    assert tracked[0] == T0 + 10 * M
    assert tracked[1] == pytest.approx(0.99)


def test_recovery_after_a_guide_closes_the_incident(world: World) -> None:
    w, db = world, world.db
    w.owner("o1")
    w.device("lock-1", "o1")
    w.predict("lock-1", "connectivity_loss", at=T0)
    w.step()
    # Clean telemetry for longer than clear_after (1 h): recovered, no ticket (deflection).
    w.readings("lock-1", T0 + 10 * M, T0 + 80 * M, signal_dbm=-55.0)
    w.clock.advance(90 * M)
    w.step()
    assert db.execute("SELECT state, outcome FROM incidents").fetchone() == (
        "closed",
        "recovered_after_guide",
    )
    assert count(db, "SELECT count(*) FROM tickets") == 0
    # It comes back within 30 days: a new incident, linked as a recurrence.
    w.clock.advance(3 * H)
    w.predict("lock-1", "connectivity_loss", at=T0 + 4 * H)
    w.step()
    assert count(db, "SELECT count(*) FROM incidents WHERE recurrence_of IS NOT NULL") == 1


def test_unanswered_ticket_escalates_and_warns(world: World) -> None:
    w, db = world, world.db
    w.owner("o1")
    w.device("cam-1", "o1", model="cam-c2", kind="camera", firmware="3.0.4")
    w.predict("cam-1", "reboot_loop", at=T0)  # Major, L2: take up within 1 h, solve in 2 h
    w.step()
    t = ticket(db, "cam-1")
    assert (t["priority"], t["tier"], t["tier_respond_due"]) == ("major", "L2", T0 + H)
    w.clock.advance(50 * M)
    w.step()
    assert count(db, "SELECT count(*) FROM ticket_events WHERE kind = 'breach_warning'") == 1
    w.clock.advance(15 * M)
    w.step()
    t = ticket(db, "cam-1")
    assert (t["tier"], t["team"], t["escalations"]) == ("L3", "support-l3", 1)
    assert w.receiver.wait_for(1, path="/staff/support-l3")


@pytest.mark.slow
def test_live_pipeline_acts(settings: Settings, db: DB) -> None:
    """Broker → ingester → scorer → responder → dispatcher → the owners' HTTP endpoint.

    A model is trained on a simulated history; a second fleet with injected faults is
    published through the real broker, stored and scored; the responder then acts on what
    the scorer predicted, and the clock is moved past the battery rule's wait.
    """
    from ingest.service import Ingester
    from models.flows import train
    from models.scorer import Scorer
    from simulators.flows import run_simulation
    from tests.conftest import wait_for

    history = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    run_simulation(
        settings,
        devices=80,
        seed=21,
        speedup=0,
        duration=None,
        start=history,
        sim_span=timedelta(days=2),
        fault_rate=0.5,
        sink=DirectWriter(settings),
        number_from=500_001,
    )
    assert train(
        settings, evaluation={"seed": 8, "devices": 40, "days": 1.5}, say=lambda _m: None
    ).activated
    ingester = Ingester(settings.with_overrides(ingest_receive_maximum=65535))
    scorer = Scorer(settings, warmup_hours=0)
    ingester.start()
    scorer.start()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    try:
        wait_for(scorer.ready.is_set, what="the scorer to load the active model")
        with connect(settings) as conn:
            cursor = rules_repo.db_now(conn) - OVERLAP
        summary = run_simulation(
            settings,
            devices=40,
            seed=22,
            speedup=0,
            duration=None,
            start=start,
            sim_span=timedelta(hours=20),
            fault_rate=0.6,
        )
        live = "SELECT count(*) FROM telemetry WHERE device_id NOT LIKE '%%-5_____'"
        wait_for(
            lambda: count(db, live) >= summary.readings,
            timeout=90,
            what="the ingester to store every reading",
        )
        wait_for(
            lambda: scorer.stats().readings >= summary.readings,
            timeout=60,
            what="the scorer to fold every reading",
        )
    finally:
        ingester.stop()
        scorer.stop()
    faulty = {e.device_id for e in summary.episodes}
    # An outage's devices (fault 'outage') get a fleet incident, not one each.
    predicted = {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT device_id FROM predictions WHERE fault NOT IN ('anomaly', 'outage')"
        )
    }
    extra = db.execute(
        "SELECT device_id, fault, reasons FROM predictions WHERE fault <> 'anomaly' "
        "AND NOT (device_id = ANY(%s))",
        (sorted(faulty),),
    ).fetchall()
    assert predicted and not extra, f"predicted without a fault: {extra}"

    with HttpReceiver() as receiver, connect(settings) as conn:
        load_directory(conn, default_directory())
        with conn.transaction():
            simulated.default_owner_targets(
                conn=conn, prefix=f"json://127.0.0.1:{receiver.port}/owners/"
            )
        # Everyone answers at any hour: this test is about the path, not quiet hours.
        db.execute("UPDATE owners SET quiet_start = NULL, quiet_end = NULL")
        clock = FixedClock(start + timedelta(hours=20))
        responder = Responder(settings, RULES, clock)
        dispatcher = Dispatcher(settings, clock)
        cursor = responder.run_once(conn, cursor)
        while dispatcher.run_once():
            pass
        # Every device the scorer flagged has its incident; the guide-first ones got a guide.
        assert {r[0] for r in db.execute("SELECT device_id FROM incidents")} == predicted
        guided = db.execute(
            """SELECT i.device_id, i.owner_id, i.rule, i.fault FROM incidents i
               WHERE state = 'guided' ORDER BY (fault = 'battery_failure') DESC, device_id"""
        ).fetchall()
        assert guided, "no guide-first incident"
        device_id, owner_id, rule_name, fault = guided[0]
        got = receiver.wait_for(1, path=f"/owners/{owner_id}")
        # Numbered steps; a novice also gets the onboarding guide, so there may be two.
        assert all(g.json["title"] and "1." in g.json["message"] for g in got)
        # The fault goes on (no clean telemetry after the last prediction): after the rule's
        # wait, the ticket, with the SLA dues of the table for the rule's priority.
        rule = next(r for r in RULES.rules if r.name == rule_name)
        clock.advance(rule.wait + M)
        responder.run_once(conn, cursor)
        t = ticket(db, device_id)
        assert (t["guide_sent"], t["priority"], t["fault"]) == (True, rule.priority.value, fault)
        sla = RULES.sla[rule.priority]
        assert t["first_response_due"] - t["opened_at"] == sla.first_response
        assert t["resolution_due"] - t["opened_at"] == sla.resolution
        assert t["evidence"]["telemetry"], "the ticket carries the telemetry window"
