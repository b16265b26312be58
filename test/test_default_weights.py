"""The default model's weights as a checkpoint (lanenet_ros/models/default.pth, rebuilt from default.onnx by
lanenet_train.onnx_weights): the same outputs as the ONNX model, and fine-tuning starts from it."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lanenet_ros.pipeline import DEFAULT_MODEL
from lanenet_train.checkpoint import DEFAULT_WEIGHTS, load_checkpoint, load_model
from lanenet_train.onnx_weights import compare_with_onnx, rebuild

REPO = Path(__file__).resolve().parent.parent


def test_rebuilt_torch_lanenet_gives_the_onnx_models_outputs() -> None:
    model, payload = rebuild(DEFAULT_MODEL, calibration_frames=2)
    errors = compare_with_onnx(model, DEFAULT_MODEL, frames=2)  # raises beyond 1e-3 relative
    assert set(errors) == {"binary_logits", "embedding"} and max(errors.values()) < 1e-3
    assert payload["model_info"]["input_width"] == 512 and payload["spec"]["model_config"]["width_multiplier"] == 1.0


def test_shipped_weights_are_small_safe_and_in_step_with_default_onnx() -> None:
    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size < 4 * 2**20
    ckpt = load_checkpoint(DEFAULT_WEIGHTS)  # torch.load(weights_only=True) inside
    assert ckpt["source"]["onnx_sha256"] == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest(), \
        "default.onnx changed: run python -m lanenet_train.onnx_weights lanenet_ros/models/default.onnx " \
        "lanenet_ros/models/default.pth"
    model, _ = load_model(DEFAULT_WEIGHTS)
    assert max(compare_with_onnx(model, DEFAULT_MODEL, frames=1).values()) < 1e-3


def test_batch_norm_statistics_keep_training_mode_close_to_evaluation_mode() -> None:
    """In training mode batch norm uses the batch's statistics: with the measured ones the network computes
    nearly what it does in evaluation mode, so fine-tuning starts from the trained model."""
    from lanenet_ros.model_info import read_model_info
    from lanenet_train.export import verification_batches

    model, _ = load_model(DEFAULT_WEIGHTS)
    batches, _ = verification_batches(read_model_info(DEFAULT_MODEL), 4, seed=99)
    x = torch.from_numpy(__import__("numpy").concatenate(batches))
    with torch.no_grad():
        want = model.eval()(x)["binary_logits"].argmax(1)
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout2d):
                m.eval()
        got = model(x)["binary_logits"].argmax(1)
    assert (want == got).float().mean() > 0.97


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "lanenet_train.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_fine_tuning_from_the_default_model_starts_where_it_left_off(tmp_path) -> None:
    """The documented path on generated TuSimple data: convert, stats, train --from-default. Its first loss is
    far below a run from scratch on the same batches."""
    assert cli("synth", "--format", "tusimple", "--out", tmp_path / "raw", "--count", "8", "--width", "640",
               "--height", "360", "--nproc", "1", "--seed", "5").returncode == 0
    assert cli("convert", "--format", "tusimple", "--input", tmp_path / "raw", "--output",
               tmp_path / "data" / "my_tusimple", "--nproc", "1").returncode == 0
    assert cli("stats", "--dataset", tmp_path / "data" / "my_tusimple", "--nproc", "1").returncode == 0
    spec = REPO / "config" / "specs" / "lanenet_finetune_default.txt"
    small = ["train_config.batch_size=2", "train_config.epochs=1", "train_config.max_steps_per_epoch=3",
             "train_config.log_interval=1", "dataset_config.num_workers=0", "model_config.input_image_width=256",
             "model_config.input_image_height=128", "augmentation_config.output_width=256",
             "augmentation_config.output_height=128", "train_config.validation_interval=0"]
    tuned = cli("train", "-e", spec, "-r", "results/ft", "--from-default", *small, cwd=tmp_path)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    scratch = cli("train", "-e", spec, "-r", "results/scratch", *small, cwd=tmp_path)
    assert scratch.returncode == 0, scratch.stderr[-3000:]

    def losses(run: str) -> list[float]:
        lines = (tmp_path / "results" / run / "metrics.jsonl").read_text().splitlines()
        return [r["segmentation"] for r in map(json.loads, lines) if "step" in r]

    assert len(losses("ft")) == 3
    assert losses("ft")[0] < 0.5 * losses("scratch")[0]
    onnx = cli("train", "-e", spec, "-r", "results/x", f"train_config.pretrained_model_path={DEFAULT_MODEL}",
               *small, cwd=tmp_path)
    assert onnx.returncode == 2 and "an exported ONNX model, not a training checkpoint" in onnx.stderr
    assert "Traceback" not in onnx.stderr


def test_a_bonnet_model_exported_before_the_decoder_was_called_whole_is_rebuilt(tmp_path, monkeypatch) -> None:
    # such an export names the binary decoder's nodes up4/..., up2/..., head/... without binary_decoder/
    from lanenet_train.checkpoint import make_model_info
    from lanenet_train.export import export_model
    from lanenet_train.models import build_model
    from lanenet_train.models.lanenet import LaneNet
    from lanenet_train.spec import parse_spec

    def parts_forward(self, x):
        skip2 = self.initial(x)
        skip4 = self.stage1(skip2)
        shared = self.stage2(skip4)
        b = self.binary_decoder
        features = b.up2(b.up4(self.binary_stage3(shared), skip4), skip2)
        return {"binary_logits": b.head(features),
                "embedding": self.embedding_decoder(self.embedding_stage3(shared), skip4, skip2),
                **self.heads(shared, skip4)}

    spec = parse_spec("model_config { input_image_width: 128 input_image_height: 64 width_multiplier: 0.125 "
                      "hood_output: true }")
    torch.manual_seed(0)
    model = build_model(spec.model_config).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # as if trained: distinct
        for t in (bn.weight.data, bn.bias.data, bn.running_mean):  # folded biases (equal ones are deduplicated)
            t.uniform_(0.5, 1.5)
    info = make_model_info(spec, ["background", "lane"], [[0, 0, 0], [255, 255, 255]], "test")
    path = tmp_path / "old.onnx"
    with monkeypatch.context() as m:
        m.setattr(LaneNet, "forward", parts_forward)
        export_model(model, info, path, verify_images=1)
    import onnx
    assert any(n.name.startswith("/model/up4/") for n in onnx.load(str(path)).graph.node)
    rebuilt, _ = rebuild(path, calibration_frames=1)
    assert max(compare_with_onnx(rebuilt, path, frames=1).values()) < 1e-3
