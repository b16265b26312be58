"""Lane geometry from pixel sets: robust polynomial fits, per-row statistics, dashes chained into markings,
left-to-right order and ego assignment. Plain numpy on arrays; :mod:`lanenet_ros.decode.decoder` wires them to network
outputs and :mod:`lanenet_ros.decode.paint` reads marking types and colours.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from lanenet_ros.jit import kernel, warms_up
from lanenet_ros.lanes import DetectedLane, Position, polyval

_LEFT = (Position.EGO_LEFT, Position.SECOND_LEFT, Position.THIRD_LEFT, Position.FOURTH_LEFT)
_RIGHT = (Position.EGO_RIGHT, Position.SECOND_RIGHT, Position.THIRD_RIGHT, Position.FOURTH_RIGHT)


def robust_polyfit(y: np.ndarray, x: np.ndarray, degree: int, inlier_tol: float,
                   iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Fit x(y) robustly: least trimmed squares to start, then refits on the inliers.

    When the plain least-squares fit leaves residuals above ``inlier_tol``, the fit is restarted from the half
    of the points it fits best (two concentration steps, which a minority of stray points cannot pull), and
    then a point is an inlier when its residual is within ``max(inlier_tol, 3 * robust sigma)`` (sigma from
    the median absolute deviation), so noise is kept but stray pixels far from the lane are dropped.

    Args:
        y: (N,) rows.
        x: (N,) columns.
        degree: polynomial degree (lowered when there are too few points).
        inlier_tol: smallest accepted residual bound, in the units of ``x``.
        iterations: inlier refits after the trimmed start.

    Returns:
        (coeffs lowest order first, boolean inlier mask).

    Raises:
        ValueError: fewer than two distinct rows.
    """
    y, x = np.ascontiguousarray(y, np.float64), np.ascontiguousarray(x, np.float64)
    if len(y) == 0 or y.max() <= y.min():
        raise ValueError(f"a lane fit needs points on at least 2 rows, got {len(y)} points")
    return _robust_polyfit(y, x, int(min(degree, len(y) - 1)), float(inlier_tol), int(iterations))


@kernel
def _robust_polyfit(y, x, degree, inlier_tol, iterations):  # pragma: no cover
    """:func:`robust_polyfit` on float64 arrays with at least two distinct ``y``, ``degree`` < len(y)."""
    n = len(y)
    lo, hi = y.min(), y.max()
    # fit in t = (y - mid) / half in [-1, 1]: the normal equations stay well conditioned
    mid, half = (hi + lo) / 2.0, (hi - lo) / 2.0
    vander = np.empty((n, degree + 1))
    t = (y - mid) / half
    vander[:, 0] = 1.0
    for k in range(1, degree + 1):
        vander[:, k] = vander[:, k - 1] * t
    inliers = np.ones(n, np.bool_)
    q = _solve_normal(vander, x, inliers)
    size = np.abs(x - _matvec(vander, q))
    if size.max() > inlier_tol and n > 2 * (degree + 1):
        for _ in range(2):  # concentration steps towards the least-trimmed-squares fit
            inliers = size <= np.partition(size, n // 2)[n // 2]
            q = _solve_normal(vander, x, inliers)
            size = np.abs(x - _matvec(vander, q))
    for _ in range(iterations):
        resid = x - _matvec(vander, q)
        size = np.abs(resid)
        if inliers.all() and size.max() <= inlier_tol:
            break  # a clean lane: nothing to reject
        r_in = resid[inliers]
        new = size <= max(inlier_tol, 3.0 * 1.4826 * np.median(np.abs(r_in - np.median(r_in))))
        if np.count_nonzero(new) <= degree or np.array_equal(new, inliers):
            break
        inliers = new
        q = _solve_normal(vander, x, inliers)
    return _affine_poly(q, 1.0 / half, -mid / half), inliers


@kernel
def _solve_normal(vander, x, rows):  # pragma: no cover
    """Least-squares coefficients over ``rows`` of ``vander`` from the normal equations (small, well-conditioned
    systems; Gaussian elimination with partial pivoting). A singular system (too few distinct rows for the
    degree) gets a tiny ridge, which leaves the least-squares solution of smallest norm."""
    m = vander.shape[1]
    a = np.zeros((m, m + 1))
    for i in range(len(x)):
        if rows[i]:
            for j in range(m):
                a[j, m] += vander[i, j] * x[i]
                for k in range(m):
                    a[j, k] += vander[i, j] * vander[i, k]
    scale = max(np.trace(a[:, :m]), 1e-300)
    for attempt in range(2):
        w = a.copy()
        if attempt:
            for j in range(m):
                w[j, j] += 1e-10 * scale
        ok = True
        for c in range(m):
            p = c + np.argmax(np.abs(w[c:, c]))
            if abs(w[p, c]) <= 1e-13 * scale:
                ok = False
                break
            if p != c:
                tmp = w[c].copy()
                w[c] = w[p]
                w[p] = tmp
            for r in range(c + 1, m):
                w[r] -= w[r, c] / w[c, c] * w[c]
        if ok:
            q = np.zeros(m)
            for c in range(m - 1, -1, -1):
                q[c] = (w[c, m] - _matvec(w[c:c + 1, c + 1:m], q[c + 1:])[0]) / w[c, c]
            return q
    return np.zeros(m)


@kernel
def _matvec(a, x):  # pragma: no cover
    """``a @ x`` for a 2-D ``a`` (a loop: numba's ``@`` would need SciPy's BLAS)."""
    out = np.zeros(a.shape[0])
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i] += a[i, j] * x[j]
    return out


