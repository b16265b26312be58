"""Procedural textures: tileable value noise, looked up in road (s, d) coordinates with cv2.remap,
and a stateless integer hash for features placed along the road (patches, cracks, trees)."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


def tileable_noise(rng: np.random.Generator, shape: tuple[int, int], octaves: list[tuple[int, float]]
                   ) -> np.ndarray:
    """Sum of upsampled random grids, tileable in both directions, scaled to about [-1, 1].

    Args:
        rng: random generator.
        shape: (rows, cols) of the texture.
        octaves: ``(cells along the longer side, amplitude)`` per octave.

    Returns:
        (rows, cols) float32 noise.
    """
    rows, cols = shape
    out = np.zeros(shape, np.float32)
    for cells, amp in octaves:
        cr = max(2, round(cells * rows / max(shape)))
        cc = max(2, round(cells * cols / max(shape)))
        grid = rng.standard_normal((cr, cc)).astype(np.float32)
        big = cv2.resize(np.tile(grid, (3, 3)), (cols * 3, rows * 3), interpolation=cv2.INTER_CUBIC)
        out += amp * big[rows:2 * rows, cols:2 * cols]
    return out / max(float(np.abs(out).max()), 1e-6)


class RoadTextures:
    """Noise textures for the road and the roadside, at three scales.

    Attributes:
        coarse: 2 m x 0.5 m cells; patchiness, roadside tone.
        mid: 0.2 m x 0.1 m cells; paint wear, tar snakes.
        fine: 2 cm cells; asphalt grain near the camera.
    """

    COARSE_RES = (2.0, 0.5)
    MID_RES = (0.1, 0.05)
    FINE_RES = (0.02, 0.02)

    @staticmethod
    @lru_cache(maxsize=16)
    def from_bank(index: int) -> RoadTextures:
        """One of 16 fixed texture sets (building textures costs more than rendering a frame)."""
        return RoadTextures(np.random.default_rng([index, 0x7E7]))

    def __init__(self, rng: np.random.Generator):
        self.coarse = tileable_noise(rng, (256, 256), [(4, 1.0), (16, 0.6), (64, 0.35)])
        self.mid = tileable_noise(rng, (512, 256), [(8, 1.0), (32, 0.7), (128, 0.4)])
        self.mid2 = tileable_noise(rng, (512, 256), [(6, 1.0), (24, 0.5)])
        self.fine = tileable_noise(rng, (256, 256), [(32, 0.6), (128, 1.0)])

    @staticmethod
    def lookup(tex: np.ndarray, s: np.ndarray, d: np.ndarray, res: tuple[float, float]) -> np.ndarray:
        """Bilinear lookup of ``tex`` (rows along s, columns along d) at road coordinates, wrapping.

        Args:
            tex: (rows, cols) float32 texture.
            s: arc lengths (any shape).
            d: lateral offsets (same shape).
            res: metres per texel along s and d.

        Returns:
            Texture values, shaped like ``s``.
        """
        rows, cols = tex.shape[:2]
        shape = np.shape(s)
        my = np.asarray(s, np.float32) * np.float32(1.0 / res[0])
        mx = np.asarray(d, np.float32) * np.float32(1.0 / res[1])
        if my.size and max(float(np.abs(my).max()), float(np.abs(mx).max())) > 2e6:
            my, mx = np.mod(my, rows), np.mod(mx, cols)  # keep cv2's fixed-point coordinates in range
        if my.ndim != 2 or max(my.shape) >= 32000:  # cv2.remap takes 2-D maps below SHRT_MAX
            n = my.size
            width = 1024
            pad = (-n) % width
            my = np.concatenate([my.ravel(), np.zeros(pad, np.float32)]).reshape(-1, width)
            mx = np.concatenate([mx.ravel(), np.zeros(pad, np.float32)]).reshape(-1, width)
            out = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
            return out.ravel()[:n].reshape(shape)
        return cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)

def hash01(cells: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) for integer cells (any shape)."""
    cells = np.asarray(cells)
    if cells.size > 4096:
        lo, hi = int(cells.min()), int(cells.max())
        if hi - lo < cells.size // 8:  # few distinct cells: hash them once, then gather
            return _hash(np.arange(lo, hi + 1), salt)[cells - lo]
    return _hash(cells, salt)


def _hash(cells: np.ndarray, salt: int) -> np.ndarray:
    x = (np.asarray(cells, dtype=np.int64) * 0x9E3779B1 + (salt * 0x85EBCA77 & 0xFFFFFFFF)) & 0xFFFFFFFF
    x = x.astype(np.uint64)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(12)
    x = (x * np.uint64(0x297A2D39)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    return (x.astype(np.float64) / 4294967296.0).astype(np.float32)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``edge0`` to 1 at ``edge1``."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
