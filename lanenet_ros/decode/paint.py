"""Marking type and colour of lanes: read from the paint in the camera image, from the mask, or from class names.

LaneNet masks are trained on lane polylines drawn at a fixed width, continuous through the gaps of a dashed
line and narrower than a double line, so the mask alone cannot tell dashed from solid. With the camera image,
each lane is sampled across a band that follows the fitted curve and widens with perspective (about 0.25 m
each side on the road, from the horizon row and an assumed camera height); a pixel is paint when it is
clearly brighter than the road just outside the band, or clearly more yellow. Rows with paint give solid /
dashed (gaps along the lane), two separate paint runs across the band give the double types, and the paint
pixels vote white / yellow.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lanenet_ros.decode.fitting import median
from lanenet_ros.jit import kernel, warms_up
from lanenet_ros.lanes import DetectedLane, MarkingColor, MarkingType, polyval

_BAND_SAMPLES = 25  # samples across the band (odd: one on the curve)
_MAX_ROWS = 120  # rows sampled per lane at most
_MIN_PPM = 25.0  # road pixels per metre below which paint is not read
_MIN_GAP = 2  # rows a gap in a marking must span to count
_DOT_RUNS = 3  # runs of paint in a lane's nearer half that raised dots show at least
_DOT_LENGTH = 0.8  # a dot's run along the lane (camera rows) is shorter than this share of its width (pixels)
_DOT_COVER = 0.3  # share of the nearer half's rows with paint that raised dots show at most
_MIN_COLOR_SHARE = 0.25  # share of a lane's paint pixels the winning colour must hold
_YELLOW_HUE = (12, 40)  # OpenCV hue range of yellow paint (24-80 degrees)
_YELLOW_SAT = 70  # least saturation of yellow paint
_YELLOW_OVER_ROAD = 40.0  # saturation above the road's that makes a yellow sample paint without being brighter
_UNKNOWN = (MarkingType.UNKNOWN, MarkingColor.UNKNOWN)
# the kernels' codes: MarkingType and MarkingColor values
_SOLID, _DASHED, _DOTS = int(MarkingType.SOLID), int(MarkingType.DASHED), int(MarkingType.BOTTS_DOTS)
_DOUBLE_CODES = np.array([[MarkingType.DOUBLE_DASHED, MarkingType.DASHED_SOLID],  # by (left solid, right solid)
                          [MarkingType.SOLID_DASHED, MarkingType.DOUBLE_SOLID]], np.int64)
_YELLOW, _WHITE, _NO_COLOR = int(MarkingColor.YELLOW), int(MarkingColor.WHITE), int(MarkingColor.UNKNOWN)
_NO_ROWS = np.zeros(0, np.int64)


def is_paint(value: np.ndarray, road: np.ndarray) -> np.ndarray:
    """Whether brightness ``value`` (HSV value, 0-255) is paint on a road of brightness ``road``
    (:func:`_paint_level`). Both broadcast."""
    return value >= _paint_level(np.asarray(road, np.float64))


@kernel
def _paint_level(road):  # pragma: no cover
    """The least brightness of paint on a road of brightness ``road`` (a number or an array): clearly brighter,
    by 15 levels or 15 %, whichever is more (the one rule for every paint test)."""
    return road + np.maximum(15.0, 0.15 * road)


def paint_along(image_bgr: np.ndarray, lane: DetectedLane, ys: np.ndarray, half: float, samples: int,
                gap: float) -> np.ndarray:
    """(len(ys),) bool: rows ``ys`` (at least one) where the camera image shows paint on the lane's fit: the
    brightest of ``samples`` points within ``half`` px of it is paint (:func:`is_paint`) against the brighter of
    two road points ``2 * half + gap`` px out on either side; rows whose fit leaves the image are not."""
    xs = lane.x_at(ys)
    band = xs[:, None] + np.linspace(-half, half, samples)[None, :]
    refs = np.stack([xs - 2 * half - gap, xs + 2 * half + gap], axis=1)
    map_x = np.concatenate([band, refs], axis=1).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], map_x.shape).astype(np.float32)
    value = cv2.remap(image_bgr[:, :, :3], map_x, map_y, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE).max(axis=2).astype(np.float32)  # HSV value
    road = np.maximum(value[:, -2], value[:, -1])  # brighter than the road on both sides
    inside = (xs >= 0) & (xs <= image_bgr.shape[1] - 1)
    return is_paint(value[:, :-2].max(axis=1), road) & inside


def is_solid(rows: np.ndarray, row_min: int, row_max: int, min_gap: int = _MIN_GAP) -> bool:
    """Whether occupied ``rows`` cover [row_min, row_max] like a solid line (no repeated gaps).

    Dashed: two or more gaps of at least ``min_gap`` rows, or one gap with less than 60 % of the rows covered
    (a single short gap is more likely an occlusion than a dash). Rows outside [row_min, row_max] are ignored.
    """
    return bool(_is_solid(np.asarray(rows, np.int64), int(row_min), int(row_max), int(min_gap)))


@kernel
def _is_solid(rows, row_min, row_max, min_gap):  # pragma: no cover
    occupied = np.zeros(row_max - row_min + 1, np.bool_)
    for r in rows:
        if row_min <= r <= row_max:
            occupied[r - row_min] = True
    gaps = covered = run = 0  # a gap ends at an occupied row, or at either end of the range
    for here in occupied:
        if here:
            covered += 1
            gaps += run >= min_gap
            run = 0
        else:
            run += 1
    gaps += run >= min_gap
    return gaps == 0 or (gaps == 1 and covered >= 0.6 * len(occupied))


def marking_type(rows: np.ndarray, runs: np.ndarray, double_fraction: float = 0.4, min_gap: int = _MIN_GAP,
                 side_rows: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None) -> MarkingType:
    """Solid, dashed or one of the double types of one lane, from the rows its marking occupies.

    Args:
        rows: (R,) occupied rows, ascending (far to near), R >= 1.
        runs: (R,) separate runs of marking across each row.
        double_fraction: share of the nearer half of the rows that must show two runs to call it double.
        min_gap: rows a gap must span to count.
        side_rows: returns the occupied rows of the left and of the right line; called only for a double
            line. None: never double.

    Returns:
        The marking type.
    """
    rows, runs = np.asarray(rows, np.int64), np.asarray(runs, np.int64)
    left = right = _NO_ROWS
    double = side_rows is not None and _looks_double(runs, double_fraction)
    if double:
        left, right = (np.asarray(r, np.int64) for r in side_rows())
    return MarkingType(_type_code(rows, double, left, right, min_gap))


@kernel
def _looks_double(runs, double_fraction):  # pragma: no cover
    """Whether two runs across a row are common enough in the near half of the rows (double lines merge in
    the distance) to call the marking double; ``double_fraction`` 0 never does."""
    near = runs[len(runs) // 2:]
    return double_fraction > 0 and len(near) >= 4 and np.mean(near == 2) >= double_fraction


@kernel
def _type_code(rows, double, left, right, min_gap):  # pragma: no cover
    """:func:`marking_type` as a ``MarkingType`` value, given whether the marking is double and, if so, the
    occupied rows of its left and right lines."""
    lo, hi = rows[0], rows[-1]
    if double:
        return _DOUBLE_CODES[int(len(left) > 0 and _is_solid(left, lo, hi, min_gap)),
                             int(len(right) > 0 and _is_solid(right, lo, hi, min_gap))]
    return _SOLID if _is_solid(rows, lo, hi, min_gap) else _DASHED


@kernel
def _color_code(yellow, white, total):  # pragma: no cover
    """The colour of a lane from its pixel votes, as a ``MarkingColor`` value: the winner must hold
    ``_MIN_COLOR_SHARE`` of the pixels."""
    if total > 0 and yellow >= _MIN_COLOR_SHARE * total and yellow >= 0.5 * white:
        return _YELLOW
    if total > 0 and white >= _MIN_COLOR_SHARE * total:
        return _WHITE
    return _NO_COLOR


def horizon_row(curves: Sequence[tuple[np.ndarray, float, float]], default: float) -> float:
    """Row where the lanes meet (median crossing of their near straight parts), else ``default``.

    Args:
        curves: (coeffs of x(y), y_min, y_max) per lane, camera pixels.
        default: returned with fewer than two lanes or no usable crossing.

    Returns:
        The horizon row estimate.
    """
    lines = []
    for coeffs, y0, y1 in curves:  # plain floats: a handful of lanes, numpy's per-call cost would dominate
        ya, yb = y0 + 0.5 * (y1 - y0), y1  # the chord of the near half: closest to straight
        if yb - ya < 1.0:
            continue
        c = coeffs.tolist()
        xa, xb = polyval(ya, c), polyval(yb, c)
        m = (xb - xa) / (yb - ya)
        lines.append((m, xa - m * ya))
    crossings = [(b2 - b1) / (m1 - m2) for i, (m1, b1) in enumerate(lines) for m2, b2 in lines[i + 1:]
                 if abs(m1 - m2) > 0.05]
    lowest = min(y0 for _, y0, _ in curves) if curves else default
    crossings = [y for y in crossings if y < lowest]  # lanes meet above where they are seen
    return median(np.array(crossings)) if crossings else float(default)


def read_markings(image_bgr: np.ndarray, curves: Sequence[tuple[np.ndarray, float, float]],
                  min_half_widths: Sequence[float], horizon: float, camera_height_m: float = 1.5,
                  double_fraction: float = 0.4, row_step: int = 2) -> list[tuple[MarkingType, MarkingColor]]:
    """Marking type and colour of each lane from the paint along it in the camera image.

    Args:
        image_bgr: (H, W, 3) uint8 camera image.
        curves: (coeffs of x(y), y_min, y_max) per lane, camera pixels.
        min_half_widths: per lane, the smallest band half-width in pixels (e.g. half the mask width).
        horizon: horizon row (see :func:`horizon_row`); sets how the band widens towards the bottom.
        camera_height_m: assumed camera height, for pixels per metre on the road: (y - horizon) / height.
        double_fraction: share of near rows with two paint runs that makes a double line.
        row_step: camera rows between samples (more for long lanes: at most 120 rows are read).

    Returns:
        (type, colour) per lane, UNKNOWN where too little paint was seen.
    """
    w = image_bgr.shape[1]
    if not curves:
        return []
    coeffs = np.zeros((len(curves), max(len(c) for c, _, _ in curves)))
    for k, (c, _, _) in enumerate(curves):
        coeffs[k, : len(c)] = c
    ends = np.array([(y0, y1) for _, y0, y1 in curves], np.float64)
    map_x, map_y, starts, doubles = _band_maps(coeffs, ends, np.asarray(min_half_widths, np.float64),
                                               float(horizon), float(camera_height_m), int(row_step), w, _UNIT)
    if len(map_x) == 0:
        return [_UNKNOWN] * len(curves)
    strip = cv2.remap(image_bgr[:, :, :3], map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    kinds, colors = _judge(strip, map_x, map_y, w, starts, doubles, float(double_fraction))
    return [(MarkingType(k), MarkingColor(c)) for k, c in zip(kinds.tolist(), colors.tolist(), strict=True)]


_UNIT = np.linspace(-1.0, 1.0, _BAND_SAMPLES)  # band samples across [-1, 1] half-widths


@kernel
def _band_maps(coeffs, ends, min_half_widths, horizon, camera_height_m, row_step, width, unit):  # pragma: no cover
    """Where :func:`read_markings` samples the image: per lane, rows from where a 0.1 m line spans 2.5 pixels
    down to its end (at most ``_MAX_ROWS``, at least 4, else none), each with ``_BAND_SAMPLES`` samples across
    a band 0.25 m each side of the fit and four road references 0.15 m and 0.4 m beyond its edges.

    Returns map_x, map_y (rows, _BAND_SAMPLES + 4) float32 for ``cv2.remap``, each lane's first row in them
    (and one past the last), and whether a double line can be told apart on it (its ~0.1 m gap spans 3 px).
    """
    lanes = len(coeffs)
    starts = np.zeros(lanes + 1, np.int64)
    doubles = np.zeros(lanes, np.bool_)
    firsts = np.empty(lanes)
    steps = np.empty(lanes)
    for k in range(lanes):  # rows per lane first, to size the maps
        y0, y1 = ends[k, 0], ends[k, 1]
        first = max(np.ceil(y0), horizon + _MIN_PPM * camera_height_m)
        step = max(float(row_step), np.ceil((y1 - first) / _MAX_ROWS))
        count = len(np.arange(first, np.floor(y1) + 1, step))
        firsts[k], steps[k] = first, step
        starts[k + 1] = starts[k] + (count if count >= 4 else 0)
    map_x = np.empty((starts[lanes], _BAND_SAMPLES + 4), np.float32)
    map_y = np.empty((starts[lanes], _BAND_SAMPLES + 4), np.float32)
    for k in range(lanes):
        ys = np.arange(firsts[k], np.floor(ends[k, 1]) + 1, steps[k])
        if starts[k + 1] == starts[k]:
            continue
        for i in range(len(ys)):
            y = ys[i]
            ppm = (y - horizon) / camera_height_m  # road pixels per metre at this row
            hw = min(max(0.25 * ppm, max(min_half_widths[k], 2.0)), width / 8.0)
            x = coeffs[k, -1] + 0.0 * y
            for c in coeffs[k, -2::-1]:
                x = x * y + c
            row = starts[k] + i
            for j in range(_BAND_SAMPLES):
                map_x[row, j] = x + unit[j] * hw
            near, far = hw + 0.15 * ppm + 2, hw + 0.4 * ppm + 4
            map_x[row, _BAND_SAMPLES] = x - near
            map_x[row, _BAND_SAMPLES + 1] = x - far
            map_x[row, _BAND_SAMPLES + 2] = x + near
            map_x[row, _BAND_SAMPLES + 3] = x + far
            map_y[row, :] = y
        doubles[k] = 0.1 * (ys[-1] - horizon) / camera_height_m >= 3.0
    return map_x, map_y, starts, doubles


@kernel
def _judge(strip, map_x, map_y, width, starts, doubles, double_fraction):  # pragma: no cover
    """Type and colour (``MarkingType`` and ``MarkingColor`` values) of each lane from its rows
    ``starts[k]:starts[k + 1]`` of the sampled band (rows far to near); a lane without ``doubles[k]`` is never
    double, one with too little paint stays unknown, a dashed one whose nearer half looks like raised dots
    (:func:`_looks_dotted`) is Botts' dots."""
    paint, inside = _paint_mask(strip, map_x, width)
    lanes = len(starts) - 1
    kinds = np.zeros(lanes, np.int64)
    colors = np.zeros(lanes, np.int64)
    for k in range(lanes):
        a, b = starts[k], starts[k + 1]
        if a == b:
            continue
        rows, runs, left, right, yellow, white, total = _paint_stats(paint[a:b], strip[a:b, :_BAND_SAMPLES])
        if len(rows) < 3 or total < 6:
            continue
        kind = _type_code(rows, _looks_double(runs, double_fraction if doubles[k] else 0.0), left, right, _MIN_GAP)
        # a solid line is painted down to the nearest row it is seen in; a long bare stretch there is a dash gap
        visible = np.flatnonzero(inside[a:b])
        if kind == _SOLID and visible[-1] - rows[-1] >= max(4, 0.3 * (visible[-1] - visible[0] + 1)):
            kind = _DASHED
        if kind == _DASHED and _looks_dotted(paint[a:b], map_x[a:b], map_y[a:b]):
            kind = _DOTS
        kinds[k], colors[k] = kind, _color_code(yellow, white, total)
    return kinds, colors


