"""Self-calibration (lanenet_ros.calibrate) on synthetic lane geometry seen through a known camera."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lanenet_ros.calibrate import Intrinsics, Mounting, MountingEstimator
from lanenet_ros.ground import GroundProjector
from lanenet_ros.lanes import DetectedLane, LaneFrame

INTR = Intrinsics(fx=1000.0, fy=1000.0, cx=640.0, cy=360.0, k1=-0.12, k2=0.01)
TRUE = Mounting(height_m=1.6, pitch_rad=math.radians(3.0), yaw_rad=math.radians(-1.5))
WIDTH = 3.5


def camera(m: Mounting = TRUE) -> GroundProjector:
    return GroundProjector.from_camera(INTR.fx, INTR.fy, INTR.cx, INTR.cy, m.height_m, m.pitch_rad, k1=INTR.k1,
                                       k2=INTR.k2, yaw_rad=m.yaw_rad, roll_rad=m.roll_rad)


def lane_frame(offset: float = 0.2, curvature: float = 0.0, heading: float = 0.0, m: Mounting = TRUE,
               width: float = WIDTH, noise: float = 0.3, rng: np.random.Generator | None = None) -> LaneFrame:
    """Four lane lines ``width`` apart, the car ``offset`` m left of its lane's centre, seen through ``m``."""
    rng = rng or np.random.default_rng(0)
    x = np.linspace(4.0, 60.0, 80)
    lanes = []
    for y0 in (1.5 * width, 0.5 * width, -0.5 * width, -1.5 * width):
        ground = np.stack([x, y0 - offset + heading * x + 0.5 * curvature * x**2], axis=1)
        uv = camera(m).ground_to_image(ground)
        ok = (uv[:, 0] > 0) & (uv[:, 0] < 1280) & (uv[:, 1] > 0) & (uv[:, 1] < 720)
        pts = (uv[ok] + rng.normal(0, noise, (ok.sum(), 2))).astype(np.float32)
        lanes.append(DetectedLane(np.zeros(2), 0.0, 0.0, pts))
    return LaneFrame(1280, 720, np.zeros((1, 1), np.uint8), lanes, ego_left_index=1, ego_right_index=2)


def drive(est: MountingEstimator, n: int, start: int = 0, **kw) -> None:
    rng = np.random.default_rng(start)
    for k in range(start, start + n):
        est.update(lane_frame(rng=rng, **kw), stamp=k * 0.1)


def test_straight_road_recovers_pitch_yaw_and_height_from_the_lane_width_prior():
    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    drive(est, 60)
    st = est.status
    assert st.state == "converged" and st.confidence > 0.8
    assert st.mounting.pitch_rad == pytest.approx(TRUE.pitch_rad, abs=math.radians(0.05))
    assert st.mounting.yaw_rad == pytest.approx(TRUE.yaw_rad, abs=math.radians(0.05))
    assert st.mounting.height_m == pytest.approx(TRUE.height_m, rel=0.01)
    assert st.lane_width_m == pytest.approx(WIDTH, abs=0.05)


def test_a_given_height_is_kept_and_the_lane_width_measured():
    est = MountingEstimator(INTR, height_m=TRUE.height_m)
    drive(est, 60, width=3.0)
    st = est.status
    assert st.mounting.height_m == TRUE.height_m
    assert st.lane_width_m == pytest.approx(3.0, abs=0.05)


def test_a_rolled_camera_is_measured_from_the_widths_of_the_lanes_beside_the_ego_lane():
    """A camera turned 2.5 deg about its optical axis: read upright, the lane left of the ego lane comes out
    narrower and the one right of it wider (0.3 m); the roll that makes them alike is the camera's, and with it
    the outer lines land where they are on the road."""
    rolled = Mounting(TRUE.height_m, TRUE.pitch_rad, TRUE.yaw_rad, math.radians(2.5))
    upright = MountingEstimator(INTR, lane_width_m=WIDTH)  # the default: no roll measured
    est = MountingEstimator(INTR, lane_width_m=WIDTH, estimate_roll=True)
    for e in (upright, est):
        drive(e, 60, m=rolled)
    assert upright.status.mounting.roll_rad == 0.0
    m = est.status.mounting
    assert est.status.state == "converged" and m.roll_rad == pytest.approx(rolled.roll_rad, abs=math.radians(0.1))
    assert m.pitch_rad == pytest.approx(rolled.pitch_rad, abs=math.radians(0.05))
    assert m.yaw_rad == pytest.approx(rolled.yaw_rad, abs=math.radians(0.05))
    assert m.height_m == pytest.approx(rolled.height_m, rel=0.01)
    frame = lane_frame(offset=0.0, m=rolled, noise=0.0)
    for e, tolerance in ((est, 0.05), (upright, None)):
        outer = [float(np.nanmedian(e.projector().image_to_ground(frame.lanes[i].points)[:, 1])) for i in (0, 3)]
        if tolerance is None:  # upright: the left lane narrower, the right one wider
            assert outer[0] < 1.5 * WIDTH - 0.2 and outer[1] < -1.5 * WIDTH - 0.2
        else:
            assert outer == pytest.approx([1.5 * WIDTH, -1.5 * WIDTH], abs=tolerance)
    # an upright camera measures no roll to speak of
    straight = MountingEstimator(INTR, lane_width_m=WIDTH, estimate_roll=True)
    drive(straight, 60)
    assert abs(straight.status.mounting.roll_rad) < math.radians(0.1)


