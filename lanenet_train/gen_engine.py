"""`lanenet-train gen-engine`: a TensorRT engine from an exported ONNX model (flags in the style of TAO's
``gen_trt_engine``).

Without ``--engine_file`` the engine goes where the runtime looks for it (the engine cache, see
:mod:`lanenet_ros.backends.engine_cache`), so running this once before a drive means the node starts without
building: a valid cached engine is kept (``--force`` rebuilds it). With ``--engine_file`` the engine and
its sidecar JSON are written there. Needs TensorRT and an NVIDIA GPU; where there is none it stops at
once with exit code 3 and says so.

Exit codes: 0 built or already valid; 1 invalid model, calibration data or build failure; 2 usage error;
3 this machine cannot build engines (no TensorRT or no GPU).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanenet_ros.backends import BackendError
from lanenet_ros.model_info import ModelError, ModelInfo, read_model_info

EXIT_FAILED, EXIT_USAGE, EXIT_NO_GPU = 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lanenet-train gen-engine`."""
    parser.add_argument("-m", "--model", required=True, type=Path, help="ONNX model from `lanenet-train export`")
    add_engine_arguments(parser)


def add_engine_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                         data_type_default: str | None = "fp16") -> None:
    """The engine flags, shared with `lanenet-train export` (which builds the engine when one is given)."""
    parser.add_argument("--data_type", choices=("fp32", "fp16", "int8"), default=data_type_default,
                        help="engine precision (default fp16; int8 needs --cal_image_dir or --cal_cache_file)")
    parser.add_argument("--engine_file", type=Path, default=None,
                        help="engine to write (default: the runtime's engine cache, where the node looks)")
    parser.add_argument("--max_workspace_size", type=float, default=2.0,
                        help="builder workspace limit in GiB (default %(default)s)")
    parser.add_argument("--batch_size", type=int, default=8,
                        help="images per INT8 calibration batch (dynamic-batch models; default %(default)s)")
    parser.add_argument("--max_batch_size", type=int, default=1,
                        help="largest batch the engine accepts (dynamic-batch models; default %(default)s)")
    parser.add_argument("--batches", type=int, default=10, help="INT8 calibration batches (default %(default)s)")
    parser.add_argument("--cal_image_dir", type=Path, default=None, help="folder of calibration camera images")
    parser.add_argument("--cal_cache_file", type=Path, default=None,
                        help="INT8 calibration table: read when present (calibration skipped), written otherwise")
    parser.add_argument("--timing_cache", type=Path, default=None,
                        help="TensorRT timing cache, reused across builds (default: in the engine cache folder)")
    parser.add_argument("--roi_top", type=float, default=None,
                        help="calibrate with this roi_top instead of the model's (match the node's parameter)")
    parser.add_argument("--cache_dir", type=Path, default=None, help="engine cache folder (default ~/.cache/lanenet)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cached engine is valid")


def engine_flags(args: argparse.Namespace) -> list[str]:
    """The engine flags of ``args`` that differ from gen-engine's defaults, as command-line words."""
    reference = argparse.ArgumentParser(add_help=False)
    add_engine_arguments(reference)
    words = []
    for action in reference._actions:
        value = getattr(args, action.dest, action.default)
        if value is None or (value == action.default and action.dest != "data_type"):
            continue
        flag = action.option_strings[-1]
        words += [flag] if isinstance(action, argparse._StoreTrueAction) else [flag, str(value)]
    return words


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags, before anything is loaded; None when they are fine."""
    if args.max_workspace_size <= 0:
        return f"--max_workspace_size must be positive, got {args.max_workspace_size}"
    if args.max_batch_size < 1 or args.batch_size < 1 or args.batches < 1:
        return "--max_batch_size, --batch_size and --batches must be at least 1"
    has_cache = args.cal_cache_file is not None and args.cal_cache_file.is_file()
    if args.data_type == "int8" and args.cal_image_dir is None and not has_cache:
        return "--data_type int8 needs --cal_image_dir (images to calibrate on) or an existing --cal_cache_file"
    return None


def calibrator_factory(args: argparse.Namespace) -> Callable[[ModelInfo], tuple[Any, int]]:
    """The factory :func:`prepare_engine` calls when it (re)builds an INT8 engine."""
    from lanenet_train.calibration import CalibrationBatches, CalibrationCache, list_images, make_entropy_calibrator

    def factory(info: ModelInfo) -> tuple[Any, int]:
        batch = args.batch_size if info.dynamic_batch else 1
        images = list_images(args.cal_image_dir) if args.cal_image_dir else []
        batches = CalibrationBatches(images, info, batch, args.batches, roi_top=args.roi_top)
        if args.cal_image_dir and len(batches) == 0:
            raise ValueError(f"--cal_image_dir {args.cal_image_dir}: {len(images)} images make no batch of {batch}")
        return make_entropy_calibrator(batches, CalibrationCache(args.cal_cache_file)), batch

    return factory


def run(args: argparse.Namespace) -> int:
    """Build (or confirm) the engine; see the module docstring for exit codes."""
    problem = usage_problem(args)
    if problem:
        print(f"lanenet-train gen-engine: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        read_model_info(args.model)
        from lanenet_ros.backends.cuda_memory import load_cuda
        from lanenet_ros.backends.tensorrt_build import import_tensorrt, prepare_engine

        import_tensorrt()
        load_cuda()
    except ModelError as exc:
        print(f"lanenet-train gen-engine: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BackendError as exc:
        print(f"lanenet-train gen-engine: cannot build TensorRT engines on this machine: {exc}", file=sys.stderr)
        return EXIT_NO_GPU
    return _build(args, prepare_engine)


def _build(args: argparse.Namespace, prepare_engine: Callable[..., Any]) -> int:
    from lanenet_ros.backends.engine_cache import default_cache_dir

    timing = args.timing_cache or Path(args.cache_dir or default_cache_dir()) / "timing.cache"
    start = time.monotonic()
    try:
        prepared = prepare_engine(args.model, args.data_type, engine_file=args.engine_file, cache_dir=args.cache_dir,
                                  max_batch=args.max_batch_size, workspace_gib=args.max_workspace_size,
                                  calibrator_factory=calibrator_factory(args), timing_cache=timing,
                                  force=args.force or args.engine_file is not None)
    except (BackendError, ModelError, OSError, ValueError) as exc:
        print(f"lanenet-train gen-engine: {exc}", file=sys.stderr)
        return EXIT_FAILED
    verb = "kept" if prepared.check.status.value == "hit" else "built"
    print(f"{verb} {prepared.path} ({args.data_type}) in {time.monotonic() - start:.1f} s: {prepared.check.reason}")
    print(f"description and fingerprint: {prepared.path}.json")
    return 0
