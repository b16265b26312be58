"""`lanenet-train average`: the weights of several checkpoints of one network, averaged into one.

Weight-space averaging of a fine-tuned network with the one it started from (Wortsman et al., "Robust
fine-tuning of zero-shot models", 2022: WiSE-FT) often keeps most of what fine-tuning gained on the new data
and most of what the starting network knew on the old; averaging the last checkpoints of one run smooths it.
Both ask for checkpoints of one architecture that share a starting point (a fine-tuning run and its
``pretrained_model_path``, or ``--from-default`` and ``lanenet_ros/models/default.pth``); networks trained
apart do not average into a working one.

Every floating-point tensor (weights and batch-norm statistics) is the weighted mean; integer tensors (batch
counters) and the description (spec, model_info with its decoder settings) are the last checkpoint's. The
result is a weights-only checkpoint, as ``default.pth``, that ``export``, ``evaluate`` and
``train_config.pretrained_model_path`` read.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import torch

from lanenet_train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, state_differences


def average_states(states: list[dict[str, torch.Tensor]], weights: list[float],
                   names: list[str]) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts with the same tensors.

    Args:
        states: ``model_state`` dicts, the last one's integer tensors kept.
        weights: one per state, summing to 1.
        names: one per state, for the error message.

    Raises:
        CheckpointError: a state lacks a tensor of the first, has one more, or a shape differs.
    """
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        missing, extra, wrong = state_differences(first, state)
        if missing or extra:
            which = f"lacks {missing[0]}" if missing else f"has {extra[0]} that {names[0]} lacks"
            raise CheckpointError(f"{name}: not the network of {names[0]} ({which}; "
                                  f"{len(missing)} missing, {len(extra)} extra)")
        if wrong:
            key = wrong[0]
            raise CheckpointError(f"{name}: {key} has shape {tuple(state[key].shape)}, "
                                  f"{names[0]} {tuple(first[key].shape)}")
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = sum(w * s[key].to(torch.float64) for w, s in zip(weights, states, strict=True)).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def average_checkpoints(paths: list[Path], weights: list[float] | None = None,
                        key: str | None = None) -> dict[str, Any]:
    """A weights-only checkpoint whose tensors are the weighted mean of the given checkpoints'.

    Args:
        paths: two or more checkpoints of one network.
        weights: one per checkpoint, positive; scaled to sum to 1 (default: equal).
        key: passphrase of encrypted checkpoints (the same for all; plain ones are read too).

    Raises:
        CheckpointError: unreadable checkpoints, different networks, or bad weights.
    """
    if len(paths) < 2:
        raise CheckpointError("average: give at least two checkpoints")
    weights = [1.0] * len(paths) if weights is None else list(weights)
    if len(weights) != len(paths):
        raise CheckpointError(f"average: {len(weights)} weights for {len(paths)} checkpoints")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise CheckpointError(f"average: weights must be >= 0 and not all 0, got {weights}")
    weights = [w / sum(weights) for w in weights]
    ckpts = [load_checkpoint(p, key, allow_plain=True) for p in paths]
    names = [str(p) for p in paths]
    state = average_states([c["model_state"] for c in ckpts], weights, names)
    last = ckpts[-1]
    return {"format": "lanenet-weights", "format_version": 1, "model_state": state,
            "model_info": last["model_info"], "spec": last["spec"],
            "source": {"averaged": [{"checkpoint": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                                     "weight": w} for p, w in zip(paths, weights, strict=True)]}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lanenet-train average`."""
    parser.epilog = ("Example (WiSE-FT: halfway between the default model and a fine-tuning run from it):\n"
                     "  lanenet-train average lanenet_ros/models/default.pth results/realroads/latest.pth "
                     "-o results/realroads/wise.pth")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("checkpoints", nargs="+", type=Path, metavar="CHECKPOINT",
                        help="two or more checkpoints of one network sharing a starting point (.pth); the "
                             "result keeps the last one's spec and decoder settings")
    parser.add_argument("-w", "--weights", type=float, nargs="+", default=None, metavar="W",
                        help="one weight per checkpoint, scaled to sum to 1 (default: equal)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="checkpoint to write (.pth)")
    parser.add_argument("-k", "--key", default=None,
                        help="key of encrypted checkpoints; the output is encrypted with it too")


def run(args: argparse.Namespace) -> int:
    """Average; 0 written, 2 bad checkpoints or weights (nothing written)."""
    try:
        payload = average_checkpoints(args.checkpoints, args.weights, args.key)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_checkpoint(args.output, payload, args.key)
    parts = ", ".join(f"{a['weight']:.3g} x {a['checkpoint']}" for a in payload["source"]["averaged"])
    print(f"wrote {args.output}: {parts}")
    return 0
