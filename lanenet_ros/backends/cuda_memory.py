"""Pinned host and device buffers for the TensorRT backend, through cuda-python or PyCUDA.

Only the TensorRT backend and the INT8 calibrator import this module, and it imports its CUDA library
only when :func:`load_cuda` is called. cuda-python (``pip install cuda-python``) is preferred; PyCUDA
(often present on Jetson images) is the fallback. Both use the device's primary context, which is the
one TensorRT uses, so buffers can be used from any thread (ROS executors call back on their own threads).
"""
from __future__ import annotations

import ctypes
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from lanenet_ros.backends import BackendError


@dataclass
class DeviceBuffer:
    """A pinned host array and a device allocation of the same size."""

    host: np.ndarray
    device: int
    keep: Any = None  # library objects that own the memory


class CudaPython:
    """CUDA runtime calls through cuda-python (``cuda.bindings.runtime`` or the older ``cuda.cudart``)."""

    name = "cuda-python"

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        self.rt = cudart
        self._check(cudart.cudaSetDevice(0), "cudaSetDevice")

    def _check(self, result: tuple, call: str) -> Any:
        err, rest = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            raise BackendError(f"CUDA {call} failed: {self.rt.cudaGetErrorString(err)[1].decode()}")
        return rest[0] if len(rest) == 1 else rest

    def device_info(self) -> tuple[str, str]:
        """(GPU name, compute capability 'major.minor') of device 0."""
        prop = self._check(self.rt.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
        name = prop.name if isinstance(prop.name, str) else bytes(prop.name).split(b"\0")[0].decode()
        return name.strip(), f"{prop.major}.{prop.minor}"

    def buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> DeviceBuffer:
        """Allocate a pinned host array of ``shape`` and a device buffer of the same size."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        host_ptr = self._check(self.rt.cudaMallocHost(nbytes), "cudaMallocHost")
        raw = (ctypes.c_byte * nbytes).from_address(int(host_ptr))
        host = np.frombuffer(raw, dtype=dtype).reshape(shape)
        device = self._check(self.rt.cudaMalloc(nbytes), "cudaMalloc")
        return DeviceBuffer(host, int(device), keep=(host_ptr, device))

    def free(self, buf: DeviceBuffer) -> None:
        """Release both halves of a buffer."""
        self.rt.cudaFree(buf.keep[1])
        self.rt.cudaFreeHost(buf.keep[0])

    def stream(self) -> tuple[Any, int]:
        """A new stream: (library object, integer handle for TensorRT)."""
        stream = self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")
        return stream, int(stream)

    def to_device(self, buf: DeviceBuffer, stream: Any, nbytes: int | None = None) -> None:
        """Queue a host -> device copy of the first ``nbytes`` (all by default)."""
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        n = buf.host.nbytes if nbytes is None else nbytes
        self._check(self.rt.cudaMemcpyAsync(buf.device, buf.host.ctypes.data, n, kind, stream), "cudaMemcpyAsync")

    def to_host(self, buf: DeviceBuffer, stream: Any, nbytes: int | None = None) -> None:
        """Queue a device -> host copy of the first ``nbytes`` (all by default)."""
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        n = buf.host.nbytes if nbytes is None else nbytes
        self._check(self.rt.cudaMemcpyAsync(buf.host.ctypes.data, buf.device, n, kind, stream), "cudaMemcpyAsync")

    def synchronize(self, stream: Any) -> None:
        """Wait for everything queued on ``stream``."""
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


class PyCuda:
    """The same calls through PyCUDA, on the device's primary context."""

    name = "pycuda"

    def __init__(self) -> None:
        import pycuda.driver as cuda

        try:  # importing it retains the device's primary context, the one TensorRT uses
            importlib.import_module("pycuda.autoprimaryctx")
        except ImportError:  # PyCUDA older than 2021.1
            importlib.import_module("pycuda.autoinit")
        self.cuda = cuda

    def device_info(self) -> tuple[str, str]:
        """(GPU name, compute capability 'major.minor') of device 0."""
        device = self.cuda.Device(0)
        major, minor = device.compute_capability()
        return device.name().strip(), f"{major}.{minor}"

    def buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> DeviceBuffer:
        """Allocate a pinned host array of ``shape`` and a device buffer of the same size."""
        host = self.cuda.pagelocked_empty(shape, dtype)
        device = self.cuda.mem_alloc(host.nbytes)
        return DeviceBuffer(host, int(device), keep=device)

    def free(self, buf: DeviceBuffer) -> None:
        """Release the device half (PyCUDA frees pinned memory with its array)."""
        buf.keep.free()

    def stream(self) -> tuple[Any, int]:
        """A new stream: (library object, integer handle for TensorRT)."""
        stream = self.cuda.Stream()
        return stream, int(stream.handle)

    def to_device(self, buf: DeviceBuffer, stream: Any, nbytes: int | None = None) -> None:
        """Queue a host -> device copy of the first ``nbytes`` (all by default)."""
        n = buf.host.nbytes if nbytes is None else nbytes
        self.cuda.memcpy_htod_async(buf.device, buf.host.reshape(-1).view(np.uint8)[:n], stream)

    def to_host(self, buf: DeviceBuffer, stream: Any, nbytes: int | None = None) -> None:
        """Queue a device -> host copy of the first ``nbytes`` (all by default)."""
        n = buf.host.nbytes if nbytes is None else nbytes
        self.cuda.memcpy_dtoh_async(buf.host.reshape(-1).view(np.uint8)[:n], buf.device, stream)

    def synchronize(self, stream: Any) -> None:
        """Wait for everything queued on ``stream``."""
        stream.synchronize()


def load_cuda() -> CudaPython | PyCuda:
    """The first CUDA binding that imports and finds a GPU.

    Raises:
        BackendError: neither cuda-python nor PyCUDA is installed, or no CUDA device is usable.
    """
    errors = []
    for api in (CudaPython, PyCuda):
        try:
            cuda = api()
            cuda.device_info()
            return cuda
        except ImportError as exc:
            errors.append(f"{api.name} not installed ({exc.name})")
        except Exception as exc:  # driver missing, no device, ...: each library raises its own types
            errors.append(f"{api.name}: {exc}")
    raise BackendError("no usable CUDA: " + "; ".join(errors) + " (pip install cuda-python; needs an NVIDIA GPU "
                       "and driver)")
