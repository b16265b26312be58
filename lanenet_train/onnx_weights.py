"""Rebuild a torch LaneNet from an exported ONNX model's weights: the shipped default model as a checkpoint.

``python -m lanenet_train.onnx_weights lanenet_ros/models/default.onnx lanenet_ros/models/default.pth``

The exporter folds every batch norm that follows a convolution into that convolution (weight scaled, a bias
added), so the ONNX file holds the folded weights, not the original batch-norm parameters. This tool puts
each folded weight back into its convolution and gives the batch norm after it a mean ``m`` and variance
``v`` with ``gamma = sqrt(v + eps)`` and ``beta = folded bias + m``: in evaluation mode the network then
computes exactly what the ONNX graph does, whatever ``m`` and ``v`` are. ``m`` and ``v`` are measured on
rendered synthetic road scenes (the convolution's output statistics), so that in training mode, where batch
norm uses the batch's own statistics, the network also starts close to what it computes in evaluation mode,
and fine-tuning starts from the trained model rather than from a disturbed one.

The result is a weights-only checkpoint (``model_state``, ``model_info``, ``spec``; no optimizer), read
with ``torch.load(weights_only=True)`` like every checkpoint here: ``train_config.pretrained_model_path``
(``train --from-default``), ``export``, ``evaluate`` and ``inference`` accept it.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lanenet_ros.model_info import ModelError, ModelInfo
from lanenet_train.checkpoint import CheckpointError, make_model_info, save_checkpoint
from lanenet_train.models import build_model
from lanenet_train.spec import SpecError, parse_spec, spec_to_dict

CALIBRATION_FRAMES = 16


def _module_path(node_name: str) -> str:
    """``/model/stage1/stage1.0/main/main.1/Conv`` -> ``stage1.0.main.1`` (the exporter's scope names)."""
    parts = node_name.strip("/").split("/")[1:-1]  # drop the export wrapper's "model" and the op name
    return ".".join(p.rsplit(".", 1)[-1] for p in parts)


def _call_order(model: nn.Module, probe: torch.Tensor) -> list[str]:
    """Names of the leaf modules in the order a forward pass calls them."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: order.append(name))
             for name, m in model.named_modules() if not list(m.children())]
    with torch.no_grad():
        model(probe)
    for h in hooks:
        h.remove()
    return order


def read_onnx(path: Path) -> tuple[Any, ModelInfo, dict[str, np.ndarray]]:
    """The ONNX graph, its lanenet description and its initializers by name.

    Raises:
        ValueError: not a lanenet LaneNet ONNX model.
    """
    import onnx
    from onnx import numpy_helper

    from lanenet_ros.model_info import read_model_info

    try:
        info = read_model_info(path)
    except ModelError as exc:
        raise ValueError(str(exc)) from exc
    if info.architecture != "lanenet":
        raise ValueError(f"{path}: a {info.architecture} model; this tool rebuilds LaneNet models")
    proto = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    return proto.graph, info, weights


def spec_for(path: Path, info: ModelInfo, width_multiplier: float) -> Any:
    """The training spec stored with the weights: ``<name>.spec.txt`` beside the model when there is one
    (the spec it was trained with), with the network settings taken from the model itself."""
    text = path.with_suffix(".spec.txt").read_text(encoding="utf-8") if path.with_suffix(".spec.txt").is_file() else ""
    try:
        spec = parse_spec(text, str(path.with_suffix(".spec.txt")))
    except SpecError:
        spec = parse_spec("")
    m = spec.model_config
    m.architecture, m.input_image_width, m.input_image_height = "lanenet", info.input_width, info.input_height
    m.input_image_channels, m.embedding_dim = info.input_channels, info.embedding_dim
    m.width_multiplier = width_multiplier
    m.channel_order, m.mean, m.std, m.roi_top = info.channel_order, list(info.mean), list(info.std), info.roi_top
    m.num_classes = len(info.class_names)
    m.hood_output = info.output_for("hood_logits") is not None  # the bonnet head, whatever the spec says
    m.marking_output = info.output_for("marking_logits") is not None
    m.painted_output = info.output_for("painted_logits") is not None
    spec.train_config.pretrained_model_path = ""
    return spec


def rebuild(path: str | Path, calibration_frames: int = CALIBRATION_FRAMES) -> tuple[nn.Module, dict[str, Any]]:
    """A torch LaneNet computing what the ONNX model computes, and the checkpoint payload to save.

    Args:
        path: a LaneNet model written by ``lanenet-train export``.
        calibration_frames: synthetic road scenes the batch-norm statistics are measured on.

    Returns:
        (model in evaluation mode, payload for :func:`lanenet_train.checkpoint.save_checkpoint`).

    Raises:
        ValueError: not a lanenet LaneNet model, or a weight that finds no place in the torch network.
    """
    path = Path(path)
    graph, info, weights = read_onnx(path)
    c3 = int(weights["model.stage2.3.branch.1.0.weight"].shape[0]) * 4 if "model.stage2.3.branch.1.0.weight" in \
        weights else 128
    spec = spec_for(path, info, c3 / 128)
    model = build_model(spec.model_config).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    probe = torch.zeros(1, info.input_channels, info.input_height, info.input_width)
    order = _call_order(model, probe)
    modules = dict(model.named_modules())
    folded: dict[str, tuple[str, np.ndarray]] = {}  # batch-norm name -> (its convolution, folded bias)
    used = set()
    for node in graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        name = _module_path(node.name)
        if name not in modules and f"binary_decoder.{name}" in modules:
            name = f"binary_decoder.{name}"  # a bonnet model exported before LaneNet called its decoder whole
        conv = modules.get(name)
        if not isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
            raise ValueError(f"{path}: node {node.name} finds no convolution {name!r} in the torch LaneNet")
        state[f"{name}.weight"] = torch.from_numpy(weights[node.input[1]].copy())
        used.add(node.input[1])
        if len(node.input) > 2:
            bias = weights[node.input[2]]
            used.add(node.input[2])
            if conv.bias is not None:
                state[f"{name}.bias"] = torch.from_numpy(bias.copy())
            else:  # folded: the batch norm called next holds it
                bn = order[order.index(name) + 1]
                if not isinstance(modules[bn], nn.BatchNorm2d):
                    raise ValueError(f"{path}: {name} carries a folded bias but {bn} after it is no batch norm")
                folded[bn] = (name, bias)
    for key, value in weights.items():  # the parameters the exporter kept by name (unfolded batch norms)
        if key.startswith("model.") and key not in used and key[len("model."):] in state:
            state[key[len("model."):]] = torch.from_numpy(value.copy())
    for bn in folded:  # identity statistics for now: eval mode computes conv + folded bias exactly
        state[f"{bn}.running_mean"].zero_()
        state[f"{bn}.running_var"].fill_(1.0)
        state[f"{bn}.weight"] = torch.full_like(state[f"{bn}.weight"], 1.0) * (1.0 + modules[bn].eps) ** 0.5
        state[f"{bn}.bias"] = torch.from_numpy(folded[bn][1].copy())
    model.load_state_dict(state)
    if calibration_frames:
        _calibrate(model, info, folded, calibration_frames)
    model_info = make_model_info(spec, list(info.class_names), [tuple(c) for c in info.class_colors],
                                 info.spec_fingerprint)
    model_info["decode"] = list(info.decode)
    payload = {"format": "lanenet-weights", "format_version": 1, "model_state": model.state_dict(),
               "model_info": model_info, "spec": spec_to_dict(spec),
               "source": {"onnx": path.name, "onnx_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                          "batchnorm_statistics_frames": calibration_frames}}
    return model, payload


@torch.no_grad()
def _calibrate(model: nn.Module, info: ModelInfo, folded: dict[str, tuple[str, np.ndarray]], frames: int) -> None:
    """Give every folded batch norm the statistics of its convolution's output on synthetic road scenes,
    keeping what it computes in evaluation mode (see the module docstring)."""
    from lanenet_train.export import verification_batches

    singles, _ = verification_batches(dataclasses.replace(info, dynamic_batch=False), frames, seed=1000)
    batch = torch.from_numpy(np.concatenate(singles))  # rendered road scenes, preprocessed as the runtime does
    modules = dict(model.named_modules())
    sums: dict[str, list[torch.Tensor]] = {}

    def hook(name: str):
        def record(mod: nn.Module, inputs: Any, out: torch.Tensor) -> None:
            x = out.double()
            sums.setdefault(name, []).append(torch.stack([x.mean((0, 2, 3)), (x * x).mean((0, 2, 3))]))
        return record

    handles = [modules[conv].register_forward_hook(hook(bn)) for bn, (conv, _) in folded.items()]
    for chunk in batch.split(4):
        model(chunk)
    for h in handles:
        h.remove()
    for bn, (_, bias) in folded.items():
        first, second = torch.stack(sums[bn]).mean(0)
        mean, var = first.float(), (second - first * first).clamp_min(1e-6).float()
        module = modules[bn]
        module.running_mean.copy_(mean)
        module.running_var.copy_(var)
        module.weight.copy_(torch.sqrt(var + module.eps))
        module.bias.copy_(torch.from_numpy(bias.copy()) + mean)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lanenet_train.onnx_weights", description=__doc__.splitlines()[0])
    parser.add_argument("onnx", type=Path, help="LaneNet ONNX model written by lanenet-train export")
    parser.add_argument("output", type=Path, help="checkpoint to write (.pth)")
    parser.add_argument("--frames", type=int, default=CALIBRATION_FRAMES,
                        help="synthetic scenes for the batch-norm statistics (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        model, payload = rebuild(args.onnx, args.frames)
        error = compare_with_onnx(model, args.onnx)
        save_checkpoint(args.output, payload)
    except (ValueError, OSError, CheckpointError) as exc:
        print(f"onnx_weights: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB); torch and ONNX Runtime outputs agree "
          f"to {json.dumps({k: float(f'{v:.3g}') for k, v in error.items()})} (max abs)")
    return 0


def compare_with_onnx(model: nn.Module, onnx_path: Path, frames: int = 2) -> dict[str, float]:
    """Largest ``|torch - onnx|`` per output on synthetic road scenes (raises ValueError beyond 1e-3 relative)."""
    from lanenet_ros.model_info import read_model_info
    from lanenet_train.export import ExportError, verification_batches, verify

    batches, _ = verification_batches(read_model_info(onnx_path), frames, seed=7)
    try:
        return verify(model, onnx_path, batches, 1e-3)
    except ExportError as exc:
        raise ValueError(f"{onnx_path}: the rebuilt network does not match: {exc}") from exc


if __name__ == "__main__":
    sys.exit(main())
