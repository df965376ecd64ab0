"""``forewarn calibrate``: the detectors' thresholds from the fleet's own stored telemetry.

No labels are needed. Every device's stored history is run through its detectors (judged, then
learned, reading by reading, as live); for each fault the threshold is the lowest score, never
below the detector's own bar of 0.5, at which the history raises at most the false-alarm budget
(``FOREWARN_FALSE_ALARM_BUDGET``, alerts per 1,000 device-days). An alert is counted as people
see it (``models.evaluation.alert_starts``: a flapping score is one alert). Devices with fault
labels in the window, if there are any, are left out: their alerts are not false.

Whatever else the history holds counts against the budget, so calibrate on a stretch that was
mostly healthy; silence is not calibrated here (it is judged by a sweep, not per reading).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from forewarn.db import connect
from forewarn.errors import ConfigError
from forewarn.settings import Settings
from models import detector_repository as detector_repo
from models import repository, telemetry
from models.detect import DEFAULT_THRESHOLD, FAULTS, Profile, Watch, observations, profiles
from models.detector_repository import Calibration
from models.detectors.base import Observation
from models.evaluation import alert_starts

# Thresholds tried, from the detectors' own bar up: evenly spaced in evidence (score s means
# evidence s / (1 - s)), since that is where alerts thin out.
CANDIDATES = tuple(round(e / (1 + e), 4) for e in np.geomspace(1.0, 200.0, 40))
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DeviceScores:
    """One device's score per fault at each reading, and its span in days."""

    times: npt.NDArray[np.float64]
    scores: dict[str, npt.NDArray[np.float64]]
    days: float


def device_scores(watch: Watch, xs: Sequence[Observation]) -> DeviceScores:
    """Run one device's history through its detectors."""
    per: dict[str, list[float]] = {f: [] for f in FAULTS}
    for x in xs:
        for fault, v in watch.score_one(x).items():
            per[fault].append(v.score)
        watch.learn_one(x)
    times = np.array([x.ts for x in xs], dtype=np.float64)
    days = float(times[-1] - times[0]) / 86400.0 if len(times) else 0.0
    return DeviceScores(times, {f: np.array(v) for f, v in per.items()}, days)


def choose(histories: Sequence[DeviceScores], budget: float) -> list[Calibration]:
    """Per fault, the lowest candidate threshold whose alert rate is within `budget`."""
    days = sum(h.days for h in histories)
    if days <= 0:
        raise ConfigError("the stored history spans no time: nothing to calibrate on")
    out: list[Calibration] = []
    for fault in FAULTS:
        chosen, rate = CANDIDATES[-1], 0.0
        for cut in CANDIDATES:
            alerts = sum(len(alert_starts(h.times, h.scores[fault] >= cut)) for h in histories)
            rate = 1000.0 * alerts / days
            if rate <= budget:
                chosen = cut
                break
        out.append(Calibration(fault, max(chosen, DEFAULT_THRESHOLD), round(rate, 3), days, budget))
    return out


def calibrate(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    save: bool = True,
    say: Say = print,
) -> list[Calibration]:
    """Set (or, without `save`, only work out) the detectors' thresholds from stored history."""
    by_model = profiles(settings.battery_chemistry, settings.temperature_limits)
    histories: list[DeviceScores] = []
    with connect(settings) as conn:
        span = repository.telemetry_span(conn)
        if span is None:
            raise ConfigError("no telemetry stored yet: nothing to calibrate on")
        since = since or span[0]
        until = until or span[1] + timedelta(seconds=1)
        labelled = {
            e.device_id for e in repository.load_labels(conn, since=since, until=until).episodes
        }
        models = repository.device_models(conn)
        devices = detector_repo.devices_reporting(conn, since=since, until=until)
        say(
            f"running the detectors over {len(devices)} devices' readings "
            f"{since:%Y-%m-%d %H:%M} → {until:%Y-%m-%d %H:%M} UTC"
            + (f" ({len(labelled)} with fault labels left out)" if labelled else "")
        )
        for n, device_id in enumerate(devices, start=1):
            if device_id in labelled:
                continue
            rows = [
                r
                for r in telemetry.device_readings(conn, device_id=device_id, since=since)
                if r.ts < until
            ]
            watch = Watch.of(by_model.get(models.get(device_id, ""), Profile()))
            histories.append(device_scores(watch, list(observations(rows))))
            if n % 200 == 0:
                say(f"  {n} devices")
        conn.commit()
        found = choose(histories, settings.false_alarm_budget)
        if save:
            with conn.transaction():
                detector_repo.save(conn, calibrations=found)
    return found
