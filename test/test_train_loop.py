"""The `train` command: checkpoints, exact resume, schedules, and 2-process DDP (gloo) = 1 process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_fixture import make_dataset

from lanenet_train.checkpoint import load_checkpoint
from lanenet_train.cli import main
from lanenet_train.models import build_model
from lanenet_train.schedules import poly, soft_start_annealing
from lanenet_train.spec import spec_from_dict

REPO = Path(__file__).resolve().parent.parent


def write_spec(tmp_path, arch="lanenet", extra=""):
    data = make_dataset(tmp_path / "data", n_train=8, n_val=2, classes=1 if arch == "lanenet" else 3)
    spec = tmp_path / "spec.txt"
    spec.write_text(f"""
dataset_config {{ data_sources {{ dataset_root: "{data}" }} validation_data_sources {{ dataset_root: "{data}" }}
                  num_workers: 0 }}
model_config {{ architecture: "{arch}" input_image_width: 64 input_image_height: 32 width_multiplier: 0.25
               aspp_channels: 16 dropout: 0 }}
train_config {{ batch_size: 4 epochs: 2 log_interval: 1 }}
{extra}""")
    return spec


def steps(results):
    return [json.loads(line) for line in (results / "metrics.jsonl").read_text().splitlines()]


def test_schedules_follow_their_formulas():
    lrs = [soft_start_annealing(p / 10, 1e-5, 1e-3, 0.2, 0.7) for p in range(11)]
    assert lrs[0] == pytest.approx(1e-5) and lrs[1] == pytest.approx(1e-4)  # log-linear: halfway = geometric mean
    assert lrs[2] == lrs[5] == lrs[6] == pytest.approx(1e-3) and lrs[10] == pytest.approx(1e-5)
    assert lrs[7] > lrs[8] > lrs[9] > lrs[10]
    assert poly(0.5, 0.01, 0.9) == pytest.approx(0.01 * 0.5**0.9) and poly(1.0, 0.01, 0.9, 1e-4) == 1e-4


@pytest.mark.parametrize("arch", ["lanenet", "deeplabv3plus"])
def test_train_writes_checkpoints_and_resume_continues_exactly(tmp_path, arch):
    spec = write_spec(tmp_path, arch)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", "-e", str(spec), "-r", str(full), "-k", "key"]) == 0
    # a run killed during epoch 2 has only the epoch-1 checkpoint as latest.pth
    part.mkdir()
    (part / "latest.pth").write_bytes((full / "model_epoch_001.pth").read_bytes())
    (part / "metrics.jsonl").write_text("".join(line + "\n" for line in
                                                (full / "metrics.jsonl").read_text().splitlines()[:3]))
    assert main(["train", "-e", str(spec), "-r", str(part), "-k", "key", "--resume"]) == 0
    a, b = load_checkpoint(full / "latest.pth", "key"), load_checkpoint(part / "latest.pth", "key")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"] == 4
    for name, value in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][name], value, msg=name)
    assert [s["loss"] for s in steps(full) if "step" in s] == \
        pytest.approx([s["loss"] for s in steps(part) if "step" in s])
    assert (full / "model_epoch_001.pth").exists() and "architecture" in (full / "spec.txt").read_text()
    assert a["model_info"]["architecture"] == arch and a["spec"]["model_config"]["architecture"] == arch


def test_fine_tuning_starts_from_the_pretrained_weights_and_refuses_another_network(tmp_path, capsys):
    spec = write_spec(tmp_path)
    first, tuned = tmp_path / "first", tmp_path / "tuned"
    assert main(["train", "-e", str(spec), "-r", str(first), "train_config.epochs=1"]) == 0
    pretrained = load_checkpoint(first / "latest.pth")["model_state"]
    assert main(["train", "-e", str(spec), "-r", str(tuned), "train_config.epochs=1",
                 "train_config.learning_rate.soft_start_annealing_schedule.max_learning_rate=1e-9",
                 "train_config.learning_rate.soft_start_annealing_schedule.min_learning_rate=1e-9",
                 f"train_config.pretrained_model_path={first / 'latest.pth'}"]) == 0
    # a vanishing learning rate: the fine-tuned weights are the pretrained ones (batch-norm statistics aside)
    tuned_state = load_checkpoint(tuned / "latest.pth")["model_state"]
    conv = [k for k in pretrained if k.endswith("weight") and pretrained[k].ndim == 4]
    assert conv and all(torch.allclose(tuned_state[k], pretrained[k], atol=1e-6) for k in conv)
    fresh = load_checkpoint(tuned / "latest.pth")
    assert fresh["epoch"] == 1  # a new run: its own epochs and schedule, not the pretrained run's
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "other"), "model_config.width_multiplier=0.5",
                 f"train_config.pretrained_model_path={first / 'latest.pth'}"]) == 2
    err = capsys.readouterr().err
    assert "pretrained_model_path" in err and "does not match model_config" in err and "shape" in err
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "none"),
                 f"train_config.pretrained_model_path={tmp_path / 'missing.pth'}"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_bad_override_is_a_clear_error(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "r"), "train_config.batch_sise=2"]) == 2
    assert "did you mean 'batch_size'" in capsys.readouterr().err
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "r"), "train_config.batch_size=64"]) == 2
    assert "exceeds the 8 training samples" in capsys.readouterr().err


def test_two_gloo_processes_give_the_loss_of_one_process_on_the_same_global_batch(tmp_path):
    spec = write_spec(tmp_path)
    # SGD: Adam's g / sqrt(v) would blow float noise in near-zero gradients up to full-size steps
    args = ["train", "-e", str(spec), "--device", "cpu", "train_config.epochs=1", "train_config.optimizer=sgd"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    single = subprocess.run([sys.executable, "-m", "lanenet_train.cli", *args, "-r", str(tmp_path / "one")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "lanenet_train.cli", *args, "-r", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one, two = steps(tmp_path / "one"), steps(tmp_path / "two")
    assert len(one) == len(two) == 3  # two steps and the epoch line
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "segmentation", "embedding", "val_loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4), key
    # same weights after the steps, up to float32 noise (a deep BN net amplifies last-bit differences;
    # in float64 the two runs agree to 1e-12): compare the difference with the size of the update
    a, b = load_checkpoint(tmp_path / "one" / "latest.pth"), load_checkpoint(tmp_path / "two" / "latest.pth")
    torch.manual_seed(a["spec"]["train_config"]["seed"])
    start = build_model(spec_from_dict(a["spec"]).model_config).state_dict()
    params = [k for k, v in start.items() if v.is_floating_point() and "running" not in k]
    update = torch.cat([(a["model_state"][k] - start[k]).flatten() for k in params]).norm()
    apart = torch.cat([(a["model_state"][k] - b["model_state"][k]).flatten() for k in params]).norm()
    assert update > 0 and apart < 0.01 * update


def test_trainer_leaves_the_given_spec_as_it_was_and_keeps_what_the_data_resolves(tmp_path):
    import copy

    from lanenet_train.distributed import World
    from lanenet_train.spec import load_spec, spec_to_dict
    from lanenet_train.train import Trainer

    weights = "loss_config { " + " ".join(f"class_weights: {w}" for w in (1, 2, 3, 4)) + " }"
    spec = load_spec(write_spec(tmp_path, "deeplabv3plus", weights))
    given = copy.deepcopy(spec_to_dict(spec))
    trainer = Trainer(spec, tmp_path / "run", World())
    assert spec_to_dict(spec) == given and spec.model_config.num_classes == 0  # 0: from the dataset
    assert trainer.spec.model_config.num_classes == 4 and trainer.spec.loss_config.class_weights == [1, 2, 3, 4]
    assert trainer.settings.class_weights == [1, 2, 3, 4] and len(trainer.model_info["class_names"]) == 4


def test_loss_settings_take_every_loss_field_of_the_spec_by_name():
    from dataclasses import fields

    from lanenet_train.engine import LossSettings
    from lanenet_train.spec import parse_spec

    values = {f.name: 0.25 + i for i, f in enumerate(fields(LossSettings)) if f.name not in
              ("class_weights", "ignore_index", "hard_negative_margin", "regularizer", "regularizer_weight",
               "hard_negative_fraction", "painted_margin")}
    text = "loss_config { " + " ".join(f"{k}: {v}" for k, v in values.items()) + \
        " ignore_index: 7 hard_negative_margin: 9 hard_negative_fraction: 0.5 painted_margin: 3 }" \
        " train_config { regularizer { type: L2 weight: 0.125 } }"
    settings = LossSettings.from_spec(parse_spec(text, "x", check_paths=False), [1.0, 4.0])
    assert {k: getattr(settings, k) for k in values} == values
    assert (settings.ignore_index, settings.hard_negative_margin, settings.hard_negative_fraction,
            settings.painted_margin) == (7, 9, 0.5, 3)
    assert (settings.regularizer, settings.regularizer_weight, settings.class_weights) == ("L2", 0.125, [1.0, 4.0])
