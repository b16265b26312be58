"""Benchmark metrics computed the way each benchmark's own evaluator computes them (no torch, no rclpy).

- TuSimple accuracy / FP / FN: a port of the official ``evaluate/lane.py`` (``LaneEval.bench``): per gt lane a
  threshold of 20 px / cos(angle), the angle from a linear regression of x on y over the gt lane's valid
  points; a gt lane is matched when some prediction is within that threshold at >= 85 % of the h_samples
  (absent points, < 0, count as -100 on both sides, as in the original); images with more than 4 gt lanes drop
  their worst lane and one miss; an image with more than ``len(gt) + 2`` predictions scores (0, 0, 1).
- CULane F1: the official evaluator's method: each lane interpolated with a natural cubic spline over chord
  length (50 samples per segment), drawn 30 px wide on a 1640x590 canvas, IoU between masks, one-to-one
  matching maximising total IoU (Hungarian algorithm), a match counts when IoU > 0.5.
- Per-class IoU / mIoU from a confusion matrix with an ignore index.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from lanenet_ros.jit import kernel, warms_up
from lanenet_ros.lanes import DetectedLane

TUSIMPLE_PIXEL_THRESH = 20.0
TUSIMPLE_POINT_THRESH = 0.85
CULANE_SIZE = (1640, 590)


# --------------------------------------------------------------------------------------------- TuSimple
def tusimple_lane_angle(xs: np.ndarray, h_samples: np.ndarray) -> float:
    """Angle of a gt lane: arctan of the slope dx/dy of a least-squares line x(y) over its valid points.

    Args:
        xs: x per h_sample, negative where the lane is absent.
        h_samples: the image rows.

    Returns:
        The angle in radians (0 when fewer than two points are valid).
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(h_samples, dtype=np.float64)
    valid = xs >= 0
    if valid.sum() <= 1:
        return 0.0
    slope = np.polyfit(ys[valid], xs[valid], 1)[0]
    return float(np.arctan(slope))


def tusimple_line_accuracy(pred: np.ndarray, gt: np.ndarray, thresh: float) -> float:
    """Fraction of h_samples where |pred - gt| < thresh, absent points (< 0) taken as -100 on both sides."""
    pred = np.where(np.asarray(pred, dtype=np.float64) >= 0, pred, -100.0)
    gt = np.where(np.asarray(gt, dtype=np.float64) >= 0, gt, -100.0)
    return float(np.sum(np.abs(pred - gt) < thresh) / len(gt))


def tusimple_frame(
    pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], h_samples: Sequence[float],
    running_time_ms: float = 0.0,
) -> tuple[float, float, float]:
    """Score one image as the official TuSimple evaluator does.

    Args:
        pred: predicted lanes, each an x per h_sample (-2 where absent).
        gt: ground-truth lanes in the same format.
        h_samples: the image rows the x values belong to.
        running_time_ms: the submission's run time; over 200 ms the image scores (0, 0, 1) as officially.

    Returns:
        (accuracy, false-positive rate, false-negative rate) of this image.

    Raises:
        ValueError: a predicted lane does not have one value per h_sample.
    """
    y = np.asarray(h_samples, dtype=np.float64)
    if any(len(p) != len(y) for p in pred):
        raise ValueError(f"every predicted lane needs {len(y)} x values (one per h_sample)")
    if running_time_ms > 200 or len(gt) + 2 < len(pred):
        return 0.0, 0.0, 1.0
    preds = [np.asarray(p, dtype=np.float64) for p in pred]
    line_accs, fn, matched = [], 0.0, 0.0
    for x_gt in gt:
        x_gt = np.asarray(x_gt, dtype=np.float64)
        thresh = TUSIMPLE_PIXEL_THRESH / np.cos(tusimple_lane_angle(x_gt, y))
        accs = [tusimple_line_accuracy(p, x_gt, thresh) for p in preds]
        max_acc = max(accs) if accs else 0.0
        if max_acc < TUSIMPLE_POINT_THRESH:
            fn += 1
        else:
            matched += 1
        line_accs.append(max_acc)
    fp = len(preds) - matched
    if len(gt) > 4 and fn > 0:
        fn -= 1
    total = sum(line_accs)
    if len(gt) > 4:
        total -= min(line_accs)
    denom = max(min(4.0, len(gt)), 1.0)
    return total / denom, (fp / len(preds) if preds else 0.0), fn / denom


@dataclass
class TuSimpleAccumulator:
    """Averages :func:`tusimple_frame` over images (the official per-image averaging).

    Attributes:
        per_frame: (accuracy, fp, fn) of every image added, in order (to find the worst frames).
    """

    per_frame: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]],
            h_samples: Sequence[float], running_time_ms: float = 0.0) -> tuple[float, float, float]:
        """Score one image, remember it and return its (accuracy, fp, fn)."""
        scores = tusimple_frame(pred, gt, h_samples, running_time_ms)
        self.per_frame.append(scores)
        return scores

    def result(self) -> dict[str, float]:
        """Mean accuracy, FP and FN over the images added, and their number (zeros when none)."""
        if not self.per_frame:
            return {"accuracy": 0.0, "fp": 0.0, "fn": 0.0, "frames": 0}
        acc, fp, fn = np.mean(np.asarray(self.per_frame, dtype=np.float64), axis=0)
        return {"accuracy": float(acc), "fp": float(fp), "fn": float(fn), "frames": len(self.per_frame)}


