"""What a new user meets first (issues 23 and 24): clean one-line errors, -k that enforces encryption,
damaged or killed runs, a resumed log that reads like an uninterrupted one, and the instance-label check."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_fixture import make_dataset

from lanenet_ros.fileio import atomic_write_bytes
from lanenet_train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lanenet_train.cli import main

REPO = Path(__file__).resolve().parent.parent
NO_CUDA = not torch.cuda.is_available()


def write_spec(root: Path, data: Path, extra: str = "") -> Path:
    spec = root / "spec.txt"
    spec.write_text(f"""
dataset_config {{ data_sources {{ dataset_root: "{data}" }} validation_data_sources {{ dataset_root: "{data}" }}
                  num_workers: 0 }}
model_config {{ input_image_width: 64 input_image_height: 32 width_multiplier: 0.25 }}
train_config {{ batch_size: 2 epochs: 2 log_interval: 1 }}
evaluation_config {{ batch_size: 2 num_worst_frames: 1 }}
{extra}""")
    return spec


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    """A finished 2-epoch run (4 steps), unencrypted."""
    root = tmp_path_factory.mktemp("run2")
    data = make_dataset(root / "data", n_train=4, n_val=2)
    spec = write_spec(root, data)
    assert main(["train", "-e", str(spec), "-r", str(root / "run")]) == 0
    return root, spec, data


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_key_given_means_sealed_or_refused(run2, tmp_path, capsys):
    root, _, _ = run2
    plain = root / "run" / "latest.pth"
    with pytest.raises(CheckpointError, match="not encrypted, but a key"):
        load_checkpoint(plain, "anykey")
    assert load_checkpoint(plain)["epoch"] == 2  # without a key it reads
    out = tmp_path / "x.onnx"
    assert main(["export", "-m", str(plain), "-o", str(out), "-k", "anykey"]) == 2
    err = capsys.readouterr().err
    assert "not encrypted, but a key (-k) was given" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_empty_checkpoint_is_one_line_for_export_and_resume(run2, tmp_path, capsys):
    root, spec, _ = run2
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    (run / "latest.pth").write_bytes(b"")
    assert main(["export", "-m", str(run / "latest.pth"), "-o", str(tmp_path / "x.onnx")]) == 2
    assert main(["train", "-e", str(spec), "-r", str(run), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lanenet-train export: {run / 'latest.pth'}: empty file (0 bytes), not a checkpoint",
                   f"error: {run / 'latest.pth'}: empty file (0 bytes), not a checkpoint"]


def test_an_onnx_model_as_checkpoint_says_what_to_use(tmp_path, capsys):
    model = REPO / "lanenet_ros" / "models" / "default.onnx"
    assert main(["export", "-m", str(model), "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "an exported ONNX model, not a training checkpoint" in err and "default.pth" in err


def test_temporary_files_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "latest.pth"
    # a real writer killed (SIGKILL) after writing its temporary file, before the rename
    child = subprocess.run([sys.executable, "-c", f"""
import os, signal
import lanenet_ros.fileio as f
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
f.atomic_write_bytes({str(target)!r}, b"x" * 100000)
"""], timeout=60)
    assert child.returncode == -signal.SIGKILL
    orphans = list(tmp_path.glob(".latest.pth.*.tmp"))
    assert len(orphans) == 1 and not target.exists()
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and not list(tmp_path.glob(".*.tmp"))


def test_temporary_file_of_a_running_writer_is_kept(tmp_path):
    live = tmp_path / f".latest.pth.{os.getppid()}.abc.tmp"  # our parent process is alive
    live.write_bytes(b"in progress")
    atomic_write_bytes(tmp_path / "latest.pth", b"new")
    assert live.exists()


def test_resumed_log_reads_like_an_uninterrupted_one(run2, tmp_path, capsys):
    """A run killed in epoch 2 after logging its steps but before its checkpoint: the resumed run logs epoch 2
    again; metrics.jsonl must hold each step and epoch once, as the uninterrupted run's does."""
    root, spec, _ = run2
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    shutil.copyfile(run / "model_epoch_001.pth", run / "latest.pth")  # the last checkpoint before the kill
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')  # a line cut short by the kill
    assert main(["train", "-e", str(spec), "-r", str(run), "--resume"]) == 0
    uninterrupted, resumed = records(root / "run" / "metrics.jsonl"), records(run / "metrics.jsonl")
    assert [(r.get("step"), r.get("epoch")) for r in resumed] == [(r.get("step"), r.get("epoch"))
                                                                   for r in uninterrupted]
    assert resumed[-1]["train_loss"] == pytest.approx(uninterrupted[-1]["train_loss"], rel=1e-5)


def test_resuming_a_finished_run_says_so(run2, capsys):
    root, spec, _ = run2
    before = (root / "run" / "metrics.jsonl").read_text()
    assert main(["train", "-e", str(spec), "-r", str(root / "run"), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "already finished its 2 epochs" in out and "train_config.epochs=N" in out
    assert (root / "run" / "metrics.jsonl").read_text() == before


def test_embedding_without_instance_labels_is_refused_unless_turned_off(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2, instances=False)
    spec = write_spec(tmp_path, data)
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "run"), "train_config.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "no training sample has instance labels" in err and "loss_config.embedding_weight=0" in err
    assert not (tmp_path / "run" / "latest.pth").exists()
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "run"), "train_config.epochs=1",
                 "loss_config.embedding_weight=0"]) == 0
    assert all("embedding" not in r for r in records(tmp_path / "run" / "metrics.jsonl"))


