"""INT8 calibration batches (the runtime's preprocessing) and `lanenet-train gen-engine` without a GPU."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import export_tiny

from lanenet_ros.model_info import read_model_info
from lanenet_ros.preprocess import Preprocessor
from lanenet_train.calibration import CalibrationBatches, CalibrationCache, list_images

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def camera_frame(seed: int, size: tuple[int, int] = (720, 1280)) -> np.ndarray:
    """A BGR camera-sized frame: sky, road, a bright line; different per seed."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
    image[: size[0] // 3] += np.array([120, 80, 40], np.uint8)
    cv2.line(image, (size[1] // 4 + seed * 20, size[0] - 1), (size[1] // 2, size[0] // 3), (240, 240, 240), 9)
    return image


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cal") / "tiny.onnx"
    export_tiny(path, info_overrides={"channel_order": "bgr", "roi_top": 0.3}, verify_images=1)
    return path


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    (root / "day2").mkdir()
    for i in range(7):
        folder = root if i < 4 else root / "day2"
        cv2.imwrite(str(folder / f"frame_{i:03d}.{'png' if i % 2 else 'jpg'}"), camera_frame(i))
    (root / "notes.txt").write_text("not an image")
    return root


def test_calibration_batches_are_exactly_the_runtime_input(tiny_onnx: Path, image_dir: Path) -> None:
    info = read_model_info(tiny_onnx)
    images = list_images(image_dir)
    batches = list(CalibrationBatches(images, info, batch_size=3, max_batches=10))
    runtime = Preprocessor.from_info(info)  # what the pipeline builds from the same model
    assert len(batches) == 2 and all(b.shape == (3, 3, 32, 64) and b.dtype == np.float32 for b in batches)
    for i, path in enumerate(images[:6]):
        expected, _ = runtime(cv2.imread(str(path)))
        np.testing.assert_array_equal(batches[i // 3][i % 3], expected[0])
    assert not np.array_equal(batches[0][0], batches[0][1])


def test_roi_override_matches_the_node_parameter(tiny_onnx: Path, image_dir: Path) -> None:
    info = read_model_info(tiny_onnx)
    path = list_images(image_dir)[0]
    model_roi = next(iter(CalibrationBatches([path], info, 1, 1)))
    node_roi = next(iter(CalibrationBatches([path], info, 1, 1, roi_top=0.0)))
    expected, _ = Preprocessor.from_info(info, roi_top=0.0)(cv2.imread(str(path)))
    np.testing.assert_array_equal(node_roi[0], expected[0])
    assert not np.array_equal(model_roi, node_roi)


def test_batch_count_and_unreadable_images(tiny_onnx: Path, image_dir: Path, tmp_path: Path) -> None:
    info = read_model_info(tiny_onnx)
    images = list_images(image_dir)
    assert sorted(p.name for p in images) == [f"frame_{i:03d}.{'png' if i % 2 else 'jpg'}" for i in range(7)]
    assert images == sorted(images)  # sub-folders included, a stable order
    assert len(CalibrationBatches(images, info, 2, 2)) == 2 == len(list(CalibrationBatches(images, info, 2, 2)))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated jpeg")
    batches = CalibrationBatches([broken, *images[:2]], info, 2, 5)
    assert len(list(batches)) == 1 and batches.skipped == [f"{broken}: not a readable image"]


def test_image_folder_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"--cal_image_dir .*no such folder"):
        list_images(tmp_path / "absent")
    with pytest.raises(ValueError, match=r"no \.jpg/\.jpeg/\.png/\.bmp images"):
        list_images(tmp_path)


def test_calibration_cache_round_trip(tmp_path: Path) -> None:
    cache = CalibrationCache(tmp_path / "cal" / "model.calib")
    assert cache.read() is None
    cache.write(b"TRT-1001-EntropyCalibration2\ninput: 3c010a14\n")
    assert cache.read() == b"TRT-1001-EntropyCalibration2\ninput: 3c010a14\n"
    assert CalibrationCache(None).read() is None


def gen_engine(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANENET_CACHE_DIR": str(Path(args[-1]).parent / "cache")}
    return subprocess.run([sys.executable, "-m", "lanenet_train.cli", "gen-engine", *args[:-1]],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.skipif(HAS_TENSORRT, reason="checks the message given where TensorRT is missing")
def test_gen_engine_without_tensorrt_fails_fast_saying_so(tiny_onnx: Path, tmp_path: Path) -> None:
    result = gen_engine("-m", str(tiny_onnx), "--data_type", "fp16", str(tmp_path / "x"))
    assert result.returncode == 3
    assert "cannot build TensorRT engines on this machine" in result.stderr and "NVIDIA GPU" in result.stderr
    assert not (tmp_path / "cache").exists()


def test_gen_engine_rejects_bad_requests_before_touching_tensorrt(tiny_onnx: Path, tmp_path: Path) -> None:
    int8 = gen_engine("-m", str(tiny_onnx), "--data_type", "int8", str(tmp_path / "x"))
    assert int8.returncode == 2 and "--data_type int8 needs --cal_image_dir" in int8.stderr
    not_a_model = tmp_path / "model.onnx"
    not_a_model.write_text("hello")
    bad = gen_engine("-m", str(not_a_model), str(tmp_path / "x"))
    assert bad.returncode == 1 and f"{not_a_model}: is not an ONNX model" in bad.stderr
