"""Lane geometry from pixel sets: robust polynomial fits, marking type and colour, left-to-right order and
ego assignment. Plain numpy/OpenCV on arrays; :mod:`lanenet_ros.decode` wires them to network outputs.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lanenet_ros.lanes import DetectedLane, MarkingColor, MarkingType, Position

P = np.polynomial.polynomial

_LEFT = (Position.EGO_LEFT, Position.SECOND_LEFT, Position.THIRD_LEFT, Position.FOURTH_LEFT)
_RIGHT = (Position.EGO_RIGHT, Position.SECOND_RIGHT, Position.THIRD_RIGHT, Position.FOURTH_RIGHT)
_DOUBLE_TYPES = {(True, True): MarkingType.DOUBLE_SOLID, (True, False): MarkingType.SOLID_DASHED,
                 (False, True): MarkingType.DASHED_SOLID, (False, False): MarkingType.DOUBLE_DASHED}


def robust_polyfit(y: np.ndarray, x: np.ndarray, degree: int, inlier_tol: float,
                   iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Fit x(y) by least squares, then refit on inliers a few times (outlier rejection by trimming).

    A point is an inlier when its residual is within ``max(inlier_tol, 3 * robust sigma)`` (sigma from the
    median absolute deviation), so noise is kept but stray pixels far from the lane are dropped.

    Args:
        y: (N,) rows.
        x: (N,) columns.
        degree: polynomial degree (lowered when there are too few points).
        inlier_tol: smallest accepted residual bound, in the units of ``x``.
        iterations: refits after the first fit.

    Returns:
        (coeffs lowest order first, boolean inlier mask).

    Raises:
        ValueError: fewer than two points.
    """
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    if len(y) < 2:
        raise ValueError(f"a lane fit needs at least 2 points, got {len(y)}")
    degree = int(min(degree, len(np.unique(y)) - 1))
    inliers = np.ones(len(y), dtype=bool)
    coeffs = P.polyfit(y, x, degree)
    for _ in range(iterations):
        resid = x - P.polyval(y, coeffs)
        mad = np.median(np.abs(resid[inliers] - np.median(resid[inliers])))
        new = np.abs(resid) <= max(inlier_tol, 3.0 * 1.4826 * mad)
        if new.sum() <= degree or np.array_equal(new, inliers):
            break
        inliers = new
        coeffs = P.polyfit(y[inliers], x[inliers], degree)
    return coeffs, inliers


def sample_points(coeffs: np.ndarray, y_min: float, y_max: float, step: float) -> np.ndarray:
    """(N, 2) float32 points (x, y) of x(y) at evenly spaced rows from ``y_max`` (near) to ``y_min`` (far)."""
    n = max(2, int(np.ceil((y_max - y_min) / max(step, 1e-6))) + 1)
    ys = np.linspace(y_max, y_min, n)
    return np.stack([P.polyval(ys, coeffs), ys], axis=1).astype(np.float32)