def lanes_to_tusimple(lanes: Sequence[DetectedLane], h_samples: Sequence[float],
                      width: float | None = None) -> list[list[float]]:
    """Sample detected lanes at TuSimple's h_samples.

    Args:
        lanes: lanes in the pixel frame of the ground truth (e.g. 1280x720 camera pixels).
        h_samples: the rows to sample.
        width: image width; x outside [0, width) is reported absent. None: only x < 0 is absent.

    Returns:
        One list per lane with an x per h_sample, -2 outside the lane's valid rows or the image.
    """
    y = np.asarray(h_samples, dtype=np.float64)
    out = []
    for lane in lanes:
        x = lane.x_at(y)
        valid = (y >= lane.y_min) & (y <= lane.y_max) & np.isfinite(x) & (x >= 0)
        if width is not None:
            valid &= x < width
        out.append([float(v) for v in np.where(valid, x, -2.0)])
    return out


# ----------------------------------------------------------------------------------------------- CULane
def spline_interp(points: np.ndarray, times: int = 50) -> np.ndarray:
    """Natural cubic spline through ``points`` over chord length, ``times`` samples per segment + the last.

    Two points give a straight segment with ``times + 1`` samples, as in the CULane evaluator.

    Args:
        points: (N, 2) x, y.
        times: samples per segment.

    Returns:
        (M, 2) float64 samples.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    keep = np.r_[True, np.any(np.diff(pts, axis=0) != 0, axis=1)]
    pts = pts[keep]  # repeated points would give zero-length segments
    if len(pts) < 3:
        t = np.linspace(0.0, 1.0, times + 1)[:, None]
        return pts[:1] + t * (pts[-1:] - pts[:1]) if len(pts) == 2 else pts
    h = np.hypot(*np.diff(pts, axis=0).T)
    n = len(pts)
    # second derivatives M (natural: M_0 = M_{n-1} = 0) from the tridiagonal system
    a = np.zeros((n - 2, n - 2))
    idx = np.arange(n - 2)
    a[idx, idx] = 2.0 * (h[:-1] + h[1:])
    a[idx[1:], idx[:-1]] = h[1:-1]
    a[idx[:-1], idx[1:]] = h[1:-1]
    slopes = np.diff(pts, axis=0) / h[:, None]
    m = np.zeros((n, 2))
    m[1:-1] = np.linalg.solve(a, 6.0 * np.diff(slopes, axis=0))
    t = (np.arange(times) / times)[None, :, None] * h[:, None, None]  # (segments, times, 1)
    b = slopes - h[:, None] * (2.0 * m[:-1] + m[1:]) / 6.0
    c, d = m[:-1] / 2.0, (m[1:] - m[:-1]) / (6.0 * h[:, None])
    seg = pts[:-1, None] + b[:, None] * t + c[:, None] * t**2 + d[:, None] * t**3
    return np.vstack([seg.reshape(-1, 2), pts[-1:]])


def culane_lane_pixels(points: np.ndarray, image_size: tuple[int, int] = CULANE_SIZE,
                       lane_width: int = 30) -> np.ndarray:
    """Flat indices of the pixels a lane covers when drawn as CULane does on a 1640x590 canvas.

    Args:
        points: (N, 2) lane points (x, y) in an image of ``image_size`` (width, height); scaled to 1640x590.
        image_size: (width, height) of the image the points belong to.
        lane_width: line thickness in pixels on the 1640x590 canvas.

    Returns:
        Sorted int64 flat indices into a (590, 1640) canvas (empty for lanes with fewer than 2 points).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return np.zeros(0, dtype=np.int64)
    pts = pts * (CULANE_SIZE[0] / image_size[0], CULANE_SIZE[1] / image_size[1])
    interp = spline_interp(pts, 50) if len(pts) > 2 else pts
    canvas = np.zeros((CULANE_SIZE[1], CULANE_SIZE[0]), dtype=np.uint8)
    poly = np.rint(interp).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [poly], False, 1, thickness=lane_width, lineType=cv2.LINE_8)
    return np.flatnonzero(canvas)


def culane_iou_matrix(pred_lanes: Sequence[np.ndarray], gt_lanes: Sequence[np.ndarray],
                      image_size: tuple[int, int] = CULANE_SIZE, lane_width: int = 30) -> np.ndarray:
    """IoU of every (gt, pred) pair of lanes drawn CULane-style; shape (len(gt), len(pred))."""
    preds = [culane_lane_pixels(p, image_size, lane_width) for p in pred_lanes]
    gts = [culane_lane_pixels(g, image_size, lane_width) for g in gt_lanes]
    ious = np.zeros((len(gts), len(preds)))
    for i, g in enumerate(gts):
        for j, p in enumerate(preds):
            inter = np.intersect1d(g, p, assume_unique=True).size
            union = g.size + p.size - inter
            ious[i, j] = inter / union if union else 0.0
    return ious


