"""``forewarn backtest``: reading a user's CSV, causal scores, the learning phase, the command."""

from __future__ import annotations

import csv
import doctest
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
from typer.testing import CliRunner

from cli.main import app
from forewarn.domain import FaultKind, Reading
from forewarn.errors import ConfigError, ValidationError
from forewarn.settings import Settings
from ingest.router import adapters_from, route
from models import robust
from models.backtest import LEARNING, SCORING, BacktestOptions, Scores, backtest, score_table
from models.bundle import ModelBundle, learn_bundle
from models.csvfile import Columns, Table, parse_time, read_table
from models.robust import RobustZScore
from models.simulated import EVALUATION_START, simulate
from simulators.engine import FleetEngine
from simulators.fleet import FaultEpisode, generate_fleet

START = datetime(2025, 3, 1, tzinfo=UTC)
NO_DATABASE = {"FOREWARN_DATABASE_URL": ""}


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """A CSV file with this header and these rows."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV as dicts."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def temperatures(
    seed: int,
    *,
    days: float = 4.0,
    step_at_h: float | None = None,
    flat_from_h: float | None = None,
    gap_h: tuple[float, float] = (34.0, 40.0),
) -> list[tuple[datetime, float]]:
    """A noisy daily temperature cycle read every 1 to 10 minutes, with a 6-hour silence."""
    rng = random.Random(seed)
    t, rows, last = 0.0, [], 0.0
    while t < days * 24 * 3600:
        t += rng.uniform(60.0, 600.0)
        h = t / 3600
        if gap_h[0] <= h < gap_h[1]:
            continue
        v = 21.0 + 1.5 * math.sin(2 * math.pi * h / 24) + rng.gauss(0.0, 0.3)
        if step_at_h is not None and h >= step_at_h:
            v += 6.0
        if flat_from_h is not None and h >= flat_from_h:
            v = last
        last = round(v, 2)
        rows.append((START + timedelta(seconds=t), last))
    return rows


def single_metric(path: Path, rows: list[tuple[datetime, float]]) -> Table:
    """Write the rows as a time and temperature CSV and read it back."""
    return read_table(write_csv(path, ["time", "temp"], [(t.isoformat(), v) for t, v in rows]))


def alerts(table: Table, scores: Scores) -> list[int]:
    """Indexes of the rows whose anomaly score alerts."""
    return [i for i, alert in enumerate(scores.anomaly_alerts()) if alert]


# --- the anomaly scorer ---------------------------------------------------------------------


def test_scorer_follows_the_model_contract() -> None:
    rng = random.Random(5)
    rows = [{"a": rng.gauss(0, 1), "b": 100 + rng.gauss(0, 5)} for _ in range(300)]
    first, second = RobustZScore(), RobustZScore()
    scores: list[float] = []
    for i, x in enumerate(rows):
        s = first.score_one(x, t=i * 60.0)
        assert first.score_one(x, t=i * 60.0) == s, "scoring must not change the scorer"
        scores.append(s)
        first.learn_one(x, t=i * 60.0)
        second.learn_one(x, t=i * 60.0)  # never scored: same state as `first` regardless
    assert all(0.0 <= s <= 1.0 for s in scores)
    probe = {"a": 9.0, "b": 100.0}
    assert first.score_one(probe) == second.score_one(probe) >= 0.99
    assert first.explain_one(probe)[1].startswith("a 9 against a usual")
    assert first.score_one({"a": 0.1, "b": 101.0}) < 0.9
    assert first.score_one({"c": 1e9}) == 0.0, "a metric with no history says nothing"


def test_the_scorer_example_runs() -> None:
    assert doctest.testmod(robust).failed == 0


def test_a_counter_is_judged_on_its_steps_not_its_level() -> None:
    scorer = RobustZScore()
    for i in range(200):
        scorer.learn_one({"uptime": 1000.0 + 300.0 * i})
    assert scorer.score_one({"uptime": 1000.0 + 300.0 * 200}) < 0.5
    words = scorer.explain_one({"uptime": 40.0})
    assert words[0] >= 0.99 and "moved" in words[1], "a reset is a jump down"


# --- scoring a file -------------------------------------------------------------------------


def test_a_step_alerts_and_nothing_before_it_does(tmp_path: Path) -> None:
    table = single_metric(tmp_path / "t.csv", temperatures(3, step_at_h=84.0))
    progress: list[tuple[int, int]] = []
    scores = score_table(table, on_progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(table.rows), len(table.rows))
    step = next(
        i for i, r in enumerate(table.rows) if r.ts >= (START + timedelta(hours=84)).timestamp()
    )
    found = alerts(table, scores)
    assert found, "the step raised no alert"
    assert min(found) in range(step, step + 3), (found, step)
    assert "temp moved +" in scores.reasons[min(found)]
    # The 6-hour silence and the irregular sampling raised nothing on their own.
    after_gap = next(i for i, r in enumerate(table.rows) if r.ts >= START.timestamp() + 40 * 3600)
    assert scores.phases[after_gap] == SCORING and not scores.anomaly_alerts()[after_gap]


def test_a_flat_line_after_variation_alerts(tmp_path: Path) -> None:
    table = single_metric(tmp_path / "t.csv", temperatures(4, flat_from_h=80.0))
    scores = score_table(table)
    flat = next(
        i for i, r in enumerate(table.rows) if r.ts >= (START + timedelta(hours=80)).timestamp()
    )
    found = alerts(table, scores)
    assert found and min(found) in range(flat, flat + 10)
    assert "stuck at" in scores.reasons[min(found)]


def test_the_learning_phase_is_labelled_and_unscored(tmp_path: Path) -> None:
    table = single_metric(tmp_path / "t.csv", temperatures(1, days=2.0))
    scores = score_table(table)
    for row, phase, score in zip(table.rows, scores.phases, scores.anomaly, strict=True):
        assert phase == (LEARNING if row.ts - table.rows[0].ts < 24 * 3600 else SCORING)
        assert (score is None) == (phase == LEARNING)
    by_rows = score_table(table, BacktestOptions(learn_hours=0, learn_rows=30))
    assert by_rows.phases[:30] == [LEARNING] * 30 and by_rows.phases[30] == SCORING
    # Both bounds hold: 0 rows but 24 hours still learns for a day, and vice versa.
    assert score_table(table, BacktestOptions(learn_rows=0)).phases == scores.phases


def test_scores_depend_only_on_earlier_rows(tmp_path: Path) -> None:
    rng = random.Random(9)
    rows: list[tuple[datetime, str, float, float | str]] = []
    for device, base in (("d1", 20.0), ("d2", -60.0)):
        t = START
        for _ in range(600):
            t += timedelta(seconds=rng.uniform(100, 400))
            rows.append((t, device, round(base + rng.gauss(0, 1), 2), rng.random()))
    rng.shuffle(rows)  # the order of the file does not matter either
    header = ["ts", "device", "level", "other"]
    whole = read_table(write_csv(tmp_path / "whole.csv", header, rows))
    cut = START + timedelta(hours=30)
    # After the cut: values changed, an extra column emptied, rows dropped, one row added.
    changed = [
        (t, d, v * 5, "") if t > cut else (t, d, v, o)
        for t, d, v, o in rows
        if t <= cut or rng.random() < 0.8
    ]
    changed.append((cut + timedelta(hours=1), "d1", 1e6, 1e6))
    edited = read_table(write_csv(tmp_path / "edited.csv", header, changed))
    assert whole.reordered and whole.devices == 2
    options = BacktestOptions(learn_hours=12)
    a, b = score_table(whole, options), score_table(edited, options)
    early_a = {
        (r.device, r.ts): s
        for r, s in zip(whole.rows, a.anomaly, strict=True)
        if r.ts <= cut.timestamp()
    }
    early_b = {
        (r.device, r.ts): s
        for r, s in zip(edited.rows, b.anomaly, strict=True)
        if r.ts <= cut.timestamp()
    }
    assert early_a == early_b
    assert sum(s is not None for s in early_a.values()) > 300, "rows before the cut were scored"


def test_devices_are_scored_apart_and_duplicates_dropped(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "two.csv",
        ["when", "unit", "value"],
        [
            ["1735689600", "b", "1"],
            ["1735689600000", "a", "2"],  # milliseconds: the same moment as the row above
            ["2025-01-01T00:00:00", "a", "3"],  # naive ISO is UTC: the same again, dropped
            ["2025-01-01T01:00:00+01:00", "a", ""],  # the same again, with an offset
            ["2025-01-01T00:05:00Z", "a", "NA"],
        ],
    )
    table = read_table(path, Columns(time="when", device="unit"))
    assert [(r.device, r.ts) for r in table.rows] == [
        ("a", 1735689600.0),
        ("a", 1735689900.0),
        ("b", 1735689600.0),
    ]
    assert table.dropped == 2 and table.reordered and table.metrics == ("value",)
    assert math.isnan(table.rows[1].values[0])


def test_time_formats() -> None:
    assert parse_time("2025-01-01 00:00:00") == parse_time("1735689600") == 1735689600.0
    assert parse_time("1735689600500") == 1735689600.5
    assert parse_time("2025-01-01T02:00:00+02:00") == 1735689600.0


# --- malformed files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "columns", "expected"),
    [
        pytest.param("", Columns(), ["is empty"], id="empty-file"),
        pytest.param("ts,temp\n", Columns(), ["no data rows"], id="header-only"),
        pytest.param(
            "when,temp\n2025-01-01,1\n",
            Columns(),
            ["line 1", "no time column", "when, temp"],
            id="no-time-column",
        ),
        pytest.param(
            "ts,temp\n2025-01-01,1\n",
            Columns(time="clock"),
            ["no time column 'clock'"],
            id="named-time-column-missing",
        ),
        pytest.param(
            "ts,temp\n2025-01-01T00:00,1\nyesterday,2\n",
            Columns(),
            ["line 3", "timestamp 'yesterday'"],
            id="bad-timestamp",
        ),
        pytest.param(
            "ts,temp,rh\n2025-01-01T00:00,1,2\n2025-01-01T00:05,1,2\n2025-01-01T00:10,warm,3\n",
            Columns(),
            ["line 4", "column 'temp'", "'warm'"],
            id="non-numeric-value",
        ),
        pytest.param(
            "ts,temp\n2025-01-01T00:00,1\n2025-01-01T00:05,1,7\n",
            Columns(),
            ["line 3", "3 fields", "header has 2"],
            id="ragged-row",
        ),
        pytest.param(
            "ts,status\n2025-01-01T00:00,ok\n",
            Columns(),
            ["no numeric metric columns"],
            id="no-metric",
        ),
        pytest.param(
            "ts,temp\n2025-01-01T00:00,1\n2025-01-01T00:05,hot\n",
            Columns(),
            ["no numeric metric columns", "line 3 has 'hot' in column 'temp'"],
            id="no-metric-names-the-first-word",
        ),
        pytest.param(
            "ts,temp,temp\n2025-01-01T00:00,1,2\n",
            Columns(),
            ["'temp' appears twice"],
            id="duplicate-column",
        ),
        pytest.param(
            "ts,temp\n,1\n",
            Columns(),
            ["line 2", "empty timestamp"],
            id="empty-timestamp",
        ),
        pytest.param(
            "ts,temp\n2025-01-01T00:00,1\n",
            Columns(metrics=("rh",)),
            ["no metric column 'rh'"],
            id="named-metric-missing",
        ),
    ],
)
def test_malformed_files_name_the_file_line_and_problem(
    tmp_path: Path, text: str, columns: Columns, expected: list[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValidationError) as caught:
        read_table(path, columns)
    message = str(caught.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, message


def test_options_that_cannot_work_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown signal 'rssi'"):
        Columns(signals=(("rssi", "rssi"),))
    with pytest.raises(ConfigError, match="threshold"):
        BacktestOptions(threshold=1.5)
    with pytest.raises(ConfigError, match="cannot read"):
        read_table(tmp_path / "missing.csv")


# --- the command ----------------------------------------------------------------------------


def test_the_command_writes_scores_beside_the_input(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "home.csv",
        ["timestamp", "temp"],
        [(t.isoformat(), v) for t, v in temperatures(3, step_at_h=84.0)],
    )
    result = CliRunner().invoke(app, ["backtest", "--csv", str(source)], env=NO_DATABASE)
    assert result.exit_code == 0, result.output
    assert "fault predictors skipped: no column maps to a known signal" in result.stdout
    # The step is an anomaly; the file's 6-hour gap is a silence the detectors report.
    assert "rows with an alert: 2 (anomaly 1, detected connectivity_loss 1)" in result.stdout
    out = tmp_path / "home.scored.csv"
    rows = read_rows(out)
    assert list(rows[0]) == [
        "timestamp",
        "temp",
        "phase",
        "anomaly_score",
        "anomaly_alert",
        "detected",
        "alert",
        "reasons",
    ]
    assert rows[0]["phase"] == "learning" and rows[0]["anomaly_score"] == ""
    assert [r["alert"] for r in rows].count("1") == 2
    silent = next(r for r in rows if r["detected"])
    assert silent["detected"] == "connectivity_loss" and "no reading for" in silent["reasons"]
    assert {r["phase"] for r in rows} == {"learning", "scoring"}


def test_the_command_can_calibrate_on_the_files_first_part(tmp_path: Path) -> None:
    # The same 6-hour gap (hours 34 to 40), with thresholds set from the rows before hour 48:
    # that history holds the gap, so within a budget of 1 alert per 1,000 device-days the
    # silence threshold rises above it, as `forewarn calibrate` would set it on a fleet.
    source = write_csv(
        tmp_path / "home.csv",
        ["timestamp", "temp"],
        [(t.isoformat(), v) for t, v in temperatures(3, step_at_h=84.0)],
    )
    until = (START + timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%S")
    result = CliRunner().invoke(
        app, ["backtest", "--csv", str(source), "--calibrate-until", until], env=NO_DATABASE
    )
    assert result.exit_code == 0, result.output
    assert "rows with an alert: 1 (anomaly 1)" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("detector thresholds"))
    assert "from the rows before 2025-03-03 00:00" in line and "budget 1 / 1000" in line
    silence = float(line.split("silence ")[1].split(",")[0])
    assert 0.9 < silence < 1.0
    table = read_table(source)
    at_bar = score_table(table, BacktestOptions())
    calibrated = score_table(
        table, BacktestOptions(calibrate_until=(START + timedelta(hours=48)).timestamp())
    )
    assert len(at_bar.silences) == 1 and not calibrated.silences
    assert {c.fault: c.threshold for c in calibrated.calibration}["silence"] == silence
    with pytest.raises(ConfigError, match="nothing to calibrate on"):
        score_table(table, BacktestOptions(calibrate_until=START.timestamp()))


def test_the_command_fails_clearly_on_a_malformed_file(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("ts,temp\n2025-01-01T00:00,1\n2025-01-01T00:05,hot\n2025-01-01T00:09,2\n")
    result = CliRunner().invoke(app, ["backtest", "--csv", str(source)], env=NO_DATABASE)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert "error:" in message and "line 3" in message and "'hot'" in message
    assert not (tmp_path / "bad.scored.csv").exists()
    bad_map = CliRunner().invoke(
        app, ["backtest", "--csv", str(source), "--map", "temp"], env=NO_DATABASE
    )
    assert bad_map.exit_code == 1 and "COL=SIGNAL" in bad_map.stderr


# --- fault predictors -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    """A model trained on a simulated fleet, as ``forewarn train`` would."""
    # One OpenMP thread: scikit-learn's per-tree thread start-up costs far more than it
    # saves on these small arrays, badly so on a busy machine (seconds become minutes).
    with threadpool_limits(limits=1):
        ds = simulate(devices=60, seed=3, days=2, fault_rate=0.5)
        trained, _ = learn_bundle(ds.data, ds.episodes, seed=0)
    return trained


def export_device(path: Path, device_id: str) -> tuple[Path, FaultEpisode]:
    """One simulated device's readings as a user's CSV (signal under another name)."""
    fleet = generate_fleet(
        devices=60, seed=3, start=EVALUATION_START, span=timedelta(days=2), fault_rate=0.5
    )
    episode = fleet.episode_for(device_id)
    assert episode is not None
    adapters = adapters_from(Settings(database_url=None, mqtt_url=None))
    engine = FleetEngine(fleet, device_ids=frozenset({device_id}))
    rows: list[list[Any]] = []
    for m in engine.step_until(fleet.start + fleet.span):
        r = route(adapters, f"forewarn/v1/{m.topic_suffix}", m.payload, received_at=m.sim_ts)
        if isinstance(r, Reading):
            rows.append(
                [
                    r.ts.isoformat(),
                    r.signal_dbm,
                    r.battery_pct,
                    r.temperature_c,
                    r.uptime_s,
                    r.reconnects,
                ]
            )
    header = ["time", "rssi", "battery_pct", "temperature_c", "uptime_s", "reconnects"]
    return write_csv(path, header, rows), episode


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fault_predictors_warn_before_the_failure(tmp_path: Path, bundle: ModelBundle) -> None:
    # lock-000023 loses its link from 27 h into the 48 h simulation; 24 h are learned first.
    source, episode = export_device(tmp_path / "lock.csv", "lock-000023")
    assert episode.fault is FaultKind.CONNECTIVITY_LOSS
    columns = Columns(signals=(("rssi", "signal_dbm"),))
    table = read_table(source, columns)
    assert dict(table.signals) == {
        "rssi": "signal_dbm",
        "battery_pct": "battery_pct",
        "temperature_c": "temperature_c",
        "uptime_s": "uptime_s",
        "reconnects": "reconnects",
    }
    assert table.metrics == ("rssi", "battery_pct", "temperature_c"), "counters are not metrics"
    out = tmp_path / "lock.scored.csv"
    with threadpool_limits(limits=1):
        result = backtest(table, out, BacktestOptions(device_model="lock-s2"), bundle=bundle)
    assert "connectivity_loss" in result.faults and result.fault_alerts["connectivity_loss"] > 0
    rows = read_rows(out)
    assert {"p_model_anomaly", "alert_model_anomaly"} <= set(rows[0]), "the model's own score"
    failure = episode.failure_at.timestamp()
    warned = [parse_time(r["time"]) for r in rows if r["alert_connectivity_loss"] == "1"]
    assert warned and min(warned) < failure, "no warning before the link was lost"
    first = next(r for r in rows if r["alert_connectivity_loss"] == "1")
    assert first["alert"] == "1" and "connectivity_loss" in first["reasons"]
    assert all(r["p_connectivity_loss"] == "" for r in rows if r["phase"] == "learning")
    # Fault scores are causal too: cutting the file after the first warning changes nothing.
    cut = min(warned)
    kept = [r for r in rows if parse_time(r["time"]) <= cut]
    short = write_csv(
        tmp_path / "short.csv", list(rows[0])[:6], [list(r.values())[:6] for r in kept]
    )
    with threadpool_limits(limits=1):
        again = score_table(read_table(short, columns), bundle=bundle)
    j = again.faults.index("connectivity_loss")
    expected = [float(r["p_connectivity_loss"] or "nan") for r in kept]
    assert [round(p, 4) for p in again.probabilities[:, j]] == pytest.approx(expected, nan_ok=True)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_command_uses_the_active_model(
    tmp_path: Path,
    settings: Settings,
    db: psycopg.Connection[tuple[Any, ...]],
    bundle: ModelBundle,
) -> None:
    from models import repository

    source, _ = export_device(tmp_path / "lock.csv", "lock-000023")
    args = ["backtest", "--csv", str(source), "--map", "rssi=signal_dbm"]
    env = settings.as_environment()
    none_yet = CliRunner().invoke(app, args, env=env)
    assert none_yet.exit_code == 0, none_yet.output
    assert "fault predictors skipped: the database has no active model" in none_yet.stdout
    version = repository.save_version(
        db,
        bundle=bundle,
        trained_from=EVALUATION_START,
        trained_to=EVALUATION_START,
        evaluation={},
        note="backtest test",
    )
    repository.activate(db, version=version)
    with threadpool_limits(limits=1):
        used = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out.csv")], env=env)
    assert used.exit_code == 0, used.output
    assert "skipped" not in used.stdout and "connectivity_loss" in used.stdout
    assert "p_connectivity_loss" in read_rows(tmp_path / "out.csv")[0]
