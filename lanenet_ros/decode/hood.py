"""The ego vehicle's hood (bonnet) at the bottom of the camera image: found, confirmed, lanes cut at its edge.

A network carries lanes on across a hood that shows at the bottom of a dash-cam image: the hood is a small part
of few training images, and the lane class weighs far more than the background. The labels end at the hood's
edge, so those extra rows count against every such lane (TuSimple and CULane alike), and a lane drawn on the
hood is not on the road.

Finding the edge in one image: the strongest change of brightness down each of 16 column strips in the bottom
part of the image, a smooth curve (a quadratic: hoods bulge) through most strips, a clear step in brightness
across it and a surface below it no rougher than a glossy bonnet. A shadow or a joint across the road can pass
that test, so an edge is taken for the hood only when the lanes crossing it show paint above it and none below.
A camera whose hood is known can give it instead, as the share of the image rows it covers
(``DecodeParams.hood``). A LaneNet trained with a bonnet output (``hood_logits``) gives it itself
(:func:`edge_from_logits`), and the search is not used.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lanenet_ros.decode import paint
from lanenet_ros.decode.fitting import _solve_normal, sample_points
from lanenet_ros.jit import kernel, warms_up
from lanenet_ros.lanes import DetectedLane

_WORK_WIDTH = 320  # about this many columns: the bottom of the image is searched in blocks of 4 x 4
# pixels at 1280 columns (blocks of the whole number of pixels nearest width / 320)
_SEARCH = 0.28  # share of the rows at the bottom searched for the edge
_STRIPS = 16
_U = ((np.arange(_STRIPS) + 0.5) / _STRIPS - 0.5) * 2  # strip centres, -1 (left) .. 1 (right)
_DESIGN = np.stack([np.ones(_STRIPS), _U, _U * _U], axis=1)
_TRIPLES = np.array(list(itertools.combinations(range(_STRIPS), 3)))
_TRIPLE_INVERSES = np.linalg.inv(_DESIGN[_TRIPLES])  # the quadratic through three strips' rows
_INLIER_ROWS = 1.5  # working rows a strip may lie off the curve
_MIN_INLIERS = 0.6  # share of the strips on the curve
_MIN_EDGE = 6.0  # mean brightness change across the edge in the strips on it (0-255)
_MIN_STEP = 8.0  # median brightness difference between just below and just above the edge
_MAX_TEXTURE = 5.0  # mean horizontal brightness change below the edge (a road shows paint and grain; a glossy bonnet
# reflects the sky and the lane paint too: 1.0 missed most of the generator's glossy bonnets, docs/training.md)
_MARGIN = 8  # working rows above the search band read for the checks
_ABOVE = 0.25  # share of the image height above the edge in which a crossing lane must show paint (a dashed
# line's gap can span the rows just above it)


@dataclass(frozen=True)
class HoodEdge:
    """The hood's upper edge: camera row ``c0 + c1 u + c2 u^2`` with ``u = (x - w/2) / (w/2)``."""

    coeffs: tuple[float, float, float]
    width: int

    @classmethod
    def flat(cls, row: float, width: int) -> HoodEdge:
        """A straight edge at one camera row (a hood given as a share of the rows)."""
        return cls((float(row), 0.0, 0.0), int(width))

    def row_at(self, x: np.ndarray | float) -> np.ndarray:
        """Camera row of the edge at camera columns ``x``."""
        u = (np.asarray(x, dtype=np.float64) - self.width / 2) / (self.width / 2)
        c0, c1, c2 = self.coeffs
        return c0 + u * (c1 + u * c2)


