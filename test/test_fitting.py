"""Lane geometry building blocks (fitting.py) and paint reading (paint.py) on hand-made inputs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lanenet_ros.decode import fitting, paint
from lanenet_ros.lanes import DetectedLane, MarkingColor, MarkingType, Position

P = np.polynomial.polynomial


def straight(bottom: float, slope: float = 0.0) -> DetectedLane:
    coeffs = np.array([bottom - 719 * slope, slope])
    return DetectedLane(coeffs, 300.0, 719.0, fitting.sample_points(coeffs, 300.0, 719.0, 10.0))


def test_robust_polyfit_ignores_a_fifth_of_outliers() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(40.0, 250.0)
    x = 100 + 0.4 * y + 0.002 * y**2 + rng.normal(0, 0.3, len(y))
    bad = rng.choice(len(y), len(y) // 5, replace=False)
    x[bad] += rng.uniform(15, 60, len(bad))
    coeffs, inliers = fitting.robust_polyfit(y, x, 2, inlier_tol=2.0)
    np.testing.assert_allclose(coeffs, [100, 0.4, 0.002], rtol=0.02, atol=0.5)
    assert not inliers[bad].any() and inliers.sum() >= len(y) - len(bad) - 3
    plain = P.polyfit(y, x, 2)
    assert np.abs(P.polyval(y, plain) - (100 + 0.4 * y + 0.002 * y**2)).max() > 5  # what trimming avoids


def test_affine_poly_substitutes() -> None:
    q = np.array([1.0, -2.0, 0.5, 0.01])
    y = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(P.polyval(y, fitting.affine_poly(q, 2.5, -1.0)), P.polyval(2.5 * y - 1.0, q))


def test_row_segments_per_lane_and_row() -> None:
    rows = np.array([3, 3, 3, 3, 4, 4, 2, 2])
    cols = np.array([1, 2, 6, 7, 4, 5, 9, 10])
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    seg = fitting.row_segments(rows, cols, labels)
    assert seg.label.tolist() == [0, 0, 1] and seg.row.tolist() == [3, 4, 2]
    assert seg.median.tolist() == [4.0, 4.5, 9.5] and seg.runs.tolist() == [2, 1, 1]
    assert seg.extent.tolist() == [6, 1, 1]


def test_order_lanes_positions_and_ego_indices() -> None:
    lanes, left, right = fitting.order_lanes([straight(900), straight(100), straight(500), straight(1200)], 1280, 720)
    assert [round(ln.x_at(719.0)) for ln in lanes] == [100, 500, 900, 1200]
    assert [ln.position for ln in lanes] == [Position.SECOND_LEFT, Position.EGO_LEFT, Position.EGO_RIGHT,
                                             Position.SECOND_RIGHT]
    assert (left, right) == (1, 2)
    lanes, left, right = fitting.order_lanes([straight(800), straight(1100)], 1280, 720)
    assert (left, right) == (-1, 0) and lanes[1].position == Position.SECOND_RIGHT
    # a lane ending high in the image is extended straight down to the bottom row
    short = DetectedLane(np.array([1000.0 - 0.5 * 500, 0.5]), 300.0, 500.0, np.zeros((2, 2), np.float32))
    assert fitting.bottom_x(short, 720) == pytest.approx(1000 + 0.5 * 219)


def test_chain_components_joins_dashes_of_one_line_only() -> None:
    mask = np.zeros((200, 300), np.uint8)
    for top in range(10, 190, 40):  # two dashed lines converging upwards
        cv2.line(mask, (int(100 + 0.3 * (200 - top)), top), (int(100 + 0.3 * (180 - top)), top + 20), 1, 2)
        cv2.line(mask, (int(220 - 0.3 * (200 - top)), top), (int(220 - 0.3 * (180 - top)), top + 20), 1, 2)
    count, comp = cv2.connectedComponents(mask, connectivity=8)
    rows, cols = np.nonzero(comp)
    groups = fitting.chain_components(rows, cols, comp[rows, cols], chain_px=6.0)
    assert count - 1 == 10 and len(groups) == 2
    assert sorted(len(np.unique(comp[rows[g], cols[g]])) for g in groups) == [5, 5]


def test_is_solid_and_mask_marking_types() -> None:
    assert paint.is_solid(np.arange(10, 60), 10, 59)
    assert not paint.is_solid(np.r_[10:20, 30:40, 50:60], 10, 59)
    assert paint.is_solid(np.r_[10:45, 48:60], 10, 59)  # one short gap: an occlusion, not a dash
    # rows beyond the judged span (a side line's stray rows past the fitted marking) are ignored, not an error
    assert paint.is_solid(np.r_[0:5, 10:60, 70:80], 10, 59)
    assert not paint.is_solid(np.r_[0:5, 10:20, 30:40, 50:60, 70:80], 10, 59)
    rows = np.arange(20)
    assert paint.marking_type(rows, np.ones(20, int)) == MarkingType.SOLID
    sides = (np.arange(20), np.r_[0:5, 10:15])
    assert paint.marking_type(rows, np.full(20, 2), side_rows=lambda: sides) == MarkingType.SOLID_DASHED
    assert paint.marking_type(rows, np.full(20, 2)) == MarkingType.SOLID  # doubles not allowed


def test_horizon_row_from_converging_lanes() -> None:
    # lines through (x, 719) and (640, 300): x(y) = 640 + (x - 640) (y - 300) / 419
    lanes = [(np.array([640 - (x - 640) * 300 / 419, (x - 640) / 419]), 400.0, 719.0) for x in (100.0, 500.0, 1100.0)]
    for coeffs, *_ in lanes:  # each line passes through (640, 300)
        assert P.polyval(300.0, coeffs) == pytest.approx(640.0)
    assert paint.horizon_row(lanes, default=0.0) == pytest.approx(300.0)
    assert paint.horizon_row(lanes[:1], default=123.0) == 123.0


def test_paint_reads_hue_saturation_and_value_as_opencv_does() -> None:
    import numba

    @numba.njit
    def hsv_of(image):  # the kernels' per-pixel values, as an image
        out = np.empty_like(image)
        for i in range(image.shape[0]):
            for j in range(image.shape[1]):
                out[i, j, 0], out[i, j, 1] = paint._hue_saturation(image[i, j])
                out[i, j, 2] = paint._value(image[i, j])
        return out

    every = np.arange(1 << 24, dtype=np.uint32)  # every 8-bit colour once
    image = np.stack([every >> 16, (every >> 8) & 255, every & 255], axis=1).astype(np.uint8).reshape(4096, 4096, 3)
    np.testing.assert_array_equal(hsv_of(image), cv2.cvtColor(image, cv2.COLOR_BGR2HSV))


def _paint_lines(image: np.ndarray, lines, width_m: float = 0.12) -> list:
    """Paint ``width_m`` wide lines on ``image`` (a road seen from 1.5 m with a focal length of 1000 px, horizon
    at row 299), each (x at the bottom row, BGR colour, dashed) running to (640, 299), dashed True (every other
    50 rows), False (solid) or (paint, gap) in metres along the road; returns their curves for
    ``read_markings``."""
    ys = np.arange(330, 720)
    curves = []
    for x0, colour, dashed in lines:
        coeffs = np.array([640 - (x0 - 640) * 299 / 420, (x0 - 640) / 420])  # through (x0, 719) and (640, 299)
        for y, x in zip(ys, P.polyval(ys, coeffs), strict=True):
            if isinstance(dashed, tuple):
                on = (1000 * 1.5 / (y - 299)) % sum(dashed) < dashed[0]  # the distance ahead of the camera
            else:
                on = not dashed or (719 - y) % 100 < 50
            if on:
                half = max(1, int(width_m / 2 * (y - 299) / 1.5))
                image[y, int(x) - half:int(x) + half + 1] = colour
        curves.append((coeffs, 330.0, 719.0))
    return curves


def test_read_markings_on_a_painted_road() -> None:
    image = np.full((720, 1280, 3), 80, np.uint8)
    curves = _paint_lines(image, [(300.0, (230, 230, 230), False), (900.0, (0, 190, 220), True)])
    seen = paint.read_markings(image, curves, [4.0, 4.0], horizon=299.0)
    assert seen == [(MarkingType.SOLID, MarkingColor.WHITE), (MarkingType.DASHED, MarkingColor.YELLOW)]
    bare = np.full_like(image, 80)
    assert paint.read_markings(bare, curves, [4.0, 4.0], horizon=299.0) == [
        (MarkingType.UNKNOWN, MarkingColor.UNKNOWN)] * 2


def test_raised_dots_are_told_from_dashes() -> None:
    """Botts' dots (0.11 m every 1.25 m) are a row or two long in the image, dashes tens of rows: the nearer half
    of a dotted line shows several runs of paint, each shorter than it is wide."""
    image = np.full((720, 1280, 3), 80, np.uint8)
    curves = _paint_lines(image, [(300.0, (230, 230, 230), (0.11, 1.14)), (900.0, (230, 230, 230), (3.0, 9.0))],
                          width_m=0.11)
    assert [kind for kind, _ in paint.read_markings(image, curves, [4.0, 4.0], horizon=299.0)] == [
        MarkingType.BOTTS_DOTS, MarkingType.DASHED]
    # a wide dotted line at an exit (1 m of paint every 4 m, 0.25 m wide) is a dashed line
    image = np.full((720, 1280, 3), 80, np.uint8)
    curves = _paint_lines(image, [(900.0, (230, 230, 230), (1.0, 3.0))], width_m=0.25)
    assert paint.read_markings(image, curves, [4.0], horizon=299.0) == [(MarkingType.DASHED, MarkingColor.WHITE)]


def test_paint_is_brighter_than_the_road_on_both_sides_or_clearly_yellow() -> None:
    # a shadow's edge along a dashed line: the sunlit road beside it is no paint, the gaps stay gaps
    image = np.full((720, 1280, 3), 80, np.uint8)
    ys, xs = np.mgrid[0:720, 0:1280]
    line_x = 640 + (900 - 640) * (ys - 299) / 420
    image[xs > line_x] = 110
    curves = _paint_lines(image, [(900.0, (230, 230, 230), True)])
    assert paint.read_markings(image, curves, [4.0], horizon=299.0) == [(MarkingType.DASHED, MarkingColor.WHITE)]
    # faded yellow on pale concrete: no brighter than the road, but yellow
    image = np.full((720, 1280, 3), 190, np.uint8)
    curves = _paint_lines(image, [(300.0, (70, 170, 190), False)])
    assert paint.read_markings(image, curves, [4.0], horizon=299.0) == [(MarkingType.SOLID, MarkingColor.YELLOW)]
    # a grey-white line no brighter than the concrete is not seen at all
    image = np.full((720, 1280, 3), 190, np.uint8)
    curves = _paint_lines(image, [(300.0, (185, 190, 190), False)])
    assert paint.read_markings(image, curves, [4.0], horizon=299.0) == [(MarkingType.UNKNOWN, MarkingColor.UNKNOWN)]


def test_class_names_carry_type_and_colour() -> None:
    assert paint.parse_class_marking("ds_y_dn") == paint.ClassMarking(MarkingType.DOUBLE_SOLID, MarkingColor.YELLOW)
    assert paint.parse_class_marking("b_w_g").marking_type == MarkingType.DASHED
    assert paint.parse_class_marking("a_w_t") is None and paint.parse_class_marking("lane") is None


def test_compiled_samples_are_numpys_linspace_and_polyval() -> None:
    """sample_points and sample_ground (one compiled kernel) give the very floats numpy gives."""
    from lanenet_ros.ground import sample_ground
    from lanenet_ros.lanes import polyval

    rng = np.random.default_rng(3)
    for _ in range(300):
        terms = rng.integers(1, 5)
        coeffs = rng.normal(0, 1, terms) * np.array([500, 1, 1e-3, 1e-6])[:terms]
        y_min = rng.uniform(0, 700)
        y_max = y_min + rng.uniform(0, 400) * (rng.random() > 0.1)
        step = rng.choice([1.0, 7.3, 10.0, 500.0])
        ys = np.linspace(y_max, y_min, max(2, int(np.ceil((y_max - y_min) / step)) + 1))
        expected = np.stack([polyval(ys, coeffs), ys], axis=1).astype(np.float32)
        assert np.array_equal(fitting.sample_points(coeffs, y_min, y_max, step), expected)
        xs = np.linspace(y_min / 10, y_max / 10, max(2, int(np.ceil((y_max - y_min) / 10 / step)) + 1))
        assert np.array_equal(sample_ground(coeffs, y_min / 10, y_max / 10, step),
                              np.stack([xs, polyval(xs, coeffs)], 1).astype(np.float32))


def test_bottom_xs_continue_each_lane_straight_from_its_nearest_point() -> None:
    curved = DetectedLane(np.array([100.0, 0.5, 1e-3]), 300.0, 600.0, np.zeros((0, 2), np.float32))
    slope = 0.5 + 2e-3 * 600
    assert fitting.bottom_xs([straight(640.0, 0.2), curved, straight(900.0)], 720) == pytest.approx(
        [640.0, 100 + 0.5 * 600 + 1e-3 * 600**2 + slope * 119, 900.0])
    assert fitting.bottom_xs([], 720).shape == (0,)


def test_lane_replace_copies_and_refuses_unknown_fields() -> None:
    lane = straight(640.0)
    moved = lane.replace(y_min=400.0, track_id=3)
    assert (moved.y_min, moved.track_id, lane.y_min, lane.track_id) == (400.0, 3, 300.0, 0)
    assert moved.image_coeffs is lane.image_coeffs and moved is not lane
    moved.position = Position.EGO_LEFT
    assert lane.position == Position.UNKNOWN
    with pytest.raises(TypeError, match="y_mni"):
        lane.replace(y_mni=1.0)
