"""Serving-form benchmark: what scoring a trained model from its serving form costs the live
scorer, against the bundle's compiled trees, in the same run.

    python bench/serving.py [--rounds 5]

The model is ``bench/_fleetmodel.trained_bundle`` (five fault predictors of three 150-tree
fold models, an isolation forest per device model), learnt on a simulated fleet. For each batch size (the
live scorer scores the devices a pass touched: tens to a few thousand rows) it times
``ModelBundle.scores`` (the numba kernel, one thread, as the live scorer's small batches run)
and ``ServingModel.scores`` (onnxruntime, one thread), alternating, ``--rounds`` times each,
and checks the scores are the same floats. Then it starts a fresh Python for each form and
reads its resident set once the model is loaded and has scored a batch: what the form costs a
scorer process before it holds a device. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

# This folder's ingest.py would shadow the ingest package: the repository first, then here.
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from _fleetmodel import trained_bundle

from models.base import FeatureSet
from models.bundle import ModelBundle
from models.features import FEATURES
from models.serving import ServingModel

REPO = Path(__file__).resolve().parent.parent

# A fresh process: load one form from a file, score a batch, print VmRSS (bytes) and the
# heavy packages it imported.
_PROCESS = """
import sys
import numpy as np
import models.sliced
from models.base import FeatureSet
from models.features import FEATURES

blob = open(sys.argv[2], "rb").read()
if sys.argv[1] == "bundle":
    from models.bundle import ModelBundle
    model = ModelBundle.loads(blob)
else:
    from models.serving import ServingModel
    model = ServingModel.loads(blob)
x = np.random.default_rng(0).normal(size=(300, len(FEATURES)))
model.predictions(FeatureSet(x, np.array(["d"] * 300), np.array(["lock-s2"] * 300), np.arange(300)))
models.sliced.release_free_memory()
rss = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmRSS"))
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "numba", "scipy", "onnxruntime"})
print(rss, ",".join(heavy))
"""


def _rows(n: int, seed: int) -> FeatureSet:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    x[rng.random(x.shape) < 0.1] = np.nan
    models = rng.choice(["lock-s2", "cam-c2", "ac-x1", "watch-w3", "zb-t1", "unknown"], size=n)
    return FeatureSet(x, np.array([f"d{i}" for i in range(n)]), models, np.arange(n))


def _time(fn: Any, data: FeatureSet) -> float:
    start = time.perf_counter()
    fn(data)
    return time.perf_counter() - start


def _process(form: str, path: Path) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", _PROCESS, form, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    rss, heavy = ([*run.stdout.split(), ""])[:2]
    return {"rss_mb": round(int(rss) / 2**20, 1), "imports": heavy.split(",") if heavy else []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="50,300,2000", help="batch sizes, comma-separated")
    args = parser.parse_args()
    blob = trained_bundle()
    bundle = ModelBundle.loads(blob)
    serving = bundle.serving()
    assert serving is not None
    form = ServingModel.loads(serving)
    speed: dict[str, Any] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        data = _rows(size, size)
        expected, got = bundle.scores(data, threads=1), form.scores(data)
        same = all(np.array_equal(expected[k], got[k]) for k in expected)
        times: dict[str, list[float]] = {"compiled": [], "serving": []}
        for _ in range(args.rounds):
            times["compiled"].append(_time(lambda d: bundle.scores(d, threads=1), data))
            times["serving"].append(_time(form.scores, data))
        compiled, served = median(times["compiled"]), median(times["serving"])
        speed[str(size)] = {
            "compiled_rows_per_s": round(size / compiled),
            "serving_rows_per_s": round(size / served),
            "serving_time_over_compiled": round(served / compiled, 2),
            "same_scores": same,
        }
        print(f"{size} rows: {speed[str(size)]}", file=sys.stderr)
    folder = Path(sys.argv[0]).resolve().parent
    memory: dict[str, Any] = {}
    for name, data_bytes in (("bundle", blob), ("serving", serving)):
        path = folder / f".serving-bench-{name}.bin"
        path.write_bytes(data_bytes)
        try:
            memory[name] = _process(name, path)
        finally:
            path.unlink()
    print(
        json.dumps(
            {
                "bench": "serving",
                "rounds": args.rounds,
                "bundle_bytes": len(blob),
                "serving_bytes": len(serving),
                "speed": speed,
                "process": memory,
                "process_rss_saved_mb": round(
                    memory["bundle"]["rss_mb"] - memory["serving"]["rss_mb"], 1
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