@pytest.mark.skipif(not NO_CUDA, reason="checks the message of a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line_in_every_command(run2, tmp_path, capsys):
    root, spec, _ = run2
    model = str(root / "run" / "latest.pth")
    commands = [["train", "-e", str(spec), "-r", str(tmp_path / "t"), "--device", "cuda"],
                ["evaluate", "-e", str(spec), "-m", model, "--device", "cuda"],
                ["inference", "-e", str(spec), "-m", model, "-i", str(root / "data" / "images" / "val"),
                 "-o", str(tmp_path / "inf"), "--device", "cuda"],
                ["train", "-e", str(spec), "-r", str(tmp_path / "g"), "--gpus", "2"]]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("CUDA" in err[0] or "cuda" in err[0]), (argv, err)
    # --gpus tells the exact command for CPU processes instead
    assert "torch.distributed.run --standalone --nproc_per_node 2 -m lanenet_train.cli train -e" in err[0]
    assert not (tmp_path / "t").exists()


def test_torchrun_command_drops_gpus_and_keeps_the_rest():
    from lanenet_train.distributed import torchrun_command

    cmd = torchrun_command(["-e", "s.txt", "--gpus", "4", "-r", "out", "--gpus=4", "train_config.epochs=3"], 4)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4", "-m",
                       "lanenet_train.cli", "train", "-e", "s.txt", "-r", "out", "train_config.epochs=3"]


@pytest.mark.slow
def test_gpus_with_device_cpu_starts_the_torchrun_training(run2, tmp_path):
    root, spec, _ = run2
    done = subprocess.run([sys.executable, "-m", "lanenet_train.cli", "train", "-e", str(spec), "-r",
                           str(tmp_path / "ddp"), "--gpus", "2", "--device", "cpu"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "starting 2 processes" in done.stdout
    one, two = records(root / "run" / "metrics.jsonl"), records(tmp_path / "ddp" / "metrics.jsonl")
    assert [(r.get("step"), r.get("epoch")) for r in one] == [(r.get("step"), r.get("epoch")) for r in two]
    assert (tmp_path / "ddp" / "latest.pth").is_file()  # (losses differ a little: dropout draws per process)


def test_evaluate_prints_a_summary_and_the_report_path(run2, tmp_path, capsys):
    root, spec, _ = run2
    assert main(["evaluate", "-e", str(spec), "-m", str(root / "run" / "latest.pth"), "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) <= 6, out
    assert out[0] == "frames: 2" and any(line.startswith("TuSimple: accuracy") for line in out)
    assert any(line.startswith("segmentation: mIoU") and "lane IoU" in line for line in out)
    assert out[-1].endswith(str(tmp_path / "report.json"))
    assert "confusion_matrix" in (tmp_path / "report.json").read_text()


def test_export_with_engine_flags_writes_the_onnx_then_says_what_to_run(run2, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed: gen-engine would build the engine here")
    except ImportError:
        pass
    root, _, _ = run2
    out, engine = tmp_path / "m.onnx", tmp_path / "m.engine"
    code = main(["export", "-m", str(root / "run" / "latest.pth"), "-o", str(out), "--data_type", "fp16",
                 "--engine_file", str(engine), "--batch_size", "4", "--max_workspace_size", "1",
                 "--verify-images", "1"])
    assert code == 3 and out.is_file() and not engine.exists()
    err = capsys.readouterr().err
    assert (f"run: lanenet-train gen-engine -m {out} --data_type fp16 --engine_file {engine} "
            "--max_workspace_size 1.0 --batch_size 4") in err
    assert main(["export", "-m", str(root / "run" / "latest.pth"), "-o", str(out), "--data_type", "int8"]) == 2
    assert "--cal_image_dir" in capsys.readouterr().err


def test_plain_pretrained_weights_are_read_by_a_run_with_a_key(run2, tmp_path):
    root, spec, _ = run2
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "ft"), "-k", "pw", "train_config.epochs=1",
                 f"train_config.pretrained_model_path={root / 'run' / 'latest.pth'}"]) == 0
    with pytest.raises(CheckpointError, match="encrypted"):
        load_checkpoint(tmp_path / "ft" / "latest.pth")


def test_weights_only_file_cannot_be_resumed(run2, tmp_path, capsys):
    root, spec, _ = run2
    ckpt = load_checkpoint(root / "run" / "latest.pth")
    save_checkpoint(tmp_path / "run" / "latest.pth", {k: ckpt[k] for k in ("model_state", "model_info", "spec")})
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "run"), "--resume"]) == 2
    assert "network weights only" in capsys.readouterr().err


def test_pretrained_weights_trained_on_other_input_settings_are_named(run2, tmp_path, capsys):
    root, spec, _ = run2
    assert main(["train", "-e", str(spec), "-r", str(tmp_path / "ft"), "train_config.epochs=1",
                 "model_config.roi_top=0.25", f"train_config.pretrained_model_path={root / 'run' / 'latest.pth'}"]) == 0
    assert "trained with other input settings (roi_top 0.0 here 0.25)" in capsys.readouterr().err
