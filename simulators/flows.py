"""Running a simulation: generate the fleet, register the truth, publish in simulated time."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

import psycopg

from forewarn.errors import ConfigError, StorageError
from forewarn.settings import Settings
from simulators.engine import DeviceRecord, FleetEngine, MessageKind, Outgoing
from simulators.fleet import FaultEpisode, FaultKind, Fleet, generate_fleet
from simulators.owners import GuideHabits, GuideRead
from simulators.publisher import MessageSink, MqttPublisher
from simulators.repository import register_fleet

DEFAULT_SPAN = timedelta(days=2)
# In fast mode the engine is stepped in slices this long: big enough to amortise the loop,
# small enough that progress reports and `stop` stay responsive.
_FAST_SLICE = timedelta(minutes=10)
# In real-time mode the loop wakes at least this often (wall seconds) to honour `stop`.
_TICK_S = 0.25


@dataclass(frozen=True, slots=True)
class SimProgress:
    """Where a running simulation is, reported to `on_progress`."""

    sim_time: datetime
    messages: int
    readings: int
    status_messages: int
    wall_seconds: float


@dataclass(frozen=True, slots=True)
class SimSummary:
    """What a finished simulation published, and the truth it was built on."""

    run_id: str
    devices: int
    messages: int
    readings: int
    status_messages: int
    sim_start: datetime
    sim_end: datetime
    faults_by_kind: Mapping[FaultKind, int]
    episodes: tuple[FaultEpisode, ...]
    # Faults owners fixed after reading their guide: (device, fault, when).
    owner_fixes: tuple[tuple[str, str, datetime], ...] = ()


def run_id_for(*, seed: int, start: datetime) -> str:
    """A stable id for a run: same seed and start, same id (labels dedupe on it)."""
    return f"sim-{seed}-{start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def build_fleet(
    *,
    devices: int,
    seed: int,
    start: datetime | None,
    span: timedelta,
    fault_rate: float,
    number_from: int = 1,
) -> Fleet:
    """The fleet `run_simulation` uses for these arguments (tests rebuild it to compare)."""
    if start is None:
        # Two days back by default, so the generated history lands near the present.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    return generate_fleet(
        devices=devices,
        seed=seed,
        start=start,
        span=span,
        fault_rate=fault_rate,
        number_from=number_from,
    )


def run_simulation(
    settings: Settings,
    *,
    devices: int,
    seed: int,
    speedup: float,
    duration: float | None,
    start: datetime | None = None,
    sim_span: timedelta | None = None,
    fault_rate: float = 0.15,
    register: bool = True,
    truth_path: Path | None = None,
    on_progress: Callable[[SimProgress], None] | None = None,
    stop: threading.Event | None = None,
    sink: MessageSink | None = None,
    number_from: int = 1,
    not_after: Callable[[], datetime] | None = None,
    guides_read: Callable[[], Iterable[GuideRead]] | None = None,
    habits: GuideHabits | None = None,
) -> SimSummary:
    """Simulate `devices` devices and publish them; speedup <= 0 runs as fast as possible.

    `speedup` is simulated seconds per wall second. `duration` caps the wall time (None: until
    `stop` is set, or in fast mode until `sim_span` is generated). `sink` replaces the MQTT
    publisher (``ingest.direct.DirectWriter`` writes straight to the database; tests pass a
    fake). `number_from` is the first device and owner number. `guides_read`, called every
    step, says which owners just got a fault guide; some of them fix the fault (`habits`).
    `not_after` caps simulated time (real-time mode): given the wall clock, a fast replay of
    the past catches up with the present and then runs live, never publishing readings
    stamped in the future, which a real ingester refuses.
    """
    fast = speedup <= 0
    if not fast and duration is None and stop is None:
        raise ConfigError("a real-time simulation needs a duration or a stop event")
    if sim_span is None:
        sim_span = timedelta(seconds=duration * speedup) if duration and not fast else DEFAULT_SPAN
    fleet = build_fleet(
        devices=devices,
        seed=seed,
        start=start,
        span=sim_span,
        fault_rate=fault_rate,
        number_from=number_from,
    )
    run_id = run_id_for(seed=seed, start=fleet.start)
    if register and settings.database_url:
        _register(settings.database_url, fleet, run_id)
    if truth_path is not None:
        _write_truth(truth_path, fleet, run_id)
    engine = FleetEngine(fleet)
    out = sink if sink is not None else MqttPublisher(settings)
    counts: Counter[MessageKind] = Counter()
    wall0 = time.monotonic()
    fixes: list[tuple[str, str, datetime]] = []

    def owners_act() -> None:
        for read in guides_read() if guides_read is not None else ():
            fixed_at = engine.owner_read_guide(read, habits or GuideHabits())
            if fixed_at is not None:
                fixes.append((read.device_id, read.fault, fixed_at))

    def send(messages: list[Outgoing]) -> None:
        for m in messages:
            out.publish(f"{settings.topic_prefix}/{m.topic_suffix}", m.payload, retain=m.retain)
            counts[m.kind] += 1

    def report() -> None:
        if on_progress is not None:
            on_progress(
                SimProgress(
                    sim_time=engine.now,
                    messages=counts.total(),
                    readings=counts[MessageKind.TELEMETRY],
                    status_messages=counts[MessageKind.STATUS],
                    wall_seconds=time.monotonic() - wall0,
                )
            )

    def stopped() -> bool:
        over = duration is not None and time.monotonic() - wall0 >= duration
        return over or (stop is not None and stop.is_set())

    end = fleet.start + sim_span
    try:
        if fast:
            while engine.now < end and not stopped():
                owners_act()
                send(engine.step_until(min(engine.now + _FAST_SLICE, end)))
                report()
        else:
            while not stopped():
                owners_act()
                target = fleet.start + timedelta(seconds=(time.monotonic() - wall0) * speedup)
                if not_after is not None:
                    target = min(target, not_after())
                send(engine.step_until(target))
                report()
                due = engine.next_event_at()
                wait = _TICK_S if due is None else (due - target).total_seconds() / speedup
                pause = min(max(wait, 0.0), _TICK_S)
                if stop is not None:
                    stop.wait(pause)
                else:
                    time.sleep(pause)
            if duration is not None and (stop is None or not stop.is_set()):
                # End exactly at start + duration * speedup, whatever the last tick saw.
                final = fleet.start + timedelta(seconds=duration * speedup)
                if not_after is not None:
                    final = min(final, not_after())
                send(engine.step_until(final))
    except BaseException:
        # Already failing: close quietly so a flush timeout cannot mask the real error.
        with contextlib.suppress(Exception):
            out.close()
        raise
    out.close()
    report()
    if truth_path is not None:
        _append_emitted(truth_path, engine.records())
    return SimSummary(
        run_id=run_id,
        devices=len(fleet.devices),
        messages=counts.total(),
        readings=counts[MessageKind.TELEMETRY],
        status_messages=counts[MessageKind.STATUS],
        sim_start=fleet.start,
        sim_end=engine.now,
        faults_by_kind=dict(Counter(e.fault for e in fleet.episodes)),
        episodes=fleet.episodes,
        owner_fixes=tuple(fixes),
    )


def _register(database_url: str, fleet: Fleet, run_id: str) -> None:
    try:
        # One transaction: the fleet and its truth appear together, or not at all.
        with psycopg.connect(database_url) as conn, conn.transaction():
            register_fleet(conn=conn, fleet=fleet, run_id=run_id)
    except psycopg.Error as exc:
        raise StorageError(f"registering the simulated fleet failed: {exc}") from exc


def _write_truth(path: Path, fleet: Fleet, run_id: str) -> None:
    """Owners, devices and fault episodes as JSON lines, one record per line."""
    lines: list[dict[str, Any]] = [
        {
            "record": "run",
            "run_id": run_id,
            "seed": fleet.seed,
            "start": fleet.start,
            "span_s": fleet.span.total_seconds(),
        },
        *({"record": "owner", **_plain(o)} for o in fleet.owners),
        *({"record": "device", **_plain(d)} for d in fleet.devices),
        *({"record": "fault", "run_id": run_id, **_plain(e)} for e in fleet.episodes),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, default=_json_default, ensure_ascii=False) + "\n")


def _append_emitted(path: Path, records: Mapping[str, DeviceRecord]) -> None:
    """What each device really emitted, so a reader can line it up with the faults."""
    with path.open("a", encoding="utf-8") as fh:
        for record in records.values():
            line = {"record": "emitted", **_plain(record)}
            fh.write(json.dumps(line, default=_json_default) + "\n")


def _plain(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__ if name[0] != "_"}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | time_of_day):
        return value.isoformat()
    return str(value)
