"""TensorRT on a real GPU: engines built through the cache, agreeing with ONNX Runtime (GPU only).

Skipped where TensorRT, a CUDA binding (cuda-python or PyCUDA) or an NVIDIA GPU is missing, as on CI.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import export_tiny

from lanenet_ros.backends import BackendError, create_backend
from lanenet_ros.backends.engine_cache import CacheStatus, check_engine, read_sidecar


def _gpu_problem() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed"
    try:
        from lanenet_ros.backends.cuda_memory import load_cuda

        load_cuda()
    except BackendError as exc:
        return str(exc)
    return None


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_gpu_problem() is not None, reason=str(_gpu_problem()))]


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trt") / "tiny.onnx"
    export_tiny(path, dynamic_batch=True, verify_images=1)
    return path


def _batch(n: int = 1) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, 3, 32, 64)).astype(np.float32)


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-3), ("fp16", 5e-2)])
def test_engine_from_cache_agrees_with_onnxruntime(onnx_model: Path, tmp_path: Path, precision: str,
                                                   tolerance: float) -> None:
    trt_backend = create_backend(onnx_model, "tensorrt", precision=precision, cache_dir=tmp_path, max_batch=4)
    reference = create_backend(onnx_model, "onnxruntime-cpu", reuse_outputs=False)
    assert trt_backend.name == "tensorrt" and trt_backend.cache_check.status is CacheStatus.MISSING
    for n in (1, 3):
        got, want = trt_backend.infer(_batch(n)), reference.infer(_batch(n))
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, atol=tolerance, rtol=tolerance)
    again = create_backend(onnx_model, "tensorrt", precision=precision, cache_dir=tmp_path, max_batch=4)
    assert again.cache_check.status is CacheStatus.HIT
    info, fingerprint = read_sidecar(again.engine_path)
    assert info == again.info and fingerprint.precision == precision and fingerprint.input_shape[0] == 4


def test_corrupted_cached_engine_is_rebuilt(onnx_model: Path, tmp_path: Path) -> None:
    first = create_backend(onnx_model, "tensorrt", precision="fp16", cache_dir=tmp_path)
    first.engine_path.write_bytes(b"\0" * 4096)
    rebuilt = create_backend(onnx_model, "tensorrt", precision="fp16", cache_dir=tmp_path)
    assert rebuilt.cache_check.status is CacheStatus.CORRUPT
    assert rebuilt.infer(_batch())["embedding"].shape == (1, 4, 32, 64)


def test_auto_picks_tensorrt_and_engine_files_open_directly(onnx_model: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANENET_CACHE_DIR", str(tmp_path))
    auto = create_backend(onnx_model, "auto")
    assert auto.name == "tensorrt" and auto.skipped == []
    direct = create_backend(auto.engine_path, "auto")
    assert direct.name == "tensorrt" and direct.info == auto.info
    assert check_engine(auto.engine_path, read_sidecar(auto.engine_path)[1]).status is CacheStatus.HIT


def test_gen_engine_int8_with_calibration(onnx_model: Path, tmp_path: Path) -> None:
    from lanenet_train.cli import main

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 255, (72, 128, 3), dtype=np.uint8))
    engine = tmp_path / "tiny.int8.engine"
    args = ["gen-engine", "-m", str(onnx_model), "--data_type", "int8", "--engine_file", str(engine),
            "--cal_image_dir", str(images), "--batch_size", "2", "--batches", "4",
            "--cal_cache_file", str(tmp_path / "tiny.calib"), "--timing_cache", str(tmp_path / "timing.cache")]
    assert main(args) == 0
    assert engine.stat().st_size > 0 and (tmp_path / "tiny.calib").stat().st_size > 0
    assert (tmp_path / "timing.cache").stat().st_size > 0
    assert read_sidecar(engine)[1].precision == "int8"
    out = create_backend(engine, "tensorrt").infer(_batch())
    assert np.isfinite(out["binary_logits"]).all()
