"""Image <-> ground plane for a calibrated camera, and Apollo-style lane polynomials in metres.

Vehicle frame: x forward, y left, z up, origin on the ground (below the camera unless offsets are given).
The camera is a pinhole (optionally with k1/k2 radial distortion) at ``height_m`` above flat ground, pitched
down by ``pitch_rad`` and turned left by ``yaw_rad``, looking along +x; or any plane-to-plane mapping given as a
homography.
"""
from __future__ import annotations

import math

import numpy as np

from lanenet_ros.decode.fitting import _robust_polyfit, poly_samples, set_positions
from lanenet_ros.ground_tracking import EgoLaneFilter
from lanenet_ros.jit import kernel, warms_up
from lanenet_ros.lanes import LaneFrame

_UNDISTORT_ITERATIONS = 20
# the ego lines' own headings at the car (c1) within this of each other: they are taken as parallel there and
# fitted with one heading (rad; a line that leaves the ego lane at a wider angle, at an exit, is fitted alone)
EGO_HEADING_TOLERANCE = 0.05
# lane widths from the car (at the car) beyond which a line named ego is the next line out (name_ego_lines)
EGO_REACH = 1.25


class GroundProjector:
    """Maps image pixels to ground points (metres) and back. Build with :meth:`from_camera` or
    :meth:`from_homography`."""

    def __init__(self) -> None:
        """Use :meth:`from_camera` or :meth:`from_homography`."""
        self._h: np.ndarray | None = None  # image -> ground homography (homography mode)
        self._cam: dict[str, float] = {}
        self._rot = np.eye(3)

    @classmethod
    def from_camera(cls, fx: float, fy: float, cx: float, cy: float, height_m: float, pitch_rad: float,
                    k1: float = 0.0, k2: float = 0.0, x_offset_m: float = 0.0,
                    y_offset_m: float = 0.0, yaw_rad: float = 0.0, roll_rad: float = 0.0) -> GroundProjector:
        """A pinhole camera above flat ground.

        Args:
            fx: focal length in pixels (x), from camera_info K[0].
            fy: focal length in pixels (y), K[4].
            cx: principal point x, K[2].
            cy: principal point y, K[5].
            height_m: camera height above the ground, > 0.
            pitch_rad: downward pitch of the optical axis (positive looks down), in (-pi/2, pi/2).
            k1: radial distortion, camera_info D[0].
            k2: radial distortion, D[1].
            x_offset_m: camera position ahead of the vehicle frame origin.
            y_offset_m: camera position left of the vehicle frame origin.
            yaw_rad: the optical axis turned left of the vehicle's x axis (positive left), within +-pi/4.
            roll_rad: the camera turned about its optical axis, clockwise as seen from behind it (its right side
                down: the road's horizon tilts up to the right in the image), within +-pi/4.

        Returns:
            The projector.

        Raises:
            ValueError: a focal length or the height is not positive, or the pitch, yaw or roll is out of range.
        """
        if fx <= 0 or fy <= 0:
            raise ValueError(f"focal lengths must be > 0 (camera_info K), got fx={fx} fy={fy}")
        if height_m <= 0:
            raise ValueError(f"camera height_m must be > 0, got {height_m}")
        if not -np.pi / 2 < pitch_rad < np.pi / 2:
            raise ValueError(f"pitch_rad must be within (-pi/2, pi/2), got {pitch_rad}")
        if not -np.pi / 4 <= yaw_rad <= np.pi / 4:
            raise ValueError(f"yaw_rad must be within [-pi/4, pi/4], got {yaw_rad}")
        if not -np.pi / 4 <= roll_rad <= np.pi / 4:
            raise ValueError(f"roll_rad must be within [-pi/4, pi/4], got {roll_rad}")
        self = cls()
        self._cam = {k: float(v) for k, v in {"fx": fx, "fy": fy, "cx": cx, "cy": cy, "h": height_m, "k1": k1,
                                              "k2": k2, "x0": x_offset_m, "y0": y_offset_m}.items()}
        s, c = np.sin(pitch_rad), np.cos(pitch_rad)
        # columns: camera right, down, forward axes expressed in the vehicle frame (pitch), then turned by yaw
        pitched = np.array([[0.0, -s, c], [-1.0, 0.0, 0.0], [0.0, -c, -s]])
        sy, cy_ = np.sin(yaw_rad), np.cos(yaw_rad)
        sr, cr = np.sin(roll_rad), np.cos(roll_rad)
        rolled = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])  # the camera's axes about its optical one
        self._rot = np.array([[cy_, -sy, 0.0], [sy, cy_, 0.0], [0.0, 0.0, 1.0]]) @ pitched @ rolled
        return self

    @classmethod
    def from_homography(cls, homography: np.ndarray) -> GroundProjector:
        """A projector from a 3x3 homography mapping image pixels (u, v, 1) to ground (x, y, 1) in metres.

        Raises:
            ValueError: the matrix is not 3x3 or not invertible.
        """
        h = np.asarray(homography, dtype=np.float64)
        if h.shape != (3, 3) or abs(np.linalg.det(h)) < 1e-12:
            raise ValueError(f"homography must be an invertible 3x3 matrix, got shape {h.shape}")
        self = cls()
        self._h = h
        return self

    def homography(self) -> np.ndarray:
        """The image -> ground homography (a camera's distortion is not part of it)."""
        if self._h is not None:
            return self._h.copy()
        c = self._cam
        k_inv = np.linalg.inv(np.array([[c["fx"], 0, c["cx"]], [0, c["fy"], c["cy"]], [0, 0, 1.0]]))
        # ground = t * (ray_x, ray_y) with t = h / -ray_z; homogeneous (h ray_x, h ray_y, -ray_z)
        scale = np.array([[c["h"], 0, 0], [0, c["h"], 0], [0, 0, -1.0]])
        shift = np.array([[1.0, 0, c["x0"]], [0, 1.0, c["y0"]], [0, 0, 1.0]])
        return shift @ scale @ self._rot @ k_inv

    def image_to_ground(self, pts: np.ndarray) -> np.ndarray:
        """Ground points (x forward, y left) in metres of image pixels; NaN at or above the horizon.

        Args:
            pts: (N, 2) pixel coordinates (u, v) of the raw (distorted) image.

        Returns:
            (N, 2) float64.
        """
        pts = np.ascontiguousarray(pts, dtype=np.float64).reshape(-1, 2)
        if self._h is not None:
            g = np.c_[pts, np.ones(len(pts))] @ self._h.T
            with np.errstate(divide="ignore", invalid="ignore"):
                out = g[:, :2] / g[:, 2:3]
            out[~(out[:, 0] > 0)] = np.nan  # behind the vehicle: the point is above the horizon
            return out
        c = self._cam
        return _pixels_to_ground(pts, c["fx"], c["fy"], c["cx"], c["cy"], c["k1"], c["k2"], self._rot, c["h"],
                                 c["x0"], c["y0"])

    def ground_to_image(self, pts: np.ndarray) -> np.ndarray:
        """Image pixels of ground points (metres); NaN for points behind the camera.

        Args:
            pts: (N, 2) ground points (x forward, y left).

        Returns:
            (N, 2) float64 pixel coordinates (u, v) in the raw (distorted) image.
        """
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if self._h is not None:
            g = np.c_[pts, np.ones(len(pts))] @ np.linalg.inv(self._h).T
            with np.errstate(divide="ignore", invalid="ignore"):
                out = g[:, :2] / g[:, 2:3]
            out[~(pts[:, 0] > 0)] = np.nan
            return out
        c = self._cam
        rel = np.stack([pts[:, 0] - c["x0"], pts[:, 1] - c["y0"], np.full(len(pts), -c["h"])], axis=1)
        cam = rel @ self._rot  # vehicle -> camera: R^T p for each row
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(cam[:, 2] > 1e-9, cam[:, 2], np.nan)
            xn, yn = cam[:, 0] / z, cam[:, 1] / z
        r2 = xn**2 + yn**2
        f = 1.0 + c["k1"] * r2 + c["k2"] * r2**2
        return np.stack([c["fx"] * xn * f + c["cx"], c["fy"] * yn * f + c["cy"]], axis=1)