@kernel
def _looks_dotted(paint, map_x, map_y):  # pragma: no cover
    """Whether a lane's paint (rows far to near, band samples) looks like raised dots: in its nearer half, at
    least ``_DOT_RUNS`` separate runs of paint along the lane, each shorter (camera rows) than ``_DOT_LENGTH``
    of its width across (pixels), on at most ``_DOT_COVER`` of the rows. A dot is as long as it is wide on the
    road and the camera sees the road foreshortened, so its run is a row or two where a dash's runs tens;
    dashes are also metres apart, so a nearer half seldom shows three of them."""
    n = len(paint)
    half = n // 2
    if n - half < 4:
        return False
    step = (map_y[n - 1, 0] - map_y[half, 0]) / (n - 1 - half)  # camera rows between samples
    counts = paint[half:].sum(axis=1)  # paint samples across each row of the nearer half
    runs = covered = 0
    r = 0
    while r < n - half:
        if counts[r] == 0:
            r += 1
            continue
        first, width_px = r, 0.0
        while r < n - half and counts[r] > 0:
            spacing = (map_x[half + r, _BAND_SAMPLES - 1] - map_x[half + r, 0]) / (_BAND_SAMPLES - 1)
            width_px = max(width_px, counts[r] * spacing)
            r += 1
        if (r - first) * step >= _DOT_LENGTH * width_px:
            return False  # a run as long as a dash's
        runs += 1
        covered += r - first
    return runs >= _DOT_RUNS and covered <= _DOT_COVER * (n - half)