def median(values: np.ndarray) -> float:
    """Median of a non-empty 1-D array (np.median without its NaN checks and overhead)."""
    n = len(values)
    part = np.partition(values, [(n - 1) // 2, n // 2])
    return float(part[(n - 1) // 2] + part[n // 2]) / 2.0


def affine_poly(coeffs: np.ndarray, a: float, b: float) -> np.ndarray:
    """Coefficients (lowest order first) of ``p(a * y + b)`` given those of ``p``."""
    return _affine_poly(np.asarray(coeffs, dtype=np.float64), float(a), float(b))


@kernel
def _affine_poly(coeffs, a, b):  # pragma: no cover
    # (a y + b)^k = sum_j C(k, j) a^j b^(k - j) y^j
    n = len(coeffs)
    out = np.zeros(n)
    for k in range(n):
        for j in range(k + 1):
            out[j] += coeffs[k] * _PASCAL[k, j] * a**j * b ** (k - j)
    return out


_PASCAL = np.array([[math.comb(k, j) for j in range(8)] for k in range(8)], dtype=np.float64)


@warms_up
def _warm() -> None:
    y = np.arange(12.0)
    x = 0.01 * y**2
    x[3] += 9.0
    robust_polyfit(y, x, 3, 1.0)
    robust_polyfit(y, x, 2, np.inf, iterations=0)
    affine_poly(np.ones(4), 2.0, 1.0)
    row_segments(np.array([0, 0, 1]), np.array([3, 5, 4]), np.array([0, 0, 0]))
    poly_samples(np.ones(4), 2.0, 1.0, 3, True)
    _bottom_xs(np.ones((2, 4)), np.ones((2, 2)), 720.0)


def sample_points(coeffs: np.ndarray, y_min: float, y_max: float, step: float) -> np.ndarray:
    """(N, 2) float32 points (x, y) of x(y) at evenly spaced rows from ``y_max`` (near) to ``y_min`` (far)."""
    n = max(2, math.ceil((y_max - y_min) / max(step, 1e-6)) + 1)
    return poly_samples(np.asarray(coeffs, np.float64), float(y_max), float(y_min), n, True)


@kernel
def poly_samples(coeffs, start, stop, n, value_first):  # pragma: no cover
    """(n, 2) float32 samples of the polynomial ``coeffs`` (lowest order first) at ``np.linspace(start, stop,
    n)``: rows (p(t), t) with ``value_first``, else (t, p(t)); the same floats as numpy's linspace and
    :func:`~lanenet_ros.lanes.polyval` give."""
    out = np.empty((n, 2), np.float32)
    step = (stop - start) / (n - 1)
    value, at = (0, 1) if value_first else (1, 0)
    for i in range(n):
        t = stop if i == n - 1 else i * step + start
        out[i, at] = t
        out[i, value] = _horner(coeffs, t)
    return out


@kernel
def _horner(coeffs, t):  # pragma: no cover
    """:func:`~lanenet_ros.lanes.polyval` at one value (the same operations, so the same float)."""
    out = coeffs[-1] + 0.0 * t
    for k in range(len(coeffs) - 2, -1, -1):
        out = out * t + coeffs[k]
    return out


def lane_table(lanes: Sequence[DetectedLane]) -> tuple[np.ndarray, np.ndarray]:
    """The lanes' image polynomials as one (L, D) array (lowest order first, padded with zeros: the same
    values) and their (L, 2) row ranges (y_min, y_max), for the kernels that compare lanes."""
    coeffs = np.zeros((len(lanes), max(len(lane.image_coeffs) for lane in lanes)))
    for i, lane in enumerate(lanes):
        coeffs[i, : len(lane.image_coeffs)] = lane.image_coeffs
    return coeffs, np.array([(lane.y_min, lane.y_max) for lane in lanes], np.float64)


class RowSegments(NamedTuple):
    """Pixels grouped by (label, row): one entry per occupied row of each lane."""

    start: np.ndarray  # index of the segment's first pixel
    end: np.ndarray  # one past its last pixel
    label: np.ndarray
    row: np.ndarray
    median: np.ndarray  # median column
    runs: np.ndarray  # separate runs of pixels in the row (2 for a double line)
    extent: np.ndarray  # last - first column


def row_segments(rows: np.ndarray, cols: np.ndarray, labels: np.ndarray | None = None) -> RowSegments:
    """Per (label, row) statistics of pixels sorted by label, then row, then column.

    Args:
        rows: (N,) integer rows, N >= 1.
        cols: (N,) integer columns.
        labels: (N,) lane labels; None for a single lane.

    Returns:
        The segments, in the pixels' order.
    """
    rows, cols = np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(cols, np.int64)
    lab = np.zeros(len(rows), np.int64) if labels is None else np.ascontiguousarray(labels, np.int64)
    return RowSegments(*_row_segments(rows, cols, lab))


@kernel
def _row_segments(rows, cols, labels):  # pragma: no cover
    n = len(rows)
    count = 0
    for i in range(n):  # a segment starts where the row or the label changes
        count += i == 0 or rows[i] != rows[i - 1] or labels[i] != labels[i - 1]
    start = np.empty(count, np.int64)
    k = 0
    for i in range(n):
        if i == 0 or rows[i] != rows[i - 1] or labels[i] != labels[i - 1]:
            start[k] = i
            k += 1
    end = np.empty(count, np.int64)
    end[:-1], end[-1] = start[1:], n
    median = np.empty(count)
    runs = np.ones(count, np.int64)
    for k in range(count):
        a, b = start[k], end[k]
        median[k] = (cols[(a + b - 1) // 2] + cols[(a + b) // 2]) / 2.0
        for i in range(a + 1, b):  # a gap inside a row starts a new run
            runs[k] += cols[i] - cols[i - 1] > 1
    return start, end, labels[start], rows[start], median, runs, cols[end - 1] - cols[start]


def bottom_x(lane: DetectedLane, height: int) -> float:
    """Column where the lane meets the image's bottom row, extended straight from its nearest point."""
    return float(bottom_xs([lane], height)[0])


def bottom_xs(lanes: Sequence[DetectedLane], height: int) -> np.ndarray:
    """:func:`bottom_x` of every lane at once, (len(lanes),) float64."""
    if not lanes:
        return np.zeros(0)
    coeffs, ends = lane_table(lanes)
    return _bottom_xs(coeffs, ends, float(height))


@kernel
def _bottom_xs(coeffs, ends, height):  # pragma: no cover
    """:func:`bottom_xs` of a :func:`lane_table`: each polynomial at its nearest row ``y_max``, continued along
    its slope there to row ``height - 1``."""
    lanes, terms = coeffs.shape
    out = np.empty(lanes)
    for i in range(lanes):
        y0 = ends[i, 1]
        slope = 0.0
        if terms > 1:  # Horner on the derivative's coefficients k * c_k
            slope = coeffs[i, terms - 1] * (terms - 1) + 0.0 * y0
            for k in range(terms - 2, 0, -1):
                slope = slope * y0 + coeffs[i, k] * k
        out[i] = _horner(coeffs[i], y0) + slope * (height - 1 - y0)
    return out


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
    xs = bottom_xs(lanes, height)
    order = np.argsort(xs, kind="stable")
    ordered = [lanes[i] for i in order]
    xs_sorted = xs[order]
    n_left = int(np.sum(xs_sorted < ego_center * width))
    set_positions(ordered, n_left)
    ego_left = n_left - 1 if n_left > 0 else -1
    ego_right = n_left if n_left < len(ordered) else -1
    return ordered, ego_left, ego_right


def set_positions(ordered: Sequence[DetectedLane], n_left: int, left_missing: bool = False,
                  right_missing: bool = False) -> None:
    """Set the positions of lanes ordered left to right, the first ``n_left`` left of the ego vehicle (in
    place); with ``left_missing`` (``right_missing``) the nearest on that side is its SECOND, not its EGO line."""
    for k, lane in enumerate(ordered):
        left = k < n_left
        outward = (n_left - 1 - k + left_missing) if left else (k - n_left + right_missing)
        table = _LEFT if left else _RIGHT
        lane.position = table[outward] if outward < len(table) else Position.UNKNOWN


def limit_lanes(lanes: Sequence[DetectedLane], width: int, height: int, ego_center: float = 0.5,
                max_lanes: int = 0, max_per_side: int = 0) -> tuple[list[DetectedLane], int, int]:
    """The ``max_lanes`` most confident lanes, then at most ``max_per_side`` nearest on each side of the ego
    centre line, ordered as :func:`order_lanes` orders them (0: no limit).

    Returns:
        (sorted lanes, ego_left index or -1, ego_right index or -1).
    """
    if max_lanes and len(lanes) > max_lanes:
        lanes = sorted(lanes, key=lambda lane: -lane.confidence)[:max_lanes]
    ordered, ego_l, ego_r = order_lanes(lanes, width, height, ego_center)
    if not max_per_side or len(ordered) <= 2 * max_per_side:
        return ordered, ego_l, ego_r
    n_left = ego_l + 1
    return order_lanes(ordered[max(0, n_left - max_per_side): n_left + max_per_side], width, height, ego_center)


def chain_components(rows: np.ndarray, cols: np.ndarray, comp: np.ndarray, chain_px: float) -> list[np.ndarray]:
    """Group connected components lying on one line (the dashes of a dashed marking).

    Components are taken from the bottom of the image up; each joins the first group whose line (fitted
    x(y), straight for short groups) passes within ``chain_px`` of the component's centre at its middle row
    and ends below it, otherwise it starts a group.

    Args:
        rows: (N,) pixel rows.
        cols: (N,) pixel columns.
        comp: (N,) component label of each pixel (>= 1).
        chain_px: lateral tolerance in pixels.

    Returns:
        One index array into ``rows`` per group.
    """
    order = np.argsort(comp, kind="stable")
    _, starts = np.unique(comp[order], return_index=True)
    members = np.split(order, starts[1:])
    bottoms = np.array([rows[m].max() for m in members])
    groups: list[list[np.ndarray]] = []
    fits: list[tuple[np.ndarray, float]] = []  # (coeffs of x(y), top row)
    for k in np.argsort(-bottoms, kind="stable"):
        m = members[k]
        mid_row = float(np.median(rows[m]))
        mid_col = float(np.median(cols[m]))
        target = next((g for g, (coef, top) in enumerate(fits) if rows[m].max() <= top + 2
                       and abs(polyval(mid_row, coef) - mid_col) <= chain_px), None)
        if target is None:
            groups.append([m])
            target = len(groups) - 1
        else:
            groups[target].append(m)
        idx = np.concatenate(groups[target])
        deg = 1 if np.ptp(rows[idx]) < 40 or len(groups[target]) < 3 else 2
        coef = robust_polyfit(rows[idx], cols[idx], deg, inlier_tol=np.inf, iterations=0)[0] \
            if np.ptp(rows[idx]) > 0 else np.array([float(cols[idx].mean()), 0.0])
        fits_entry = (coef, float(rows[idx].min()))
        if target == len(fits):
            fits.append(fits_entry)
        else:
            fits[target] = fits_entry
    return [np.concatenate(g) for g in groups]
