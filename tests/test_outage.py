"""Network outages on the real database: many devices falling silent together are one fleet
incident with one ticket and no device incident each; one device falling silent alone is its
own incident; the outage closes when its devices report again.

Readings go through the ingester's write path (``DirectWriter``); the scorer's label-free
detectors (``models.live.Live``) fold what was stored, as the scorer does, and their
predictions are written with the scorer's writer; the responder and the dispatcher then run
pass by pass (``tests.test_acting.World``). Faked: the responder's clock and the detectors'
wall clock (a live fleet: five minutes of readings take five minutes), moved by the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from forewarn.domain import OUTAGE
from ingest.direct import DirectWriter
from models import telemetry
from models.live import Live
from models.repository import upsert_predictions
from tests.conftest import count
from tests.test_acting import T0, M, World
from tests.test_acting import world as world  # the fixture

STEP = 5 * M


class Wall:
    """The wall's clock the detectors read: seconds, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Pipeline:
    """Scorers (each with its own devices, as sharing scorers hold slices) and the responder,
    moved five minutes at a time."""

    def __init__(self, w: World, *slices: set[str]) -> None:
        self.w = w
        self.wall = Wall()
        self.scorers = [(Live(w.settings, wall=self.wall), mine) for mine in slices]
        self.at = T0
        self.after = datetime(2000, 1, 1, tzinfo=UTC)

    def run(self, steps: int, reporting: Iterable[str]) -> None:
        """`steps` times: the `reporting` devices send a reading, five minutes on."""
        devices = sorted(reporting)
        for _ in range(steps):
            self.at += STEP
            self.w.clock.advance(STEP)
            self.deliver([(d, self.at) for d in devices], wall_s=STEP.total_seconds())

    def deliver(self, readings: Sequence[tuple[str, datetime]], *, wall_s: float) -> None:
        """`wall_s` seconds later these (device, time) readings are stored; the scorers fold
        what was stored and write their predictions; the responder acts."""
        self.wall.now += wall_s
        writer = DirectWriter(self.w.settings)
        for i, (device_id, at) in enumerate(readings):
            body = {"ts": at.isoformat(), "signal_dbm": -60.0 - (i + at.minute) % 3}
            topic = f"{self.w.settings.topic_prefix}/devices/{device_id}/telemetry"
            writer.publish(topic, json.dumps(body).encode(), retain=False)
        writer.close()
        rows = telemetry.readings_since(self.w.db, ingested_after=self.after, limit=10_000)
        self.after = max((r.ingested_at for r in rows), default=self.after)
        for live, mine in self.scorers:
            for r in sorted(rows, key=lambda r: (r.device_id, r.ts)):
                if r.device_id in mine:
                    live.fold(self.w.db, r, score=True)
            upsert_predictions(self.w.db, predictions=live.take())
        self.w.step()


def register(w: World, names: Iterable[str], **device: str) -> list[str]:
    ids = list(names)
    for device_id in ids:
        w.owner(f"o-{device_id}")
        w.device(device_id, f"o-{device_id}", **device)
    return ids


