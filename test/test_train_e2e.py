"""End to end from the command line: train a few epochs, the loss falls, an interrupted run resumes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from train_fixture import make_dataset

REPO = Path(__file__).resolve().parent.parent


def cli(*args):
    return subprocess.run([sys.executable, "-m", "lanenet_train.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_training_lowers_the_loss_and_resumes(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=16, n_val=4, width=256, height=128)
    spec = tmp_path / "spec.txt"
    spec.write_text(f"""
dataset_config {{ data_sources {{ dataset_root: "{data}" }} validation_data_sources {{ dataset_root: "{data}" }}
                  num_workers: 1 }}
model_config {{ input_image_width: 128 input_image_height: 64 width_multiplier: 0.5 }}
train_config {{ batch_size: 4 epochs: 6 log_interval: 1
  learning_rate {{ soft_start_annealing_schedule {{ min_learning_rate: 1e-4 max_learning_rate: 5e-3
                                                     soft_start: 0.1 annealing: 0.7 }} }} }}
augmentation_config {{ horizontal_flip: 0.5 crop_and_resize_prob: 0.3 zoom_max: 1.3 }}""")
    run = tmp_path / "run"
    first = cli("train", "-e", spec, "-r", run, "-k", "k3y", "train_config.epochs=3")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = cli("train", "-e", spec, "-r", run, "-k", "k3y", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "epoch" in r]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4, 5, 6]  # resumed at epoch 4, not from scratch
    losses = [r["loss"] for r in records if "step" in r]
    assert len(losses) == 24
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:4]) / 4
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]
    assert sorted(p.name for p in run.glob("model_epoch_*.pth")) == [f"model_epoch_{e:03d}.pth" for e in range(1, 7)]
    evaluated = cli("evaluate", "-e", spec, "-m", run / "latest.pth", "-k", "k3y")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads((run / "evaluation" / "report.json").read_text())
    assert report["segmentation"]["per_class_iou"]["lane"] > 0.2
