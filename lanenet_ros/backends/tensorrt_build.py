"""Building TensorRT engines from lanenet ONNX models (TensorRT 10 Python API; 8.6 also works).

:func:`prepare_engine` is what the runtime and ``lanenet-train gen-engine`` call: it computes the
fingerprint of here and now, asks :mod:`lanenet_ros.backends.engine_cache` whether the cached engine can be used,
and builds (FP32 / FP16 / INT8 with a calibrator, optional timing cache) when it cannot. TensorRT is
imported inside the functions, so importing this module costs nothing on a machine without it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanenet_ros.backends import BackendError
from lanenet_ros.backends.engine_cache import (
    CacheCheck,
    EngineFingerprint,
    atomic_write_bytes,
    cached_engine_path,
    file_sha256,
    load_or_build,
)
from lanenet_ros.model_info import ModelInfo, read_model_info


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError("the TensorRT Python package is not installed (JetPack: python3-libnvinfer; "
                           "x86: pip install tensorrt, or `pip install .[tensorrt]`); it needs an NVIDIA GPU") from exc
    return trt


_LOGGER: Any = None


def trt_logger(trt: Any) -> Any:
    """One TensorRT logger for the process (TensorRT wants a single instance)."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def current_fingerprint(onnx_path: Path, info: ModelInfo, precision: str, max_batch: int) -> EngineFingerprint:
    """Fingerprint of this model with the TensorRT and GPU of this machine.

    Raises:
        BackendError: TensorRT or CUDA is missing.
    """
    from lanenet_ros.backends.cuda_memory import load_cuda

    trt = import_tensorrt()
    gpu, capability = load_cuda().device_info()
    shape = (max_batch, info.input_channels, info.input_height, info.input_width)
    return EngineFingerprint(file_sha256(onnx_path), trt.__version__, gpu, capability, precision, shape)


def build_engine(onnx_path: Path, info: ModelInfo, precision: str, *, max_batch: int = 1,
                 workspace_gib: float = 2.0, calibrator: Any = None, calibration_batch: int = 1,
                 timing_cache: Path | None = None) -> bytes:
    """Parse the ONNX model and build a serialised engine.

    Args:
        onnx_path: the model.
        info: its description (input name and size).
        precision: fp32, fp16 or int8 (int8 needs ``calibrator``; layers without INT8 kernels use FP16).
        max_batch: largest batch of the optimisation profile (dynamic-batch models only).
        workspace_gib: builder workspace limit.
        calibrator: a ``trt.IInt8Calibrator`` for int8.
        calibration_batch: images per calibration batch (dynamic-batch models; static ones use their own).
        timing_cache: file read before and written after the build, to speed up later builds.

    Returns:
        The serialised engine.

    Raises:
        BackendError: parse or build failure, with TensorRT's messages.
    """
    trt = import_tensorrt()
    builder = trt.Builder(trt_logger(trt))
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, trt_logger(trt))
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"{onnx_path}: TensorRT cannot parse the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    _set_precision(trt, config, precision, calibrator, onnx_path)
    _add_profiles(builder, config, network, info, max_batch, calibration_batch)
    _load_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"{onnx_path}: TensorRT could not build a {precision} engine (see its log above)")
    if timing_cache is not None:
        atomic_write_bytes(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def _network_flags(trt: Any) -> int:
    """TensorRT 10 networks are always explicit-batch; 8.6 needs the flag."""
    if int(trt.__version__.split(".")[0]) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def _set_precision(trt: Any, config: Any, precision: str, calibrator: Any, onnx_path: Path) -> None:
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if calibrator is None:
            raise BackendError(f"{onnx_path}: an int8 engine needs calibration images: build it with "
                               "`lanenet-train gen-engine --data_type int8 --cal_image_dir DIR`")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator


def _add_profiles(builder: Any, config: Any, network: Any, info: ModelInfo, max_batch: int,
                  calibration_batch: int) -> None:
    """Dynamic-batch models: batch 1 (the camera case) up to ``max_batch``; calibration at a fixed batch."""
    tensor = network.get_input(0)
    if tensor.shape[0] != -1:
        return
    chw = (info.input_channels, info.input_height, info.input_width)
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, (1, *chw), (1, *chw), (max_batch, *chw))
    config.add_optimization_profile(profile)
    if config.int8_calibrator is not None:
        fixed = (calibration_batch, *chw)
        calibration = builder.create_optimization_profile()
        calibration.set_shape(tensor.name, fixed, fixed, fixed)
        config.set_calibration_profile(calibration)


def _load_timing_cache(config: Any, path: Path | None) -> None:
    """Start from the stored timing cache; one from another TensorRT or GPU is replaced by an empty one."""
    data = path.read_bytes() if path is not None and path.is_file() else b""
    try:
        cache = config.create_timing_cache(data) if data else None
    except Exception:  # a damaged file: TensorRT raises a RuntimeError-like error from its bindings
        cache = None
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def deserialize_engine(data: bytes) -> Any:
    """A ``trt.ICudaEngine`` from serialised bytes, or None when TensorRT rejects them."""
    trt = import_tensorrt()
    return trt.Runtime(trt_logger(trt)).deserialize_cuda_engine(data)


@dataclass
class PreparedEngine:
    """An engine ready to run, where it is stored, and what the cache decided."""

    engine: Any
    path: Path
    info: ModelInfo
    check: CacheCheck


def prepare_engine(model_path: str | Path, precision: str = "fp16", *, engine_file: str | Path | None = None,
                   cache_dir: str | Path | None = None, max_batch: int = 1, workspace_gib: float = 2.0,
                   calibrator_factory: Callable[[ModelInfo], tuple[Any, int]] | None = None,
                   timing_cache: str | Path | None = None, force: bool = False) -> PreparedEngine:
    """Return a valid engine for an ONNX model, from the cache or freshly built.

    Args:
        model_path: the ``.onnx`` model.
        precision: fp32, fp16 or int8.
        engine_file: where to keep the engine; default the user cache (see ``engine_cache``).
        cache_dir: cache directory overriding the default.
        max_batch: largest batch (dynamic-batch models).
        workspace_gib: builder workspace limit.
        calibrator_factory: returns (INT8 calibrator, its batch size) for the model info; int8 only, called
            only when the engine is (re)built.
        timing_cache: timing cache file.
        force: rebuild even when the cached engine is valid.

    Returns:
        The engine, its path, the model info and the cache decision (hit, missing, stale or corrupt).

    Raises:
        ModelError: the model is not a valid lanenet ONNX model.
        BackendError: TensorRT or a GPU is missing, or the build failed.
    """
    model_path = Path(model_path)
    info = read_model_info(model_path)
    max_batch = max_batch if info.dynamic_batch else 1
    current = current_fingerprint(model_path, info, precision, max_batch)
    path = Path(engine_file) if engine_file else cached_engine_path(model_path, precision, cache_dir)

    def build() -> bytes:
        calibrator, batch = calibrator_factory(info) if calibrator_factory and precision == "int8" else (None, 1)
        return build_engine(model_path, info, precision, max_batch=max_batch, workspace_gib=workspace_gib,
                            calibrator=calibrator, calibration_batch=batch,
                            timing_cache=Path(timing_cache) if timing_cache else None)

    try:
        engine, check = load_or_build(path, current, info, build, deserialize_engine, force=force)
    except RuntimeError as exc:
        raise BackendError(str(exc)) from exc
    return PreparedEngine(engine, path, info, check)