def test_ground_lanes_from_the_estimate_match_the_road():
    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    drive(est, 60)
    frame = lane_frame(offset=0.4)
    ground = est.projector().image_to_ground(frame.lanes[1].points)
    assert np.nanmedian(ground[:, 1]) == pytest.approx(0.5 * WIDTH - 0.4, abs=0.05)


def test_bends_and_empty_frames_are_not_measurements():
    est = MountingEstimator(INTR)
    assert est.measure(lane_frame(curvature=1 / 400)) is None
    assert not est.update(LaneFrame(1280, 720, np.zeros((1, 1), np.uint8)))
    assert est.status.state == "collecting" and est.projector() is None
    assert est.status.frames_seen == 1 and est.status.frames_used == 0
    assert est.status.waiting_for == "frames of straight road with both ego lines steady: 0 of 30"


def test_a_converged_estimate_does_not_chase_braking_pitch_or_follow_bends():
    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    drive(est, 60)
    before = est.status.mounting
    braking = Mounting(TRUE.height_m, TRUE.pitch_rad + math.radians(1.5), TRUE.yaw_rad)
    drive(est, 30, start=60, m=braking)
    drive(est, 50, start=90, curvature=1 / 300)
    after = est.status.mounting
    assert abs(math.degrees(after.pitch_rad - before.pitch_rad)) < 0.2
    assert abs(math.degrees(after.yaw_rad - before.yaw_rad)) < 0.05


def test_frames_while_changing_lanes_are_skipped():
    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    rng = np.random.default_rng(1)
    used = [est.update(lane_frame(offset=0.09 * k, heading=0.03, rng=rng), stamp=k * 0.1) for k in range(20)]
    assert sum(used) <= 4  # the first few frames cannot tell yet; then the offset is seen moving


def test_a_one_frame_glitch_is_left_out_without_holding_up_the_estimate():
    # every tenth frame both ego lines are fitted 0.45 m to the right (the car seems to jump 0.13 lane widths
    # left and back); the glitch frames must neither count nor stall convergence
    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    rng = np.random.default_rng(2)
    used = []
    for k in range(60):
        used.append(est.update(lane_frame(offset=0.65 if k % 10 == 5 else 0.2, rng=rng), stamp=k * 0.1))
    assert not any(used[5::10])
    assert sum(used) >= 50
    st = est.status
    assert st.state == "converged" and st.lane_width_m == pytest.approx(WIDTH, abs=0.05)
    # a jump that the next frames confirm is a move to another lane: settle, then measure there
    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    moved = [est.update(lane_frame(offset=0.2 if k < 20 else -1.5, rng=rng), stamp=k * 0.1) for k in range(40)]
    assert not any(moved[20:30]) and all(moved[31:])


def test_seed_is_used_at_once_and_frozen_ignores_measurements():
    seed = Mounting(1.5, math.radians(2.0), 0.0)
    est = MountingEstimator(INTR, seed=seed)
    assert est.status.state == "seeded" and est.projector() is not None
    est.frozen = True
    drive(est, 40)
    assert est.status.state == "frozen" and est.status.mounting == seed
    est.frozen = False
    drive(est, 40, start=40)
    assert est.status.mounting.pitch_rad > seed.pitch_rad  # adapting towards 3 deg, slowly


