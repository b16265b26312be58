"""Camera image -> network input, and the geometry to map network outputs back to camera pixels.

The hot path of the node: one crop (a view), one ``cv2.resize`` of the uint8 image, then one compiled pass that
splits the channels and scales them straight into a reused NCHW float32 buffer.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lanenet_ros.jit import kernel, warm_up, warms_up


@dataclass(frozen=True)
class Geometry:
    """How a camera image became the network input: ``crop_top`` rows cut, the rest resized.

    Pixel centres are aligned as ``cv2.resize`` aligns them: input pixel ``x`` covers camera columns around
    ``(x + 0.5) * scale_x - 0.5``.
    """

    src_width: int
    src_height: int
    crop_top: int
    input_width: int
    input_height: int

    @property
    def scale_x(self) -> float:
        """Camera pixels per input pixel, horizontally."""
        return self.src_width / self.input_width

    @property
    def scale_y(self) -> float:
        """Camera pixels per input pixel, vertically (of the cropped part)."""
        return (self.src_height - self.crop_top) / self.input_height

    def to_camera(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Map network-input coordinates (x, y) to camera-image coordinates.

        Args:
            x: input columns (any shape, float allowed).
            y: input rows (same shape as ``x``).

        Returns:
            (x, y) in camera pixels, float64.
        """
        xc = (np.asarray(x, dtype=np.float64) + 0.5) * self.scale_x - 0.5
        yc = (np.asarray(y, dtype=np.float64) + 0.5) * self.scale_y - 0.5 + self.crop_top
        return xc, yc

    def to_input(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Map camera-image coordinates to network-input coordinates (inverse of :meth:`to_camera`)."""
        xi = (np.asarray(x, dtype=np.float64) + 0.5) / self.scale_x - 0.5
        yi = (np.asarray(y, dtype=np.float64) - self.crop_top + 0.5) / self.scale_y - 0.5
        return xi, yi

    def mask_to_camera(self, mask: np.ndarray) -> np.ndarray:
        """Resize a network-resolution label mask back to the camera image (nearest neighbour).

        The cropped top rows are 0 (background). Each camera pixel takes the label of the input pixel whose
        area holds its centre (the exact inverse of the crop and resize; a centre lying exactly on the border
        of two input pixels may take either).

        Args:
            mask: (input_height, input_width) integer labels (< 256).

        Returns:
            (src_height, src_width) uint8.

        Raises:
            ValueError: the mask does not have the network input's size.
        """
        if mask.shape != (self.input_height, self.input_width):
            raise ValueError(f"mask is {mask.shape[::-1]} (w, h) but the network input is "
                             f"{self.input_width}x{self.input_height}")
        out = np.empty((self.src_height, self.src_width), dtype=np.uint8)
        out[: self.crop_top] = 0
        # nearest-exact: each camera pixel centre takes the input pixel it falls in (ties either way)
        cv2.resize(mask.astype(np.uint8, copy=False), (self.src_width, self.src_height - self.crop_top),
                   dst=out[self.crop_top:], interpolation=cv2.INTER_NEAREST_EXACT)
        return out


class Preprocessor:
    """ROI crop, resize, normalisation ``(x / 255 - mean) / std`` and NCHW float32, as the model expects."""

    def __init__(self, input_width: int, input_height: int, mean: Sequence[float], std: Sequence[float],
                 channel_order: str = "rgb", roi_top: float = 0.0, reuse_output: bool = True) -> None:
        """Configure the preprocessing.

        Args:
            input_width: network input width.
            input_height: network input height.
            mean: per network channel, applied to pixels scaled to [0, 1].
            std: per network channel, > 0.
            channel_order: ``rgb`` or ``bgr``, the channel order the network expects (images come in BGR).
            roi_top: fraction of rows cut from the top before resizing, in [0, 1).
            reuse_output: return the same buffer on every call (no allocation; the previous batch is
                overwritten). False gives a new array per call.

        Raises:
            ValueError: a parameter is out of range (the message names it).
        """
        if int(input_width) < 1 or int(input_height) < 1:
            raise ValueError(f"input_width/input_height must be >= 1, got {input_width}x{input_height}")
        mean_a, std_a = np.asarray(mean, np.float64).ravel(), np.asarray(std, np.float64).ravel()
        if mean_a.size != 3 or std_a.size != 3 or np.any(std_a <= 0):
            raise ValueError(f"mean and std need 3 values each, std > 0; got mean={list(mean)} std={list(std)}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if not 0.0 <= float(roi_top) < 1.0:
            raise ValueError(f"roi_top must be in [0, 1), got {roi_top}")
        self.input_width, self.input_height = int(input_width), int(input_height)
        self.roi_top = float(roi_top)
        self.channel_order = channel_order
        # BGR image channel feeding each network channel
        self._source = np.array((2, 1, 0) if channel_order == "rgb" else (0, 1, 2), np.int64)
        # (x / 255 - mean) / std == x * scale + offset, per network channel
        self._scale = (1.0 / (255.0 * std_a)).astype(np.float32)
        self._offset = (-mean_a / std_a).astype(np.float32)
        self._reuse = reuse_output
        self._out = np.empty((1, 3, self.input_height, self.input_width), dtype=np.float32)
        warm_up()  # compile or load the kernel now, not on the first frame

    @classmethod
    def from_info(cls, info: Any, roi_top: float | None = None, **kwargs: Any) -> Preprocessor:
        """Build from a model description (``ModelInfo`` or anything with its attribute names).

        Args:
            info: has ``input_width``, ``input_height``, ``mean``, ``std``, ``channel_order``, ``roi_top``.
            roi_top: overrides ``info.roi_top`` when given.
            **kwargs: passed to the constructor (``reuse_output``).

        Returns:
            The preprocessor.
        """
        top = info.roi_top if roi_top is None else roi_top
        return cls(info.input_width, info.input_height, info.mean, info.std,
                   channel_order=info.channel_order, roi_top=top, **kwargs)

    def geometry(self, src_width: int, src_height: int) -> Geometry:
        """The crop and resize this preprocessor applies to a camera image of the given size."""
        return Geometry(int(src_width), int(src_height), round(self.roi_top * src_height),
                        self.input_width, self.input_height)

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """Turn one camera image into a network batch of one.

        Args:
            image_bgr: (H, W, 3) uint8 BGR; (H, W) or (H, W, 1) grey and (H, W, 4) BGRA are accepted too.

        Returns:
            ((1, 3, input_height, input_width) float32, the Geometry to map outputs back).

        Raises:
            ValueError: the image is not uint8, has an unsupported channel count, or nothing is left after
                the crop.
        """
        image = _as_bgr(image_bgr)
        geo = self.geometry(image.shape[1], image.shape[0])
        if geo.crop_top >= geo.src_height:
            raise ValueError(f"roi_top={self.roi_top} leaves no rows of a {geo.src_height}-row image")
        resized = cv2.resize(image[geo.crop_top:], (self.input_width, self.input_height),
                             interpolation=cv2.INTER_LINEAR)
        out = self._out if self._reuse else np.empty_like(self._out)
        _to_planes(resized, out[0], self._source, self._scale, self._offset)
        return out, geo


@kernel
def _to_planes(resized, out, source, scale, offset):  # pragma: no cover
    """``out[c] = resized[..., source[c]] * scale[c] + offset[c]`` in float32 (an HWC uint8 image to CHW), by
    a table of the 256 values of each channel."""
    h, w, _ = resized.shape
    table = np.empty((3, 256), np.float32)
    for c in range(3):
        for v in range(256):
            table[c, v] = np.float32(v) * scale[c] + offset[c]
    for c in range(3):  # a plane at a time: one stream of writes
        s = source[c]
        for y in range(h):
            for x in range(w):
                out[c, y, x] = table[c, resized[y, x, s]]


@warms_up
def _warm() -> None:
    _to_planes(np.zeros((2, 3, 3), np.uint8), np.zeros((1, 3, 2, 3), np.float32)[0], np.arange(3),
               np.ones(3, np.float32), np.zeros(3, np.float32))


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Return a 3-channel uint8 BGR view or conversion of ``image``."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype} (convert 16-bit images to 8 bits first)")
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3]
    raise ValueError(f"image must be (H, W, 3) BGR, (H, W) grey or (H, W, 4) BGRA; got shape {image.shape}")
