"""ONNX Runtime backend: TensorRT, CUDA or CPU execution provider, chosen explicitly.

Outputs are written straight into buffers this backend owns (``io_binding``), so a frame costs no
output allocation; the arrays returned by :meth:`OnnxRuntimeBackend.infer` are overwritten by the next
call (pass ``reuse_outputs=False`` to get fresh arrays each time).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lanenet_ros.backends import BackendError, check_batch
from lanenet_ros.model_info import ModelError, ModelInfo, info_from_session, open_onnx_session

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"
# the provider a kind must get (first in the session's list), then its fallbacks inside ONNX Runtime
PROVIDERS = {
    "onnxruntime-trt": (TRT, CUDA, CPU),
    "onnxruntime-cuda": (CUDA, CPU),
    "onnxruntime-cpu": (CPU,),
}


class OnnxRuntimeBackend:
    """One ONNX Runtime session with a fixed execution provider.

    Args:
        model_path: the ``.onnx`` model.
        kind: ``onnxruntime-trt``, ``onnxruntime-cuda``, ``onnxruntime-cpu``, or ``onnxruntime`` (the best
            provider this onnxruntime build has).
        precision: ``fp16`` or ``int8`` allow reduced precision in the TensorRT provider; ignored otherwise.
        intra_op_threads: threads for one operator on the CPU; 0 lets ONNX Runtime choose (all cores).
        cache_dir: where the TensorRT provider keeps its engines (default: the lanenet cache directory).
        reuse_outputs: write outputs into buffers reused between calls.
        max_batch: largest batch accepted by a dynamic-batch model.

    Raises:
        BackendError: the provider is not in this onnxruntime build, or could not start.
        ModelError: the model is missing or invalid.
    """

    def __init__(self, model_path: str | Path, kind: str = "onnxruntime", *, precision: str = "fp16",
                 intra_op_threads: int = 0, cache_dir: str | Path | None = None, reuse_outputs: bool = True,
                 max_batch: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(model_path)
        kind = _resolve_kind(kind, ort.get_available_providers())
        wanted = PROVIDERS[kind][0]
        options = _session_options(ort, intra_op_threads)
        providers = [_provider_entry(p, precision, cache_dir) for p in PROVIDERS[kind]]
        self.session = _open_session(self.path, providers, options)
        running = self.session.get_providers()
        if running[0] != wanted:
            raise BackendError(f"{wanted} did not start (ONNX Runtime fell back to {running[0]}); check the "
                               "CUDA / TensorRT libraries onnxruntime-gpu needs")
        self.info: ModelInfo = info_from_session(self.session, str(self.path))
        self.name = kind
        self.skipped: list[str] = []
        self.max_batch = max_batch
        self._reuse = reuse_outputs
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._buffers: dict[int, dict[str, np.ndarray]] = {}

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model.

        Args:
            batch: (N, C, H, W) float32, preprocessed as the model's description says.

        Returns:
            Output tensor name -> array with batch dimension N.

        Raises:
            ValueError: the batch does not fit the model.
        """
        batch = check_batch(batch, self.info, self.max_batch)
        buffers = self._buffers.get(batch.shape[0]) if self._reuse else None
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.info.input_name, batch)
        for name in self._outputs:
            if buffers is None:
                binding.bind_output(name, "cpu")
            else:
                out = buffers[name]
                binding.bind_output(name, "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)
        self.session.run_with_iobinding(binding)
        if buffers is not None:
            return buffers
        outputs = dict(zip(self._outputs, binding.copy_outputs_to_cpu(), strict=True))
        if self._reuse:  # shapes are known now (graphs may leave them symbolic): write in place from now on
            self._buffers[batch.shape[0]] = {k: np.empty_like(v) for k, v in outputs.items()}
        return outputs


def _open_session(path: Path, providers: list, options: Any) -> Any:
    """Open the session; a failure that only a GPU provider causes is a BackendError, not a bad model."""
    try:
        return open_onnx_session(path, providers, options)
    except ModelError as exc:
        if providers == [CPU]:
            raise
        open_onnx_session(path)  # raises the ModelError itself when the file is the problem
        raise BackendError(f"{providers[0] if isinstance(providers[0], str) else providers[0][0]} could not "
                           f"start: {exc}") from exc


def best_kind() -> str:
    """The kind ``onnxruntime`` stands for: the first of ``PROVIDERS`` whose provider this build has."""
    import onnxruntime as ort

    return _resolve_kind("onnxruntime", ort.get_available_providers())


def _resolve_kind(kind: str, available: list[str]) -> str:
    if kind == "onnxruntime":
        return next(k for k, p in PROVIDERS.items() if p[0] in available)
    wanted = PROVIDERS[kind][0]
    if wanted not in available:
        raise BackendError(f"{wanted} is not in this onnxruntime build (it has {', '.join(available)}); "
                           "install onnxruntime-gpu for CUDA and TensorRT")
    return kind


def _session_options(ort: Any, intra_op_threads: int) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(intra_op_threads)
    # ONNX Runtime's worker threads busy-wait after each run by default; in the node they would take the cores
    # from the decoding of that very frame (bench/bench_pipeline.py: decode 7.4 -> 3.6 ms, inference no slower)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: provider fallbacks are reported by this backend
    return options


def _provider_entry(provider: str, precision: str, cache_dir: str | Path | None) -> str | tuple[str, dict]:
    if provider != TRT:
        return provider
    from lanenet_ros.backends.engine_cache import default_cache_dir

    cache = Path(cache_dir) if cache_dir else default_cache_dir() / "ort-trt"
    cache.mkdir(parents=True, exist_ok=True)
    return provider, {
        "trt_fp16_enable": precision in ("fp16", "int8"),
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
    }