def test_ego_lines_too_far_apart_for_a_lane_give_no_height():
    est = MountingEstimator(INTR, height_m=1.0)  # at 1 m a 3.5 m lane looks 5.6 m wide through a 1.6 m camera
    drive(est, 40)
    assert est.status.lane_width_m is None


def test_an_ego_lane_named_one_line_too_wide_is_read_as_two_lanes():
    """A car ahead hides the ego-left line; the decoder names the next line out ego-left, so the "ego lane" is
    two lanes wide with the car a quarter of it right of its centre. Taken whole, it would halve the height; read
    as the half the camera is in, it is the ego lane: after 4 s with both ego lines seen, the car closes in for
    8 s, and every frame gives pitch, yaw and the lane width."""
    def hidden(frame: LaneFrame) -> LaneFrame:
        return frame.replace(lanes=[frame.lanes[0], frame.lanes[2], frame.lanes[3]], ego_left_index=0,
                             ego_right_index=1)

    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    rng = np.random.default_rng(3)
    used = [est.update(lane_frame(offset=0.0, rng=rng) if k < 40 else hidden(lane_frame(offset=0.0, rng=rng)),
                       stamp=k * 0.1) for k in range(120)]
    st = est.status
    assert st.state == "converged" and all(used[41:])
    assert st.mounting.height_m == pytest.approx(TRUE.height_m, rel=0.02)
    assert st.mounting.yaw_rad == pytest.approx(TRUE.yaw_rad, abs=math.radians(0.05))
    assert st.lane_width_m == pytest.approx(WIDTH, abs=0.05)
    # the line hidden in most frames from the start (a car ahead all the way): the lanes seen whole now and
    # then confirm the halves, and the estimate converges on the right height
    mostly = MountingEstimator(INTR, lane_width_m=WIDTH)
    for k in range(120):
        frame = lane_frame(offset=0.0, rng=rng)
        mostly.update(frame if k % 5 == 0 else hidden(frame), stamp=k * 0.1)
    assert mostly.status.state == "converged"
    assert mostly.status.mounting.height_m == pytest.approx(TRUE.height_m, rel=0.02)
    # never seen whole, the halves are not trusted alone: a camera mounted a quarter lane (0.9 m) off-centre
    # looks the same, and its lane is whole. The estimate waits, and says why and what to do
    only_hidden = MountingEstimator(INTR, lane_width_m=WIDTH)
    for k in range(120):
        only_hidden.update(hidden(lane_frame(offset=0.0, rng=rng)), stamp=k * 0.1)
    assert only_hidden.status.state == "collecting" and only_hidden.projector() is None
    waiting = only_hidden.status.waiting_for
    assert waiting.startswith("lane widths of a lane seen whole to confirm those read as two lanes: 0 of 5; ")
    assert "ground.camera_height" in waiting and st.waiting_for == ""
    # given its height, the width check alone decides: the off-centre camera's lane is taken whole
    given = MountingEstimator(INTR, height_m=TRUE.height_m)
    drive(given, 60, offset=0.9)
    assert given.status.state == "converged" and given.status.lane_width_m == pytest.approx(WIDTH, abs=0.05)
    # and so are two lanes' halves: 7 m apart is no lane, 3.5 m is
    given = MountingEstimator(INTR, height_m=TRUE.height_m)
    for k in range(60):
        given.update(hidden(lane_frame(offset=0.0, rng=rng)), stamp=k * 0.1)
    assert given.status.state == "converged" and given.status.lane_width_m == pytest.approx(WIDTH, abs=0.05)
    # further off-centre than a camera near one of two lanes' centres is not a lane's width at all
    far_off = MountingEstimator(INTR, lane_width_m=WIDTH)
    drive(far_off, 60, offset=1.2)
    assert far_off.status.state == "collecting"
    assert "frames had the camera over 0.3 lane widths off the ego lane's centre" in far_off.status.waiting_for


def test_field_of_view_fallback_and_its_errors():
    intr = Intrinsics.from_fov(1280, 720, 90.0)
    assert intr.fx == pytest.approx(640.0) and (intr.cx, intr.cy) == (639.5, 359.5)
    with pytest.raises(ValueError, match="field of view"):
        Intrinsics.from_fov(1280, 720, 0.0)
    with pytest.raises(ValueError, match="lane width prior"):
        MountingEstimator(INTR, lane_width_m=6.0)


