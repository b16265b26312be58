"""Training augmentation at network-input resolution: flip, crop-and-resize (zoom), photometric jitter.

Images are uint8 HWC, masks and instance masks uint8 HW (255 = ignore). Geometric steps move the three
together; after them, lane instance ids are renumbered 1..K left to right (by x where each lane is nearest
the camera, as docs/dataset_layout.md defines), so a flip swaps lane identities the way a driver would.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

IGNORE = 255


def order_instances(instance: np.ndarray) -> np.ndarray:
    """Renumber lane ids 1..K left to right by the x of each lane's lowest (nearest) row.

    Args:
        instance: (H, W) uint8 lane ids; 0 none, 255 ignore (kept as they are).

    Returns:
        A new (H, W) uint8 array.
    """
    ids = [int(i) for i in np.unique(instance) if i not in (0, IGNORE)]
    keys = []
    for lane in ids:
        ys, xs = np.nonzero(instance == lane)
        bottom = ys.max()
        keys.append((float(xs[ys == bottom].mean()), lane))
    lut = np.arange(256, dtype=np.uint8)
    for new_id, (_, lane) in enumerate(sorted(keys), 1):
        lut[lane] = new_id
    return lut[instance]


def hflip(image: np.ndarray, mask: np.ndarray, instance: np.ndarray | None, mirror: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mirror left-right; lane ids are renumbered so that 1 is again the leftmost lane. ``mirror``: for an
    (H, W, K) mask, a (K, 256) table of what each channel's values become in the mirror image (a solid-dashed
    line's type becomes dashed-solid), None for values that stay."""
    flipped = instance[:, ::-1] if instance is not None else None
    mask = np.ascontiguousarray(mask[:, ::-1])
    if mirror is not None:
        mask = np.stack([mirror[k][mask[..., k]] for k in range(mask.shape[2])], axis=2)
    return (np.ascontiguousarray(image[:, ::-1]), mask, order_instances(flipped) if flipped is not None else None)


def crop_and_resize(image: np.ndarray, mask: np.ndarray, instance: np.ndarray | None, zoom: float,
                    fx: float, fy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Cut a ``1/zoom`` window at relative position (fx, fy) in [0, 1] and resize it back to full size.

    Args:
        image: (H, W, 3) uint8.
        mask: (H, W) uint8 class ids (or (H, W, K): several masks moved together).
        instance: (H, W) uint8 lane ids, or None.
        zoom: >= 1; 2 shows a quarter of the image.
        fx: 0 = left edge, 1 = right edge of the window's possible positions.
        fy: 0 = top, 1 = bottom.

    Returns:
        (image, mask, instance) at the input size; lanes cut away disappear and ids are renumbered.
    """
    h, w = mask.shape[:2]
    cw, ch = max(1, round(w / zoom)), max(1, round(h / zoom))
    x0, y0 = round((w - cw) * fx), round((h - ch) * fy)
    window = (slice(y0, y0 + ch), slice(x0, x0 + cw))
    image = cv2.resize(image[window], (w, h), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask[window], (w, h), interpolation=cv2.INTER_NEAREST)
    if instance is not None:
        instance = order_instances(cv2.resize(instance[window], (w, h), interpolation=cv2.INTER_NEAREST))
    return image, mask, instance


def photometric(image: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Scale brightness, contrast about the mean grey, and saturation about each pixel's grey (factors ~1)."""
    img = image.astype(np.float32)
    grey = img @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights
    img = grey[..., None] + saturation * (img - grey[..., None])
    img = grey.mean() + contrast * (img - grey.mean())
    return np.clip(img * brightness, 0, 255).astype(np.uint8)


@dataclass
class Augmenter:
    """Random augmentation with the probabilities of the spec's ``augmentation_config``."""

    horizontal_flip: float = 0.5
    crop_and_resize_prob: float = 0.5
    zoom_min: float = 1.0
    zoom_max: float = 2.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    @classmethod
    def from_config(cls, config: object) -> Augmenter:
        """Build from ``spec.AugmentationConfig``."""
        return cls(**{k: getattr(config, k) for k in cls.__dataclass_fields__})

    def __call__(self, rng: np.random.Generator, image: np.ndarray, mask: np.ndarray,
                 instance: np.ndarray | None, mirror: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Apply a random augmentation drawn from ``rng`` (same draws for the same rng state); ``mirror``: see
        :func:`hflip`."""
        draws = rng.random(6)
        if draws[0] < self.horizontal_flip:
            image, mask, instance = hflip(image, mask, instance, mirror)
        if draws[1] < self.crop_and_resize_prob and self.zoom_max > 1.0:
            zoom = self.zoom_min + draws[2] * (self.zoom_max - self.zoom_min)
            image, mask, instance = crop_and_resize(image, mask, instance, zoom, draws[3], draws[4])
        if self.brightness or self.contrast or self.saturation:
            b, c, s = 1 + (rng.random(3) * 2 - 1) * (self.brightness, self.contrast, self.saturation)
            image = photometric(image, b, c, s)
        return image, mask, instance
