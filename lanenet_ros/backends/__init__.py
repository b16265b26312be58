"""Inference backends: one interface over a TensorRT engine and ONNX Runtime (TensorRT / CUDA / CPU).

``create_backend(path, "auto")`` tries, in order, a native TensorRT engine, ONNX Runtime with the TensorRT
execution provider, with CUDA, and on the CPU; it keeps the first that opens and records why the others
were skipped (``backend.skipped``). A model that is itself wrong raises :class:`ModelError` at once instead
of being retried on the next backend. TensorRT and CUDA modules are imported only by the backends that use
them, so everything works on a machine with only ``onnxruntime``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lanenet_ros.model_info import ENGINE_SUFFIXES, ModelInfo

KINDS = ("auto", "tensorrt", "onnxruntime", "onnxruntime-trt", "onnxruntime-cuda", "onnxruntime-cpu")
AUTO_ORDER = ("tensorrt", "onnxruntime-trt", "onnxruntime-cuda", "onnxruntime-cpu")
CPU_KIND = "onnxruntime-cpu"
PRECISIONS = ("fp32", "fp16", "int8")
OPTIONS = ("precision", "intra_op_threads", "cache_dir", "reuse_outputs", "max_batch")


class BackendError(Exception):
    """A backend that cannot run here (library, GPU or provider missing); the message says which and why."""


class Backend(Protocol):
    """What the pipeline needs from an inference backend."""

    name: str
    info: ModelInfo
    skipped: list[str]
    max_batch: int | None  # the most images one infer call takes; None: as the model allows (dynamic: any, else 1)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network on an (N, C, H, W) float32 batch; outputs by tensor name (valid until next call)."""
        ...


def check_batch(batch: np.ndarray, info: ModelInfo, max_batch: int | None = None) -> np.ndarray:
    """Validate an input batch against the model and return it C-contiguous float32.

    Args:
        batch: (N, C, H, W) array.
        info: the model's description.
        max_batch: largest N the backend accepts, or None for any.

    Returns:
        The batch as a C-contiguous float32 array (no copy when it already is one).

    Raises:
        ValueError: wrong rank, channel count, size or batch size.
    """
    expected = (info.input_channels, info.input_height, info.input_width)
    if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
        raise ValueError(f"input batch has shape {batch.shape}; model {info.architecture!r} needs (N, "
                         f"{', '.join(map(str, expected))}) (use lanenet_ros.preprocess.Preprocessor)")
    limit = max_batch if max_batch is not None else (None if info.dynamic_batch else 1)
    if limit is not None and not 1 <= batch.shape[0] <= limit:
        raise ValueError(f"batch of {batch.shape[0]} images, but this model takes 1..{limit} "
                         "(export with --dynamic-batch for larger batches)")
    return np.ascontiguousarray(batch, dtype=np.float32)


def create_backend(model_path: str | Path, kind: str = "auto", cpu_model: str | Path | None = None,
                   **opts: Any) -> Backend:
    """Open the model on the requested backend.

    Args:
        model_path: ``.onnx`` model, or a TensorRT engine (``.engine`` / ``.plan``) with its sidecar JSON.
        kind: one of ``KINDS``; ``auto`` takes the first of ``AUTO_ORDER`` that works.
        cpu_model: an ``.onnx`` model to run instead of ``model_path`` where the backend that opens is ONNX
            Runtime on the CPU (a lighter variant of it: the packaged default model without its heads).
        **opts: passed to the backend: ``precision`` (fp32/fp16/int8, GPU backends), ``intra_op_threads``
            (ONNX Runtime), ``cache_dir`` (engine cache), ``reuse_outputs`` (output buffers reused between
            calls), ``max_batch``.

    Returns:
        The backend; ``name`` says which one runs and ``skipped`` why earlier ones in ``auto`` did not.

    Raises:
        ModelError: the model file is missing or not a usable lanenet model.
        BackendError: the requested backend (every backend, for ``auto``) cannot run here.
        ValueError: unknown ``kind``, option or option value.
    """
    if kind not in KINDS:
        raise ValueError(f"backend {kind!r} is not one of {', '.join(KINDS)}")
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown backend option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    if opts.get("precision", "fp16") not in PRECISIONS:
        raise ValueError(f"precision {opts['precision']!r} is not one of {', '.join(PRECISIONS)}")
    path = Path(model_path)
    order = _auto_order(path) if kind == "auto" else (kind,)
    if kind == "onnxruntime" and cpu_model:  # which provider it takes decides which model opens
        from lanenet_ros.backends.onnxruntime_backend import best_kind

        order = (best_kind(),)
    skipped: list[str] = []
    for candidate in order:
        try:
            backend = _open(candidate, Path(cpu_model) if cpu_model and candidate == CPU_KIND else path, opts)
        except BackendError as exc:
            skipped.append(f"{candidate}: {exc}")
            continue
        backend.skipped = skipped
        return backend
    raise BackendError(f"no backend can run {path}:\n  " + "\n  ".join(skipped))


def _auto_order(path: Path) -> tuple[str, ...]:
    """An engine runs only on TensorRT; an ONNX model on everything, fastest first."""
    return ("tensorrt",) if path.suffix.lower() in ENGINE_SUFFIXES else AUTO_ORDER


def _open(kind: str, path: Path, opts: dict[str, Any]) -> Backend:
    if kind == "tensorrt":
        from lanenet_ros.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend.open(path, **_pick(opts, "precision", "cache_dir", "max_batch"))
    if path.suffix.lower() in ENGINE_SUFFIXES:
        raise BackendError(f"{path} is a TensorRT engine; ONNX Runtime needs the .onnx model it was built from")
    from lanenet_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, kind, **_pick(opts, "precision", "intra_op_threads", "cache_dir",
                                                  "reuse_outputs", "max_batch"))


def _pick(opts: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: opts[k] for k in names if opts.get(k) is not None}
