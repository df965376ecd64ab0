"""A first model for a fresh database: simulate a training history, store it, train on it.

``forewarn demo`` calls this when no model version is active, so predictions appear on a
machine that has never trained. The history is an ordinary simulated fleet written through
the ingester's write path (``ingest.direct.DirectWriter``), with its own device numbers and
a past time span, so it never mixes with the live fleet; ``forewarn train`` later learns from
it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from forewarn.db import connect
from forewarn.settings import Settings
from ingest.direct import DirectWriter
from models import repository
from models.flows import Say, TrainResult, train
from simulators.flows import SimProgress, run_simulation

HISTORY_SEED = 1001
HISTORY_NUMBER_FROM = 900_001


@dataclass(frozen=True, slots=True)
class HistorySize:
    """How much history the first model learns from, and the fleet it is evaluated on."""

    devices: int = 300
    days: float = 3.0
    fault_rate: float = 0.3
    evaluation_devices: int = 300
    evaluation_days: float = 2.0


def ensure_model(settings: Settings, *, say: Say, size: HistorySize | None = None) -> int | None:
    """The active version, training one on a simulated history first if there is none."""
    size = size or HistorySize()
    with connect(settings) as conn:
        number = repository.active_number(conn)
    if number is not None:
        return number
    start = (datetime.now(UTC) - timedelta(days=size.days + 3)).replace(microsecond=0)
    say(
        f"no trained model yet: simulating {size.devices} devices over {size.days:g} days of "
        f"history (seed {HISTORY_SEED}) to learn from"
    )
    last = [0.0]

    def progress(p: SimProgress) -> None:
        share = (p.sim_time - start) / timedelta(days=size.days)
        if share - last[0] >= 0.25:
            say(f"  history {share:.0%} ({p.readings} readings)")
            last[0] = share

    run_simulation(
        settings,
        devices=size.devices,
        seed=HISTORY_SEED,
        speedup=0,
        duration=None,
        start=start,
        sim_span=timedelta(days=size.days),
        fault_rate=size.fault_rate,
        sink=DirectWriter(settings),
        on_progress=progress,
        number_from=HISTORY_NUMBER_FROM,
    )
    result: TrainResult = train(
        settings,
        evaluation={"devices": size.evaluation_devices, "days": size.evaluation_days},
        note="first model, trained by the demo on a simulated history",
        say=say,
    )
    return result.version
