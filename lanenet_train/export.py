"""`lanenet-train export`: a checkpoint becomes one self-describing, verified ONNX file.

The ONNX file carries the model's description (docs/model_format.md) under the metadata key
``lanenet``. Before anything is written at the output path, the exported graph is run with ONNX Runtime
on real inputs (rendered synthetic road scenes, preprocessed as the runtime does) and compared with
PyTorch; a model whose outputs differ by more than the tolerance is refused and nothing is written.

Opset 17 is the default: the newest opset that TensorRT 8.6's ONNX parser reads in full, also read by
TensorRT 10 and by every ONNX Runtime since 1.14.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lanenet_ros.decode.settings import format_pairs, parse_pairs
from lanenet_ros.fileio import remove_orphan_temps
from lanenet_ros.model_info import OUTPUT_MEANINGS, ModelError, ModelInfo, info_from_session, open_onnx_session

DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-3
INPUT_NAME = "input"


class ExportError(Exception):
    """The export failed or did not verify; nothing was written at the output path."""


@dataclass
class ExportReport:
    """What was written and how closely ONNX Runtime agreed with PyTorch."""

    path: Path
    info: ModelInfo
    max_abs_error: dict[str, float] = field(default_factory=dict)
    inputs: str = ""
    n_inputs: int = 0
    tolerance: float = DEFAULT_TOLERANCE


class _TupleOutputs(nn.Module):
    """Exposes a dict-returning model as a tuple in a fixed order (ONNX outputs are positional)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names
        self.train(model.training)  # export restores this mode on the wrapper, and so on the model inside

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(out[n] for n in self.names)


def build_info(model_info: dict[str, Any], output_names: list[str], opset: int, dynamic_batch: bool) -> ModelInfo:
    """The model description to embed: the checkpoint's ``model_info`` plus what export decides.

    Raises:
        ExportError: the checkpoint's model_info is incomplete or inconsistent.
    """
    data = {**model_info, "input_name": INPUT_NAME, "outputs": {n: n for n in output_names},
            "opset": opset, "dynamic_batch": dynamic_batch}
    try:
        return ModelInfo.from_dict(data, "checkpoint model_info")
    except ModelError as exc:
        raise ExportError(str(exc)) from exc


def export_model(model: nn.Module, model_info: dict[str, Any], output: str | Path, *, opset: int = DEFAULT_OPSET,
                 dynamic_batch: bool = False, tolerance: float = DEFAULT_TOLERANCE,
                 verify_images: int = 4, seed: int = 0) -> ExportReport:
    """Export, embed the description, verify against PyTorch, then atomically write ``output``.

    Args:
        model: the trained network (returns a dict of ``binary_logits`` / ``embedding`` / ``class_logits``).
        model_info: the checkpoint's ``model_info`` (docs/model_format.md fields known at training time).
        output: the .onnx file to write.
        opset: ONNX opset.
        dynamic_batch: make the batch dimension dynamic.
        tolerance: largest accepted ``|onnx - torch| / (1 + |torch|)`` over every output element.
        verify_images: number of inputs compared.
        seed: seed of the synthetic scenes used for verification.

    Returns:
        The report (path, embedded description, largest differences per output).

    Raises:
        ExportError: export failed or the outputs disagree beyond ``tolerance``; ``output`` is untouched.
    """
    output = Path(output)
    model = model.eval().cpu()
    probe = torch.zeros(1, model_info.get("input_channels", 3), model_info["input_height"],
                        model_info["input_width"])
    with torch.no_grad():
        names = [n for n in model(probe) if n in OUTPUT_MEANINGS]
    info = build_info(model_info, names, opset, dynamic_batch)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temps(output)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        _torch_export(_TupleOutputs(model, names).eval(), probe, tmp, names, opset, dynamic_batch)
        _embed_info(tmp, info)
        batches, kind = verification_batches(info, verify_images, seed)
        errors = verify(model, tmp, batches, tolerance)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(output, info, errors, kind, len(batches), tolerance)


