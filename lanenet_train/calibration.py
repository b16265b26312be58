"""INT8 calibration data for TensorRT: images preprocessed exactly as the runtime preprocesses them.

:class:`CalibrationBatches` reads a folder of camera images and turns them into network batches with
the runtime's own :class:`lanenet_ros.preprocess.Preprocessor`, built from the model's embedded
description (so ROI crop, resize, channel order and normalisation cannot drift from what the node feeds
the engine). :func:`make_entropy_calibrator` wraps them in a TensorRT entropy calibrator (GPU only);
the calibration cache is written atomically so a later build can skip calibration.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanenet_ros.fileio import atomic_write_bytes
from lanenet_ros.model_info import ModelInfo
from lanenet_ros.preprocess import Preprocessor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def list_images(image_dir: str | Path) -> list[Path]:
    """Image files directly inside ``image_dir`` (and its sub-folders), sorted.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it holds no image.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"--cal_image_dir {image_dir}: no such folder")
    images = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise ValueError(f"--cal_image_dir {image_dir}: no {'/'.join(IMAGE_SUFFIXES)} images found")
    return images


class CalibrationBatches:
    """Fixed-size batches of preprocessed calibration images.

    Args:
        images: image files (BGR once decoded, as camera frames are).
        info: the model's description; the runtime's preprocessing is built from it.
        batch_size: images per batch.
        max_batches: at most this many batches (fewer when there are not enough images).
        roi_top: overrides the model's ``roi_top``, as the node's ``roi_top`` parameter does.
    """

    def __init__(self, images: list[Path], info: ModelInfo, batch_size: int, max_batches: int,
                 roi_top: float | None = None) -> None:
        if batch_size < 1 or max_batches < 1:
            raise ValueError(f"--batch_size ({batch_size}) and --batches ({max_batches}) must be at least 1")
        self.images, self.batch_size, self.max_batches = list(images), batch_size, max_batches
        self.preprocess = Preprocessor.from_info(info, roi_top=roi_top, reuse_output=False)
        self.shape = (batch_size, info.input_channels, info.input_height, info.input_width)
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return min(self.max_batches, len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield (batch_size, C, H, W) float32 batches; unreadable images are skipped and listed in ``skipped``."""
        batch = np.empty(self.shape, np.float32)
        filled, produced = 0, 0
        for path in self.images:
            if produced == self.max_batches:
                return
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.skipped.append(f"{path}: not a readable image")
                continue
            batch[filled] = self.preprocess(image)[0][0]
            filled += 1
            if filled == self.batch_size:
                yield batch.copy()
                filled, produced = 0, produced + 1


class CalibrationCache:
    """TensorRT's calibration table on disk (``--cal_cache_file``)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def read(self) -> bytes | None:
        """The stored table, or None when there is none (TensorRT then calibrates)."""
        if self.path is None or not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        return self.path.read_bytes()

    def write(self, data: bytes) -> None:
        """Store the table atomically (no-op without a path)."""
        if self.path is not None:
            atomic_write_bytes(self.path, bytes(data))


def make_entropy_calibrator(batches: CalibrationBatches, cache: CalibrationCache) -> Any:
    """A ``tensorrt.IInt8EntropyCalibrator2`` feeding ``batches`` through pinned and device memory.

    Raises:
        BackendError: TensorRT or CUDA is not available.
    """
    from tqdm import tqdm

    from lanenet_ros.backends.cuda_memory import load_cuda
    from lanenet_ros.backends.tensorrt_build import import_tensorrt

    trt = import_tensorrt()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.cuda = load_cuda()
            self.stream, _ = self.cuda.stream()
            self.buffer = self.cuda.buffer(batches.shape, np.float32)
            self.batches = iter(batches)
            self.progress = tqdm(total=len(batches), desc="INT8 calibration", unit="batch")

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self.batches, None)
            if batch is None:
                self.progress.close()
                return None
            self.buffer.host[...] = batch
            self.cuda.to_device(self.buffer, self.stream)
            self.cuda.synchronize(self.stream)
            self.progress.update(1)
            return [self.buffer.device]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read()

        def write_calibration_cache(self, data: Any) -> None:
            cache.write(bytes(memoryview(data)))

    return EntropyCalibrator()
