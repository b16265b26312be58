"""Road geometry in the ground plane: a centreline made of straight, clothoid and arc sections, lane
boundaries at lateral offsets from it, and the conversions between world, vehicle and road (s, d) frames.

``s`` is the arc length along the reference line (the rightmost lane boundary), ``d`` the lateral
offset from it, positive to the left. Every painted feature is a function of (s, d), so a feature
stays where it is on the road from one frame of a drive to the next.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lanenet_ros.lanes import MarkingColor, MarkingType

ROAD_STEP_M = 1.0


@dataclass
class PaintLine:
    """One painted stripe (a double marking has two).

    Attributes:
        offset: lateral offset of the stripe centre (metres, + left).
        width: stripe width (metres).
        dash: dash length (metres); 0 for a solid stripe.
        gap: gap length (metres).
        phase: dash pattern phase (metres).
        dots: raised pavement markers (Botts' dots) instead of paint.
        color: display colour, BGR in [0, 1].
        wear: fraction of paint worn away in [0, 1).
        boundary: index of the boundary this stripe belongs to.
    """

    offset: float
    width: float
    dash: float
    gap: float
    phase: float
    dots: bool
    color: tuple[float, float, float]
    wear: float
    boundary: int


@dataclass
class Boundary:
    """A lane boundary: its marking and the stripes that paint it.

    Attributes:
        offset: lateral offset of the boundary centre (metres, + left).
        marking_type: painted marking type.
        color: marking colour.
        apollo_train_id: Apollo lane-mark trainId of the painted pixels.
        painted: False for an outer edge without an edge line (then not a ground-truth lane).
        wear: the largest wear of its stripes (0 when unpainted).
    """

    offset: float
    marking_type: MarkingType
    color: MarkingColor
    apollo_train_id: int
    painted: bool = True
    wear: float = 0.0


@dataclass
class Road:
    """World geometry of one road.

    Attributes:
        s0: arc length of the first sample (metres).
        x: world x of the reference line, one sample per ``ROAD_STEP_M``.
        y: world y of the reference line.
        heading: heading of the reference line (radians).
        boundaries: lane boundaries, left to right (offsets decreasing).
        lines: painted stripes, sorted by offset (increasing).
        edge_left: lateral offset of the left asphalt edge.
        edge_right: lateral offset of the right asphalt edge.
        oncoming_lanes: number of lanes (from the left) carrying oncoming traffic.
    """

    s0: float
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    boundaries: list[Boundary]
    lines: list[PaintLine]
    edge_left: float
    edge_right: float
    oncoming_lanes: int = 0
    line_arrays: dict = field(default_factory=dict)

    @property
    def s_end(self) -> float:
        """Arc length of the last sample."""
        return self.s0 + (len(self.x) - 1) * ROAD_STEP_M

    def lane_centres(self) -> np.ndarray:
        """Lateral offsets of the lane centres, left to right."""
        off = np.array([b.offset for b in self.boundaries])
        return 0.5 * (off[:-1] + off[1:])

    def sample(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World (x, y, heading) of the reference line at arc lengths ``s`` (linear interpolation)."""
        i = np.clip((np.asarray(s, dtype=np.float64) - self.s0) / ROAD_STEP_M, 0, len(self.x) - 1.000001)
        i0 = i.astype(np.int64)
        f = i - i0
        x = self.x[i0] + f * (self.x[i0 + 1] - self.x[i0])
        y = self.y[i0] + f * (self.y[i0 + 1] - self.y[i0])
        h = self.heading[i0] + f * (self.heading[i0 + 1] - self.heading[i0])
        return x, y, h

    def world_point(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (x, y) of road coordinates (s, d)."""
        x, y, h = self.sample(s)
        return x - np.sin(h) * d, y + np.cos(h) * d

    def arrays(self) -> dict[str, np.ndarray]:
        """Per-stripe parameter arrays (sorted by offset), built once."""
        if not self.line_arrays:
            ls = self.lines
            self.line_arrays.update({
                "offset": np.array([p.offset for p in ls], np.float32),
                "half_width": np.array([p.width / 2 for p in ls], np.float32),
                "dash": np.array([p.dash for p in ls], np.float32),
                "period": np.array([p.dash + p.gap for p in ls], np.float32),
                "phase": np.array([p.phase for p in ls], np.float32),
                "dots": np.array([p.dots for p in ls], bool),
                "color": np.array([p.color for p in ls], np.float32).reshape(-1, 3),
                "wear": np.array([p.wear for p in ls], np.float32),
                "train_id": np.array([self.boundaries[p.boundary].apollo_train_id for p in ls], np.uint8),
            })
        return self.line_arrays


def build_centreline(curvature: np.ndarray, s0: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate a curvature profile sampled every ``ROAD_STEP_M`` into world x, y, heading.

    Args:
        curvature: (N,) curvature in 1/m (+ turns left).
        s0: unused offset kept for symmetry with :class:`Road`.

    Returns:
        ``(x, y, heading)`` arrays of length N, starting at the origin heading along +x.
    """
    k = np.asarray(curvature, dtype=np.float64)
    heading = np.concatenate([[0.0], np.cumsum(0.5 * (k[1:] + k[:-1]) * ROAD_STEP_M)])
    mid = 0.5 * (heading[1:] + heading[:-1])
    x = np.concatenate([[0.0], np.cumsum(np.cos(mid) * ROAD_STEP_M)])
    y = np.concatenate([[0.0], np.cumsum(np.sin(mid) * ROAD_STEP_M)])
    return x, y, heading


def curvature_profile(rng: np.random.Generator, length_m: float, max_curvature: float,
                      straight_prob: float, ramp_m: tuple[float, float] = (40.0, 160.0),
                      hold_m: tuple[float, float] = (80.0, 450.0)) -> np.ndarray:
    """Random highway curvature profile: straights and arcs joined by clothoids.

    Args:
        rng: random generator.
        length_m: profile length (metres).
        max_curvature: largest |curvature| (1/m).
        straight_prob: probability that a section is straight.
        ramp_m: (low, high) clothoid length (metres).
        hold_m: (low, high) length of a straight or arc (metres).

    Returns:
        (N,) curvature samples every ``ROAD_STEP_M``.
    """
    n = int(np.ceil(length_m / ROAD_STEP_M)) + 1
    out = np.empty(n)
    i, k_prev = 0, 0.0
    while i < n:
        straight = rng.random() < straight_prob
        k = 0.0 if straight else rng.choice([-1, 1]) * max_curvature * rng.uniform(0.15, 1.0) ** 0.7
        ramp = max(1, int(rng.uniform(*ramp_m) / ROAD_STEP_M))
        hold = max(1, int(rng.uniform(*hold_m) / ROAD_STEP_M))
        seg = np.concatenate([np.linspace(k_prev, k, ramp, endpoint=False), np.full(hold, k)])
        take = min(len(seg), n - i)
        out[i:i + take] = seg[:take]
        i += take
        k_prev = k
    return out


@dataclass
class Pose:
    """Vehicle pose in the world: position of the point on the ground below the camera, and yaw."""

    x: float
    y: float
    yaw: float

    @classmethod
    def on_road(cls, road: Road, s: float, d: float, rel_yaw: float = 0.0) -> Pose:
        """The pose at road coordinates (s, d) with a yaw relative to the road direction."""
        x, y, h = road.sample(np.array([s]))
        return cls(float(x[0] - np.sin(h[0]) * d), float(y[0] + np.cos(h[0]) * d), float(h[0] + rel_yaw))

    def to_vehicle(self, wx: np.ndarray, wy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (x, y) to vehicle (x forward, y left)."""
        dx, dy = np.asarray(wx) - self.x, np.asarray(wy) - self.y
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return c * dx + s * dy, -s * dx + c * dy


class RoadWindow:
    """The part of a road ahead of the vehicle, in the vehicle frame, with fast (x, y) -> (s, d)."""

    def __init__(self, road: Road, pose: Pose, s_from: float, s_to: float):
        s_from, s_to = max(s_from, road.s0), min(s_to, road.s_end - ROAD_STEP_M)
        self.s = np.arange(s_from, s_to, ROAD_STEP_M)
        wx, wy, h = road.sample(self.s)
        self.px, self.py = pose.to_vehicle(wx, wy)
        rel = h - pose.yaw
        self.tx, self.ty = np.cos(rel), np.sin(rel)
        # keep the part where the road still runs away from the camera (x increasing)
        ok = (self.tx > 0.34) & np.concatenate([[True], np.diff(self.px) > 0])
        stop = int(np.argmin(ok)) if not ok.all() else len(ok)
        for name in ("s", "px", "py", "tx", "ty"):
            setattr(self, name, getattr(self, name)[:max(stop, 2)])

    @property
    def x_far(self) -> float:
        """Forward distance of the last sample (metres)."""
        return float(self.px[-1])

    def point(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vehicle-frame (x, y) of road coordinates (s, d) inside the window."""
        i, f = self._index(s)
        px = self.px[i] + f * (self.px[i + 1] - self.px[i])
        py = self.py[i] + f * (self.py[i + 1] - self.py[i])
        tx = self.tx[i] + f * (self.tx[i + 1] - self.tx[i])
        ty = self.ty[i] + f * (self.ty[i + 1] - self.ty[i])
        return px - ty * d, py + tx * d

    def to_road(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vehicle-frame ground points to road coordinates.

        Args:
            X: forward coordinates (any shape).
            Y: left coordinates (same shape).

        Returns:
            ``(s, d, inside)``: float32 arrays, and a mask of points whose foot point lies in the window.
        """
        s = np.interp(X, self.px, self.s).astype(np.float32)
        table = self._table()
        for _ in range(2):
            i, f = self._index(s)
            g0 = np.take(table, i, axis=0)
            g = g0 + f[..., None] * (np.take(table, i + 1, axis=0) - g0)
            ex, ey = X - g[..., 0], Y - g[..., 1]
            s = s + ex * g[..., 2] + ey * g[..., 3]
        d = ey * g[..., 2] - ex * g[..., 3]
        inside = (s > self.s[0]) & (s < self.s[-1])
        return s, d, inside

    def _table(self) -> np.ndarray:
        if getattr(self, "_tab", None) is None:
            self._tab = np.stack([self.px, self.py, self.tx, self.ty], axis=1).astype(np.float32)
        return self._tab

    def _index(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.clip((s - self.s[0]) * (1.0 / ROAD_STEP_M), 0.0, len(self.s) - 1.0001).astype(np.float32)
        i0 = i.astype(np.int32)
        return i0, (i - i0).astype(np.float32)
