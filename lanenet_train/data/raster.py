"""Lane polylines to masks: left-to-right ordering and rasterisation at a fixed width."""
from __future__ import annotations

from functools import cmp_to_key

import cv2
import numpy as np

IGNORE = 255


def x_at(points: np.ndarray, y: float) -> float:
    """x of a polyline at row ``y``, extended along its end segments beyond its first and last rows."""
    pts = points[np.argsort(points[:, 1], kind="stable")]
    ys, xs = pts[:, 1], pts[:, 0]
    if ys[-1] - ys[0] < 1e-9:
        return float(xs.mean())
    if y <= ys[0]:
        i = 0
    elif y >= ys[-1]:
        i = len(ys) - 2
    else:
        return float(np.interp(y, ys, xs))
    j = i + 1
    while j < len(ys) - 1 and ys[j] - ys[i] < 1e-9:
        j += 1
    slope = (xs[j] - xs[i]) / max(ys[j] - ys[i], 1e-9)
    return float(xs[i] + (y - ys[i]) * slope)


def compare_lanes(a: np.ndarray, b: np.ndarray) -> int:
    """-1 if lane ``a`` is left of lane ``b``: their x compared at the lowest row both reach (nearest the
    camera), or, when their rows do not overlap, between them along their end segments."""
    lo = max(a[:, 1].min(), b[:, 1].min())
    hi = min(a[:, 1].max(), b[:, 1].max())
    y = hi if lo <= hi else 0.5 * (lo + hi)
    xa, xb = x_at(a, y), x_at(b, y)
    return -1 if xa < xb else 1 if xa > xb else 0


def order_lanes(lanes: list[np.ndarray], width: int, height: int) -> list[int]:
    """Indices of ``lanes`` ordered left to right (see :func:`compare_lanes`); lanes under 2 points dropped.

    Args:
        lanes: (N, 2) image polylines.
        width: image width (unused; kept for callers that order by the image frame).
        height: image height (unused).

    Returns:
        The order as indices into ``lanes``.
    """
    keep = [i for i, ln in enumerate(lanes) if len(ln) >= 2]
    return sorted(keep, key=cmp_to_key(lambda i, j: compare_lanes(lanes[i], lanes[j])))


def rasterise_lanes(lanes: list[np.ndarray], width: int, height: int, lane_width: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ordered lane polylines as a class mask (1 = lane) and an instance mask (1..N).

    Args:
        lanes: (N, 2) polylines, already ordered left to right.
        width: image width.
        height: image height.
        lane_width: line thickness in pixels.

    Returns:
        ``(mask, instance)``: (height, width) uint8 arrays.
    """
    mask = np.zeros((height, width), np.uint8)
    instance = np.zeros((height, width), np.uint8)
    for k, pts in enumerate(lanes, 1):
        if len(pts) < 2:
            continue
        fixed = np.round(np.asarray(pts, float) * 16).astype(np.int32)
        cv2.polylines(instance, [fixed], False, min(k, 254), lane_width, cv2.LINE_8, 4)
    mask[instance > 0] = 1
    return mask, instance