def test_many_devices_silent_together_are_one_outage_until_they_report(
    world: World, api_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    w, db, v = world, world.db, keys["viewer"]
    # Eight plugs of one enterprise customer behind one gateway; seven locks elsewhere.
    w.owner("lotus", enterprise="Lotus Hotel")
    gateway = [f"plug-{i}" for i in range(8)]
    for device_id in gateway:
        w.device(device_id, "lotus", model="plug-p1", kind="plug", firmware="1.2.0")
    others = register(w, (f"lock-{i}" for i in range(7)))
    p = Pipeline(w, {*gateway, *others})
    p.run(36, [*gateway, *others])  # three hours: each device's cadence is learnt
    silent_since = p.at
    p.run(18, others)  # the gateway goes down for 90 minutes

    assert count(db, "SELECT count(*) FROM predictions WHERE fault = %s", OUTAGE) == 8
    fleet = db.execute(
        "SELECT fleet_incident_id, model, devices, priority, reason, ticket_id, closed_at "
        "FROM fleet_incidents"
    ).fetchall()
    assert len(fleet) == 1, fleet
    fleet_id, model, devices, priority, reason, ticket_id, closed_at = fleet[0]
    assert (model, devices, priority, closed_at) == (None, 8, "major", None)
    assert reason.startswith(
        f"8 devices stopped reporting together since {silent_since:%Y-%m-%d %H:%M} UTC"
    )
    assert "All are plug-p1 on firmware 1.2.0" in reason
    assert "all belong to the enterprise account Lotus Hotel" in reason
    members = db.execute(
        "SELECT device_id FROM fleet_incident_devices WHERE fleet_incident_id = %s "
        "AND left_at IS NULL ORDER BY device_id",
        (fleet_id,),
    ).fetchall()
    assert [m[0] for m in members] == gateway
    # One ticket, the fleet's, at L3; no device incident, guide or ticket for any plug.
    tickets = db.execute("SELECT ticket_id, kind, tier, fault, symptom FROM tickets").fetchall()
    assert tickets == [(ticket_id, "fleet", "L3", OUTAGE, reason)]
    assert count(db, "SELECT count(*) FROM incidents") == 0
    assert count(db, "SELECT count(*) FROM notifications WHERE audience = 'owner'") == 0
    assert w.receiver.wait_for(1, path="/staff/support-l3")
    # The API shows it, with the devices still silent; they are faulty while its ticket is open.
    shown = api_client.get("/api/v1/fleet/incidents", headers=v).json()
    assert [(f["fault"], f["model"], f["reason"], f["silent"]) for f in shown] == [
        (OUTAGE, None, reason, gateway)
    ]
    faulty = api_client.get("/api/v1/devices?health=faulty&limit=50", headers=v).json()
    assert sorted(d["device_id"] for d in faulty["items"]) == gateway

    p.run(3, [*gateway, *others])  # the gateway is back
    assert db.execute(
        "SELECT closed_at IS NOT NULL FROM fleet_incidents WHERE fleet_incident_id = %s",
        (fleet_id,),
    ).fetchone() == (True,)
    assert count(db, "SELECT count(*) FROM fleet_incident_devices WHERE left_at IS NULL") == 0
    assert (
        count(
            db,
            "SELECT count(*) FROM ticket_events WHERE ticket_id = %s "
            "AND kind = 'recovery_suggested'",
            ticket_id,
        )
        == 1
    )
    assert count(db, "SELECT count(*) FROM incidents") == 0


def test_one_device_silent_alone_is_its_own_incident(world: World) -> None:
    w, db = world, world.db
    locks = register(w, (f"lock-{i}" for i in range(10)))
    p = Pipeline(w, set(locks))
    p.run(36, locks)
    p.run(18, locks[1:])  # lock-0 falls silent; its silence waits 30 minutes for others
    assert count(db, "SELECT count(*) FROM predictions WHERE fault = %s", OUTAGE) == 0
    assert count(db, "SELECT count(*) FROM fleet_incidents") == 0
    rows = db.execute("SELECT device_id, fault FROM incidents").fetchall()
    assert rows == [("lock-0", "connectivity_loss")]


def test_sharing_scorers_make_one_outage_of_their_slices(world: World) -> None:
    """Two scorers each hold some of the devices: one sees six of them fall silent (an outage
    by its own count), the other two (under its bar, so it says each device's silence
    after the wait). The responder makes one fleet incident of all eight."""
    w, db = world, world.db
    first = register(w, (f"lock-{i}" for i in range(10)))
    second = register(w, (f"cam-{i}" for i in range(6)), model="cam-c2", kind="camera")
    down = {*first[:6], *second[:2]}
    p = Pipeline(w, set(first), set(second))
    p.run(36, [*first, *second])
    p.run(18, [d for d in (*first, *second) if d not in down])
    assert count(db, "SELECT count(*) FROM predictions WHERE fault = %s", OUTAGE) == 6
    assert count(db, "SELECT count(*) FROM predictions WHERE fault = 'connectivity_loss'") == 2
    assert count(db, "SELECT count(*) FROM fleet_incidents") == 1
    silent = db.execute(
        "SELECT device_id FROM fleet_incident_devices WHERE left_at IS NULL"
    ).fetchall()
    assert {s[0] for s in silent} == down
    row = db.execute("SELECT devices, reason FROM fleet_incidents").fetchone()
    assert row is not None
    devices, reason = row
    assert devices == 8 and reason.startswith("8 devices stopped reporting together")
    # Locks and cameras of several owners: only their owners' time zone is common.
    assert reason.endswith("not each device. All their owners are in the time zone Europe/Berlin.")
    assert count(db, "SELECT count(*) FROM incidents") == 0
    assert count(db, "SELECT count(*) FROM tickets") == 1


def test_a_backlog_reaching_one_device_late_is_no_silence(world: World) -> None:
    """After a stall, the backlog of nine devices is stored before lock-0's (its connection
    caught up a few seconds later): for one sweep lock-0 looks silent by the fleet's clock
    and by the wall's. It spoke before its silence was said, so none is."""
    w, db = world, world.db
    locks = register(w, (f"lock-{i}" for i in range(10)))
    p = Pipeline(w, set(locks))
    p.run(36, locks)
    burst = [p.at + STEP * k for k in range(1, 9)]  # the next 40 minutes
    p.deliver([(d, at) for at in burst for d in locks[1:]], wall_s=120.0)
    p.deliver([("lock-0", at) for at in burst], wall_s=5.0)
    p.at = burst[-1]
    p.run(12, locks)
    assert count(db, "SELECT count(*) FROM predictions") == 0
    assert count(db, "SELECT count(*) FROM incidents") == 0
