"""Shape sanity of fitted lanes and their far ends (decoder settings ``no_s_bends``, ``uncross``,
``far_end_paint``).

A cubic fitted to a lane whose far part is noisy can bend one way and then the other within the lane's own
rows, an S the road seldom makes inside a dash-cam's view; two lanes whose far ends are pulled together can
cross. And the network's mask, with the decoder's ``extend_far``, can carry a lane on past the end of its
paint: with the camera image, the far end can be put back where the paint along the lane is last seen.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import cv2
import numpy as np

from lanenet_ros.decode import paint
from lanenet_ros.decode.fitting import bottom_x, sample_points
from lanenet_ros.lanes import DetectedLane

P = np.polynomial.polynomial
_MIN_BOW_PX = 1.0  # each half of an S must bow this far from its chord to count


def bends_both_ways(coeffs: np.ndarray, row_first: float, row_last: float) -> bool:
    """Whether x(y) (``coeffs``, lowest order first) curves one way and then the other between the two rows,
    each part bowing at least a pixel from its chord."""
    c = np.zeros(4)
    c[:min(4, len(coeffs))] = np.asarray(coeffs, np.float64)[:4]
    if c[3] == 0:
        return False
    inflection = -c[2] / (3 * c[3])
    if not row_first < inflection < row_last:
        return False
    bend = lambda y: 2 * c[2] + 6 * c[3] * y  # noqa: E731  x''(y)
    parts = ((row_first, inflection), (inflection, row_last))
    # a part of length L with x'' up to k at its far end bows about k L^2 / 16 from its chord (x'' linear)
    return all(abs(bend(a if i == 0 else b)) * (b - a) ** 2 / 16 >= _MIN_BOW_PX for i, (a, b) in enumerate(parts))


def uncross(lanes: Sequence[DetectedLane], width: int, height: int, point_step_px: float) -> list[DetectedLane]:
    """The lanes with every crossing of two neighbours (left to right at the bottom row) undone: the less
    confident of the two ends two point steps short of the crossing, or is dropped with under two steps left."""
    order = sorted(range(len(lanes)), key=lambda i: bottom_x(lanes[i], height))
    out: dict[int, DetectedLane | None] = dict(enumerate(lanes))
    for a, b in itertools.pairwise(order):
        la, lb = out[a], out[b]
        if la is None or lb is None:
            continue
        lo, hi = max(la.y_min, lb.y_min), min(la.y_max, lb.y_max)
        if hi - lo < 2:
            continue
        ys = np.arange(hi, lo, -2.0)  # near to far
        left_of = la.x_at(ys) < lb.x_at(ys)
        if left_of.all() or not left_of[0]:
            continue
        crossing = float(ys[int(np.argmin(left_of))])
        weak = a if la.confidence < lb.confidence else b
        lane = out[weak]
        y_min = crossing + 2 * point_step_px
        out[weak] = None if lane.y_max - y_min < 2 * point_step_px else dataclasses.replace(
            lane, y_min=y_min, points=sample_points(lane.image_coeffs, y_min, lane.y_max, point_step_px))
    return [lane for lane in out.values() if lane is not None]


def end_at_paint(image_bgr: np.ndarray, lane: DetectedLane, search_px: float, point_step_px: float) -> DetectedLane:
    """The lane with its far end moved back (never on) to the farthest row, within ``search_px`` rows of it,
    that shows paint in the camera image along the fit with paint on another row within 6 rows nearer; the
    lane as it is when none of those rows shows paint (a faint line is not cut)."""
    ys = np.arange(lane.y_min, min(lane.y_min + search_px, lane.y_max), 1.0)
    if len(ys) < 4:
        return lane
    seen = paint_rows(image_bgr, lane, ys)
    if not seen.any():
        return lane
    near = np.convolve(seen[::-1].astype(np.int32), np.ones(6, np.int32))[5:][::-1]  # paint rows in [i, i + 5]
    ok = seen & (near >= 2)
    if not ok.any():
        return lane
    y_min = float(ys[int(np.argmax(ok))])
    if y_min <= lane.y_min:
        return lane
    return dataclasses.replace(lane, y_min=y_min, points=sample_points(lane.image_coeffs, y_min, lane.y_max,
                                                                       point_step_px))


def paint_rows(image_bgr: np.ndarray, lane: DetectedLane, ys: np.ndarray) -> np.ndarray:
    """(len(ys),) bool: rows where the camera image shows paint on the lane's fit (brighter than the road a
    little way out on both sides; :func:`paint.is_paint`)."""
    w = image_bgr.shape[1]
    half = max(2.0, 0.004 * w)
    xs = lane.x_at(ys)
    band = xs[:, None] + np.linspace(-half, half, 7)[None, :]
    refs = np.stack([xs - 2 * half - 4, xs + 2 * half + 4], axis=1)
    map_x = np.concatenate([band, refs], axis=1).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], map_x.shape).astype(np.float32)
    value = cv2.remap(image_bgr[:, :, :3], map_x, map_y, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE).max(axis=2).astype(np.float32)
    road = np.maximum(value[:, -2], value[:, -1])
    inside = (xs >= 0) & (xs <= w - 1)
    return paint.is_paint(value[:, :-2].max(axis=1), road) & inside