def row_runs(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per occupied row of a pixel set: the row, its median column, its separate runs and its extent.

    Args:
        rows: (N,) integer rows of the pixels.
        cols: (N,) integer columns.

    Returns:
        (unique rows ascending, median column per row, runs per row, last - first column per row).
    """
    order = np.lexsort((cols, rows))
    r, c = rows[order], cols[order]
    uniq, start, count = np.unique(r, return_index=True, return_counts=True)
    median = (c[start + (count - 1) // 2] + c[start + count // 2]) / 2.0
    breaks = (np.diff(c) > 1) & (np.diff(r) == 0)  # a gap inside a row starts a new run
    runs = np.add.reduceat(np.r_[breaks, False].astype(np.int64), start) + 1
    extent = c[start + count - 1] - c[start]
    return uniq, median, runs, extent


def is_solid(rows: np.ndarray, row_min: int, row_max: int, min_gap: int = 2) -> bool:
    """Whether occupied ``rows`` cover [row_min, row_max] like a solid line (no repeated gaps).

    Dashed: two or more gaps of at least ``min_gap`` rows, or one gap with less than 60 % of the rows covered
    (a single short gap is more likely an occlusion than a dash).
    """
    occupied = np.zeros(row_max - row_min + 1, dtype=bool)
    occupied[np.asarray(rows) - row_min] = True
    edges = np.diff(np.r_[1, occupied.astype(np.int8), 1])
    gap_lengths = np.nonzero(edges == 1)[0] - np.nonzero(edges == -1)[0]
    gaps = int(np.sum(gap_lengths >= min_gap))
    return gaps == 0 or (gaps == 1 and occupied.mean() >= 0.6)


def marking_type(rows: np.ndarray, cols: np.ndarray, centre_x: np.ndarray, double_fraction: float = 0.4,
                 min_gap: int = 2) -> MarkingType:
    """Solid, dashed or one of the double types of one lane's pixels (network-input resolution).

    Args:
        rows: (N,) pixel rows of the lane (inliers of its fit).
        cols: (N,) pixel columns.
        centre_x: (N,) the fitted lane centre at each pixel's row, to split a double line into its sides.
        double_fraction: share of the nearer half of the rows that must show two runs to call it double.
        min_gap: rows a gap must span to count.

    Returns:
        The marking type (never UNKNOWN for a non-empty lane).
    """
    uniq, _, runs, _ = row_runs(rows, cols)
    lo, hi = int(uniq[0]), int(uniq[-1])
    near = runs[len(runs) // 2:]  # double lines merge in the distance: judge on the near half
    if len(near) >= 4 and np.mean(near == 2) >= double_fraction:
        left = cols < centre_x
        solid_l = is_solid(np.unique(rows[left]), lo, hi, min_gap) if left.any() else False
        solid_r = is_solid(np.unique(rows[~left]), lo, hi, min_gap) if (~left).any() else False
        return _DOUBLE_TYPES[(solid_l, solid_r)]
    return MarkingType.SOLID if is_solid(uniq, lo, hi, min_gap) else MarkingType.DASHED


def marking_color(bgr_pixels: np.ndarray, min_share: float = 0.25) -> MarkingColor:
    """White, yellow or unknown from the camera pixels under a lane (HSV vote).

    Args:
        bgr_pixels: (N, 3) uint8 BGR.
        min_share: the winning colour must hold at least this share of the pixels.

    Returns:
        The colour.
    """
    if len(bgr_pixels) == 0:
        return MarkingColor.UNKNOWN
    hsv = cv2.cvtColor(np.ascontiguousarray(bgr_pixels, np.uint8).reshape(-1, 1, 3), cv2.COLOR_BGR2HSV)[:, 0]
    h, s, v = (hsv[:, i].astype(np.int16) for i in range(3))
    yellow = int(np.sum((h >= 12) & (h <= 40) & (s >= 70) & (v >= 70)))
    white = int(np.sum((s < 60) & (v >= 150)))
    n = len(bgr_pixels)
    if yellow >= min_share * n and yellow >= 0.5 * white:
        return MarkingColor.YELLOW
    if white >= min_share * n:
        return MarkingColor.WHITE
    return MarkingColor.UNKNOWN


@dataclass(frozen=True)
class ClassMarking:
    """Marking type and colour read from a class name (Apollo style ``s_w_d``, ``db_y_g``...)."""

    marking_type: MarkingType
    color: MarkingColor


_CLASS_TYPES = {"s": MarkingType.SOLID, "b": MarkingType.DASHED, "d": MarkingType.DASHED,
                "ds": MarkingType.DOUBLE_SOLID, "db": MarkingType.DOUBLE_DASHED, "sb": MarkingType.SOLID_DASHED,
                "bs": MarkingType.DASHED_SOLID}
_CLASS_COLORS = {"w": MarkingColor.WHITE, "y": MarkingColor.YELLOW}


def parse_class_marking(name: str) -> ClassMarking | None:
    """Marking type and colour encoded in a class name such as Apollo's ``ds_y_dn``; None when it has none."""
    m = re.fullmatch(r"(s|b|d|ds|db|sb|bs)_([a-z]+)_[a-z]+", name.strip().lower())
    if m is None:
        return None
    return ClassMarking(_CLASS_TYPES[m.group(1)], _CLASS_COLORS.get(m.group(2), MarkingColor.UNKNOWN))


def bottom_x(lane: DetectedLane, height: int) -> float:
    """Column where the lane meets the image's bottom row, extended straight from its nearest point."""
    y0 = lane.y_max
    slope = P.polyval(y0, P.polyder(lane.image_coeffs)) if len(lane.image_coeffs) > 1 else 0.0
    return float(lane.x_at(y0) + slope * (height - 1 - y0))


def order_lanes(lanes: Sequence[DetectedLane], width: int, height: int,
                ego_center: float = 0.5) -> tuple[list[DetectedLane], int, int]:
    """Sort lanes left to right at the bottom row and set their positions relative to the ego vehicle.

    The ego-left boundary is the nearest lane left of ``ego_center * width`` at the bottom row, the ego-right
    the nearest at or right of it; lanes further out become SECOND/THIRD/FOURTH, beyond that UNKNOWN.

    Args:
        lanes: lanes in camera pixels.
        width: camera image width.
        height: camera image height.
        ego_center: the vehicle's centre line as a fraction of the width at the bottom row.

    Returns:
        (sorted lanes, ego_left index or -1, ego_right index or -1).
    """
    xs = [bottom_x(lane, height) for lane in lanes]
    order = np.argsort(xs, kind="stable")
    ordered = [lanes[i] for i in order]
    xs_sorted = np.asarray(xs, dtype=np.float64)[order]
    n_left = int(np.sum(xs_sorted < ego_center * width))
    for k, lane in enumerate(ordered):
        outward = n_left - 1 - k if k < n_left else k - n_left
        table = _LEFT if k < n_left else _RIGHT
        lane.position = table[outward] if outward < len(table) else Position.UNKNOWN
    ego_left = n_left - 1 if n_left > 0 else -1
    ego_right = n_left if n_left < len(ordered) else -1
    return ordered, ego_left, ego_right
