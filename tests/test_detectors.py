"""The label-free detectors: one contract every detector passes, and a scenario per fault."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from models.detect import Fleet, Profile, Watch
from models.detectors.base import CERTAIN, Detector, Observation, squash
from models.detectors.battery import BatteryDrain
from models.detectors.chemistry import CHEMISTRIES, chemistry, guess
from models.detectors.connectivity import LinkLoss
from models.detectors.overheat import Overheating
from models.detectors.reboot import RebootLoop
from models.detectors.silence import Silence
from models.detectors.stuck import StuckSensor
from models.live import supervised_faults

DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def healthy(seed: int, days: float = 3.0, every: float = 300.0) -> Iterator[Observation]:
    """A healthy battery device: daily temperature cycle, noisy signal, slow drain."""
    rng = random.Random(seed)
    t, uptime, battery = T0, 1000.0, 80.0
    while t < T0 + days * DAY:
        hour = (t % DAY) / 3600.0
        battery -= 0.4 * every / DAY
        yield Observation(
            ts=t,
            signal=round(-65.0 + rng.gauss(0, 1.5), 1),
            battery=round(battery, 1),
            volts=round(2.9 + battery / 1000, 3),
            temp=round(22.0 + 3.0 * math.sin(2 * math.pi * (hour - 9) / 24) + rng.gauss(0, 0.3), 2),
            uptime=uptime,
            reconnects=0.0,
        )
        t += every * rng.uniform(0.98, 1.02)
        uptime += every


DETECTORS: list[tuple[str, Callable[[], Detector]]] = [
    ("battery", BatteryDrain),
    ("battery-volts", lambda: BatteryDrain(chem=CHEMISTRIES["2xaa"])),
    ("overheating", lambda: Overheating(limit_c=60.0)),
    ("stuck", StuckSensor),
    ("reboot", RebootLoop),
    ("connectivity", LinkLoss),
    ("silence", Silence),
]


def run(d: Detector, xs: Iterator[Observation] | list[Observation]) -> list[float]:
    """Score then learn each observation; the scores."""
    out = []
    for x in xs:
        out.append(d.score_one(x).score)
        d.learn_one(x)
    return out


@pytest.mark.parametrize(("name", "make"), DETECTORS, ids=[n for n, _ in DETECTORS])
def test_every_detector_follows_the_contract(name: str, make: Callable[[], Detector]) -> None:
    xs = list(healthy(3))
    a, b = make(), make()
    scores_a, scores_b = run(a, xs), run(b, xs)
    assert scores_a == scores_b, "the same readings gave other scores"
    assert all(0.0 <= s <= 1.0 for s in scores_a)
    before = copy.deepcopy(a)
    probe = replace(xs[-1], ts=xs[-1].ts + 300, temp=99.0, signal=-110.0, uptime=5.0)
    a.score_one(probe)
    assert repr(a) == repr(before), "scoring changed the detector"
    assert sum(s >= 0.5 for s in scores_a) == 0, f"{name} alerted on a healthy device"


def test_scores_put_the_bar_at_one_half() -> None:
    assert squash(1.0) == 0.5
    assert squash(0.0) == 0.0 and squash(-3.0) == 0.0 and squash(math.inf) == 1.0
    assert squash(3.0) == 0.75


def test_a_sensor_stuck_at_its_last_value_is_flagged_within_an_hour() -> None:
    d = StuckSensor()
    xs = list(healthy(5, days=2))
    run(d, xs)
    stuck_at = xs[-1].temp
    t = xs[-1].ts
    first = None
    for i in range(1, 30):
        x = Observation(ts=t + 300 * i, temp=stuck_at)
        v = d.score_one(x)
        d.learn_one(x)
        if v.score >= 0.5 and first is None:
            first = 300 * i
            assert f"exactly {stuck_at:g}" in v.reason
    assert first is not None and first <= 3600


def test_a_quantised_sensor_in_a_quiet_room_is_not_stuck() -> None:
    """A sensor with a 0.5 °C step repeats for hours at night; its own history allows it."""
    d = StuckSensor()
    rng = random.Random(1)
    scores = []
    t = T0
    for _ in range(14 * 288):
        hour = (t % DAY) / 3600
        temp = 21 + (2 * math.sin(2 * math.pi * (hour - 9) / 24) if 8 < hour < 20 else 0.0)
        x = Observation(ts=t, temp=round((temp + rng.gauss(0, 0.1)) * 2) / 2)
        scores.append(d.score_one(x).score)
        d.learn_one(x)
        t += 300
    late = scores[3 * 288 :]  # the first days teach it how long its repeats last
    assert max(late) < 0.5


def test_a_reading_that_comes_late_breaks_a_run_it_belongs_inside() -> None:
    """Readings of one device may arrive out of order (several connections, redelivery); the
    live path cannot learn a late one, but a late different value inside the current run
    shows the sensor moved: the run restarts there instead of looking stuck."""

    def feed(late: bool) -> float:
        fleet = Fleet()
        xs = list(healthy(5, days=1))
        for x in xs:
            fleet.observe("dev", x)
        t, v = xs[-1].ts, 21.3
        # The sensor reads v, moves to v + 0.1 once (reading 4), and back; reading 4 is held
        # back by the network and comes after reading 6, or never.
        at = {i: Observation(ts=t + 300 * i, temp=v if i != 4 else v + 0.1) for i in range(1, 9)}
        top = 0.0
        for i in (1, 2, 3, 5, 6, 7, 8):
            if i == 7 and late:
                fleet.late("dev", at[4])
            alerts = fleet.observe("dev", at[i])
            if i >= 7:
                top = max([top, *(a.score for a in alerts if a.fault == "stuck_sensor")])
        return top

    assert feed(late=False) >= 0.5  # seven readings of v over 35 minutes look stuck ...
    assert feed(late=True) < 0.5  # ... but not once the late 21.4 is known


@pytest.mark.parametrize(
    ("quantity", "value", "words"),
    [
        pytest.param("temperature_c", 85.0, "reset or fault value", id="ds18b20-reset"),
        pytest.param("temperature_c", -127.0, "cannot physically be", id="ds18b20-no-sensor"),
        pytest.param("humidity", -4.0, "cannot physically be", id="negative-humidity"),
        pytest.param("light", 6553.5, "reset or fault value", id="0xffff-tenths"),
    ],
)
def test_fault_values_are_flagged_at_once(quantity: str, value: float, words: str) -> None:
    d = StuckSensor(quantity=quantity)
    for i in range(50):
        d.learn_value(T0 + 60 * i, 40.0 + (i % 7))
    d.learn_value(T0 + 3000, value)
    v = d.score_value(T0 + 3060, value)
    assert v.score >= 0.5 and words in v.reason


def test_a_temperature_it_cannot_be_is_certain_and_teaches_no_other_detector() -> None:
    # A day at 20 to 22 °C, then 20 hours of -200 (a failed sensor's marker), then 21 °C again.
    w = Watch.of(Profile())
    t = T0
    for i in range(288):
        x = Observation(ts=t, temp=21.0 + math.sin(i / 46.0))
        w.learn_one(x)
        t += 300
    failed = Observation(ts=t, temp=-200.0)
    verdicts = w.score_one(failed)
    assert verdicts["stuck_sensor"].score == CERTAIN
    assert "cannot physically be" in verdicts["stuck_sensor"].reason
    assert verdicts["overheating"].score == 0.0
    for _ in range(240):
        w.learn_one(replace(failed, ts=t))
        t += 300
    back = [w.score_one(Observation(ts=t + 300 * k, temp=21.0)) for k in range(6)]
    # Had the overheating detector learned -200 °C, 21 °C would be far above its usual.
    assert max(v["overheating"].score for v in back) < 0.5


def test_a_failing_battery_warns_a_week_ahead_in_volts() -> None:
    """A 2xAA pack used up steadily over 40 days, read in volts through its curve, with the
    daily swing of temperature, the sawtooth of its load and noise: warned about a week
    ahead, with days left and their range, in volts."""
    pack = chemistry("2xaa")
    d = BatteryDrain(chem=pack)
    rng = random.Random(2)
    t, warned = T0, None
    charge = 90.0
    while charge > 0:
        hour = (t % DAY) / 3600
        swing = 0.01 * math.sin(2 * math.pi * hour / 24) - 0.005 * ((t / 600) % 1)
        volts = pack.volts(charge) + swing + rng.gauss(0, 0.003)
        x = Observation(ts=t, volts=round(volts, 3))
        v = d.score_one(x)
        d.learn_one(x)
        if v.score >= 0.5 and warned is None:
            warned = (t, v)
        charge -= 90.0 / 40 * 600 / DAY
        t += 600
    assert warned is not None
    lead_days = (t - warned[0]) / DAY
    assert 4.0 <= lead_days <= 9.0, lead_days
    assert " V and falling " in warned[1].reason and "left" in warned[1].reason
    assert "likely" in warned[1].reason


def test_a_watch_charged_every_night_never_warns() -> None:
    d = BatteryDrain(chem=chemistry("li-ion"))
    t, level, scores = T0, 100.0, []
    for _ in range(10 * 288):
        hour = (t % DAY) / 3600
        level = min(level + 6.0, 100.0) if 22 <= hour < 23.5 else level - 1.5 * 300 / 3600
        x = Observation(ts=t, battery=round(level, 1))
        scores.append(d.score_one(x).score)
        d.learn_one(x)
        t += 300
    assert max(scores) < 0.5


def test_a_watch_that_stops_charging_warns_before_it_dies() -> None:
    d = BatteryDrain(chem=chemistry("li-ion"))
    t, level, first = T0, 100.0, None
    while level > 0:
        hour = (t % DAY) / 3600
        charging = 22 <= hour < 23.5 and t < T0 + 3 * DAY
        level = min(level + 6.0, 100.0) if charging else level - 1.5 * 300 / 3600
        x = Observation(ts=t, battery=round(max(level, 0), 1))
        if d.score_one(x).score >= 0.5 and first is None and t > T0 + 3 * DAY:
            first = t
        d.learn_one(x)
        t += 300
    assert first is not None and t - first >= 3 * 3600


def test_a_reboot_loop_is_flagged_and_one_restart_is_not() -> None:
    d = RebootLoop()
    xs = list(healthy(4, days=1))
    scores = run(d, xs)
    t, scores_one = xs[-1].ts, []
    # One restart: ordinary.
    for i in range(1, 12):
        x = Observation(ts=t + 300 * i, uptime=300.0 * i - 200)
        scores_one.append(d.score_one(x).score)
        d.learn_one(x)
    assert max(scores + scores_one) < 0.5
    t += 3600
    loop = []
    for i in range(40):  # a restart every 20 minutes
        x = Observation(ts=t + 300 * i, uptime=60.0 + 300 * (i % 4))
        v = d.score_one(x)
        loop.append(v)
        d.learn_one(x)
    assert any(v.score >= 0.5 for v in loop)
    assert "restarted about" in next(v.reason for v in loop if v.score >= 0.5)


def test_a_sinking_link_is_flagged_and_a_weak_hour_is_not() -> None:
    d = LinkLoss()
    xs = list(healthy(6, days=2))
    weak = [
        replace(x, signal=(x.signal or 0) - 8) if 10 <= (x.ts % DAY) / 3600 < 11 else x for x in xs
    ]
    assert max(run(d, weak)) < 0.5
    t, found = xs[-1].ts, None
    for i in range(1, 100):
        x = Observation(ts=t + 300 * i, signal=-65.0 - 0.4 * i, reconnects=float(i // 10))
        v = d.score_one(x)
        d.learn_one(x)
        if v.score >= 0.5:
            found = v
            break
    assert found is not None and "below its usual" in found.reason


def test_overheating_against_the_own_cycle_not_a_warm_afternoon() -> None:
    d = Overheating(limit_c=60.0)
    xs = list(healthy(7, days=4))
    warm = [
        replace(x, temp=(x.temp or 0) + 3.0) if 13 <= (x.ts % DAY) / 3600 < 17 else x for x in xs
    ]
    assert max(run(d, warm)) < 0.5
    t, found = xs[-1].ts, None
    for i in range(1, 100):
        x = Observation(ts=t + 300 * i, temp=24.0 + 0.5 * i)
        v = d.score_one(x)
        d.learn_one(x)
        if v.score >= 0.5:
            found = (i, v)
            break
    assert found is not None and found[0] < 60 and "above its usual" in found[1].reason


def test_silence_after_its_own_cadence_and_many_at_once_are_one_incident() -> None:
    fleet = Fleet(thresholds=None)
    t = T0
    for _step in range(300):
        for d in range(20):
            fleet.observe(f"d{d:02}", Observation(ts=t + d, temp=20.0))
        t += 60
        fleet.sweep(t)
    # One device stops: after its own cadence's multiple (and 15 minutes) it is silent.
    alone: list[str] = []
    for _step in range(60):
        for d in range(1, 20):
            fleet.observe(f"d{d:02}", Observation(ts=t + d, temp=20.0))
        t += 60
        released, incidents = fleet.sweep(t)
        alone += [a.device_id for a in released]
        assert not incidents
    assert alone == ["d00"]
    # Now all fall silent together: one fleet incident, no device alerts.
    released_all, incidents_all = [], []
    for _step in range(90):
        t += 60
        released, incidents = fleet.sweep(t)
        released_all += released
        incidents_all += incidents
    assert not released_all
    assert len(incidents_all) >= 1 and len(set(incidents_all[-1].devices)) == 19
    assert "fell silent together" in incidents_all[-1].reason


def test_a_chemistry_reads_volts_as_charge() -> None:
    assert chemistry("2xAA").percent(3.2) == 100.0
    assert chemistry("2xaa").percent(2.0) == 0.0
    assert 40.0 < chemistry("li-ion").percent(3.8) < 50.0
    assert guess(2.9).name == "2xaa" and guess(4.1).name == "li-ion" and guess(6.0).name == "4xaa"
    with pytest.raises(ValueError, match="unknown battery chemistry"):
        chemistry("nicd")


def test_the_trained_model_keeps_only_faults_it_does_better() -> None:
    evaluation = {
        "faults": {"battery_failure": {"f1": 0.95}, "overheating": {"f1": 0.5}, "anomaly": {}},
        "detectors": {"battery_failure": {"f1": 0.9}, "overheating": {"f1": 0.97}},
    }
    assert supervised_faults(evaluation) == {"battery_failure"}
    old = {"faults": {"overheating": {"f1": 0.5}}}
    assert supervised_faults(old) == {"overheating"}
    assert supervised_faults({}) == frozenset()


def test_a_model_profile_reaches_its_detectors() -> None:
    fleet = Fleet({"a": "hub"}, {"hub": Profile(chemistry("cr2032"), 55.0)})
    w = fleet.watch("a")
    assert w.battery.chem is not None and w.battery.chem.name == "cr2032"
    assert w.overheat.limit_c == 55.0
