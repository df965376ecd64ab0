"""The real data sets bench/realdata.py reads are in the repository, with their licence.

An ignore rule once kept bench/data/ out of every commit: the benchmark ran here and not on
a clean clone. This test fails on both (a missing file, or one git would not commit).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.realdata import SETS, DataSet

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("ds", SETS, ids=lambda d: d.name)
def test_shipped_with_source_and_licence(ds: DataSet) -> None:
    path = ds.path
    assert path.is_file(), f"{path} is missing: bench/realdata.py cannot run"
    readme = path.parent / "README.md"
    assert readme.is_file(), f"no README (source, what it is) beside {path}"
    licence_file = any(p.name.lower().startswith("licen") for p in path.parent.iterdir())
    assert licence_file or "**Licence.**" in readme.read_text(), f"no licence beside {path}"
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(path.relative_to(ROOT))], cwd=ROOT, check=False
        )
        assert ignored.returncode == 1, f"git ignores {path}: a clone would not have it"
