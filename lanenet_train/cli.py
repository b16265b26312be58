"""`lanenet-train`: one command, one sub-command per job (TAO style: train / evaluate / inference / export).

Sub-commands are wired explicitly below: each entry names a module that provides
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
sub-command runs, so ``lanenet-train synth`` does not pay for importing torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("lanenet_train.synth.cli", "render synthetic dash-cam frames with exact lanes (TuSimple/CULane/Apollo)"),
    "convert": ("lanenet_train.data.convert", "TuSimple / CULane / Apollo / image+mask folders -> canonical layout"),
    "stats": ("lanenet_train.data.stats", "class pixel counts and ENet class weights into dataset.json"),
    "train": ("lanenet_train.train", "train LaneNet / DeepLabV3+ from a spec file (TAO style; DDP via torchrun)"),
    "evaluate": ("lanenet_train.evaluate", "TuSimple / CULane / mIoU metrics of a checkpoint, JSON report + plots"),
    "inference": ("lanenet_train.inference", "overlays, lanes.jsonl and an mp4 from images or a video"),
    "average": ("lanenet_train.average", "the weights of checkpoints of one network averaged (e.g. WiSE-FT)"),
    "export": ("lanenet_train.export", "checkpoint -> self-describing ONNX, verified against PyTorch"),
    "gen-engine": ("lanenet_train.gen_engine", "ONNX -> TensorRT engine (fp32/fp16/int8), into the engine cache"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser_for(argv)
    args = parser.parse_args(argv)
    args._argv = argv  # what was typed, for a command that re-runs itself (train --gpus N)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


def build_parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The parser with arguments loaded only for the sub-command named in ``argv``."""
    parser = argparse.ArgumentParser(
        prog="lanenet-train",
        description="Lane-detection training toolkit: data, training, evaluation, export.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == chosen:
            importlib.import_module(module).add_arguments(p)
    return parser


if __name__ == "__main__":
    sys.exit(main())
