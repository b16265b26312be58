"""Checkpoints: written atomically, read without unpickling code, optionally AES-GCM encrypted.

A checkpoint is a dict of tensors and plain data (``model_state``, ``optimizer_state``, ``scheduler_state``,
``epoch``, ``step``, ``rng``, ``spec``, ``model_info``) saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers. With a key
(``-k KEY``) the bytes are sealed with AES-256-GCM under a key derived by scrypt from the passphrase and a
random salt: a wrong key or any modified byte is reported, never silently loaded.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lanenet_ros.fileio import atomic_write_bytes
from lanenet_ros.pipeline import DEFAULT_MODEL

MAGIC = b"LANENET-AESGCM-1\n"
# the default model's network weights beside the runtime's default.onnx (written by tools/onnx_to_checkpoint.py)
DEFAULT_WEIGHTS = DEFAULT_MODEL.with_suffix(".pth")
_SALT, _NONCE = 16, 12
NOT_LANE = re.compile(r"background|void|ignore|arrow|zebra|crosswalk|stop|text|symbol|diamond|bump|other",
                      re.IGNORECASE)
# Apollo codes: <line kind>_<colour>_<use>; only dividing (d, dn, do) and guiding (g) lines run along lanes
APOLLO_CODE = re.compile(r"([a-z]+)_([a-z]+)_([a-z]+)")
APOLLO_LANE_USES = ("d", "dn", "do", "g")


def is_lane_class(name: str) -> bool:
    """Whether a class name is a lane-boundary marking (not background, arrows, stop lines, zebras...)."""
    code = APOLLO_CODE.fullmatch(name.strip().lower())
    if code:
        return code.group(1) in ("s", "b", "d", "ds", "db", "sb", "bs") and code.group(3) in APOLLO_LANE_USES
    return not NOT_LANE.search(name)


class CheckpointError(Exception):
    """A checkpoint cannot be read: missing, encrypted without a key, wrong key, modified or not ours."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message`` of an exception (some have no message at all)."""
    text = (str(exc).strip().splitlines() or [""])[0][:limit]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _derive(key: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(key.encode("utf-8"))


def encrypt(data: bytes, key: str) -> bytes:
    """Seal ``data`` with AES-256-GCM (header authenticated too)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    header = MAGIC + salt + nonce
    return header + AESGCM(_derive(key, salt)).encrypt(nonce, data, header)


def decrypt(blob: bytes, key: str, source: str = "checkpoint") -> bytes:
    """Open bytes sealed by :func:`encrypt`.

    Raises:
        CheckpointError: wrong key, or the file was modified or cut short.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    head = len(MAGIC) + _SALT + _NONCE
    salt, nonce = blob[len(MAGIC):len(MAGIC) + _SALT], blob[len(MAGIC) + _SALT:head]
    try:
        return AESGCM(_derive(key, salt)).decrypt(nonce, blob[head:], blob[:head])
    except (InvalidTag, ValueError):
        raise CheckpointError(f"{source}: cannot decrypt: wrong key (-k) or the file was modified") from None


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], key: str | None = None) -> None:
    """Save a checkpoint atomically (a run killed mid-write leaves the previous file intact).

    Args:
        path: destination file.
        payload: tensors and plain data only (what ``torch.load(weights_only=True)`` accepts).
        key: passphrase to encrypt with, or None.
    """
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, encrypt(data, key) if key else data)


