"""Fault prediction: features, the model contract, labels, evaluation and reasons."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from sklearn.ensemble import IsolationForest

from forewarn.domain import FaultKind
from forewarn.settings import Settings
from ingest.direct import DirectWriter
from models import live, repository, telemetry
from models.anomaly import AnomalyScore, BatteryLife
from models.base import FeatureSet, Labels
from models.buckets import DeviceBuckets, Sample
from models.evaluation import quality
from models.features import FEATURE_INDEX, FEATURES, latest_features, series_features
from models.forest import CompiledIsolation
from models.labels import Episode, label_rows
from models.predictors import FaultPredictor, PredictorGroup
from models.reasons import Baseline, explain
from models.simulated import Dataset, simulate
from models.state import FleetState
from models.state_features import COUNT_MAX
from simulators.flows import run_simulation
from tests import factories


@pytest.fixture(scope="module")
def small() -> Dataset:
    """A small simulated fleet with many faults (about 3 s to build)."""
    return simulate(devices=60, seed=3, days=2.0, fault_rate=0.5)


# The live scorer's state is float32 (models/state.py): its features agree with the database
# path within this tolerance; counts agree exactly.
STATE_RTOL, STATE_ATOL = 1e-5, 1e-4
COUNT_FEATURES = (
    "reconnects_30m",
    "reconnects_2h",
    "reconnects_6h",
    "link_errors_2h",
    "temp_repeat_30m",
    "temp_repeat_2h",
    "reboots_2h",
    "reboots_6h",
    "reboots_24h",
    "crash_errors_6h",
    "power_errors_6h",
    "overtemp_errors_2h",
    "history_h",
)


def test_database_and_streaming_features_are_the_same(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    # Within the ingester's accepted clock window (max_clock_skew_seconds).
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    run_simulation(
        settings,
        devices=12,
        seed=5,
        speedup=0,
        duration=None,
        start=start,
        sim_span=timedelta(hours=36),
        fault_rate=0.6,
        sink=DirectWriter(settings),
    )
    until = start + timedelta(days=2)
    stored = {
        s.device_id: s
        for s in repository.load_buckets(db, since=start - timedelta(hours=1), until=until)
    }
    assert len(stored) == 12
    rows = db.execute(
        "SELECT device_id, ts, signal_dbm::float8, battery_pct::float8, battery_v::float8, "
        "temperature_c::float8, uptime_s::float8, reconnects::float8, error_codes "
        "FROM telemetry ORDER BY device_id, ts"
    ).fetchall()
    rings: dict[str, DeviceBuckets] = {}
    state = FleetState()
    ringed: dict[tuple[str, int], np.ndarray] = {}
    streamed: dict[tuple[str, int], np.ndarray] = {}
    for device_id, ts, *values, codes in rows:
        ring = rings.setdefault(device_id, DeviceBuckets())
        sample = Sample(ts.timestamp(), *values, codes=frozenset(codes))
        assert ring.add(sample)
        assert state.add(device_id, sample)
        assert ring.head is not None and state.head(device_id) == ring.head
        # The last reading of each bucket leaves the bucket's final features.
        ringed[(device_id, ring.head)] = latest_features(
            ring.window(), ring.valid_from(), ring.head
        )[0]
        streamed[(device_id, ring.head)] = state.features([device_id])[0]
    compared = 0
    worst = np.zeros(len(FEATURES))
    seen = np.zeros(len(FEATURES), dtype=np.int64)
    for device_id, series in stored.items():
        positions, x = series_features(series.buckets, series.first_bucket)
        for pos, row in zip(positions, x, strict=True):
            key = (device_id, series.first_bucket + int(pos))
            for other, rtol, atol in (
                # The backtest's bucket ring: float64 buckets, the same code as training.
                (ringed[key], 1e-9, 1e-6),
                # The live scorer's compact state: float32 sums and values (24 bits of
                # mantissa), so the stated tolerance: 1e-5 relative, 1e-4 absolute.
                (streamed[key], STATE_RTOL, STATE_ATOL),
            ):
                assert np.array_equal(np.isnan(row), np.isnan(other)), (device_id, pos)
                np.testing.assert_allclose(
                    row[~np.isnan(row)], other[~np.isnan(other)], rtol=rtol, atol=atol
                )
            ok = ~np.isnan(row)
            worst[ok] = np.maximum(worst[ok], np.abs(row[ok] - streamed[key][ok]))
            seen += ok
            compared += 1
    assert compared == len(streamed) > 3000
    # Counts carry no rounding at all in float32: they must be exact.
    for name in COUNT_FEATURES:
        assert worst[FEATURE_INDEX[name]] == 0.0, name
    # Every feature took a value somewhere on this fleet (none was compared only as NaN).
    assert seen.min() > 0, [FEATURES[i] for i in np.flatnonzero(seen == 0)]
    assert len(state) == 12


def test_a_discarded_device_frees_its_row_and_leaves_nothing_behind() -> None:
    t0 = 1_790_000_000.0
    hot = [Sample(t0 + 60 * i, -50.0 - i % 3, 90.0 - i, 3.9, 60.0 + i % 4) for i in range(300)]
    calm = [Sample(t0 + 60 * i, -70.0, None, None, 20.0 + i % 2 * 0.5) for i in range(90)]
    state, fresh = FleetState(), FleetState()
    for s in hot:
        state.add("a", s)
    state.discard("a")
    assert "a" not in state and len(state) == 0 and state.head("a") is None
    held = state.nbytes
    for s in calm:
        state.add("b", s)  # takes a's row
        fresh.add("b", s)
    assert state.nbytes == held  # no new block: the row was reused
    np.testing.assert_array_equal(state.features(["b"]), fresh.features(["b"]))


def test_only_a_device_that_reports_a_battery_holds_battery_rings() -> None:
    t0 = 1_790_000_000.0
    mains = [Sample(t0 + 60 * i, -60.0 - i % 4, None, None, 21.0 + i % 3) for i in range(400)]
    cells = [Sample(t0 + 60 * i, -70.0, 95.0 - 0.02 * i, 2.9, 20.0) for i in range(400)]
    state, alone = FleetState(), FleetState()
    for s in mains:
        state.add("ac", s)
    mains_only = state.nbytes
    row = state.features(["ac"])[0]
    for name in ("battery_pct", "battery_v", "drain_2h", "drain_6h", "hours_to_empty"):
        assert np.isnan(row[FEATURE_INDEX[name]]), name
    for s in cells:
        state.add("lock", s)
        alone.add("lock", s)
    # The battery rings came with the first battery reading, in a block of their own.
    assert state.nbytes > mains_only
    lock = state.features(["lock"])[0]
    np.testing.assert_array_equal(lock, alone.features(["lock"])[0])
    assert lock[FEATURE_INDEX["drain_2h"]] == pytest.approx(0.02 * 60, rel=1e-4)
    assert lock[FEATURE_INDEX["drain_6h"]] == pytest.approx(0.02 * 60, rel=1e-4)
    # A discarded device's battery row goes to the next device that reports a battery.
    with_both = state.nbytes
    state.discard("lock")
    fresh = FleetState()
    for s in cells[:90]:
        state.add("watch", s)
        fresh.add("watch", s)
    assert state.nbytes == with_both
    np.testing.assert_array_equal(state.features(["watch"]), fresh.features(["watch"]))


def test_a_sliced_scorer_reads_the_models_of_its_own_slices_only(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    for i in range(40):
        factories.device(db, f"lock-{i:04d}", model="lock-s2" if i % 2 else "zb-t1")
    db.execute("INSERT INTO devices (device_id) VALUES ('no-model')")
    every = repository.device_models(db)
    assert len(every) == 40
    parts = [telemetry.device_models_in(db, slices=[s], partitions=8) for s in range(8)]
    merged: dict[str, str] = {}
    for s, part in enumerate(parts):
        assert not merged.keys() & part.keys()
        merged |= part
        # The same slices as the scorer's readings and leases.
        assert set(part) <= set(telemetry.devices_in(db, slices=[s], partitions=8))
    assert merged == every
    assert max(len(p) for p in parts) < 40
    watcher = live.Live(settings)
    watcher.scope = ((2, 5), 8)
    watcher.read_models(db)
    assert watcher.fleet.models == parts[2] | parts[5]
    # A device the map lacks is looked up again only once the map is old.
    outside = next(d for d in every if d not in watcher.fleet.models)
    assert outside not in watcher.models_of(db, [outside])


def test_event_rings_come_with_a_restart_and_go_once_the_windows_hold_none() -> None:
    t0 = 1_790_000_000.0

    def reading(k: int, uptime: float, codes: frozenset[str] = frozenset()) -> Sample:
        return Sample(t0 + 60 * k, -60.0, None, None, 21.0, uptime, 0.0, codes=codes)

    state = FleetState()
    for k in range(30):
        state.add("a", reading(k, 600.0 + 60 * k))
    assert not state.export(["a"])[-1][0]  # no event rings yet
    state.add("a", reading(30, 20.0))  # a restart: uptime went back
    state.add("a", reading(31, 80.0, frozenset({"E_LINK_RETRY"})))
    assert state.export(["a"])[-1][0]
    row = state.features(["a"])[0]
    assert row[FEATURE_INDEX["reboots_2h"]] == row[FEATURE_INDEX["reboots_24h"]] == 1
    assert row[FEATURE_INDEX["link_errors_2h"]] == 1
    # A day and more later, nothing left in any window: the rings are given back.
    for k in range(32, 32 + 26 * 60, 5):
        state.add("a", reading(k, 80.0 + 60 * k))
    assert not state.export(["a"])[-1][0]
    row = state.features(["a"])[0]
    for name in ("reboots_2h", "reboots_6h", "reboots_24h", "link_errors_2h"):
        assert row[FEATURE_INDEX[name]] == 0, name


def test_a_count_stops_at_its_type_s_limit_instead_of_wrapping_around() -> None:
    # More readings in one five-minute bucket than a uint16 count holds (the default rate
    # limit never lets a device get there), each repeating its predecessor's temperature.
    t0 = 1_790_000_100.0
    state = FleetState()
    over = COUNT_MAX + 5
    for i in range(over):
        assert state.add("a", Sample(t0 + i * (150.0 / over), -60.0, None, None, 21.5))
    row = state.features(["a"])[0]
    # The bucket stops counting at COUNT_MAX readings, of which every one but the first
    # repeated its predecessor; wrapping around would have counted a handful.
    assert row[FEATURE_INDEX["temp_repeat_30m"]] == COUNT_MAX - 1
    assert row[FEATURE_INDEX["temp_repeat_2h"]] == COUNT_MAX - 1


def _scorers(data: FeatureSet, y_any: Labels, y_fault: Labels) -> list[tuple[str, Any]]:
    return [
        (
            "fault predictor",
            FaultPredictor(FaultKind.CONNECTIVITY_LOSS, seed=1, max_iter=30).learn(data, y_fault),
        ),
        ("anomaly score", AnomalyScore(seed=1).learn(data, y_any)),
        ("battery life", BatteryLife().learn(data, y_any)),
    ]


def test_every_model_honours_the_contract(small: Dataset) -> None:
    data = small.data
    y_fault = label_rows(data, small.episodes, FaultKind.CONNECTIVITY_LOSS, horizon_h=24)
    y_any = np.zeros(len(data), dtype=np.int8)
    for e in small.episodes:
        y_any[(data.device_ids == e.device_id) & (data.times >= e.onset)] = 1
    first = _scorers(data, y_any, y_fault)
    second = _scorers(data, y_any, y_fault)
    probe = data.x[:: max(1, len(data) // 4000)]
    for (name, model), (_, twin) in zip(first, second, strict=True):
        before = pickle.dumps(model)
        scores = model.score(probe)
        assert scores.shape == (len(probe),), name
        assert np.all((scores >= 0) & (scores <= 1)), f"{name}: scores leave [0, 1]"
        assert np.ptp(scores) > 0, f"{name}: a constant score tells nothing"
        np.testing.assert_array_equal(scores, twin.score(probe), err_msg=f"{name}: same seed")
        assert pickle.dumps(model) == before, f"{name}: scoring changed the model"
        np.testing.assert_array_equal(scores, model.score(probe), err_msg=name)


def test_compiled_trees_score_exactly_as_scikit_learn(small: Dataset) -> None:
    data = small.data
    y = label_rows(data, small.episodes, FaultKind.BATTERY_FAILURE, horizon_h=24)
    predictor = FaultPredictor(FaultKind.BATTERY_FAILURE, seed=2, max_iter=40).learn(data, y)
    # Edge values as well as the fleet's rows: missing features (both ways a split can send
    # them), infinities, and values exactly on a split's threshold.
    x = data.x.copy()
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:50] = np.inf
    x[50:100] = -np.inf
    tree = predictor._folds[0]._predictors[0][0].nodes
    split = tree[~tree["is_leaf"].astype(bool)][0]
    x[100:150, split["feature_idx"]] = split["num_threshold"]
    assert len(x) > 8_192  # large enough for the threaded path
    # Scored alone, and together with another predictor (one ranking among both's thresholds).
    y2 = label_rows(data, small.episodes, FaultKind.CONNECTIVITY_LOSS, horizon_h=24)
    other = FaultPredictor(FaultKind.CONNECTIVITY_LOSS, seed=2, max_iter=25).learn(data, y2)
    group = PredictorGroup([predictor, other])
    for rows in (x, x[:1000], x[:1]):  # threaded, one thread, one row
        expected = predictor.score_sklearn(rows)
        np.testing.assert_array_equal(predictor.score(rows), expected)
        together = group.scores(rows)
        np.testing.assert_array_equal(together[0], expected)
        np.testing.assert_array_equal(together[1], other.score_sklearn(rows))
    assert np.ptp(predictor.score(x)) > 0
    assert group.current([predictor, other]) and not group.current([other, predictor])


@pytest.mark.parametrize(
    "max_features", [pytest.param(1.0, id="all"), pytest.param(0.5, id="half")]
)
def test_compiled_isolation_forest_scores_exactly_as_scikit_learn(max_features: float) -> None:
    rng = np.random.default_rng(4)
    train = rng.normal(size=(3000, 6)) * np.array([1.0, 10.0, 0.01, 1e4, 3.0, 1.0])
    forest = IsolationForest(
        n_estimators=60, max_samples=256, max_features=max_features, random_state=5
    ).fit(train)
    x = np.concatenate((train, rng.normal(size=(9000, 6)) * 4.0))
    # Values exactly on a split's threshold (compared as float32 against float64, as
    # scikit-learn compares them), and far beyond every threshold.
    tree = forest.estimators_[0].tree_
    column = int(tree.feature[0])  # of the columns the tree was given
    if max_features < 1.0:
        column = int(forest.estimators_features_[0][column])
    x[:50, column] = tree.threshold[0]
    x[50:60] = 1e30
    x[60:70] = -1e30
    compiled = CompiledIsolation(forest)
    assert len(x) > 8_192  # large enough for the threaded path
    for rows, threads in ((x, 2), (x, 1), (x[:1], 2)):
        np.testing.assert_array_equal(
            compiled.anomaly(rows, threads=threads), -forest.score_samples(rows)
        )


def test_the_anomaly_score_is_the_same_compiled_and_through_scikit_learn(small: Dataset) -> None:
    data = small.data
    y = np.zeros(len(data), dtype=np.int8)
    scorer = AnomalyScore(seed=3).learn(data, y)
    x = data.x.copy()
    x[np.random.default_rng(1).random(x.shape) < 0.05] = np.nan  # missing features
    x[:20] = np.inf
    assert len(x) > 8_192
    for rows in (x, x[:1000], x[:1]):
        for threads in (1, 2):
            np.testing.assert_array_equal(
                scorer.score(rows, threads=threads), scorer.score_sklearn(rows, threads=threads)
            )
    assert np.ptp(scorer.score(x)) > 0


def test_labels_mark_the_horizon_and_leave_the_unclear_out() -> None:
    hour = 3600.0
    buckets = np.arange(0, 60 * 12, 12, dtype=np.int64)  # one row an hour for 60 hours
    data = FeatureSet(np.zeros((60, len(FEATURES))), np.full(60, "d1"), np.full(60, "m"), buckets)
    t = data.times
    episode = Episode("d1", FaultKind.OVERHEATING, onset=t[10], failure=t[40])
    y = label_rows(data, [episode], FaultKind.OVERHEATING, horizon_h=24)
    assert (y[:10] == 0).all()  # healthy before onset
    assert (y[10:16] == -1).all()  # developing, but failure is more than 24 h away
    assert (y[16:43] == 1).all()  # within 24 h of failure, and 2 h of grace after it
    assert (y[43:] == -1).all()  # failed long ago and never healed: left out
    other = label_rows(data, [episode], FaultKind.STUCK_SENSOR, horizon_h=24)
    assert (other == 0).all()
    assert t[1] - t[0] == hour


def _timeline(alerts: list[int]) -> tuple[FeatureSet, np.ndarray]:
    """One device, one row every 5 minutes for 48 h; `alerts` are the alerting row numbers."""
    n = 48 * 12
    data = FeatureSet(
        np.zeros((n, len(FEATURES))),
        np.full(n, "d1"),
        np.full(n, "m"),
        np.arange(n, dtype=np.int64),
    )
    scores = np.zeros(n)
    scores[alerts] = 0.9
    return data, scores


@pytest.mark.parametrize(
    ("alerts", "detected", "false_alarms", "lead_h"),
    [
        pytest.param([], 0, 0, None, id="silent"),
        pytest.param([12 * 10], 1, 0, 10.0, id="early-alert-detects"),
        pytest.param([12 * 2], 0, 1, None, id="before-onset-is-false"),
        pytest.param([12 * 2, 12 * 10], 1, 1, 10.0, id="false-then-true"),
        pytest.param(list(range(12 * 10, 12 * 11)), 1, 0, 10.0, id="one-alert-many-rows"),
        pytest.param([12 * 21], 1, 0, -1.0, id="late-within-grace"),
        pytest.param([12 * 30], 0, 0, None, id="long-after-failure-is-late"),
    ],
)
def test_alerts_are_counted_as_people_see_them(
    alerts: list[int], detected: int, false_alarms: int, lead_h: float | None
) -> None:
    data, scores = _timeline(alerts)
    t0 = data.times[0]
    episode = Episode("d1", FaultKind.OVERHEATING, onset=t0 + 5 * 3600, failure=t0 + 20 * 3600)
    q = quality(data, scores, 0.5, [episode], FaultKind.OVERHEATING)
    assert (q.detected, q.false_alarms, q.episodes) == (detected, false_alarms, 1)
    if lead_h is None:
        assert q.median_lead_h is None
    else:
        assert q.median_lead_h == pytest.approx(lead_h, abs=0.1)
    assert q.false_alarms_per_1000_device_days == pytest.approx(
        1000 * false_alarms / q.device_days, rel=0.01
    )


def test_reasons_name_what_set_the_row_apart(small: Dataset) -> None:
    healthy = small.data.x[:2000]
    baseline = Baseline.learn(healthy)
    row = np.array(baseline.median, dtype=np.float64)
    row[FEATURE_INDEX["signal_fall_6h"]] = 18.0
    row[FEATURE_INDEX["reconnects_30m"]] = 7.0
    reasons = explain(FaultKind.CONNECTIVITY_LOSS, row, baseline)
    assert "signal fell 18 dB in 6 h" in reasons
    assert "7 reconnects in the last 30 minutes" in reasons
    assert explain(FaultKind.CONNECTIVITY_LOSS, np.array(baseline.median), baseline) == ()


def test_train_store_evaluate_and_score_live(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    from forewarn.errors import ConfigError
    from ingest.service import Ingester
    from models.flows import evaluate, train
    from models.scorer import Scorer
    from tests.conftest import count, wait_for

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
    small_eval = {"seed": 8, "devices": 40, "days": 1.5}
    first = train(settings, evaluation=small_eval, say=lambda _m: None)
    assert first.activated and first.why == "first version"
    assert first.episodes > 20 and first.devices == 80
    stored = repository.active_version(db)
    assert stored is not None and stored.version == first.version
    assert set(stored.evaluation["faults"]) == {*(f.value for f in FaultKind), "anomaly"}
    assert stored.training["runs"] == [f"sim-21-{history:%Y%m%dT%H%M%SZ}"]
    with pytest.raises(ConfigError, match="seed 21 was used for training"):
        evaluate(settings, seed=21, devices=20, days=1.0, fault_rate=0.3, say=lambda _m: None)

    # Live: a fleet published through the broker, stored by the ingester, scored as it lands.
    ingester, scorer = (
        Ingester(settings.with_overrides(ingest_receive_maximum=65535)),
        Scorer(settings, warmup_hours=0),
    )
    ingester.start()
    scorer.start()
    try:
        wait_for(scorer.ready.is_set, what="the scorer to load the active model")
        summary = run_simulation(
            settings,
            devices=30,
            seed=22,
            speedup=0,
            duration=None,
            start=datetime.now(UTC).replace(microsecond=0) - timedelta(days=1),
            sim_span=timedelta(hours=20),
            fault_rate=0.6,
        )
        stored = "SELECT count(*) FROM telemetry WHERE device_id NOT LIKE '%%-5_____'"
        wait_for(
            lambda: count(db, stored) >= summary.readings,
            timeout=90,
            what="the ingester to store every reading",
        )
        wait_for(
            lambda: scorer.stats().readings >= summary.readings,
            timeout=30,
            what=f"the scorer to fold every reading ({scorer.stats()})",
        )
        wait_for(
            lambda: count(db, "SELECT count(*) FROM predictions") > 0,
            timeout=30,
            what="a prediction",
        )
    finally:
        ingester.stop()
        scorer.stop()
    assert scorer.failure is None
    stats = scorer.stats()
    assert stats.model_version == first.version
    # Readings that committed out of order (four connections share the flood) had their
    # device's window rebuilt in time order: every reading counted once.
    assert stats.readings == summary.readings
    rows = db.execute(
        "SELECT device_id, fault, probability, reasons, model_version, updates FROM predictions"
    ).fetchall()
    faulty = {e.device_id for e in summary.episodes}
    predicted = {r[0] for r in rows if r[1] != "anomaly"}
    assert predicted and predicted <= faulty, (
        f"predictions for healthy devices: {predicted - faulty}"
    )
    # The trained model's (its version) for faults it evaluated better on; the label-free
    # detectors' (no version) for the others, each with its reason.
    supervised = live.supervised_faults(repository.active_version(db).evaluation)  # type: ignore[union-attr]
    assert all(0 < r[2] <= 1 for r in rows)
    assert all(r[4] == first.version for r in rows if r[4] is not None)
    assert all(r[1] not in supervised for r in rows if r[4] is None)
    assert all(r[3] for r in rows if r[4] is None), "a detector's prediction without reasons"
    assert any(r[4] is None for r in rows), "the label-free detectors predicted nothing"
    assert any(r[3] for r in rows), "a prediction without reasons"


def test_a_prediction_is_one_row_per_device_fault_and_hour(
    settings: Settings, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    from forewarn.domain import Prediction

    bundle_stub = db.execute(
        "INSERT INTO model_versions (features, horizon_h, seed, sha256, bundle) "
        "VALUES ('{}', 24, 0, 'x', '') RETURNING version"
    ).fetchone()
    assert bundle_stub is not None
    at = datetime(2026, 11, 23, 8, 10, tzinfo=UTC)

    def one(minutes: int, p: float) -> Prediction:
        return Prediction(
            "lock-000001",
            "battery_failure",
            at + timedelta(minutes=minutes),
            p,
            24.0,
            ("battery at 9%",),
            bundle_stub[0],
            30.0,
        )

    repository.upsert_predictions(db, predictions=[one(0, 0.97)])
    repository.upsert_predictions(db, predictions=[one(5, 0.99), one(70, 0.95)])
    repository.upsert_predictions(db, predictions=[one(10, 0.96)])
    rows = db.execute(
        "SELECT window_start, probability, max_probability, updates, first_at, last_at "
        "FROM predictions ORDER BY window_start"
    ).fetchall()
    assert len(rows) == 2  # 08:xx and 09:xx
    first = rows[0]
    assert first[0] == at.replace(minute=0)
    assert (round(first[1], 2), round(first[2], 2), first[3]) == (0.96, 0.99, 3)
    assert (first[4], first[5]) == (at, at + timedelta(minutes=10))
