"""The console's Chinese pages say the label-free detectors' reasons in Chinese.

The reasons come from the real detectors run over a simulated fleet with every kind of fault
and network outages (``models.detector_eval.run_fleet``); each is rendered by the console's own
``reason()`` (``api/console/js/i18n.js``) in Node, and nothing English may be left but units.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from forewarn.settings import Settings
from models.detect import observations, profiles
from models.detector_eval import run_fleet
from models.simulated import simulate

I18N = Path(__file__).resolve().parent.parent / "api" / "console" / "js" / "i18n.js"
# What may stay in Latin letters on a Chinese page: units.
UNITS = {"dBm", "dB", "V", "C"}  # C of °C

RENDER = """
globalThis.document = { documentElement: {} };
globalThis.localStorage = { getItem: () => 'zh-CN', setItem: () => {} };
globalThis.navigator = { language: 'zh-CN' };
const m = await import(process.argv[2]);
const texts = JSON.parse(require_stdin());
function require_stdin() { return require('fs').readFileSync(0, 'utf8'); }
console.log(JSON.stringify(texts.map((t) => m.reason(t))));
"""


def _reasons() -> set[str]:
    ds = simulate(devices=120, seed=23, days=2.0, fault_rate=0.6, outages_per_day=1.0)
    settings = Settings(database_url=None, mqtt_url=None)
    series = {d: list(observations(s)) for d, s in ds.series.items()}
    run = run_fleet(
        series, ds.models, profiles(settings.battery_chemistry, settings.temperature_limits)
    )
    found = {why for row in run.reasons for why in row.values()}
    found |= {o.reason for o in run.outages}
    return found


@pytest.mark.slow
def test_every_detector_reason_reads_in_chinese(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine to run the console's i18n module")
    reasons = _reasons()
    # Every fault's detector spoke, and the outages were called.
    for words in (
        "battery at",
        "no reading for",
        "restarted about",
        "below its usual",
        "above its usual",
        "fell silent together",
    ):
        assert any(words in r for r in reasons), f"no reason with {words!r} in {len(reasons)}"
    module = tmp_path / "i18n.mjs"
    module.write_text(I18N.read_text(encoding="utf-8"), encoding="utf-8")
    script = tmp_path / "render.cjs"
    script.write_text(
        "(async () => {"
        + RENDER.replace("await import(process.argv[2])", "await import(process.argv[2])")
        + "})();",
        encoding="utf-8",
    )
    done = subprocess.run(
        [node, str(script), module.as_uri()],
        input=json.dumps(sorted(reasons)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rendered = json.loads(done.stdout)
    left = {
        src: out
        for src, out in zip(sorted(reasons), rendered, strict=True)
        if set(re.findall(r"[A-Za-z]+", out)) - UNITS
    }
    shapes = sorted({re.sub(r"[\d.]+", "N", o) for o in left.values()})
    assert not left, f"{len(left)} of {len(reasons)} reasons keep English: {shapes[:12]}"