def load_checkpoint(path: str | os.PathLike, key: str | None = None, allow_plain: bool = False) -> dict[str, Any]:
    """Load a checkpoint without unpickling any code.

    Args:
        path: checkpoint file.
        key: passphrase if it was saved encrypted. A key given means the file must be encrypted: an
            unencrypted file is refused (it may have been swapped in for the sealed one).
        allow_plain: accept an unencrypted file even with a key (pretrained weights from elsewhere).

    Returns:
        The payload dict (tensors on the CPU).

    Raises:
        CheckpointError: missing or empty file, an ONNX model, key missing or wrong, an unencrypted file
            where a key was given, modified file, or not a lanenet checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(f"{path}: an exported ONNX model, not a training checkpoint; give a .pth from a "
                              f"training run, or {DEFAULT_WEIGHTS.name} beside default.onnx for the default model "
                              "(train --from-default)")
    blob = path.read_bytes()
    if not blob:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    if blob.startswith(MAGIC):
        if not key:
            raise CheckpointError(f"{path}: checkpoint is encrypted; pass its key with -k KEY")
        blob = decrypt(blob, key, str(path))
    elif key and not allow_plain:
        raise CheckpointError(f"{path}: not encrypted, but a key (-k) was given: a checkpoint saved with a key is "
                              "always encrypted, so this file is not the one that was saved; refused (leave out "
                              "-k to read an unencrypted checkpoint)")
    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or damaged files
        raise CheckpointError(f"{path}: not a readable lanenet checkpoint ({first_line(exc)})") from None
    if not isinstance(payload, dict) or "model_state" not in payload:
        raise CheckpointError(f"{path}: not a lanenet checkpoint (no model_state)")
    return payload


def state_differences(want: dict[str, torch.Tensor], got: dict[str, torch.Tensor]
                      ) -> tuple[list[str], list[str], list[str]]:
    """How the network weights ``got`` differ from ``want``: the tensors ``got`` lacks and those it has over
    (each sorted), and those of another shape (in ``want``'s order). All three empty: the same network."""
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = [k for k in want if k in got and tuple(got[k].shape) != tuple(want[k].shape)]
    return missing, extra, wrong


def make_model_info(spec: Any, class_names: list[str], class_colors: list, fingerprint: str) -> dict[str, Any]:
    """The docs/model_format.md fields known at training time.

    Args:
        spec: the resolved ``Spec``.
        class_names: training class names (0 is background).
        class_colors: RGB colour per class.
        fingerprint: sha256 of the resolved spec.

    Returns:
        A plain dict stored in the checkpoint as ``model_info``.
    """
    m = spec.model_config
    lanenet = m.architecture == "lanenet"
    outputs = ({"binary_logits": "binary_logits", "embedding": "embedding"} if lanenet
               else {"class_logits": "class_logits"})
    if lanenet and m.hood_output:
        outputs["hood_logits"] = "hood_logits"
    if lanenet and m.marking_output:
        outputs["marking_logits"] = "marking_logits"
    if lanenet and m.painted_output:
        outputs["painted_logits"] = "painted_logits"
    lane_ids = [1] if lanenet else [i for i, n in enumerate(class_names) if i and is_lane_class(n)]
    return {
        "format_version": 1, "architecture": m.architecture, "input_name": "input",
        "input_width": m.input_image_width, "input_height": m.input_image_height,
        "input_channels": m.input_image_channels, "channel_order": m.channel_order,
        "mean": list(m.mean), "std": list(m.std), "roi_top": m.roi_top,
        "class_names": list(class_names), "class_colors": [list(map(int, c)) for c in class_colors],
        "lane_class_ids": lane_ids, "outputs": outputs, "embedding_dim": m.embedding_dim if lanenet else 0,
        "spec_fingerprint": fingerprint,
    }


def load_model(path: str | os.PathLike, key: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained network from a checkpoint.

    Args:
        path: checkpoint file.
        key: passphrase if encrypted.

    Returns:
        (model in eval mode on the CPU, checkpoint dict).

    Raises:
        CheckpointError: unreadable checkpoint, or weights that do not fit the stored spec.
    """
    from lanenet_train.models import build_model
    from lanenet_train.spec import spec_from_dict

    ckpt = load_checkpoint(path, key)
    spec = spec_from_dict(ckpt["spec"])
    model = build_model(spec.model_config, num_classes=len(ckpt["model_info"]["class_names"]))
    try:
        model.load_state_dict(ckpt["model_state"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored spec ({first_line(exc)})") from None
    return model.eval(), ckpt
