"""``forewarn calibrate``: detector thresholds from a fleet's own stored telemetry, no labels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from typer.testing import CliRunner

from cli.main import app
from forewarn.settings import Settings
from ingest.direct import DirectWriter
from models import detector_repository as detector_repo
from models.calibrate import (
    CANDIDATES,
    DeviceScores,
    calibrate,
    choose,
    device_scores,
    silence_alerts,
)
from models.detect import (
    DEFAULT_THRESHOLD,
    FAULTS,
    SILENCE,
    THRESHOLD_KEYS,
    Profile,
    Watch,
)
from models.detector_eval import replay
from models.detectors.base import Observation
from models.live import Live
from simulators.flows import run_simulation
from tests.conftest import env_for


def flat(days: float, alerts_at: list[float], score: float) -> DeviceScores:
    """A device reporting every 5 minutes for `days`, with one-reading alerts at the hours
    given, of `score`, for every fault."""
    times = np.arange(0.0, days * 86400.0, 300.0)
    s = np.zeros(len(times))
    for h in alerts_at:
        s[int(h * 12)] = score
    return DeviceScores(times, dict.fromkeys(THRESHOLD_KEYS, s), days)


T0 = 1_700_000_000.0


def reporting(days: float, gaps: dict[float, float], every: float = 300.0) -> list[Observation]:
    """A device reporting every `every` seconds for `days`, quiet for gaps[h] hours from hour
    h on."""
    xs, t, end = [], T0, T0 + days * 86400.0
    while t < end:
        xs.append(Observation(ts=t, temp=21.0))
        t += every
        for h, hours in gaps.items():
            if T0 + h * 3600.0 <= t < T0 + h * 3600.0 + every:
                t += hours * 3600.0
    return xs


def test_the_threshold_is_the_lowest_within_the_budget() -> None:
    # 100 devices x 10 days = 1,000 device-days; 3 alerts of 0.6 and 1 of 0.95.
    quiet = [flat(10.0, [], 0.0) for _ in range(96)]
    noisy = [flat(10.0, [5.0], 0.6) for _ in range(3)] + [flat(10.0, [5.0], 0.95)]
    found = {c.fault: c for c in choose(quiet + noisy, budget=1.0)}
    c = found["battery_failure"]
    assert c.device_days == 1000.0
    assert 0.6 < c.threshold <= 0.95 and c.alerts_per_1000_device_days == 1.0
    relaxed = {x.fault: x for x in choose(quiet + noisy, budget=5.0)}
    assert relaxed["battery_failure"].threshold == DEFAULT_THRESHOLD  # never below its bar
    strict = {x.fault: x for x in choose(quiet + noisy, budget=0.5)}
    assert strict["battery_failure"].threshold > 0.95 or strict["battery_failure"].threshold == max(
        CANDIDATES
    )


def test_certain_verdicts_are_not_budgeted() -> None:
    # 100 device-days; three readings the sensor cannot physically give (score 1) alert at any
    # threshold, so they leave every fault at its own bar instead of pushing it to the top.
    found = choose([flat(10.0, [5.0], 1.0) for _ in range(3)] + [flat(10.0, [], 0.0)] * 7, 1.0)
    assert {c.threshold for c in found} == {DEFAULT_THRESHOLD}


def test_silence_is_calibrated_to_what_the_sweep_would_tell() -> None:
    # 20 devices x 5 days reporting every 10 minutes; three of them go quiet once for 6 hours
    # (six times the hour their cadence allows: evidence 6.2, score 0.86), at different times.
    series = {f"d{n:03}": reporting(5.0, {}, every=600.0) for n in range(17)}
    series |= {f"q{n}": reporting(5.0, {30.0 + 30 * n: 6.0}, every=600.0) for n in range(3)}
    histories = [device_scores(Watch.of(Profile()), xs) for xs in series.values()]
    assert 0.8 < histories[-1].scores[SILENCE].max() < 0.9
    assert silence_alerts(histories, DEFAULT_THRESHOLD) == 3
    # About 100 device-days: a budget of 10 per 1,000 allows none of the three.
    found = {c.fault: c for c in choose(histories, budget=10.0)}
    assert set(found) == set(THRESHOLD_KEYS)
    cut = found[SILENCE].threshold
    assert 0.86 < cut < 0.95 and found[SILENCE].alerts_per_1000_device_days == 0.0
    # The live sweep, driven with that threshold, tells none of the three; at its own bar, all.
    models = dict.fromkeys(series, "m")
    at_bar = replay(series, models, {"m": Profile()}, {})
    assert sorted(a.device_id for a in at_bar.silences) == ["q0", "q1", "q2"]
    # Silence's threshold is its own: the link detector's does not move it.
    link = replay(series, models, {"m": Profile()}, {"connectivity_loss": 0.99})
    assert len(link.silences) == 3
    calibrated = replay(series, models, {"m": Profile()}, {SILENCE: cut})
    assert calibrated.silences == [] and calibrated.thresholds[SILENCE] == cut


def test_silences_many_devices_reach_together_are_not_device_alerts() -> None:
    # Six devices quiet for 6 hours at the same moment: one fleet outage, no device alert.
    series = {f"d{n:02}": reporting(4.0, {50.0: 6.0}, every=600.0) for n in range(6)}
    histories = [device_scores(Watch.of(Profile()), xs) for xs in series.values()]
    assert silence_alerts(histories, DEFAULT_THRESHOLD) == 0
    assert {c.fault: c for c in choose(histories, 1.0)}[SILENCE].threshold == DEFAULT_THRESHOLD
    run = replay(series, dict.fromkeys(series, "m"), {"m": Profile()}, {})
    assert run.silences == [] and len(run.outages) == 1
    # The same gaps a day apart each are device alerts.
    apart = [
        device_scores(Watch.of(Profile()), reporting(7.0, {20.0 + 24 * n: 6.0}, every=600.0))
        for n in range(6)
    ]
    assert silence_alerts(apart, DEFAULT_THRESHOLD) == 6


def test_calibrate_stores_thresholds_from_stored_telemetry(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    run_simulation(
        settings,
        devices=40,
        seed=31,
        speedup=0,
        duration=None,
        start=start,
        sim_span=timedelta(days=2),
        fault_rate=0.0,
        sink=DirectWriter(settings),
        number_from=700_001,
    )
    found = calibrate(settings, save=True, say=lambda _m: None)
    assert {c.fault for c in found} == set(FAULTS) | {SILENCE}
    assert all(DEFAULT_THRESHOLD <= c.threshold <= 1.0 for c in found)
    assert all(c.device_days > 60 for c in found)  # 40 devices over about 2 days
    stored = detector_repo.thresholds(db)
    assert stored == {c.fault: c.threshold for c in found}
    # The live scorer's detectors read them, silence's with the others.
    db.execute("UPDATE detector_thresholds SET threshold = 0.9 WHERE fault = %s", (SILENCE,))
    db.commit()
    live = Live(settings)
    live.refresh(db)
    assert live.fleet.thresholds == {c.fault: c.threshold for c in found} | {SILENCE: 0.9}
    # The command shows them; --dry-run leaves the stored ones alone.
    db.execute("UPDATE detector_thresholds SET threshold = 0.99")
    db.commit()
    result = CliRunner().invoke(
        app, ["calibrate", "--dry-run"], env=env_for(settings) | {"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "detector thresholds" in result.output and "not stored" in result.output
    assert set(detector_repo.thresholds(db).values()) == {0.99}


def test_evaluate_reports_the_detectors_with_no_model(settings: Settings) -> None:
    result = CliRunner().invoke(
        app,
        ["evaluate", "--seed", "41", "--devices", "30", "--days", "1", "--json"],
        env=env_for(settings),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model_version"] is None and report["faults"] == {}
    assert set(report["detectors"]) == set(FAULTS)
    assert report["fleet"]["outages_per_day"] == 0.5
    assert all(0.0 <= q["precision"] <= 1.0 for q in report["detectors"].values())