@kernel
def _pixels_to_ground(pts, fx, fy, cx, cy, k1, k2, rot, height, x0, y0):  # pragma: no cover
    """:meth:`GroundProjector.image_to_ground` of a pinhole camera: each pixel's ray (undistorted as
    :func:`undistort_normalised`, turned by ``rot``) met with the ground ``height`` below the camera."""
    out = np.empty((len(pts), 2))
    for i in range(len(pts)):
        xd, yd = (pts[i, 0] - cx) / fx, (pts[i, 1] - cy) / fy
        xn, yn = _undistort(xd, yd, k1, k2)
        rx = rot[0, 0] * xn + rot[0, 1] * yn + rot[0, 2]
        ry = rot[1, 0] * xn + rot[1, 1] * yn + rot[1, 2]
        rz = rot[2, 0] * xn + rot[2, 1] * yn + rot[2, 2]
        t = height / -rz if rz < -1e-9 else np.nan  # NaN at or above the horizon
        out[i, 0], out[i, 1] = x0 + t * rx, y0 + t * ry
    return out


def undistort_normalised(xd: np.ndarray, yd: np.ndarray, k1: float, k2: float) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted normalised image coordinates from distorted ones (radial k1, k2; fixed-point iteration).

    Args:
        xd: (u - cx) / fx of the raw image.
        yd: (v - cy) / fy.
        k1: radial distortion, camera_info D[0].
        k2: radial distortion, D[1].
    """
    xd, yd = np.broadcast_arrays(np.asarray(xd, np.float64), np.asarray(yd, np.float64))
    xn, yn = _undistort_all(np.ascontiguousarray(xd).ravel(), np.ascontiguousarray(yd).ravel(), float(k1), float(k2))
    return xn.reshape(xd.shape), yn.reshape(yd.shape)


@kernel
def _undistort_all(xd, yd, k1, k2):  # pragma: no cover
    """:func:`undistort_normalised` of flat arrays, point by point."""
    xn, yn = np.empty_like(xd), np.empty_like(yd)
    for i in range(len(xd)):
        xn[i], yn[i] = _undistort(xd[i], yd[i], k1, k2)
    return xn, yn


@kernel
def _undistort(xd, yd, k1, k2):  # pragma: no cover
    """:func:`undistort_normalised` of one point."""
    xn, yn = xd, yd
    if k1 != 0 or k2 != 0:
        for _ in range(_UNDISTORT_ITERATIONS):
            r2 = xn**2 + yn**2
            f = 1.0 + k1 * r2 + k2 * r2**2
            xn, yn = xd / f, yd / f
    return xn, yn


def fit_ground_lane(pts: np.ndarray, max_degree: int = 3) -> tuple[np.ndarray, tuple[float, float]]:
    """Apollo-style lane polynomial y(x) = c0 + c1 x + c2 x^2 + c3 x^3 and the x range it holds for.

    The degree drops for short lanes (under 10 m: 2, under 4 m or few points: 1), missing terms are 0.

    Args:
        pts: (N, 2) ground points (x forward, y left) in metres; non-finite rows are ignored.
        max_degree: at most 3.

    Returns:
        (array [c0, c1, c2, c3], (x_min, x_max)).

    Raises:
        ValueError: fewer than two finite points with distinct x.
    """
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    coeffs, x_min, x_max = _fit_ground(np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1]),
                                       int(max_degree))
    if coeffs is None:
        raise ValueError(f"a ground lane fit needs 2 points at different distances, got {len(pts)} points")
    return coeffs, (x_min, x_max)


@kernel
def _fit_ground(x, y, max_degree):  # pragma: no cover
    """:func:`fit_ground_lane` on finite points: (coefficients, x_min, x_max), or (None, 0, 0)."""
    xs = np.sort(x)
    degree = _degree(xs, max_degree)
    if degree < 1:
        return None, 0.0, 0.0
    coeffs = np.zeros(4)
    # plain least squares (no outlier is dropped with an infinite tolerance), in a scaled variable
    coeffs[: degree + 1] = _robust_polyfit(x, y, degree, np.inf, 0)[0]
    return coeffs, xs[0], xs[-1]


@warms_up
def _warm() -> None:
    fit_ground_lane(np.array([[5.0, 1.0], [9.0, 1.2], [20.0, 1.1], [30.0, 0.9]]))
    _fit_ground_lanes(np.array([[5.0, 1.0], [9.0, 1.2], [20.0, 1.1], [30.0, 0.9]]), np.array([0, 4]))
    sample_ground(np.ones(4), 5.0, 30.0)
    fit_ego_pair(np.array([[5.0, 1.8], [9.0, 1.8], [20.0, 1.9]]), np.array([[5.0, -1.8], [12.0, -1.8], [30.0, -1.7]]))
    GroundProjector.from_camera(1000.0, 1000.0, 640.0, 360.0, 1.5, 0.05).image_to_ground(np.ones((2, 2), np.float32))
    undistort_normalised(np.zeros(2), np.zeros(2), 0.1, 0.01)


def add_ground_lanes(frame: LaneFrame, projector: GroundProjector, max_range_m: float = 80.0,
                     step_m: float = 1.0, ego_filter: EgoLaneFilter | None = None,
                     stamp: float | None = None, lane_width_m: float | None = None) -> LaneFrame:
    """Fill ``ground_coeffs``, ``ground_x_range`` and ``ground_points`` of every lane of ``frame`` in place.

    Lanes whose image points give fewer than three ground points within ``max_range_m`` keep None. The two ego
    lines share their heading at the car (``c1``, :func:`fit_ego_pair`) where their own fits put it within
    ``EGO_HEADING_TOLERANCE`` of each other.

    Args:
        frame: lanes in camera pixels of the image the projector was calibrated for.
        projector: the camera's ground projector.
        max_range_m: ground points farther ahead are ignored (flat-ground error grows with distance).
        step_m: spacing of the sampled ``ground_points``.
        ego_filter: tracks the two ego lines over frames (frames in order): their fields are then the
            filter's (:class:`~lanenet_ros.ground_tracking.EgoLaneFilter`).
        stamp: the frame's time in seconds, for ``ego_filter``.
        lane_width_m: the road's lane width where it is known (the self-calibration's): an ego line further than
            ``EGO_REACH`` of it from the car is the next line out, named so (:func:`name_ego_lines`).

    Returns:
        ``frame``.
    """
    if not frame.lanes:
        if ego_filter is not None:
            ego_filter.update({}, False, stamp)
        return frame
    # one projection and one fit for every lane's points, those finite and ahead within max_range_m
    ground = projector.image_to_ground(np.concatenate([lane.points for lane in frame.lanes]))
    lane_of = np.repeat(np.arange(len(frame.lanes)), [len(lane.points) for lane in frame.lanes])
    keep = np.isfinite(ground).all(axis=1) & (ground[:, 0] > 0) & (ground[:, 0] <= max_range_m)
    ground = np.ascontiguousarray(ground[keep], np.float64)
    ends = np.searchsorted(lane_of[keep], np.arange(len(frame.lanes) + 1))
    ok, coeffs, ranges = _fit_ground_lanes(ground, ends)
    renamed = {} if lane_width_m is None else name_ego_lines(frame, np.where(ok, coeffs[:, 0], np.nan),
                                                             lane_width_m)
    pair = [frame.ego_left_index, frame.ego_right_index]
    # the heading is shared with the line renamed out of the pair, too: it is parallel at the car all the same
    both = [i if i >= 0 else renamed.get(side, -1) for side, i in enumerate(pair)]
    shared = min(both) >= 0 and ok[both].all() and abs(coeffs[both[0], 1] - coeffs[both[1], 1]) <= EGO_HEADING_TOLERANCE
    if shared:
        coeffs[both] = fit_ego_pair(*(ground[ends[i]:ends[i + 1]] for i in both))
    if ego_filter is not None:
        seen = {side: i for side, i in enumerate(pair) if i >= 0 and ok[i]}
        # a side not seen whose line was renamed out of the pair: that line shares its heading (not tracked)
        stand_in = [both[side] for side in (0, 1) if side not in seen and both[side] >= 0]
        partner = (ground[ends[stand_in[0]]:ends[stand_in[0] + 1]], coeffs[stand_in[0]]) if stand_in else None
        tracked = ego_filter.update({side: (ground[ends[i]:ends[i + 1]], coeffs[i], tuple(ranges[i]))
                                     for side, i in seen.items()}, shared, stamp, partner)
        for side, (c, x_range) in tracked.items():
            coeffs[seen[side]], ranges[seen[side]] = c, x_range
    for lane, fitted, c, (x0, x1) in zip(frame.lanes, ok, coeffs, ranges.tolist(), strict=True):
        if not fitted:
            lane.ground_coeffs = lane.ground_x_range = lane.ground_points = None
            continue
        lane.ground_coeffs, lane.ground_x_range = c, (x0, x1)
        lane.ground_points = sample_ground(c, x0, x1, step_m)
    return frame


def name_ego_lines(frame: LaneFrame, offsets: np.ndarray, lane_width_m: float) -> dict[int, int]:
    """Rename an ego line that lies further than ``EGO_REACH`` lane widths from the car (``offsets``: each lane's
    ``c0``, metres left, NaN unknown) as the next line out, its side's ego line missing (in place). The car is
    within its lane, so its lines are at most a lane width away (at the moment it crosses one); a line further
    out is the next one, named ego by the image decoder when a car ahead hides the ego line (the self-calibration
    reads such a lane as two: calibrate.MountingEstimator._one_lane).

    Returns:
        side (0 left, 1 right) -> the index of the line renamed on that side.
    """
    reach = EGO_REACH * lane_width_m
    left, right = frame.ego_left_index, frame.ego_right_index
    left_far = left >= 0 and abs(offsets[left]) > reach
    right_far = right >= 0 and abs(offsets[right]) > reach
    if left_far or right_far:
        n_left = right if right >= 0 else left + 1  # lanes left of the car
        set_positions(frame.lanes, n_left, left_far or (left < 0 < n_left),
                      right_far or (right < 0 and n_left < len(frame.lanes)))
        frame.ego_left_index = -1 if left_far else left
        frame.ego_right_index = -1 if right_far else right
    return {side: i for side, (i, far) in enumerate(((left, left_far), (right, right_far))) if far}


def fit_ego_pair(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The ego lane's two lines fitted together: each its own offset ``c0`` and shape ``c2``, ``c3``, one heading
    ``c1`` for both (the lines of a lane are parallel at the car, on bends too). A line skewed near the car, as a
    network's mask often is at one edge, then takes the heading the other line also shows, halving the error
    in each; the offsets, extrapolated to the car along that heading, improve with it. Each line keeps the
    degree :func:`fit_ground_lane` gives it (1 to 3, by its span).

    Args:
        left, right: (N, 2) finite ground points ahead (x forward, y left), metres, at least two distinct x each.

    Returns:
        (2, 4) coefficients ``[c0, c1, c2, c3]``, left then right.
    """
    degrees = [_degree(np.sort(pts[:, 0]), 3) for pts in (left, right)]
    scale = max(float(np.abs(left[:, 0]).max()), float(np.abs(right[:, 0]).max()), 1.0)  # conditioning
    # columns: c0 left, c0 right, the shared c1, then each line's c2.. of its own
    own, width = [], 3
    for d in degrees:
        own.append(range(width, width + d - 1))
        width += d - 1
    blocks = []
    for k, pts in enumerate((left, right)):
        u = pts[:, 0] / scale
        a = np.zeros((len(u), width))
        a[:, k] = 1.0
        a[:, 2] = u
        for j, col in enumerate(own[k]):
            a[:, col] = u ** (j + 2)
        blocks.append(a)
    sol = np.linalg.lstsq(np.vstack(blocks), np.concatenate([left[:, 1], right[:, 1]]), rcond=None)[0]
    out = np.zeros((2, 4))
    for k in range(2):
        out[k, 0], out[k, 1] = sol[k], sol[2] / scale
        for j, col in enumerate(own[k]):
            out[k, j + 2] = sol[col] / scale ** (j + 2)
    return out


