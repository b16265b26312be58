"""Benchmark metrics against cases computed by hand (lanes shifted by known pixels, angles, misses, extras)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lanenet_ros.lanes import DetectedLane
from lanenet_ros.metrics import (
    ConfusionMatrix,
    CULaneAccumulator,
    TuSimpleAccumulator,
    culane_frame,
    culane_iou_matrix,
    lanes_to_tusimple,
    min_cost_assignment,
    spline_interp,
    tusimple_frame,
)

H_SAMPLES = list(range(160, 720, 10))  # 56 rows, as in TuSimple


def vertical(x: float) -> list[float]:
    return [float(x)] * len(H_SAMPLES)


def slanted(x0: float, slope: float) -> list[float]:
    return [x0 + slope * (y - 160) for y in H_SAMPLES]


@pytest.mark.parametrize(("shift", "matched"), [(19.0, True), (21.0, False)])
def test_tusimple_vertical_lane_uses_20px(shift: float, matched: bool) -> None:
    acc, fp, fn = tusimple_frame([vertical(600 + shift)], [vertical(600)], H_SAMPLES)
    assert (acc, fp, fn) == ((1.0, 0.0, 0.0) if matched else (0.0, 1.0, 1.0))


@pytest.mark.parametrize(("shift", "matched"), [(27.0, True), (29.0, False)])
def test_tusimple_threshold_grows_with_lane_angle(shift: float, matched: bool) -> None:
    # slope dx/dy = 1: 45 degrees, threshold 20 / cos(45 deg) = 28.28 px
    gt = slanted(300, 1.0)
    pred = [x + shift for x in gt]
    acc, fp, fn = tusimple_frame([pred], [gt], H_SAMPLES)
    assert acc == (1.0 if matched else 0.0)
    assert (fp, fn) == ((0.0, 0.0) if matched else (1.0, 1.0))
    assert 20 / math.cos(math.atan(1.0)) == pytest.approx(28.28, abs=0.01)


def test_tusimple_point_ratio_085() -> None:
    gt = vertical(500)
    n = len(H_SAMPLES)
    good = math.ceil(0.85 * n)  # 48 of 56 points close enough -> matched
    pred_ok = [500.0] * good + [900.0] * (n - good)
    pred_bad = [500.0] * (good - 1) + [900.0] * (n - good + 1)
    assert tusimple_frame([pred_ok], [gt], H_SAMPLES) == (pytest.approx(good / n), 0.0, 0.0)
    acc, fp, fn = tusimple_frame([pred_bad], [gt], H_SAMPLES)
    assert acc == pytest.approx((good - 1) / n)
    assert (fp, fn) == (1.0, 1.0)


def test_tusimple_missing_and_extra_lanes() -> None:
    gts = [vertical(x) for x in (200, 500, 800, 1100)]
    acc, fp, fn = tusimple_frame(gts[:3], gts, H_SAMPLES)  # one lane missed
    assert (acc, fp, fn) == (0.75, 0.0, 0.25)
    preds = [*gts[:2], vertical(1250), vertical(5)]
    acc, fp, fn = tusimple_frame(preds, gts[:2], H_SAMPLES)  # two extra predictions
    assert (acc, fp, fn) == (1.0, 0.5, 0.0)
    # more than len(gt) + 2 predictions: the whole image fails
    assert tusimple_frame([*gts, vertical(5)], gts[:2], H_SAMPLES) == (0.0, 0.0, 1.0)
    assert tusimple_frame([], gts[:2], H_SAMPLES) == (0.0, 0.0, 1.0)


def test_tusimple_at_most_four_lanes_counted() -> None:
    gts = [vertical(x) for x in (100, 350, 600, 850, 1100)]
    acc, fp, fn = tusimple_frame(gts[:4], gts, H_SAMPLES)  # fifth missed: dropped as the worst lane
    assert (acc, fp, fn) == (1.0, 0.0, 0.0)
    acc, fp, fn = tusimple_frame(gts[:3], gts, H_SAMPLES)  # two missed: one still counts
    assert (acc, fp, fn) == (0.75, 0.0, 0.25)


def test_tusimple_absent_points_count_on_both_sides() -> None:
    half = len(H_SAMPLES) // 2
    gt = [-2.0] * half + [700.0] * half
    assert tusimple_frame([list(gt)], [gt], H_SAMPLES)[0] == 1.0
    longer = [700.0] * len(H_SAMPLES)  # predicted where the gt lane is absent: those points are wrong
    assert tusimple_frame([longer], [gt], H_SAMPLES)[0] == pytest.approx(0.5)


def test_tusimple_rejects_bad_prediction_length_and_slow_runs() -> None:
    with pytest.raises(ValueError, match="56 x values"):
        tusimple_frame([[1.0, 2.0]], [vertical(10)], H_SAMPLES)
    assert tusimple_frame([vertical(10)], [vertical(10)], H_SAMPLES, running_time_ms=250) == (0.0, 0.0, 1.0)


def test_tusimple_accumulator_averages_per_image() -> None:
    acc = TuSimpleAccumulator()
    assert acc.result()["frames"] == 0
    acc.add([vertical(100)], [vertical(100)], H_SAMPLES)  # (1, 0, 0)
    acc.add([vertical(100), vertical(900)], [vertical(100), vertical(400)], H_SAMPLES)  # (0.5, 0.5, 0.5)
    res = acc.result()
    assert res == {"accuracy": 0.75, "fp": 0.25, "fn": 0.25, "frames": 2}
    assert acc.per_frame[1] == (0.5, 0.5, 0.5)


def test_lanes_to_tusimple_samples_inside_rows_and_image() -> None:
    lane = DetectedLane(image_coeffs=np.array([100.0, 0.5]), y_min=300, y_max=600,
                        points=np.zeros((0, 2), np.float32))
    wide = DetectedLane(image_coeffs=np.array([-500.0, 3.0]), y_min=0, y_max=719,
                        points=np.zeros((0, 2), np.float32))
    (xs, xw) = lanes_to_tusimple([lane, wide], H_SAMPLES, width=1280)
    for y, x in zip(H_SAMPLES, xs, strict=True):
        assert x == (100 + 0.5 * y if 300 <= y <= 600 else -2.0)
    for y, x in zip(H_SAMPLES, xw, strict=True):
        assert x == (-500 + 3 * y if 0 <= -500 + 3 * y < 1280 else -2.0)
    assert -2.0 in xw and max(xw) < 1280


def culane_vertical(x: float) -> np.ndarray:
    return np.array([[x, -60.0], [x, 300.0], [x, 650.0]])  # runs past both edges: no round caps inside


@pytest.mark.parametrize("shift", [0, 5, 12, 20])
def test_culane_iou_of_shifted_30px_lanes(shift: int) -> None:
    iou = culane_iou_matrix([culane_vertical(800 + shift)], [culane_vertical(800)])[0, 0]
    width = 31  # a 30-px cv2 line covers 31 columns
    assert iou == pytest.approx((width - shift) / (width + shift), abs=0.01)


def test_culane_frame_matches_one_to_one_with_iou_half() -> None:
    gts = [culane_vertical(400), culane_vertical(900)]
    preds = [culane_vertical(403), culane_vertical(398), culane_vertical(925), culane_vertical(1400)]
    # 403 and 398 both overlap gt 400; only one may match. 925 overlaps gt 900 with IoU < 0.5.
    assert culane_frame(preds, gts) == (1, 3, 1)
    assert culane_frame([], gts) == (0, 0, 2)
    assert culane_frame(preds, []) == (0, 4, 0)


def test_culane_scales_coordinates_from_image_size() -> None:
    full = [culane_vertical(800), np.array([[200.0, 589.0], [500.0, 300.0], [700.0, 200.0]])]
    half = [p / 2 for p in full]
    shifted = [full[0] + [8, 0], full[1] + [8, 0]]
    a = culane_iou_matrix(shifted, full)
    b = culane_iou_matrix([s / 2 for s in shifted], half, image_size=(820, 295))
    np.testing.assert_allclose(a, b, atol=0.02)
    assert culane_frame([s / 2 for s in shifted], half, image_size=(820, 295)) == (2, 0, 0)


def test_culane_accumulator_f1() -> None:
    acc = CULaneAccumulator()
    acc.add([culane_vertical(400)], [culane_vertical(400), culane_vertical(900)])  # tp 1, fn 1
    acc.add([culane_vertical(300), culane_vertical(1200)], [culane_vertical(300)])  # tp 1, fp 1
    res = acc.result()
    assert (res["tp"], res["fp"], res["fn"]) == (2, 1, 1)
    assert res["precision"] == pytest.approx(2 / 3) and res["recall"] == pytest.approx(2 / 3)
    assert res["f1"] == pytest.approx(2 / 3)


def test_spline_passes_through_points_and_keeps_lines_straight() -> None:
    pts = np.array([[100.0, 590.0], [300.0, 400.0], [500.0, 300.0], [600.0, 250.0]])
    s = spline_interp(pts, 50)
    assert len(s) == 3 * 50 + 1
    np.testing.assert_allclose(s[::50], pts, atol=1e-9)
    line = np.array([[0.0, 0.0], [10.0, 20.0], [30.0, 60.0]])
    s = spline_interp(line, 10)
    np.testing.assert_allclose(s[:, 1], 2 * s[:, 0], atol=1e-9)


def test_hungarian_beats_greedy() -> None:
    # greedy would take the 0.6 pair and leave a total of 0.6; the optimum pairs 0.55 + 0.52
    ious = np.array([[0.6, 0.52], [0.55, 0.0]])
    rows, cols = min_cost_assignment(-ious)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_hungarian_agrees_with_scipy_on_random_rectangles() -> None:
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(3)
    for _ in range(100):
        cost = rng.random(tuple(rng.integers(1, 8, 2)))
        rows, cols = min_cost_assignment(cost)
        ref = scipy_opt.linear_sum_assignment(cost)
        assert len(rows) == min(cost.shape) == len(set(cols.tolist()))
        assert cost[rows, cols].sum() == pytest.approx(cost[ref].sum())


def test_confusion_matrix_iou_with_ignore_index() -> None:
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 1]], dtype=np.uint8)
    cm = ConfusionMatrix(4, ignore_index=255)
    cm.update(pred, gt)
    # class 0: tp 1, fp 1 (gt 2 -> 0), fn 1 (gt 0 -> 1): 1/3 ; class 1: 2/3 ; class 2: 1/2 ; class 3 absent
    np.testing.assert_allclose(cm.iou()[:3], [1 / 3, 2 / 3, 1 / 2])
    assert np.isnan(cm.iou()[3])
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    cm.update(pred, gt)
    assert cm.matrix.sum() == 12
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        cm.update(np.array([5]), np.array([0]))
