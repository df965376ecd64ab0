"""The label-free detectors on simulated fleets they were never tuned on, with no model.

Exactly what ``forewarn evaluate`` reports under "detectors" (``models.flows.evaluate_bundle``
with no model), without a database: precision, recall, median lead and false alarms per 1,000
device-days per fault, per seed. Prints one JSON document.

``.venv/bin/python bench/detectors.py --seeds 11 12 [--devices 800 --days 3]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.flows import evaluate_bundle


def main() -> None:
    """Evaluate the detectors on each seed's fleet and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    parser.add_argument("--devices", type=int, default=800)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--outages-per-day", type=float, default=0.5)
    args = parser.parse_args()
    out = []
    for seed in args.seeds:
        report = evaluate_bundle(
            None,
            seed=seed,
            devices=args.devices,
            days=args.days,
            fault_rate=args.fault_rate,
            outages_per_day=args.outages_per_day,
            say=lambda _m: None,
        )
        out.append({"seed": seed, "fleet": report["fleet"], "detectors": report["detectors"]})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
