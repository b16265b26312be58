"""Lane polylines to masks: left-to-right ordering and rasterisation at a fixed width."""
from __future__ import annotations

import cv2
import numpy as np

IGNORE = 255


def lane_sort_key(points: np.ndarray, width: int, height: int) -> float:
    """Position of a lane's nearest point along the image border, left to right.

    The nearest point is the lowest one (largest y). A lane that enters through the left border sorts
    before every lane reaching the bottom edge (the higher it enters, the further left it is); one entering
    through the right border sorts after them; otherwise the key is the x of the nearest point.

    Args:
        points: (N, 2) image points (x, y).
        width: image width.
        height: image height.

    Returns:
        The sort key.
    """
    if len(points) == 0:
        return float("inf")
    x, y = points[int(np.argmax(points[:, 1]))]
    if y < height - 3:
        if x <= 2.0:
            return float(y - height - 1)
        if x >= width - 3.0:
            return float(width + (height - y))
    return float(x)


def order_lanes(lanes: list[np.ndarray], width: int, height: int) -> list[int]:
    """Indices of ``lanes`` ordered left to right (see :func:`lane_sort_key`); lanes under 2 points dropped."""
    keep = [i for i, ln in enumerate(lanes) if len(ln) >= 2]
    return sorted(keep, key=lambda i: lane_sort_key(lanes[i], width, height))


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
