"""Painted direction arrows in the lanes (straight, left, right, straight-left, straight-right): paint that
is not a lane boundary, with their Apollo classes."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from lanenet_train.synth.textures import hash01

RES = 0.05          # metres per sprite pixel
LENGTH_M = 6.0      # along the lane
WIDTH_M = 1.6       # across the lane
CELL_M = 120.0      # at most one arrow per lane and cell
KINDS = ("thru", "left", "right", "thru_left", "thru_right")
APOLLO_IDS = np.array([20, 24, 25, 21, 22], np.uint8)  # a_w_t, a_w_l, a_w_r, a_w_tl, a_w_tr


def _shape(kind: str) -> list[np.ndarray]:
    """Polygons in metres: u along the lane (0 = tail, 6 = tip), v across (+ left)."""
    shaft = np.array([[0.0, -0.08], [3.6, -0.08], [3.6, 0.08], [0.0, 0.08]])
    head = np.array([[3.6, -0.38], [6.0, 0.0], [3.6, 0.38]])
    polys = []
    if kind.startswith("thru"):
        polys += [shaft, head]
    for side in (("left",) if kind.endswith("left") else ()) + (("right",) if kind.endswith("right") else ()):
        sign = 1.0 if side == "left" else -1.0
        bend = np.array([[1.2, -0.08 * sign], [2.4, 0.45 * sign], [2.4, 0.61 * sign], [1.2, 0.08 * sign]])
        tip = np.array([[2.0, 0.45 * sign], [3.0, 0.75 * sign], [2.0, 0.98 * sign]])
        polys += [bend, tip]
        if not kind.startswith("thru"):
            polys.append(np.array([[0.0, -0.08], [1.3, -0.08], [1.3, 0.08], [0.0, 0.08]]))
    return polys


@lru_cache(maxsize=1)
def sprites() -> np.ndarray:
    """(kinds, rows along the lane, cols across) float32 coverage of each arrow, slightly blurred."""
    rows, cols = int(LENGTH_M / RES), int(WIDTH_M / RES)
    out = np.zeros((len(KINDS), rows, cols), np.float32)
    for k, kind in enumerate(KINDS):
        img = np.zeros((rows, cols), np.uint8)
        for poly in _shape(kind):
            px = np.stack([poly[:, 1] / RES + cols / 2, poly[:, 0] / RES], axis=1)
            cv2.fillPoly(img, [np.round(px * 8).astype(np.int32)], 255, cv2.LINE_AA, 3)
        out[k] = cv2.GaussianBlur(img.astype(np.float32) / 255.0, (3, 3), 0)
    return out


def arrow_cover(s: np.ndarray, d: np.ndarray, lane_centres: np.ndarray, lane_of: np.ndarray, oncoming: int,
                density: float, salt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Coverage of arrow paint at road coordinates.

    Args:
        s: arc lengths (1-D, the pixels to test).
        d: lateral offsets.
        lane_centres: lane centre offsets, left to right.
        lane_of: index of each pixel's lane (left to right, -1 outside the lanes).
        oncoming: number of oncoming lanes (their arrows point the other way).
        density: probability of an arrow per lane and 120 m.
        salt: hash seed.

    Returns:
        ``(index, coverage, apollo_id)`` of the pixels that touch an arrow, or None when none does.
    """
    if density <= 0:
        return None
    cell = np.floor(s / CELL_M).astype(np.int64)
    key = cell * 16 + np.maximum(lane_of, 0)
    present = (hash01(key, salt) < density) & (lane_of >= 0)
    start = cell * CELL_M + 10.0 + hash01(key, salt + 1) * (CELL_M - 20.0)
    u = s - start
    v = d - np.take(lane_centres, np.maximum(lane_of, 0))
    idx = np.nonzero(present & (u >= 0) & (u < LENGTH_M) & (np.abs(v) < WIDTH_M / 2))[0]
    if idx.size == 0:
        return None
    kind = np.minimum((hash01(key[idx], salt + 2) * len(KINDS)).astype(np.int64), len(KINDS) - 1)
    back = lane_of[idx] < oncoming
    uu = np.where(back, LENGTH_M - u[idx], u[idx])
    vv = np.where(back, -v[idx], v[idx])
    spr = sprites()
    rows, cols = spr.shape[1:]
    r = np.clip((uu / RES).astype(np.int64), 0, rows - 1)
    c = np.clip((vv / RES + cols / 2).astype(np.int64), 0, cols - 1)
    cover = np.take(spr.reshape(-1), (kind * rows + r) * cols + c)
    keep = cover > 0.01
    return idx[keep], cover[keep], APOLLO_IDS[kind[keep]]
