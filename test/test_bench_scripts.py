"""The benchmarks under bench/ are not run by the tests (they time or take minutes), but each must still start:
its imports resolve against the package as it is and ``--help`` prints its usage. A module moved or a function
renamed in the package breaks a benchmark here rather than in a user's hands."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = sorted((Path(__file__).resolve().parents[1] / "bench").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(BENCH) >= 5


@pytest.mark.parametrize("script", BENCH, ids=lambda p: p.name)
def test_benchmark_starts(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