@kernel
def _degree(xs, max_degree):  # pragma: no cover
    """The degree of a lane fit through points at the sorted distances ``xs``: by their span (under 4 m 1, under
    10 m 2, else 3), at most ``max_degree`` and the distinct distances less one (0: fewer than two)."""
    distinct = 0
    for i in range(len(xs)):
        distinct += i == 0 or xs[i] != xs[i - 1]
    span = xs[-1] - xs[0] if len(xs) else 0.0
    return min(max_degree, 3, distinct - 1, 1 if span < 4 else 2 if span < 10 else 3)


@kernel
def _fit_ground_lanes(ground, ends):  # pragma: no cover
    """:func:`fit_ground_lane` of each lane's (finite) ground points ``ground[ends[i]:ends[i + 1]]``, for lanes
    with at least three at different distances: (fitted, (L, 4) coefficients, (L, 2) x ranges)."""
    lanes = len(ends) - 1
    ok = np.zeros(lanes, np.bool_)
    coeffs = np.zeros((lanes, 4))
    ranges = np.zeros((lanes, 2))
    for i in range(lanes):
        x = ground[ends[i]:ends[i + 1], 0].copy()
        y = ground[ends[i]:ends[i + 1], 1].copy()
        if len(x) < 3 or x.max() <= x.min():
            continue
        c, x0, x1 = _fit_ground(x, y, 3)
        if c is not None:
            ok[i], coeffs[i], ranges[i, 0], ranges[i, 1] = True, c, x0, x1
    return ok, coeffs, ranges


def sample_ground(coeffs: np.ndarray, x_min: float, x_max: float, step_m: float = 1.0) -> np.ndarray:
    """(N, 2) float32 points (x, y(x)) of a ground polynomial every ``step_m`` (about) from ``x_min`` to ``x_max``."""
    n = max(2, math.ceil((x_max - x_min) / step_m) + 1)
    return poly_samples(np.asarray(coeffs, np.float64), float(x_min), float(x_max), n, False)
