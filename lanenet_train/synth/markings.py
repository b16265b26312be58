"""Lane layout and markings of a road, and the exact ground-truth lanes seen by the camera."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lanenet_ros.lanes import MarkingColor, MarkingType, Position
from lanenet_train.synth.camera import CameraParams
from lanenet_train.synth.road import Boundary, PaintLine, RoadWindow
from lanenet_train.synth.scene import APOLLO_IDS, paint_color

_DOUBLE = {MarkingType.DOUBLE_SOLID: ("solid", "solid"), MarkingType.SOLID_DASHED: ("solid", "dash"),
           MarkingType.DASHED_SOLID: ("dash", "solid"), MarkingType.DOUBLE_DASHED: ("dash", "dash")}
_LEFT_POS = [Position.EGO_LEFT, Position.SECOND_LEFT, Position.THIRD_LEFT, Position.FOURTH_LEFT]
_RIGHT_POS = [Position.EGO_RIGHT, Position.SECOND_RIGHT, Position.THIRD_RIGHT, Position.FOURTH_RIGHT]


@dataclass
class SynthLane:
    """One ground-truth lane boundary as the camera sees it.

    Attributes:
        points: (N, 2) float64 image (x, y) in output pixels, near to far, inside the image.
        ground: (N, 2) float64 vehicle-frame (x forward, y left) metres of the same points.
        marking_type: painted marking type.
        color: marking colour.
        position: position relative to the ego vehicle.
        visible: (N,) bool, False where another vehicle or object hides the point.
        wear: fraction of its paint worn away (the road's :class:`Boundary` ``wear``).
    """

    points: np.ndarray
    ground: np.ndarray
    marking_type: MarkingType
    color: MarkingColor
    position: Position
    visible: np.ndarray
    wear: float = 0.0


def _boundary_type(rng: np.random.Generator, i: int, n: int, oncoming: int, style: str,
                   opts: dict) -> tuple[MarkingType, MarkingColor]:
    if i in (0, n):
        yellow = i == 0 and oncoming == 0 and opts["yellow_left"]
        return MarkingType.SOLID, MarkingColor.YELLOW if yellow else MarkingColor.WHITE
    if oncoming and i == oncoming:
        if style == "eu":
            return (MarkingType.DASHED if rng.random() < 0.6 else MarkingType.SOLID), MarkingColor.WHITE
        kinds = [MarkingType.DOUBLE_SOLID, MarkingType.SOLID_DASHED, MarkingType.DASHED_SOLID,
                 MarkingType.DASHED, MarkingType.SOLID]
        return kinds[rng.choice(5, p=[0.5, 0.12, 0.12, 0.13, 0.13])], MarkingColor.YELLOW
    if opts.get("dots"):
        return MarkingType.BOTTS_DOTS, MarkingColor.WHITE
    u = rng.random()
    kind = MarkingType.DASHED if u < 0.86 else MarkingType.SOLID if u < 0.96 else MarkingType.DOUBLE_DASHED
    return kind, MarkingColor.WHITE


def _stripes(rng: np.random.Generator, b: int, offset: float, kind: MarkingType, color: MarkingColor,
             width: float, opts: dict, wear: float) -> list[PaintLine]:
    if kind == MarkingType.DASHED and b not in (0, opts.get("n_lanes", -1)) and rng.random() < 0.06:
        opts = dict(opts, dash=rng.uniform(0.8, 1.2), gap=rng.uniform(2.4, 3.6))  # wide dotted line at exits
        width = rng.uniform(0.2, 0.3)
    period = opts["dash"] + opts["gap"]
    phase = rng.uniform(0, period)
    paint = paint_color(rng, color, opts.get("faded_yellow_prob", 0.0))
    w = wear * rng.uniform(0.6, 1.3)

    def stripe(off: float, pattern: str) -> PaintLine:
        dash = opts["dash"] if pattern == "dash" else 0.0
        return PaintLine(offset=off, width=width, dash=dash, gap=opts["gap"] if dash else 0.0, phase=phase,
                         dots=False, color=paint, wear=min(w, 0.9), boundary=b)

    if kind == MarkingType.BOTTS_DOTS:
        spacing = rng.uniform(1.0, 1.5)
        return [PaintLine(offset=offset, width=0.11, dash=0.11, gap=spacing - 0.11, phase=phase, dots=True,
                          color=paint, wear=0.0, boundary=b)]
    if kind in _DOUBLE:
        half = width / 2 + rng.uniform(0.05, 0.1)
        left, right = _DOUBLE[kind]
        return [stripe(offset + half, left), stripe(offset - half, right)]
    return [stripe(offset, "dash" if kind == MarkingType.DASHED else "solid")]


def build_boundaries(rng: np.random.Generator, n_lanes: int, lane_width: tuple[float, float], oncoming: int,
                     style: str, opts: dict, worn: bool, edge_line_prob: float
                     ) -> tuple[list[Boundary], list[PaintLine], tuple[float, float]]:
    """Lay out lanes and choose every boundary's marking.

    Args:
        rng: random generator.
        n_lanes: number of lanes.
        lane_width: (low, high) lane width in metres.
        oncoming: lanes (from the left) of oncoming traffic; 0 for a one-way carriageway.
        style: marking convention ``us``, ``eu`` or ``cn`` (see :func:`scene.marking_style`).
        opts: dash and stripe sizes of the style.
        worn: whether the paint is visibly worn.
        edge_line_prob: probability of an edge line on each outer edge.

    Returns:
        ``(boundaries left to right, stripes sorted by offset, (left edge, right edge))``.
    """
    base = rng.uniform(*lane_width)
    widths = np.clip(base + rng.uniform(-0.12, 0.12, n_lanes), *lane_width)
    offsets = np.concatenate([np.cumsum(widths[::-1])[::-1], [0.0]])
    wear = rng.uniform(0.25, 0.8) if worn else rng.uniform(0.0, 0.15)
    opts = dict(opts, dots=style == "us" and rng.random() < opts.get("dots_prob", 0.0), n_lanes=n_lanes)
    boundaries, lines = [], []
    for i, off in enumerate(offsets):
        kind, color = _boundary_type(rng, i, n_lanes, oncoming, style, opts)
        painted = i not in (0, n_lanes) or rng.random() < edge_line_prob
        width = opts["edge_width"] if i in (0, n_lanes) else opts["width"]
        boundaries.append(Boundary(float(off), kind, color, APOLLO_IDS[(kind, color == MarkingColor.YELLOW)],
                                   painted))
        if painted:
            stripes = _stripes(rng, i, float(off), kind, color, width, opts, wear)
            boundaries[-1].wear = max(p.wear for p in stripes)
            lines += stripes
    lines.sort(key=lambda p: p.offset)
    shoulders = [rng.uniform(0.4, 3.2) if b.painted else rng.uniform(0.1, 0.5)
                 for b in (boundaries[0], boundaries[-1])]
    return boundaries, lines, (float(offsets[0] + shoulders[0]), float(-shoulders[1]))


def _positions(offsets: list[float], ego_d: float) -> list[Position]:
    left = sorted((o - ego_d, i) for i, o in enumerate(offsets) if o > ego_d)
    right = sorted((ego_d - o, i) for i, o in enumerate(offsets) if o <= ego_d)
    out = [Position.UNKNOWN] * len(offsets)
    for rank, (_, i) in enumerate(left[:4]):
        out[i] = _LEFT_POS[rank]
    for rank, (_, i) in enumerate(right[:4]):
        out[i] = _RIGHT_POS[rank]
    return out


def _inside_run(keep: np.ndarray) -> tuple[int, int] | None:
    """Longest run of consecutive kept samples, as (start, stop)."""
    if not keep.any():
        return None
    edges = np.diff(np.concatenate([[0], keep.astype(np.int8), [0]]))
    starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    k = int(np.argmax(stops - starts))
    return int(starts[k]), int(stops[k])


def _crossing(camera: CameraParams, g_in: np.ndarray, g_out: np.ndarray, hood_row) -> np.ndarray:
    """Ground point between a kept and a dropped sample where the lane leaves the visible image
    (image border or bonnet); three rounds of 32 trials make its projection exact to ~1e-5 of the step."""
    lo, hi = 0.0, 1.0
    for _ in range(3):
        t = np.linspace(lo, hi, 33)
        uv, ok = camera.project(g_in + t[:, None] * (g_out - g_in))
        kept = _visible_mask(uv, ok, camera, hood_row)
        last = int(np.argmin(kept)) - 1 if not kept.all() else 32
        last = max(last, 0)
        lo, hi = t[last], t[min(last + 1, 32)]
    return g_in + lo * (g_out - g_in)


def _visible_mask(uv: np.ndarray, valid: np.ndarray, camera: CameraParams, hood_row) -> np.ndarray:
    w, h = camera.width, camera.height
    keep = valid & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
    return keep & (uv[:, 1] < hood_row(uv[:, 0]))


def lane_ground_truth(boundaries: list[Boundary], window: RoadWindow, s_ego: float, d_ego: float,
                      camera: CameraParams, max_distance: float, occluded, hood_row,
                      behind_scenery=None) -> list[SynthLane]:
    """The painted boundaries as exact image polylines, left to right.

    Args:
        boundaries: the road's boundaries, left to right.
        window: the road ahead in the vehicle frame.
        s_ego: ego arc length (metres).
        d_ego: ego lateral offset (metres).
        camera: the output camera.
        max_distance: labelling range ahead (metres).
        occluded: callable ``(uv (N,2), depth (N,)) -> (N,) bool`` telling which points something hides.
        hood_row: callable ``(u (N,)) -> (N,)`` image row of the bonnet's top edge (``h`` when none).
        behind_scenery: like ``occluded`` for scenery only (walls, barriers, trees); a lane is cut where
            scenery hides the rest of it, as an annotator stops where a lane disappears behind a wall
            (vehicles do not cut lanes: annotators follow lanes behind traffic).

    Returns:
        The visible lanes as :class:`SynthLane` objects.
    """
    positions = _positions([b.offset for b in boundaries], d_ego)
    x_far = min(max_distance, window.x_far - 2.0)
    n = max(80, camera.height // 2)
    s = s_ego + 1.0 / np.linspace(1.0 / 1.5, 1.0 / max(x_far, 2.0), n)
    lanes = []
    for b, pos in zip(boundaries, positions, strict=True):
        if not b.painted:
            continue
        X, Y = window.point(s, np.full_like(s, b.offset))
        uv, valid = camera.project(np.stack([X, Y], axis=1))
        keep = _visible_mask(uv, valid, camera, hood_row)
        run = _inside_run(keep)
        if run is None or run[1] - run[0] < 2:
            continue
        a, z = run
        ground = np.stack([X[a:z], Y[a:z]], axis=1).astype(np.float64)
        if a > 0 and valid[a - 1]:
            g = _crossing(camera, ground[0], np.array([X[a - 1], Y[a - 1]], np.float64), hood_row)
            if np.linalg.norm(g - ground[0]) > 1e-4:
                ground = np.vstack([g, ground])
        pts, _ = camera.project(ground)
        depth = camera.vehicle_to_camera(np.concatenate([ground, np.zeros((len(ground), 1))], 1))[:, 2]
        if behind_scenery is not None:
            seen = np.nonzero(~behind_scenery(pts, depth))[0]
            if len(seen) < 2:
                continue
            pts, ground, depth = pts[seen[0]:seen[-1] + 1], ground[seen[0]:seen[-1] + 1], depth[seen[0]:seen[-1] + 1]
        lanes.append(SynthLane(points=pts, ground=ground, marking_type=b.marking_type, color=b.color,
                               position=pos, visible=~occluded(pts, depth), wear=b.wear))
    return lanes