def test_projector_yaw_turns_the_view_left():
    straight = GroundProjector.from_camera(1000, 1000, 640, 360, 1.5, 0.05)
    turned = GroundProjector.from_camera(1000, 1000, 640, 360, 1.5, 0.05, yaw_rad=math.radians(2.0))
    far = np.array([[1000.0, 0.0]])
    assert straight.ground_to_image(far)[0, 0] == pytest.approx(640.0, abs=0.1)
    assert turned.ground_to_image(far)[0, 0] > 670.0  # the road ahead appears right of centre
    pts = np.array([[10.0, 1.0], [30.0, -2.0]])
    assert turned.image_to_ground(turned.ground_to_image(pts)) == pytest.approx(pts, abs=1e-6)


def test_a_camera_turned_for_good_is_estimated_afresh():
    est = MountingEstimator(INTR, lane_width_m=WIDTH)
    drive(est, 60)
    turned = Mounting(TRUE.height_m, TRUE.pitch_rad, TRUE.yaw_rad + math.radians(2.0))
    drive(est, 20, start=60, m=turned)
    assert est.status.mounting.yaw_rad == pytest.approx(TRUE.yaw_rad, abs=math.radians(0.05))  # a lane change?
    drive(est, 340, start=80, m=turned)
    st = est.status
    assert st.state == "converged"
    assert st.mounting.yaw_rad == pytest.approx(turned.yaw_rad, abs=math.radians(0.05))


def test_node_parameters_choose_whether_and_what_to_estimate():
    from lanenet_ros.node.configure import calibrator_for
    from lanenet_ros.node.params import NodeParams, ParamError

    def make(**values):
        return calibrator_for(INTR, NodeParams.from_values(values))

    assert make().height_m is None and make().status.state == "collecting"  # nothing given: estimate all
    assert make(**{"ground.camera_height": 1.4}) is None  # given values win
    assert make(**{"calibration.mode": "off"}) is None
    assert make(**{"ground.homography": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]}) is None
    kept = make(**{"calibration.mode": "pitch_yaw", "ground.camera_height": 1.4})
    assert kept.height_m == 1.4
    seeded = make(**{"calibration.seed": [1.5, 0.05, 0.01], "calibration.freeze": True})
    assert seeded.status.state == "frozen" and seeded.status.mounting == Mounting(1.5, 0.05, 0.01)
    with pytest.raises(ParamError, match=r"calibration\.seed"):
        NodeParams.from_values({"calibration.seed": [1.5, 0.05]})
    # a seed with the roll; the roll estimated only when asked for
    rolled = make(**{"calibration.seed": [1.5, 0.05, 0.01, 0.03], "calibration.roll": True})
    assert rolled.status.mounting == Mounting(1.5, 0.05, 0.01, 0.03) and rolled.estimate_roll
    assert not make().estimate_roll
    with pytest.raises(ParamError, match=r"yaw and roll within"):
        NodeParams.from_values({"calibration.seed": [1.5, 0.05, 0.01, 0.5]})
    with pytest.raises(ParamError, match=r"calibration\.lane_width"):
        NodeParams.from_values({"calibration.lane_width": 6.0})


def test_a_given_mounting_takes_yaw_and_roll_too():
    """Given values (ground.camera_height and pitch, and yaw and roll where known) make the projection the node
    uses, without self-calibration."""
    from types import SimpleNamespace

    from lanenet_ros.node.configure import ground_from_camera_info
    from lanenet_ros.node.params import NodeParams
    from lanenet_ros.pipeline import _as_projector

    info = SimpleNamespace(k=[INTR.fx, 0, INTR.cx, 0, INTR.fy, INTR.cy, 0, 0, 1], d=[INTR.k1, INTR.k2, 0, 0, 0],
                           distortion_model="plumb_bob")
    given = Mounting(1.6, 0.05, 0.02, 0.03)
    params = NodeParams.from_values({"ground.camera_height": given.height_m, "ground.camera_pitch": given.pitch_rad,
                                     "ground.camera_yaw": given.yaw_rad, "ground.camera_roll": given.roll_rad})
    projector = _as_projector(ground_from_camera_info(info, params))
    road = np.array([[8.0, 1.75], [30.0, -1.75], [60.0, 5.25]])
    np.testing.assert_allclose(projector.ground_to_image(road), camera(given).ground_to_image(road), atol=1e-9)
    upright = _as_projector(ground_from_camera_info(info, NodeParams.from_values({"ground.camera_height": 1.6})))
    assert np.abs(upright.ground_to_image(road) - camera(given).ground_to_image(road)).max() > 5.0
