"""Ground projection with a known camera: hand-computed pixels, round trips, Apollo c0..c3 fits."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lanenet_ros.ground import GroundProjector, add_ground_lanes, fit_ground_lane
from lanenet_ros.lanes import DetectedLane, LaneFrame, Position

CAM = {"fx": 1000.0, "fy": 1000.0, "cx": 640.0, "cy": 360.0, "height_m": 1.5, "pitch_rad": 0.05}


def straight_lane(y: float) -> np.ndarray:
    xs = np.linspace(5.0, 60.0, 40)
    return np.stack([xs, np.full_like(xs, y)], axis=1)


def test_point_ahead_lands_on_hand_computed_row() -> None:
    proj = GroundProjector.from_camera(**CAM)
    for d in (5.0, 20.0, 50.0):
        u, v = proj.ground_to_image(np.array([[d, 0.0]]))[0]
        assert u == pytest.approx(640.0)
        assert v == pytest.approx(360.0 + 1000.0 * math.tan(math.atan(1.5 / d) - 0.05))
    # 2 m to the left at 10 m: left of the centre column by about fx * 2 / depth along the axis
    u, _ = proj.ground_to_image(np.array([[10.0, 2.0]]))[0]
    depth = 10.0 * math.cos(0.05) + 1.5 * math.sin(0.05)
    assert u == pytest.approx(640.0 - 1000.0 * 2.0 / depth)


def test_horizon_and_behind_are_nan() -> None:
    proj = GroundProjector.from_camera(**CAM)
    horizon = 360.0 - 1000.0 * math.tan(0.05)
    g = proj.image_to_ground(np.array([[640.0, horizon - 5], [640.0, horizon + 5], [640.0, 719.0]]))
    assert np.all(np.isnan(g[0])) and np.all(np.isfinite(g[1:]))
    assert g[1, 0] > 100 and g[2, 0] < 10  # just below the horizon is far, the bottom row is near
    assert np.all(np.isnan(proj.ground_to_image(np.array([[-5.0, 0.0]]))))


@pytest.mark.parametrize(("k1", "k2"), [(0.0, 0.0), (-0.25, 0.06)])
def test_straight_lane_round_trip_gives_c0_and_flat_heading(k1: float, k2: float) -> None:
    proj = GroundProjector.from_camera(**CAM, k1=k1, k2=k2)
    img = proj.ground_to_image(straight_lane(1.8))
    assert np.all((img[:, 0] > 0) & (img[:, 0] < 1280) & (img[:, 1] > 310) & (img[:, 1] < 720))  # below the horizon
    back = proj.image_to_ground(img)
    np.testing.assert_allclose(back, straight_lane(1.8), atol=1e-6)
    coeffs, (x0, x1) = fit_ground_lane(back)
    assert coeffs[0] == pytest.approx(1.8, abs=1e-6)
    np.testing.assert_allclose(coeffs[1:], 0.0, atol=1e-6)
    assert (x0, x1) == (pytest.approx(5.0), pytest.approx(60.0))


def test_distortion_moves_pixels_but_not_ground_points() -> None:
    plain = GroundProjector.from_camera(**CAM)
    warped = GroundProjector.from_camera(**CAM, k1=-0.25, k2=0.06)
    a, b = plain.ground_to_image(straight_lane(3.5)), warped.ground_to_image(straight_lane(3.5))
    assert np.abs(a - b).max() > 5.0  # barrel distortion pulls the near points toward the centre
    np.testing.assert_allclose(warped.image_to_ground(b), plain.image_to_ground(a), atol=1e-6)


def test_homography_mode_agrees_with_camera_and_offsets() -> None:
    cam = GroundProjector.from_camera(**CAM, x_offset_m=1.2, y_offset_m=-0.3)
    hom = GroundProjector.from_homography(cam.homography())
    pix = np.array([[100.0, 500.0], [640.0, 400.0], [1200.0, 700.0]])
    np.testing.assert_allclose(hom.image_to_ground(pix), cam.image_to_ground(pix), atol=1e-9)
    ground = straight_lane(-1.7)
    np.testing.assert_allclose(hom.ground_to_image(ground), cam.ground_to_image(ground), atol=1e-6)
    # the offsets shift the vehicle frame: a pixel's ground point moves by exactly the offsets
    plain = GroundProjector.from_camera(**CAM)
    np.testing.assert_allclose(cam.image_to_ground(pix) - plain.image_to_ground(pix), [[1.2, -0.3]] * 3)
    with pytest.raises(ValueError, match="3x3"):
        GroundProjector.from_homography(np.eye(2))


def test_curved_lane_coefficients() -> None:
    xs = np.linspace(3.0, 50.0, 60)
    ys = 0.5 + 0.02 * xs + 0.001 * xs**2 - 1e-5 * xs**3
    coeffs, _ = fit_ground_lane(np.stack([xs, ys], 1))
    np.testing.assert_allclose(coeffs, [0.5, 0.02, 0.001, -1e-5], atol=1e-9)
    short, rng = fit_ground_lane(np.array([[5.0, 1.0], [6.0, 1.1], [7.0, 1.2], [np.nan, 0.0]]))
    assert short[2:].tolist() == [0.0, 0.0] and short[1] == pytest.approx(0.1) and rng == (5.0, 7.0)
    with pytest.raises(ValueError, match="2 points"):
        fit_ground_lane(np.array([[5.0, 1.0]]))


def test_bad_camera_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="height_m"):
        GroundProjector.from_camera(**{**CAM, "height_m": 0.0})
    with pytest.raises(ValueError, match="fx"):
        GroundProjector.from_camera(**{**CAM, "fx": -1.0})
    with pytest.raises(ValueError, match="pitch_rad"):
        GroundProjector.from_camera(**{**CAM, "pitch_rad": 2.0})


def test_add_ground_lanes_fills_the_frame() -> None:
    proj = GroundProjector.from_camera(**CAM)
    img = proj.ground_to_image(straight_lane(1.8))
    coeffs = np.polynomial.polynomial.polyfit(img[:, 1], img[:, 0], 1)  # a straight lane is straight in the image
    ys = np.linspace(img[:, 1].max(), img[:, 1].min(), 30)
    lane = DetectedLane(coeffs, float(ys.min()), float(ys.max()),
                        np.stack([np.polynomial.polynomial.polyval(ys, coeffs), ys], 1).astype(np.float32))
    tiny = DetectedLane(coeffs, 100.0, 110.0, np.array([[640.0, 100.0], [640.0, 110.0]], np.float32))  # sky
    frame = add_ground_lanes(LaneFrame(1280, 720, np.zeros((720, 1280), np.uint8), [lane, tiny]), proj)
    assert lane.ground_coeffs[0] == pytest.approx(1.8, abs=1e-3)
    assert abs(lane.ground_coeffs[1]) < 1e-4
    assert lane.ground_x_range[0] == pytest.approx(5.0, abs=0.01)
    assert lane.ground_points.shape[1] == 2 and np.allclose(lane.ground_points[:, 1], 1.8, atol=1e-3)
    assert tiny.ground_coeffs is None and frame.lanes[1].ground_points is None


def _image_lane(proj: GroundProjector, ground: np.ndarray) -> DetectedLane:
    """A detected lane whose image points are those of ``ground`` (x forward, y left) through ``proj``."""
    img = proj.ground_to_image(ground).astype(np.float32)
    coeffs = np.polynomial.polynomial.polyfit(img[:, 1], img[:, 0], 3)
    return DetectedLane(coeffs, float(img[:, 1].min()), float(img[:, 1].max()), img)


def test_the_ego_lines_share_their_heading_at_the_car() -> None:
    proj = GroundProjector.from_camera(**CAM)
    xs = np.linspace(6.0, 60.0, 40)
    bend = 0.01 * xs + 4e-4 * xs**2  # both lines on one bend, heading 0.01 rad at the car
    left = np.stack([xs, 1.8 + bend], 1)
    # the right line skewed (as a network's mask often draws one edge): through its true place 6 m ahead, its
    # heading 0.02 rad off
    right = np.stack([xs, -1.8 + bend + 0.02 * (6.0 - xs)], 1)
    def frame(*ground):
        lanes = [_image_lane(proj, g) for g in ground]
        return add_ground_lanes(LaneFrame(1280, 720, np.zeros((1, 1), np.uint8), lanes, ego_left_index=0,
                                          ego_right_index=1), proj)
    shared = frame(left, right).lanes
    alone = [fit_ground_lane(g)[0] for g in (left, right)]
    assert shared[0].ground_coeffs[1] == pytest.approx(shared[1].ground_coeffs[1], abs=1e-9)
    # the shared heading lies between the two lines' own ones: each is half as far off as the skewed one was
    assert abs(shared[1].ground_coeffs[1] - 0.01) < 0.6 * abs(alone[1][1] - 0.01)
    assert abs(shared[0].ground_coeffs[1] - 0.01) < 0.015
    # parallel lines keep their exact shape; the offsets stay each line's own
    exact = frame(left, np.stack([xs, -1.8 + bend], 1)).lanes
    np.testing.assert_allclose(exact[0].ground_coeffs, [1.8, 0.01, 4e-4, 0.0], atol=1e-6)
    np.testing.assert_allclose(exact[1].ground_coeffs, [-1.8, 0.01, 4e-4, 0.0], atol=1e-6)
    # a line that leaves the lane at a wider angle (an exit) is fitted alone, and so is a lane outside the pair
    leaving = np.stack([xs, -1.8 + bend - 0.08 * xs], 1)
    lanes = frame(left, leaving).lanes
    np.testing.assert_allclose(lanes[1].ground_coeffs, fit_ground_lane(leaving)[0], atol=1e-5)
    np.testing.assert_allclose(lanes[0].ground_coeffs, fit_ground_lane(left)[0], atol=1e-5)


def test_an_ego_line_a_lane_too_far_out_is_named_the_next_line() -> None:
    """A car ahead hides the ego-left line and the decoder names the next line out ego-left: with the lane width
    known (the self-calibration's), the ground says it is the second-left line and the ego-left one missing."""
    proj = GroundProjector.from_camera(**CAM)
    xs = np.linspace(6.0, 60.0, 40)
    def frame(*offsets: float) -> LaneFrame:
        lanes = [_image_lane(proj, np.stack([xs, np.full_like(xs, y)], 1)) for y in offsets]
        for lane, pos in zip(lanes, (Position.EGO_LEFT, Position.EGO_RIGHT, Position.SECOND_RIGHT), strict=True):
            lane.position = pos
        return LaneFrame(1280, 720, np.zeros((1, 1), np.uint8), lanes, ego_left_index=0, ego_right_index=1)

    hidden = add_ground_lanes(frame(5.0, -1.7, -5.0), proj, lane_width_m=3.3)
    assert (hidden.ego_left_index, hidden.ego_right_index) == (-1, 1)
    assert [lane.position for lane in hidden.lanes] == [Position.SECOND_LEFT, Position.EGO_RIGHT,
                                                        Position.SECOND_RIGHT]
    assert hidden.lanes[1].ground_coeffs[0] == pytest.approx(-1.7, abs=1e-3)
    # the ego-right line still shares its heading with the line renamed out of the pair (parallel at the car)
    assert hidden.lanes[1].ground_coeffs[1] == pytest.approx(hidden.lanes[0].ground_coeffs[1], abs=1e-12)
    again = add_ground_lanes(hidden, proj, lane_width_m=3.3)  # the names hold when fitted again
    assert [lane.position for lane in again.lanes] == [Position.SECOND_LEFT, Position.EGO_RIGHT,
                                                       Position.SECOND_RIGHT]
    # on the right side too; a car crossing a line (its lines 0 and 1 lane away) keeps its names, and so does a
    # frame whose lane width is not known
    right = add_ground_lanes(frame(1.6, -5.0, -8.3), proj, lane_width_m=3.3)
    assert (right.ego_left_index, right.ego_right_index) == (0, -1)
    assert [lane.position for lane in right.lanes] == [Position.EGO_LEFT, Position.SECOND_RIGHT,
                                                       Position.THIRD_RIGHT]
    crossing = add_ground_lanes(frame(3.4, 0.1, -3.2), proj, lane_width_m=3.3)
    assert (crossing.ego_left_index, crossing.ego_right_index) == (0, 1)
    unknown = add_ground_lanes(frame(5.0, -1.7, -5.0), proj)
    assert (unknown.ego_left_index, unknown.ego_right_index) == (0, 1)