def find_edge(image_bgr: np.ndarray) -> HoodEdge | None:
    """The edge a hood would have in this image, or None when nothing there looks like one.

    Not yet a hood: see :func:`confirmed` (a shadow across the road can look the same).
    """
    h, w = image_bgr.shape[:2]
    scale = max(1, round(w / _WORK_WIDTH))  # camera pixels per working pixel, both ways
    cols = max(1, w // (scale * _STRIPS)) * _STRIPS  # working columns: whole strips
    x0 = (w - cols * scale) // 2  # camera columns left out, as many on both sides (none at 1280)
    n = h // scale  # working rows of the whole image
    top = int((1 - _SEARCH) * n)  # first working row searched
    first = top - _MARGIN
    y0 = first * scale
    band = np.ascontiguousarray(image_bgr[y0:n * scale, x0:x0 + cols * scale, :3])
    c = _edge_in(_block_means(cv2.cvtColor(band, cv2.COLOR_BGR2GRAY), scale), _MARGIN, n, _STRIPS, _DESIGN,
                 _TRIPLES, _TRIPLE_INVERSES)
    if c is None:
        return None
    # working row r covers camera rows around y0 + (r + 0.5) * scale - 0.5; the working columns span `wide` of
    # the camera's u range
    wide = cols * scale / w
    return HoodEdge((y0 + (c[0] + 0.5) * scale - 0.5, c[1] * scale / wide, c[2] * scale / wide**2), w)


@kernel
def _block_means(grey, size):  # pragma: no cover
    """The working image: the mean of each ``size`` x ``size`` block of ``grey`` (uint8), rounded half to even
    to whole grey levels (as OpenCV's ``INTER_AREA`` rounds at 4 x 4), as float32."""
    rows, cols = grey.shape[0] // size, grey.shape[1] // size
    line = np.empty(cols * size, np.int32)
    sums = np.empty(cols, np.int32)
    out = np.empty((rows, cols), np.float32)
    inverse = 1.0 / (size * size)
    for r in range(rows):
        line[:] = 0
        for y in range(r * size, (r + 1) * size):  # down the block's rows, every column at once
            for x in range(len(line)):
                line[x] += grey[y, x]
        sums[:] = 0
        for k in range(size):  # then across
            for c in range(cols):
                sums[c] += line[c * size + k]
        for c in range(cols):
            out[r, c] = (sums[c] * inverse + _ROUNDER) - _ROUNDER
    return out


_ROUNDER = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds a float64 half to even


@kernel
def _edge_in(grey, t, n, strips, design, triples, inverses):  # pragma: no cover
    """The hood's edge in the working image ``grey`` (the search band from row ``t``; ``n`` working rows in
    the whole image) as working-row coefficients (c0, c1, c2) in ``u``, or None (see :func:`find_edge`)."""
    rows_n, width = grey.shape
    bw = width // strips
    # the strongest vertical change (rows t .. rows_n - 2) in each strip, averaged across the strip
    rows = np.zeros(strips)
    strength = np.full(strips, -1.0)
    for r in range(t, rows_n - 1):
        for k in range(strips):
            total = 0.0
            for col in range(k * bw, (k + 1) * bw):
                total += abs(grey[r + 1, col] - grey[r - 1, col])
            if total / bw > strength[k]:
                strength[k] = total / bw
                rows[k] = r
    # every quadratic through three strips; the one most strips lie on wins
    best = np.zeros(strips, np.bool_)
    most = -1
    on = np.zeros(strips, np.bool_)
    c = np.zeros(3)
    for m in range(len(triples)):
        for i in range(3):
            c[i] = 0.0
            for j in range(3):
                c[i] += inverses[m, i, j] * rows[triples[m, j]]
        count = 0
        for k in range(strips):
            on[k] = abs(c[0] + c[1] * design[k, 1] + c[2] * design[k, 2] - rows[k]) <= _INLIER_ROWS
            count += on[k]
        if count > most:
            most = count
            best[:] = on
    if best.mean() < _MIN_INLIERS or np.median(strength[best]) < _MIN_EDGE:
        return None
    c = _solve_normal(design, rows, best)
    if abs(c[2]) > 0.15 * n:  # bent more than any hood
        return None
    edge = np.empty(width, np.int64)
    for col in range(width):
        u = ((col + 0.5) / width - 0.5) * 2
        edge[col] = np.int64(np.rint(c[0] + u * (c[1] + u * c[2])))
    if edge.min() < t + 3 or edge.max() > rows_n - 3:  # at the band's top: the edge lies above it
        return None
    # a clear step in brightness across the edge: just below against just above, column by column
    steps = np.empty(width)
    for col in range(width):
        below = above = 0.0
        for o in range(3, 9):
            below += grey[min(edge[col] + o, rows_n - 1), col]
            above += grey[edge[col] - o, col]
        steps[col] = abs(below - above) / 6
    # an even surface below it: little horizontal change from 3 rows below the edge to the bottom
    texture, count = 0.0, 0
    for col in range(1, width - 1):
        for r in range(edge[col] + 3, rows_n):
            texture += abs(grey[r, col + 1] - grey[r, col - 1])
            count += 1
    if np.median(steps) < _MIN_STEP or count == 0 or texture / count > _MAX_TEXTURE:
        return None
    return c


@warms_up
def _warm() -> None:
    grey = np.zeros((40, _WORK_WIDTH), np.uint8)
    grey[30:] = 80
    _edge_in(_block_means(grey, 1), _MARGIN, 140, _STRIPS, _DESIGN, _TRIPLES, _TRIPLE_INVERSES)


_MIN_HOOD_COLUMNS = 0.5  # share of the network's columns whose bottom pixel is bonnet, for a bonnet to count
_LOWEST_TOP = 0.6  # a bonnet's edge lies below this share of the image height


def edge_from_logits(logits: np.ndarray, geo: Any) -> HoodEdge | None:
    """The bonnet's edge from a network's ``hood_logits`` (H, W), at its own size (``geo``: the ``Geometry`` with
    that size as the network's; a stride-4 output is read as it is): in each column the top of the run of bonnet
    cells (p > 0.5) that reaches the bottom row, placed between that cell and the one above it where the logits,
    linear between their centres, cross 0 (a bilinear resize to the input size would put it there); a quadratic
    in camera pixels through those tops (one refit without the columns more than 1 % of the image height off). None
    when under half of the columns end in bonnet, or the edge lies above 60 % of the height."""
    on = logits > 0
    height = on.shape[0]
    run = np.argmin(on[::-1], axis=0)  # bonnet rows counted up from the bottom
    run[on.all(axis=0)] = height
    cols = np.flatnonzero(run > 0)
    if len(cols) < max(3, _MIN_HOOD_COLUMNS * on.shape[1]):
        return None
    top = height - run[cols]  # each column's first bonnet row
    y_top = top.astype(np.float64)  # its top edge; between two cells' centres where there is a cell above
    above = top > 0
    inner, outer = logits[top[above], cols[above]], logits[top[above] - 1, cols[above]]
    y_top[above] += 0.5 - inner / (inner - outer)  # outer <= 0 < inner
    x_cam, _ = geo.to_camera(cols.astype(np.float64), np.zeros(len(cols)))
    y_cam = y_top * geo.scale_y - 0.5 + geo.crop_top
    if np.median(y_cam) < _LOWEST_TOP * geo.src_height:
        return None
    half = geo.src_width / 2
    u = (x_cam - half) / half
    design = np.stack([np.ones_like(u), u, u * u], axis=1)
    keep = np.ones(len(u), bool)
    for _ in range(2):
        c = np.linalg.lstsq(design[keep], y_cam[keep], rcond=None)[0]
        keep = np.abs(design @ c - y_cam) <= 0.01 * geo.src_height
        if keep.sum() < 3:
            return None
    return HoodEdge((float(c[0]), float(c[1]), float(c[2])), int(geo.src_width))


def crossing_rows(lanes: Sequence[DetectedLane], edge: HoodEdge) -> list[float | None]:
    """Camera row where each lane meets the edge, None for a lane that ends above it."""
    out: list[float | None] = []
    for lane in lanes:
        y = float(lane.y_max)
        for _ in range(3):  # the edge is nearly flat: a few steps settle the crossing
            y = float(edge.row_at(lane.x_at(y)))
        out.append(y if y < lane.y_max else None)
    return out


def confirmed(image_bgr: np.ndarray, lanes: Sequence[DetectedLane], crossings: Sequence[float | None]) -> bool:
    """Whether the lanes that cross the edge (``crossings``: :func:`crossing_rows`) show paint above it (within
    ``_ABOVE`` of the image height) and none just below (a hood, not a shadow)."""
    return paint_above(image_bgr, lanes, crossings) and not paint_below(image_bgr, lanes, crossings)


def paint_above(image_bgr: np.ndarray, lanes: Sequence[DetectedLane], crossings: Sequence[float | None]) -> bool:
    """Whether a lane that crosses the edge shows paint above it (within ``_ABOVE`` of the image height)."""
    return _paint_seen(image_bgr, lanes, crossings, above=True)


def paint_below(image_bgr: np.ndarray, lanes: Sequence[DetectedLane], crossings: Sequence[float | None]) -> bool:
    """Whether a lane that crosses the edge shows paint just below it (within 4 % of the image height): the road
    goes on there, no hood."""
    return _paint_seen(image_bgr, lanes, crossings, above=False)


def _paint_seen(image_bgr: np.ndarray, lanes: Sequence[DetectedLane], crossings: Sequence[float | None],
                above: bool) -> bool:
    """Whether a lane that crosses the edge shows paint in two or more rows above it (``above``) or below it."""
    h, w = image_bgr.shape[:2]
    half = max(3.0, 0.012 * w)
    for lane, y in zip(lanes, crossings, strict=True):
        if y is None:
            continue
        rows = (np.arange(max(lane.y_min, y - _ABOVE * h), y - 0.006 * h, 0.004 * h) if above
                else np.arange(y + 0.006 * h, min(h - 1.0, y + 0.04 * h), 0.004 * h))
        if _paint_rows(image_bgr, lane, rows, half) >= 2:
            return True
    return False


class HoodMemory:
    """The bonnet over a drive. A camera's bonnet stays where it is in the image, so an edge found in a few frames
    holds for the frames in which it is not found (the search gives up on reflections, a dash gap above it, a
    network's bonnet output on a dark night).

    An edge is held once edges found one after another (:meth:`found`: the search's confirmed by the lanes count
    one, one that the lanes did not confirm, with no paint seen above it, half, a network's two) add up to ``agree``
    while lying within ``tolerance`` of the image height of each other: the road moves through the image, a
    shadow or a joint across it with it, the bonnet does not. Each later sure edge that agrees refines it. A frame
    in which the lanes show paint just below the held edge (:meth:`contradicted`: the road goes on there) does
    not use it, and ``release`` such frames in a row, or as many sure edges found elsewhere, drop it; edges found
    elsewhere that add up to ``agree`` hold that edge instead (a camera moved on its mount). Once a network's
    bonnet output (``hood_logits``) gave the held edge or agreed with it (``learned``), the decoder holds it
    through the frames without that output (a model whose heads run every few frames) instead of searching.
    """

    def __init__(self, agree: int = 3, tolerance: float = 0.015, release: int = 5) -> None:
        if agree < 1 or release < 1 or not 0 < tolerance < 1:
            raise ValueError(f"agree and release must be >= 1 and tolerance in (0, 1), got {agree}, {release} "
                             f"and {tolerance}")
        self.agree, self.tolerance, self.release = agree, tolerance, release
        self.reset()

    def reset(self) -> None:
        """Forget the edge (another camera)."""
        self.edge: HoodEdge | None = None
        self._size: tuple[int, int] | None = None  # the image size of the edges remembered
        self._count = 0  # edges averaged into ``edge``
        self._recent: list[tuple[HoodEdge, float, bool]] = []  # edges found in a row that do not agree with
        # ``edge``, with their votes and whether a network gave them
        self._against = 0  # frames in a row that went against ``edge``
        self.learned = False  # a network's bonnet output gave ``edge`` or agreed with it

    def held(self, width: int, height: int) -> HoodEdge | None:
        """The edge held for images of this size, or None."""
        return self.edge if self._size == (width, height) else None

    def found(self, edge: HoodEdge, height: int, sure: bool = True, learned: bool = False) -> None:
        """An edge found in this frame (images ``edge.width`` x ``height``); ``sure``: the network's or one the
        lanes confirmed; ``learned``: the network's."""
        if self._size != (edge.width, height):
            self.reset()
            self._size = (edge.width, height)
        if self.edge is not None and self._agrees(edge, self.edge, height):
            self.learned |= learned
            if sure:
                self._count += 1
                weight = 1.0 / min(self._count, 20)  # a running mean of the last twenty or so
                self.edge = HoodEdge(tuple((1 - weight) * a + weight * b  # type: ignore[arg-type]
                                           for a, b in zip(self.edge.coeffs, edge.coeffs, strict=True)), edge.width)
            self._recent, self._against = [], 0
            return
        if self._recent and not all(self._agrees(edge, e, height) for e, _, _ in self._recent):
            self._recent = []
        self._recent.append((edge, 2.0 if learned else 1.0 if sure else 0.5, learned))
        if self.edge is not None and sure:
            self._went_against()
        if sum(vote for _, vote, _ in self._recent) >= self.agree:
            self.edge = HoodEdge(tuple(np.average([e.coeffs for e, _, _ in self._recent],  # type: ignore[arg-type]
                                                  axis=0, weights=[v for _, v, _ in self._recent])), edge.width)
            self.learned = any(by_network for _, _, by_network in self._recent)
            self._count, self._recent, self._against = len(self._recent), [], 0

    def used(self) -> None:
        """The held edge was used in a frame that did not contradict it."""
        self._against = 0

    def contradicted(self) -> None:
        """The lanes showed paint just below the held edge in this frame."""
        self._went_against()

    def _went_against(self) -> None:
        self._against += 1
        if self._against >= self.release:
            self.edge, self._count, self._against, self.learned = None, 0, 0, False

    def _agrees(self, a: HoodEdge, b: HoodEdge, height: int) -> bool:
        xs = a.width * np.array([0.2, 0.5, 0.8])
        return bool(np.abs(a.row_at(xs) - b.row_at(xs)).max() <= self.tolerance * height)


def row_of_share(share: float, height: int) -> float:
    """The camera row of a fixed edge given as ``decode.hood``, a share of the rows at the bottom."""
    return (1.0 - share) * height - 0.5


def share_of_rows(row: float, height: int) -> float:
    """The ``decode.hood`` value whose fixed edge lies at camera ``row`` (:func:`row_of_share` turned round)."""
    return 1.0 - (row + 0.5) / height


def describe(row: float, height: int, setting: float) -> str:
    """Where the bonnet's edge is, in words (/diagnostics, ``lanenet-replay``): ``row`` its camera row at the
    centre column (``LaneFrame.hood_row``, negative: none), ``setting`` the decoder's ``hood``."""
    if setting == 0:
        return "none looked for (decode.hood 0)"
    if row < 0:
        return "none found"
    where = f"row {row:.0f} of {height} at the centre"
    if setting > 0:
        return f"{where}, given (decode.hood {setting:g})"
    share = share_of_rows(row, height)
    return f"{where}: the bottom {100 * share:.1f} % (decode.hood {share:.3f} fixes it there)"


def cut_lanes(lanes: Sequence[DetectedLane], crossings: Sequence[float | None], point_step_px: float,
              min_rows: float) -> list[DetectedLane]:
    """The lanes ended where they cross the edge (``crossings``: :func:`crossing_rows`); those left with fewer
    than ``min_rows`` camera rows dropped."""
    out = []
    for lane, y in zip(lanes, crossings, strict=True):
        if y is None:
            out.append(lane)
        elif y - 0.5 - lane.y_min >= min_rows:
            out.append(lane.replace(y_max=y - 0.5,
                                           points=sample_points(lane.image_coeffs, lane.y_min, y - 0.5,
                                                                point_step_px)))
    return out


def clear_below(mask: np.ndarray, edge: HoodEdge) -> None:
    """Set the mask to background (0) on and below the edge, in place."""
    h, w = mask.shape
    edge_rows = edge.row_at(np.arange(w))
    first = int(np.clip(np.floor(edge_rows.min()), 0, h))
    mask[first:][np.arange(first, h)[:, None] >= edge_rows[None, :] - 0.5] = 0


def _paint_rows(image_bgr: np.ndarray, lane: DetectedLane, ys: np.ndarray, half: float) -> int:
    """How many rows ``ys`` show paint on the lane (:func:`paint.paint_along`)."""
    if len(ys) == 0:
        return 0
    return int(np.count_nonzero(paint.paint_along(image_bgr, lane, ys, half, samples=9, gap=3)))
