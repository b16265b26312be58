"""tools/device_train.sh: the GPU machine's training wrapper refuses a machine without a GPU before it trains."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools/device_train.sh"


def test_help_prints_the_usage() -> None:
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "device_train.sh [COUNT] [EPOCHS]" in out and "BUDGET_S" in out and "set -uo" not in out


def test_no_gpu_stops_before_any_training(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the script would train")
    env = {"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "HOME": str(tmp_path)}
    run = subprocess.run(["bash", str(SCRIPT), "30", "1", "1", "0"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 3, run.stdout + run.stderr
    log = (tmp_path / "out/device_train.log").read_text()
    assert "sees no GPU" in log and "synth" not in log
    assert not (tmp_path / "out/train_results.tgz").exists()
