"""A lane's far end from the paint in the camera image (decoder setting ``far_end_paint``).

The network's mask, with the decoder's ``extend_far``, can carry a lane on past the end of its paint (on real
footage, 1-3 TuSimple rows, issue "Real roads"): with the camera image, the far end can be put back where the
paint along the lane is last seen.
"""
from __future__ import annotations

import numpy as np

from lanenet_ros.decode import paint
from lanenet_ros.decode.fitting import sample_points
from lanenet_ros.lanes import DetectedLane


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
    return lane.replace(y_min=y_min, points=sample_points(lane.image_coeffs, y_min, lane.y_max,
                                                                       point_step_px))


def paint_rows(image_bgr: np.ndarray, lane: DetectedLane, ys: np.ndarray) -> np.ndarray:
    """(len(ys),) bool: rows where the camera image shows paint on the lane's fit (:func:`paint.paint_along`)."""
    return paint.paint_along(image_bgr, lane, ys, half=max(2.0, 0.004 * image_bgr.shape[1]), samples=7, gap=4)