def _torch_export(wrapper: nn.Module, probe: torch.Tensor, path: Path, names: list[str], opset: int,
                  dynamic_batch: bool) -> None:
    axes = {n: {0: "batch"} for n in [INPUT_NAME, *names]} if dynamic_batch else None
    try:
        with warnings.catch_warnings():
            # the TorchScript-based exporter, chosen on purpose: it needs no onnxscript and writes plain
            # opset-17 graphs that TensorRT 8.6 parses; its deprecation notice is not for our users
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(wrapper, (probe,), str(path), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=names, dynamic_axes=axes,
                              do_constant_folding=True)
    except Exception as exc:  # the exporter raises many types for unsupported operators
        raise ExportError(f"torch.onnx.export failed at opset {opset}: {exc}") from exc


def _embed_info(path: Path, info: ModelInfo) -> None:
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "lanenet", info.to_json()
    proto.producer_name, proto.doc_string = "lanenet-train export", f"lanenet {info.architecture} lane model"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def verification_batches(info: ModelInfo, n: int, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """Inputs for the export check: synthetic road scenes preprocessed like the runtime, else random images.

    Returns:
        (batches of shape (1, C, H, W), or (2, C, H, W) pairs for dynamic-batch models; what they are).
    """
    from lanenet_ros.preprocess import Preprocessor

    if info.input_channels == 3:
        images, kind = _road_images(n, seed)
        preprocess = Preprocessor.from_info(info, reuse_output=False)
        singles = [preprocess(image)[0] for image in images]
    else:  # not a camera model: normalised noise
        shape = (1, info.input_channels, info.input_height, info.input_width)
        rng, kind = np.random.default_rng(seed), "random inputs"
        singles = [rng.standard_normal(shape, dtype=np.float32) for _ in range(n)]
    if info.dynamic_batch and len(singles) > 1:
        singles.append(np.concatenate(singles[:2]))
    return singles, kind


def _road_images(n: int, seed: int) -> tuple[list[np.ndarray], str]:
    try:
        from lanenet_train.synth import SynthConfig, render_frame
    except ImportError:
        rng = np.random.default_rng(seed)
        return [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(n)], "random images"
    config = SynthConfig()
    return [render_frame(config, seed + i).image for i in range(n)], "synthetic road scenes"


def verify(model: nn.Module, onnx_path: Path, batches: list[np.ndarray], tolerance: float) -> dict[str, float]:
    """Run PyTorch and ONNX Runtime on the same batches and compare every output.

    Returns:
        Output name -> largest absolute difference seen.

    Raises:
        ExportError: the embedded description does not fit the graph, or a difference exceeds tolerance.
    """
    try:
        session = open_onnx_session(onnx_path)
        info_from_session(session, str(onnx_path))
    except ModelError as exc:
        raise ExportError(f"the exported model does not read back: {exc}") from exc
    worst: dict[str, float] = {}
    for batch in batches:
        with torch.no_grad():
            expected = {k: v.numpy() for k, v in model(torch.from_numpy(batch)).items()}
        names = [o.name for o in session.get_outputs()]
        got = dict(zip(names, session.run(names, {INPUT_NAME: batch}), strict=True))
        for name in names:
            diff = np.abs(got[name] - expected[name])
            worst[name] = max(worst.get(name, 0.0), float(diff.max()))
            relative = float((diff / (1.0 + np.abs(expected[name]))).max())
            if relative > tolerance:
                raise ExportError(f"ONNX Runtime and PyTorch disagree on {name!r}: relative difference "
                                  f"{relative:.3g} > tolerance {tolerance:g} (max abs {diff.max():.3g}); "
                                  "the model was not written")
    return worst


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lanenet-train export` (TAO style: -m checkpoint, -o output, -k key)."""
    parser.add_argument("-m", "--model", required=True, type=Path, help="trained checkpoint (.pth)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="ONNX file to write")
    parser.add_argument("-k", "--key", default=None, help="checkpoint encryption key, if it was saved with one")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help=f"ONNX opset (default {DEFAULT_OPSET}: TensorRT 8.6-10 and ONNX Runtime >= 1.14)")
    parser.add_argument("--dynamic-batch", action="store_true", help="make the batch dimension dynamic")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="largest accepted |onnx - torch| / (1 + |torch|) (default %(default)g)")
    parser.add_argument("--verify-images", type=int, default=4, help="inputs compared (default %(default)s)")
    parser.add_argument("--decode", action="append", default=[], metavar="NAME=VALUE",
                        help="decoder setting the model is to be run with, kept in its description; the "
                             "training spec's evaluation_config.decode settings are kept, and one of the same "
                             "name is replaced")
    from lanenet_train.gen_engine import add_engine_arguments

    engine = parser.add_argument_group(
        "TensorRT engine (TAO spelling)", "with --data_type or --engine_file, the exported model is then built into "
        "a TensorRT engine as `lanenet-train gen-engine` does (see its --help)")
    add_engine_arguments(engine, data_type_default=None)


# exit codes (docs/export.md): 0 written (and the engine built when asked), 1 export or verification failed,
# 2 bad checkpoint, key or flags, 3 ONNX written but this machine cannot build the TensorRT engine asked for
EXIT_FAILED, EXIT_USAGE, EXIT_NO_ENGINE = 1, 2, 3


def run(args: argparse.Namespace) -> int:
    """Export a checkpoint (then build its engine when engine flags are given); see the exit codes above."""
    from lanenet_train.checkpoint import CheckpointError, load_model
    from lanenet_train.gen_engine import usage_problem

    engine = args.data_type is not None or args.engine_file is not None
    if engine:
        args.data_type = args.data_type or "fp16"
        problem = usage_problem(args)
        if problem:
            print(f"lanenet-train export: {problem}", file=sys.stderr)
            return EXIT_USAGE
    try:
        model, checkpoint = load_model(args.model, key=args.key)
        spec_decode = checkpoint.get("spec", {}).get("evaluation_config", {}).get("decode", [])
        settings = format_pairs(parse_pairs([*spec_decode, *args.decode]))  # a bad one fails here, named
    except CheckpointError as exc:
        print(f"lanenet-train export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, KeyError) as exc:
        print(f"lanenet-train export: {args.model}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = export_model(model, {**checkpoint["model_info"], "decode": settings}, args.output, opset=args.opset,
                              dynamic_batch=args.dynamic_batch, tolerance=args.tolerance,
                              verify_images=args.verify_images)
    except (ExportError, OSError, ValueError, KeyError) as exc:
        print(f"lanenet-train export: {args.model}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    errors = ", ".join(f"{k} {v:.2e}" for k, v in report.max_abs_error.items())
    print(f"wrote {report.path} ({report.info.architecture}, {report.info.input_width}x{report.info.input_height}, "
          f"opset {report.info.opset})\nverified on {report.n_inputs} batches of {report.inputs}: "
          f"max |onnx - torch| {errors}, within tolerance {report.tolerance:g}", flush=True)
    return build_engine(args) if engine else 0


def build_engine(args: argparse.Namespace) -> int:
    """The engine step of ``export --data_type/--engine_file ...``: gen-engine on the model just written.
    Where this machine cannot build engines, say exactly what to run on one that can."""
    import shlex

    from lanenet_train import gen_engine

    command = ["lanenet-train", "gen-engine", "-m", str(args.output), *gen_engine.engine_flags(args)]
    code = gen_engine.run(argparse.Namespace(**{**vars(args), "model": args.output}))
    if code == gen_engine.EXIT_NO_GPU:
        print(f"lanenet-train export: {args.output} is written, but no engine was built here; on a machine with "
              f"TensorRT and an NVIDIA GPU run: {shlex.join(command)}", file=sys.stderr)
        return EXIT_NO_ENGINE
    return code
