"""Feature sets straight from the simulator, in process: what ``forewarn evaluate`` scores.

The messages go through the ingester's own parser (``ingest.router.route``), so the readings
are exactly what the ingester would store; only the broker and the database are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from forewarn.domain import Reading
from forewarn.settings import Settings
from ingest.router import adapters_from, route
from models.base import FeatureSet
from models.buckets import Sample, series_buckets
from models.features import FEATURES, device_rows
from models.labels import Episode
from simulators.engine import FleetEngine
from simulators.fleet import Fleet, generate_fleet

# A fixed start keeps an evaluation fleet the same whenever it is run.
EVALUATION_START = datetime(2026, 1, 5, tzinfo=UTC)
_SLICE = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Dataset:
    """Feature rows with the fault episodes behind them."""

    data: FeatureSet
    episodes: list[Episode]
    # Each device's readings in time order and its model: what the label-free detectors read.
    series: dict[str, list[Sample]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)


def features_of(series: dict[str, list[Sample]], models: dict[str, str]) -> FeatureSet:
    """Feature rows of several devices' time-ordered samples."""
    parts = [
        device_rows(device_id, models.get(device_id, "unknown"), *series_buckets(samples))
        for device_id, samples in series.items()
    ]
    return FeatureSet.concat(parts, len(FEATURES))


def simulate(
    *,
    devices: int,
    seed: int,
    days: float,
    fault_rate: float,
    start: datetime = EVALUATION_START,
    on_progress: Callable[[float], None] | None = None,
    outages_per_day: float = 0.0,
) -> Dataset:
    """Simulate a fleet for `days` and return its feature rows and fault episodes (network
    outages, `outages_per_day` of them, cut off a time zone's devices for a while)."""
    fleet: Fleet = generate_fleet(
        devices=devices,
        seed=seed,
        start=start,
        span=timedelta(days=days),
        fault_rate=fault_rate,
        outages_per_day=outages_per_day,
    )
    engine = FleetEngine(fleet)
    adapters = adapters_from(Settings(database_url=None, mqtt_url=None))
    series: dict[str, list[Sample]] = {d.device_id: [] for d in fleet.devices}
    end = fleet.start + fleet.span
    while engine.now < end:
        for m in engine.step_until(min(engine.now + _SLICE, end)):
            parsed = route(
                adapters, f"forewarn/v1/{m.topic_suffix}", m.payload, received_at=m.sim_ts
            )
            if isinstance(parsed, Reading):
                series[parsed.device_id].append(Sample.of(parsed))
        if on_progress is not None:
            on_progress((engine.now - fleet.start) / fleet.span)
    models = {d.device_id: d.model for d in fleet.devices}
    episodes = [
        Episode(e.device_id, e.fault, e.onset_at.timestamp(), e.failure_at.timestamp())
        for e in fleet.episodes
    ]
    return Dataset(features_of(series, models), episodes, series, models)
