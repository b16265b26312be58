"""tools/device_train.sh: the GPU machine's training wrapper refuses a machine without a GPU before it trains,
passes on the recipe's status, packs what the recipe wrote, and says when its time budget stopped it."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools/device_train.sh"


@pytest.fixture
def no_gpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the script would train")


def run_script(script: Path, args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "HOME": str(tmp_path),
           **env}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)


def stand_in(tmp_path: Path, recipe: str) -> Path:
    """A copy of the wrapper in a layout of its own, beside a stand-in recipe (nothing of this checkout is
    touched): the wrapper's path there."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "lanenet_ros/models").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "tools/device_train.sh")
    (tmp_path / "tools/train_default_model.sh").write_text(recipe)
    return tmp_path / "tools/device_train.sh"


def test_help_prints_the_usage() -> None:
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "device_train.sh [COUNT] [EPOCHS]" in out and "BUDGET_S" in out and "set -uo" not in out


def test_no_gpu_stops_before_any_training(tmp_path: Path, no_gpu: None) -> None:
    run = run_script(SCRIPT, ["30", "1", "1", "0"], tmp_path)
    assert run.returncode == 3, run.stdout + run.stderr
    log = (tmp_path / "out/device_train.log").read_text()
    assert "sees no GPU" in log and "synth" not in log
    assert not (tmp_path / "out/train_results.tgz").exists()


def test_the_recipe_status_and_what_it_wrote_come_back(tmp_path: Path, no_gpu: None) -> None:
    script = stand_in(tmp_path, 'mkdir -p results/run && echo "{}" > results/run/metrics.jsonl && echo "args $*" '
                                '&& exit 7\n')
    run = run_script(script, ["30", "1"], tmp_path, ALLOW_CPU="1")
    log = (tmp_path / "out/device_train.log").read_text()
    assert run.returncode == 7, log
    assert "args 30 1" in log and "ended: exit 7" in log
    listing = subprocess.run(["tar", "tzf", str(tmp_path / "out/train_results.tgz")], capture_output=True,
                             text=True, check=True).stdout.split()
    assert listing == ["results/run/metrics.jsonl"]


def test_a_run_past_its_budget_says_so_and_exits_75(tmp_path: Path, no_gpu: None) -> None:
    run = run_script(stand_in(tmp_path, "sleep 30\n"), [], tmp_path, ALLOW_CPU="1", BUDGET_S="1")
    assert run.returncode == 75
    assert "stopped after 1 s" in (tmp_path / "out/device_train.log").read_text()
