"""``forewarn backtest`` with the label-free detectors: the summary, --json, --report, --events."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from models.detectors.chemistry import chemistry
from tests.test_backtest import NO_DATABASE, write_csv

START = datetime(2025, 3, 1, tzinfo=UTC)


def fleet_csv(path: Path) -> tuple[Path, datetime, datetime]:
    """Three motes every 10 minutes for 30 days: one's 2xAA pack dies on day 26, one's
    humidity sensor sticks at 100 % on day 20, one stays healthy. Returns the file and the
    two failure times."""
    pack = chemistry("2xaa")
    rng = random.Random(4)
    rows: list[list[object]] = []
    death = START + timedelta(days=26)
    stuck = START + timedelta(days=20)
    for device in ("mote-1", "mote-2", "mote-3"):
        charge = 75.0
        t = START
        while t < START + timedelta(days=30):
            h = (t - START).total_seconds() / 3600
            temp = 21 + 2 * math.sin(2 * math.pi * h / 24) + rng.gauss(0, 0.2)
            hum = 40 + 5 * math.sin(2 * math.pi * h / 24) + rng.gauss(0, 0.5)
            if device == "mote-1":
                if t >= death:
                    break  # dead: no more readings
                charge -= 75.0 / (26 * 144)
            if device == "mote-2" and t >= stuck:
                hum = 100.0
            volts = pack.volts(charge) + 0.01 * math.sin(2 * math.pi * h / 24)
            rows.append(
                [
                    device,
                    t.isoformat(),
                    round(temp, 2),
                    round(hum, 2),
                    round(volts + rng.gauss(0, 0.002), 3),
                ]
            )
            t += timedelta(minutes=10)
    source = write_csv(path, ["device", "time", "temperature", "humidity", "voltage"], rows)
    return source, death, stuck


def test_a_mote_fleet_backtest_warns_of_the_death_and_the_stuck_sensor(tmp_path: Path) -> None:
    source, death, stuck = fleet_csv(tmp_path / "motes.csv")
    events = write_csv(
        tmp_path / "events.csv",
        ["device", "fault", "time"],
        [
            ["mote-1", "battery_failure", death.isoformat()],
            ["mote-2", "stuck_sensor", stuck.isoformat()],
        ],
    )
    page = tmp_path / "report.html"
    args = [
        "backtest",
        "--csv",
        str(source),
        "--map",
        "temperature=temperature_c",
        "--map",
        "voltage=battery_v",
        "--battery",
        "2xaa",
        "--metric",
        "humidity",
        "--events",
        str(events),
        "--report",
        str(page),
    ]
    result = CliRunner().invoke(app, [*args, "--json"], env=NO_DATABASE)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    failures = {f["fault"]: f for f in summary["events"]["failures"]}
    battery = failures["battery_failure"]
    assert battery["warned"] and battery["lead_h"] >= 48, battery
    assert " V and falling " in battery["reason"] and "days left" in battery["reason"]
    stuck_found = failures["stuck_sensor"]
    assert stuck_found["warned"] and -1.0 <= stuck_found["lead_h"] <= 0.0, stuck_found
    assert "humidity" in stuck_found["reason"]
    assert summary["events"]["faults"]["battery_failure"]["recall"] == 1.0
    assert summary["devices"]["mote-3"]["alerts"] == {}, "the healthy mote alerted"
    assert summary["device_days"] > 80
    html = page.read_text()
    assert html.count("<svg") >= 3 and "battery_failure" in html and "Known failures" in html
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org", "")
    # The terminal: the per-fault rates, the devices with alerts and the known failures.
    shown = CliRunner().invoke(app, args, env=NO_DATABASE)
    assert shown.exit_code == 0, shown.output
    assert "per 1,000 device-days" in shown.stdout and "mote-1" in shown.stdout
    assert "known failures" in shown.stdout


def test_a_bad_events_file_is_a_clear_error(tmp_path: Path) -> None:
    source, _, _ = fleet_csv(tmp_path / "motes.csv")
    events = write_csv(tmp_path / "events.csv", ["device", "when"], [["mote-1", "2025-03-02"]])
    result = CliRunner().invoke(
        app, ["backtest", "--csv", str(source), "--events", str(events)], env=NO_DATABASE
    )
    assert result.exit_code != 0
    assert "needs the columns device, fault and time" in result.output
