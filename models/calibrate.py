"""``forewarn calibrate``: the detectors' thresholds from the fleet's own stored telemetry.

No labels are needed. Every device's stored history is run through its detectors (judged, then
learned, reading by reading, as live); for each fault the threshold is the lowest score, never
below the detector's own bar of 0.5, at which the history raises at most the false-alarm budget
(``FOREWARN_FALSE_ALARM_BUDGET``, alerts per 1,000 device-days). An alert is counted as people
see it (``models.evaluation.alert_starts``: a flapping score is one alert). Certain verdicts
(``CERTAIN``: a reading the quantity cannot physically take) alert at any threshold and are not
counted: no threshold could keep them within the budget, and muting them is not wanted. Devices
with fault labels in the window, if there are any, are left out: their alerts are not false.

Silence gets a threshold of its own within the same budget. It is judged by a sweep over the
fleet's clock, not per reading, so its score at a reading is the evidence the device had reached
just before that reading came: the gap the reading ended, over the quiet its cadence allowed
before learning it, as far as the sweep looks (``models.detect.ACTIVE_S``). Silences that many
devices reach together would have been one fleet incident, not device alerts, and are not
counted. A device's quiet after its last stored reading is not counted either.

Whatever else the history holds counts against the budget, so calibrate on a stretch that was
mostly healthy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from forewarn.db import connect
from forewarn.errors import ConfigError
from forewarn.settings import Settings
from models import detector_repository as detector_repo
from models import repository, telemetry
from models.detect import (
    ACTIVE_S,
    DEFAULT_THRESHOLD,
    FLEET_MIN_DEVICES,
    FLEET_MIN_SHARE,
    FLEET_WINDOW_S,
    SILENCE,
    THRESHOLD_KEYS,
    Profile,
    Watch,
    observations,
    profiles,
)
from models.detector_repository import Calibration
from models.detectors.base import CERTAIN, Observation
from models.evaluation import alert_starts

# Thresholds tried, from the detectors' own bar up: evenly spaced in evidence (score s means
# evidence s / (1 - s)), since that is where alerts thin out.
CANDIDATES = tuple(round(e / (1 + e), 4) for e in np.geomspace(1.0, 200.0, 40))
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DeviceScores:
    """One device's score per fault and its silence score at each reading, its span in days,
    and the quiet its cadence allowed before each reading (seconds; NaN: too early to tell)."""

    times: npt.NDArray[np.float64]
    scores: dict[str, npt.NDArray[np.float64]]
    days: float
    allowed: npt.NDArray[np.float64] | None = None  # None: silences called at the reading


def device_scores(watch: Watch, xs: Sequence[Observation]) -> DeviceScores:
    """Run one device's history through its detectors."""
    per: dict[str, list[float]] = {f: [] for f in THRESHOLD_KEYS}
    allowed: list[float] = []
    quiet = watch.silence
    for x in xs:
        for fault, v in watch.score_one(x).items():
            per[fault].append(v.score)
        # The sweep stops looking at a device quiet for ACTIVE_S: that is the most it could see.
        seen = min(x.ts, quiet.last_ts + ACTIVE_S) if not math.isnan(quiet.last_ts) else x.ts
        per[SILENCE].append(quiet.score_at(seen).score)
        allowed.append(quiet.allowed() if quiet.gaps >= 5 else math.nan)
        watch.learn_one(x)
    times = np.array([x.ts for x in xs], dtype=np.float64)
    days = float(times[-1] - times[0]) / 86400.0 if len(times) else 0.0
    return DeviceScores(
        times, {f: np.array(v) for f, v in per.items()}, days, np.array(allowed, dtype=np.float64)
    )


def series_calibration(
    series: Mapping[str, Sequence[Observation]], profile: Profile, budget: float
) -> list[Calibration]:
    """Thresholds for devices of one profile from their readings alone (a backtest's file, a
    development part): what ``calibrate`` does on a database."""
    return choose([device_scores(Watch.of(profile), xs) for xs in series.values() if xs], budget)


def silence_alerts(histories: Sequence[DeviceScores], cut: float) -> int:
    """Device silences the sweep would have told at threshold `cut`, counted as people see
    them; silences many devices reached within ``FLEET_WINDOW_S`` (an outage) are left out."""
    need = max(FLEET_MIN_DEVICES, FLEET_MIN_SHARE * len(histories))
    evidence = cut / (1.0 - cut)
    hits: list[npt.NDArray[np.int64]] = []
    calls: list[npt.NDArray[np.float64]] = []
    for h in histories:
        s = h.scores[SILENCE]
        idx = np.flatnonzero((s >= cut) & (s < CERTAIN))
        idx = idx[idx > 0]
        hits.append(idx)
        if h.allowed is None:
            calls.append(h.times[idx])
        else:  # called when the quiet reached `evidence` times what was allowed
            calls.append(h.times[idx - 1] + h.allowed[idx] * evidence)
    every = np.concatenate(calls) if calls else np.empty(0)
    order = np.argsort(every, kind="stable")
    at = every[order]
    ends = np.searchsorted(at, at + FLEET_WINDOW_S, side="right")
    crowd = np.zeros(len(at) + 1, dtype=np.int64)
    for j in np.flatnonzero(ends - np.arange(len(at)) >= need):
        crowd[j] += 1
        crowd[ends[j]] -= 1
    grouped = np.empty(len(at), dtype=bool)
    grouped[order] = np.cumsum(crowd[:-1]) > 0
    alerts, k = 0, 0
    for h, idx in zip(histories, hits, strict=True):
        mask = np.zeros(len(h.times), dtype=bool)
        mask[idx[~grouped[k : k + len(idx)]]] = True
        k += len(idx)
        alerts += len(alert_starts(h.times, mask))
    return alerts


def choose(histories: Sequence[DeviceScores], budget: float) -> list[Calibration]:
    """Per fault and for silence, the lowest candidate threshold whose alert rate is within
    `budget`."""
    days = sum(h.days for h in histories)
    if days <= 0:
        raise ConfigError("the stored history spans no time: nothing to calibrate on")
    out: list[Calibration] = []
    for key in THRESHOLD_KEYS:
        chosen, rate = CANDIDATES[-1], 0.0
        for cut in CANDIDATES:
            if key == SILENCE:
                alerts = silence_alerts(histories, cut)
            else:  # certain verdicts alert at any threshold: no cut can budget them
                alerts = sum(
                    len(alert_starts(h.times, (h.scores[key] >= cut) & (h.scores[key] < CERTAIN)))
                    for h in histories
                )
            rate = 1000.0 * alerts / days
            if rate <= budget:
                chosen = cut
                break
        out.append(Calibration(key, max(chosen, DEFAULT_THRESHOLD), round(rate, 3), days, budget))
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