def culane_frame(pred_lanes: Sequence[np.ndarray], gt_lanes: Sequence[np.ndarray],
                 image_size: tuple[int, int] = CULANE_SIZE, lane_width: int = 30,
                 iou_threshold: float = 0.5) -> tuple[int, int, int]:
    """Count CULane true positives, false positives and false negatives in one image.

    Args:
        pred_lanes: predicted lanes, each (N, 2) points (x, y) in an image of ``image_size``.
        gt_lanes: ground-truth lanes in the same format.
        image_size: (width, height) of that image; coordinates are scaled to 1640x590.
        lane_width: drawn lane width on the 1640x590 canvas (30 in the benchmark).
        iou_threshold: a matched pair counts when its IoU is above this.

    Returns:
        (tp, fp, fn).
    """
    if not gt_lanes or not pred_lanes:
        return 0, len(pred_lanes), len(gt_lanes)
    ious = culane_iou_matrix(pred_lanes, gt_lanes, image_size, lane_width)
    rows, cols = min_cost_assignment(-ious)
    tp = int(np.sum(ious[rows, cols] > iou_threshold))
    return tp, len(pred_lanes) - tp, len(gt_lanes) - tp


@dataclass
class CULaneAccumulator:
    """Sums CULane counts over images; precision, recall and F1 over the whole set."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, pred_lanes: Sequence[np.ndarray], gt_lanes: Sequence[np.ndarray],
            image_size: tuple[int, int] = CULANE_SIZE, **kwargs: float) -> tuple[int, int, int]:
        """Score one image with :func:`culane_frame` (same arguments), add its counts and return them."""
        counts = culane_frame(pred_lanes, gt_lanes, image_size, **kwargs)
        self.tp, self.fp, self.fn = self.tp + counts[0], self.fp + counts[1], self.fn + counts[2]
        return counts

    def result(self) -> dict[str, float]:
        """Precision, recall, F1 (0 where undefined) and the raw counts."""
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "tp": self.tp, "fp": self.fp, "fn": self.fn}


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment (Hungarian algorithm with potentials) of a rectangular matrix.

    Args:
        cost: (R, C) finite costs.

    Returns:
        (rows, cols): matched index pairs, min(R, C) of them, sorted by row.
    """
    cost = np.asarray(cost, dtype=np.float64)
    transposed = cost.shape[0] > cost.shape[1]
    c = cost.T if transposed else cost
    if c.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    owner = _hungarian(np.ascontiguousarray(c))
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order], cols[order]


@kernel
def _hungarian(c):  # pragma: no cover
    """owner[j]: the row (1-based) assigned column j (1-based), 0 = free, for an (n, m) cost, n <= m. Each row
    joins the matching along a shortest augmenting path, the potentials u, v kept feasible."""
    n, m = c.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)
    minv = np.empty(m + 1)
    way = np.zeros(m + 1, np.int64)
    used = np.zeros(m + 1, np.bool_)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        minv[:] = np.inf
        way[:] = 0
        used[:] = False
        while True:
            used[j0] = True
            i0 = owner[j0]
            j1, delta = 0, np.inf
            for j in range(1, m + 1):
                if used[j]:
                    continue
                reduced = c[i0 - 1, j - 1] - u[i0] - v[j]
                if reduced < minv[j]:
                    minv[j], way[j] = reduced, j0
                if minv[j] < delta:
                    j1, delta = j, minv[j]
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    return owner


@warms_up
def _warm() -> None:
    min_cost_assignment(np.array([[1.0, 2.0, 0.5], [0.2, 3.0, 1.0]]))


# ------------------------------------------------------------------------------------------- segmentation
class ConfusionMatrix:
    """Pixel confusion matrix over ``num_classes`` classes (rows: ground truth, columns: prediction)."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        """Create an empty matrix.

        Args:
            num_classes: number of classes (ids 0..num_classes-1).
            ignore_index: ground-truth id whose pixels are not counted.
        """
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Count one prediction against its ground truth (same shape, integer class ids).

        Raises:
            ValueError: shapes differ, or an id outside 0..num_classes-1 (other than the ignore index).
        """
        pred, gt = np.asarray(pred).ravel(), np.asarray(gt).ravel()
        if pred.shape != gt.shape:
            raise ValueError(f"prediction has {pred.size} pixels but ground truth has {gt.size}")
        keep = gt != self.ignore_index
        pred, gt = pred[keep].astype(np.int64), gt[keep].astype(np.int64)
        for name, ids in (("prediction", pred), ("ground truth", gt)):
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise ValueError(f"{name} holds class id {int(ids.max())} outside 0..{self.num_classes - 1}"
                                 f" (ignore index {self.ignore_index}); check num_classes")
        k = self.num_classes
        self.matrix += np.bincount(gt * k + pred, minlength=k * k).reshape(k, k)

    def iou(self) -> np.ndarray:
        """Per-class IoU, NaN for classes absent from both prediction and ground truth."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes that occur (NaN when nothing was counted)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.any(np.isfinite(iou)) else float("nan")

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels predicted correctly (NaN when nothing was counted)."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")
