"""Native TensorRT backend (TensorRT 10 Python API: named tensors, ``set_tensor_address``,
``execute_async_v3``), with pinned host buffers and one CUDA stream.

Given an ``.onnx`` model it uses the engine cache (built or rebuilt as needed, see
:func:`lanenet_ros.backends.tensorrt_build.prepare_engine`); given an engine file it checks the engine's
sidecar against this machine's TensorRT and GPU before deserialising it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lanenet_ros.backends import BackendError, check_batch
from lanenet_ros.model_info import ENGINE_SUFFIXES, ModelInfo


class TensorRTBackend:
    """Runs one deserialised engine; build it with :meth:`open`.

    Args:
        engine: a ``trt.ICudaEngine``.
        info: the model's description.
        max_batch: largest batch the buffers are sized for.
    """

    def __init__(self, engine: Any, info: ModelInfo, max_batch: int = 1) -> None:
        from lanenet_ros.backends.cuda_memory import load_cuda
        from lanenet_ros.backends.tensorrt_build import import_tensorrt

        trt = import_tensorrt()
        self.name = "tensorrt"
        self.info = info
        self.skipped: list[str] = []
        self.engine = engine
        self.engine_path: Path | None = None
        self.cache_check: Any = None  # engine_cache.CacheCheck when opened through the cache
        self.context = engine.create_execution_context()
        self.cuda = load_cuda()
        self.stream, self.stream_handle = self.cuda.stream()
        self.max_batch = max_batch if info.dynamic_batch else 1
        self.outputs = [n for n in _tensor_names(engine) if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.buffers = self._allocate(trt)

    @classmethod
    def open(cls, path: str | Path, precision: str = "fp16", cache_dir: str | Path | None = None,
             max_batch: int | None = None) -> TensorRTBackend:
        """Open an engine file, or an ONNX model through the engine cache.

        Raises:
            BackendError: no TensorRT / GPU, an engine built elsewhere, or a failed build.
            ModelError: the model or the engine's sidecar is invalid.
        """
        path = Path(path)
        if path.suffix.lower() in ENGINE_SUFFIXES:
            engine, info = _open_engine_file(path)
            return cls(engine, info, max_batch or 1)
        from lanenet_ros.backends.tensorrt_build import prepare_engine

        prepared = prepare_engine(path, precision, cache_dir=cache_dir, max_batch=max_batch or 1)
        backend = cls(prepared.engine, prepared.info, max_batch or 1)
        backend.cache_check = prepared.check
        backend.engine_path = prepared.path
        return backend

    def _allocate(self, trt: Any) -> dict[str, Any]:
        name = self.info.input_name
        shape = (self.max_batch, self.info.input_channels, self.info.input_height, self.info.input_width)
        self.context.set_input_shape(name, shape)
        buffers = {}
        for tensor in _tensor_names(self.engine):
            dims = tuple(self.context.get_tensor_shape(tensor))
            buffers[tensor] = self.cuda.buffer(dims, trt.nptype(self.engine.get_tensor_dtype(tensor)))
            self.context.set_tensor_address(tensor, buffers[tensor].device)
        return buffers

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the engine.

        Args:
            batch: (N, C, H, W) float32 with N <= ``max_batch``.

        Returns:
            Output tensor name -> (N, ...) float32 array; host buffers reused by the next call.

        Raises:
            ValueError: the batch does not fit the engine.
            BackendError: TensorRT failed to enqueue the work.
        """
        batch = check_batch(batch, self.info, self.max_batch)
        n = batch.shape[0]
        inp = self.buffers[self.info.input_name]
        inp.host[:n] = batch
        self.context.set_input_shape(self.info.input_name, batch.shape)
        self.cuda.to_device(inp, self.stream, batch.nbytes)
        if not self.context.execute_async_v3(self.stream_handle):
            raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        for name in self.outputs:
            buf = self.buffers[name]
            self.cuda.to_host(buf, self.stream, buf.host[:n].nbytes)
        self.cuda.synchronize(self.stream)
        return {name: _as_float32(self.buffers[name].host[:n]) for name in self.outputs}

    def close(self) -> None:
        """Free device memory (also done when the process ends)."""
        for buf in self.buffers.values():
            self.cuda.free(buf)
        self.buffers = {}


def _tensor_names(engine: Any) -> list[str]:
    return [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]


def _as_float32(array: np.ndarray) -> np.ndarray:
    return array if array.dtype == np.float32 else array.astype(np.float32)


def _open_engine_file(path: Path) -> tuple[Any, ModelInfo]:
    """Deserialise an engine given by path, after checking it was built for this TensorRT and GPU."""
    from lanenet_ros.backends.cuda_memory import load_cuda
    from lanenet_ros.backends.engine_cache import read_sidecar
    from lanenet_ros.backends.tensorrt_build import deserialize_engine, import_tensorrt

    info, stored = read_sidecar(path)
    gpu, capability = load_cuda().device_info()
    here = {"tensorrt_version": import_tensorrt().__version__, "gpu_name": gpu, "compute_capability": capability}
    built = {k: getattr(stored, k) for k in here}
    if built != here:
        raise BackendError(f"{path} was built for {built}, this machine has {here}; rebuild it with "
                           "`lanenet-train gen-engine`, or give the .onnx model so the engine cache builds one")
    engine = deserialize_engine(path.read_bytes())
    if engine is None:
        raise BackendError(f"{path}: TensorRT could not deserialise the engine; rebuild it")
    return engine, info