@kernel
def _paint_mask(strip, map_x, width):  # pragma: no cover
    """Which band samples are paint, in the rows whose centre lies inside the image (returned too).

    A sample is paint when it is clearly brighter (:func:`_paint_level`) than three of the row's four road
    references, the fourth being free to fall on another line, a car or a barrier; or when it is clearly
    yellow (:func:`_is_yellow`) and more saturated than the road by ``_YELLOW_OVER_ROAD``: yellow paint need
    not be brighter than the road (faded yellow on pale concrete, yellow in shade). A texture that is only a
    little brighter (the lighter middle of a lane between dark tyre tracks) is not paint.
    """
    rows = len(strip)
    paint = np.zeros((rows, _BAND_SAMPLES), np.bool_)
    inside = np.zeros(rows, np.bool_)
    for r in range(rows):
        centre = map_x[r, _BAND_SAMPLES // 2]
        inside[r] = 0 <= centre <= width - 1
        if not inside[r]:
            continue
        first = second = 0  # the two brightest references
        low_sat, high_sat, total_sat = 255, 0, 0
        for j in range(4):
            ref = strip[r, _BAND_SAMPLES + j]
            v = _value(ref)
            if v > first:
                first, second = v, first
            elif v > second:
                second = v
            sat = _hue_saturation(ref)[1]
            low_sat, high_sat, total_sat = min(low_sat, sat), max(high_sat, sat), total_sat + sat
        road = float(second)
        bright = _paint_level(road)
        yellow_sat = max(_YELLOW_SAT, (total_sat - low_sat - high_sat) / 2.0 + _YELLOW_OVER_ROAD)
        for j in range(_BAND_SAMPLES):
            bgr = strip[r, j]
            if _value(bgr) >= bright:
                paint[r, j] = True
            elif bgr[0] < bgr[1] and bgr[0] < bgr[2]:  # blue the weakest: the only way to a yellow hue
                v = max(np.int64(bgr[1]), np.int64(bgr[2]))
                if (v - np.int64(bgr[0])) * 255 >= yellow_sat * v:  # saturated enough, before the exact test
                    h, sat = _hue_saturation(bgr)
                    paint[r, j] = _is_yellow(h, sat) and sat >= yellow_sat
    return paint, inside


@kernel
def _paint_stats(paint, strip):  # pragma: no cover
    """What one lane's (rows, band samples) paint mask shows: the rows with paint, the separate runs of paint
    across each of them, the rows with paint left and right of the centre sample, and how many paint pixels
    look yellow (:func:`_is_yellow`) and white (saturation under 60) of how many."""
    n, width = paint.shape
    mid = width // 2
    rows = np.empty(n, np.int64)
    runs = np.empty(n, np.int64)
    left = np.empty(n, np.int64)
    right = np.empty(n, np.int64)
    k = k_left = k_right = yellow = white = total = 0
    for r in range(n):
        count = 0
        on_left = on_right = False
        for c in range(width):
            if not paint[r, c]:
                continue
            count += c == 0 or not paint[r, c - 1]  # a run starts here
            on_left |= c < mid
            on_right |= c > mid
            total += 1
            h, sat = _hue_saturation(strip[r, c])
            yellow += _is_yellow(h, sat)
            white += sat < 60
        if count:
            rows[k], runs[k] = r, count
            k += 1
        if on_left:
            left[k_left] = r
            k_left += 1
        if on_right:
            right[k_right] = r
            k_right += 1
    return rows[:k], runs[:k], left[:k_left], right[:k_right], yellow, white, total


@kernel
def _is_yellow(h, sat):  # pragma: no cover
    """Whether an OpenCV hue (0-179) and saturation (0-255) look like yellow paint."""
    return _YELLOW_HUE[0] <= h <= _YELLOW_HUE[1] and sat >= _YELLOW_SAT


@kernel
def _value(bgr):  # pragma: no cover
    """OpenCV's 8-bit HSV value of one BGR pixel: its brightest channel."""
    return max(np.int64(bgr[0]), np.int64(bgr[1]), np.int64(bgr[2]))


@kernel
def _hue_saturation(bgr):  # pragma: no cover
    """OpenCV's 8-bit HSV hue (0-179) and saturation of one BGR pixel, bit for bit as ``cv2.cvtColor`` gives
    them (the same integer steps and tables; every 8-bit colour checked in the tests)."""
    b, g, r = np.int64(bgr[0]), np.int64(bgr[1]), np.int64(bgr[2])
    v = max(b, g, r)
    diff = v - min(b, g, r)
    s = (diff * _SAT_DIV[v] + _HALF) >> _HSV_SHIFT
    if v == r:
        h = g - b
    elif v == g:
        h = b - r + 2 * diff
    else:
        h = r - g + 4 * diff
    h = (h * _HUE_DIV[diff] + _HALF) >> _HSV_SHIFT
    return h + 180 if h < 0 else h, s


_HSV_SHIFT = 12  # OpenCV's fixed point: 255 / v and 30 / diff scaled by 2**12, rounded
_HALF = 1 << (_HSV_SHIFT - 1)
_SAT_DIV = np.array([0] + [round((255 << _HSV_SHIFT) / i) for i in range(1, 256)], np.int64)
_HUE_DIV = np.array([0] + [round((180 << _HSV_SHIFT) / (6.0 * i)) for i in range(1, 256)], np.int64)


@warms_up
def _warm() -> None:
    maps = _band_maps(np.ones((2, 4)), np.array([[300.0, 700.0], [300.0, 310.0]]), np.ones(2), 250.0, 1.5, 2, 1280,
                      _UNIT)
    _judge(np.zeros((len(maps[0]), _BAND_SAMPLES + 4, 3), np.uint8), maps[0], maps[1], 1280, maps[2], maps[3], 0.4)
    marking_type(np.arange(6), np.full(6, 2), side_rows=lambda: (np.arange(6), np.arange(0, 6, 3)))
    is_paint(np.zeros(1, np.float32), np.zeros(1, np.float32))  # the array form of _paint_level


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
