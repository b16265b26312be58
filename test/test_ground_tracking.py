"""The ego lines tracked in the ground plane (EgoLaneFilter through add_ground_lanes), on lines drawn through a
known camera: steady lines, a car ahead pulling both lines' far parts off, a truck's edge taken for a line, a lane
change, time gaps and the pipeline's wiring."""
from __future__ import annotations

import numpy as np
import pytest

from lanenet_ros.ground import GroundProjector, add_ground_lanes
from lanenet_ros.ground_tracking import EgoLaneFilter
from lanenet_ros.lanes import DetectedLane, LaneFrame

PROJ = GroundProjector.from_camera(1000.0, 1000.0, 640.0, 360.0, 1.5, 0.05)
XS = np.linspace(6.0, 60.0, 40)
WIDTH = 3.6


def _lane(ground: np.ndarray) -> DetectedLane:
    img = PROJ.ground_to_image(ground).astype(np.float32)
    coeffs = np.polynomial.polynomial.polyfit(img[:, 1], img[:, 0], 3)
    return DetectedLane(coeffs, float(img[:, 1].min()), float(img[:, 1].max()), img)


def _frame(left: np.ndarray | None, right: np.ndarray | None, ego_filter: EgoLaneFilter | None,
           stamp: float | None = None) -> LaneFrame:
    """A frame of the ego lines given in the ground (y of each x in XS, or None: not seen), fitted as the node does."""
    lanes = [_lane(np.stack([XS, y], 1)) for y in (left, right) if y is not None]
    frame = LaneFrame(1280, 720, np.zeros((1, 1), np.uint8), lanes, ego_left_index=0 if left is not None else -1,
                      ego_right_index=len(lanes) - 1 if right is not None else -1)
    return add_ground_lanes(frame, PROJ, ego_filter=ego_filter, stamp=stamp)


def _coeffs(frame: LaneFrame) -> list[np.ndarray]:
    return [lane.ground_coeffs for lane in frame.lanes]


def test_steady_lines_come_out_as_they_are() -> None:
    f = EgoLaneFilter()
    bend = 0.01 * XS + 3e-4 * XS**2
    for _ in range(20):
        left, right = _coeffs(_frame(1.8 + bend, -1.8 + bend, f))
    np.testing.assert_allclose(left, [1.8, 0.01, 3e-4, 0.0], atol=2e-3)
    np.testing.assert_allclose(right, [-1.8, 0.01, 3e-4, 0.0], atol=2e-3)
    # the first frame is the frame's own fit
    first, alone = (_frame(1.8 + bend, -1.8 + bend, f) for f in (EgoLaneFilter(), None))
    np.testing.assert_allclose(first.lanes[0].ground_coeffs, alone.lanes[0].ground_coeffs, atol=1e-3)


def test_a_car_ahead_pulling_the_far_parts_off_moves_the_lane_less() -> None:
    """Beyond 20 m both detected lines run up a lead car's sides (inward, 0.05 m per metre). Fitted frame by frame
    their heading is 0.05 rad off and their offsets 0.24 m at once; tracked, the first frames stay within the
    goals (0.01 rad, 0.15 m) and a pull that lasts is followed over the next frames, not at once."""
    f = EgoLaneFilter()
    for _ in range(15):
        _frame(np.full_like(XS, 1.8), np.full_like(XS, -1.8), f)
    pulled = 0.05 * np.clip(XS - 20.0, 0.0, None)
    headings = []
    for _ in range(8):
        tracked = _frame(1.8 - pulled, -1.8 + pulled, f)
        alone = _frame(1.8 - pulled, -1.8 + pulled, None)
        for got, own, true_c0 in zip(_coeffs(tracked), _coeffs(alone), (1.8, -1.8), strict=True):
            assert abs(own[1]) > 0.045 and abs(own[0] - true_c0) > 0.2
            assert abs(got[0] - true_c0) < 0.15
        headings.append(abs(_coeffs(tracked)[0][1]))
    assert max(headings[:2]) < 0.01 and np.all(np.diff(headings) > 0) and headings[-1] < 0.05


def test_a_line_jumping_to_a_trucks_edge_is_held_then_believed() -> None:
    f = EgoLaneFilter(max_coast_s=0.3)
    for _ in range(15):
        _frame(np.full_like(XS, 1.8), np.full_like(XS, -1.8), f)
    for k in range(6):  # the left detection is 2 m further left, near part and all
        left, right = _coeffs(_frame(np.full_like(XS, 3.8), np.full_like(XS, -1.8), f))
        if k < 3:  # held at the prediction for max_coast_s (0.1 s a frame without stamps)
            assert left[0] == pytest.approx(1.8, abs=0.02)
        else:  # then the frame's own line is taken as the line
            assert left[0] == pytest.approx(3.8, abs=0.05)
        assert right[0] == pytest.approx(-1.8, abs=0.02)


def test_a_lane_change_follows_the_lines_as_the_decoder_renames_them() -> None:
    """A lane change to the left in 4 s at 20 m/s (the car's heading to the lane up to 0.07 rad): when the car
    crosses its left line, the decoder calls that line ego-right and the next one ego-left. The tracked lines
    stay within the goals (0.15 m, 0.01 rad) in every frame, neither lagging behind nor holding a renamed line at
    its old place."""
    f = EgoLaneFilter()
    duration, speed = 4.0, 20.0
    for k in range(70):
        t = min(max(k * 0.1 - 1.0, 0.0), duration)  # 1 s of lane keeping first
        offset = WIDTH / 2 * (1 - np.cos(np.pi * t / duration))  # the car's position, metres left of its start
        heading = -WIDTH / 2 * np.pi / duration * np.sin(np.pi * t / duration) / speed  # c1 of every line
        lines = [1.8 + j * WIDTH - offset for j in (-1, 0, 1, 2)]  # the road's lines at the car, y in its frame
        left = min(y for y in lines if y > 0)
        right = max(y for y in lines if y <= 0)
        got = _coeffs(_frame(left + heading * XS, right + heading * XS, f))
        assert got[0][0] == pytest.approx(left, abs=0.15) and got[1][0] == pytest.approx(right, abs=0.15)
        assert got[0][1] == pytest.approx(heading, abs=0.01) and got[1][1] == pytest.approx(heading, abs=0.01)
    assert offset == pytest.approx(WIDTH)  # the whole lane change was driven


def test_a_lone_ego_line_shares_its_heading_with_the_line_renamed_out_of_the_pair() -> None:
    """A car ahead hides the ego-left line; the decoder names the next line out (5.4 m) ego-left and the ground
    names it the second-left line (the lane width known). The ego-right line, tracked alone, is skewed (0.016 rad):
    it still shares its heading with that parallel line (0 rad), in the tracked output as in each frame's fit."""
    def frame(f: EgoLaneFilter) -> LaneFrame:
        lanes = [_lane(np.stack([XS, y], 1)) for y in (np.full_like(XS, 5.4), -1.8 + 0.016 * XS)]
        return add_ground_lanes(LaneFrame(1280, 720, np.zeros((1, 1), np.uint8), lanes, ego_left_index=0,
                                          ego_right_index=1), PROJ, ego_filter=f, lane_width_m=WIDTH)
    f = EgoLaneFilter()
    for _ in range(20):
        out = frame(f)
    assert (out.ego_left_index, out.ego_right_index) == (-1, 1)
    shared = out.lanes[0].ground_coeffs[1]  # the frame's fit of the pair (the renamed line is not tracked)
    assert shared == pytest.approx(0.008, abs=0.002)
    assert out.lanes[1].ground_coeffs[1] == pytest.approx(shared, abs=0.001)
    assert out.lanes[1].ground_coeffs[0] == pytest.approx(-1.8, abs=0.15)


def test_a_side_unseen_is_kept_for_a_while_and_a_gap_in_time_starts_afresh() -> None:
    f = EgoLaneFilter()
    for k in range(10):
        _frame(np.full_like(XS, 1.8), np.full_like(XS, -1.8), f, stamp=k * 0.1)
    right_only = _frame(None, np.full_like(XS, -1.8), f, stamp=1.0)
    assert right_only.ego_left_index == -1 and right_only.lanes[0].ground_coeffs[0] == pytest.approx(-1.8, abs=0.02)
    # the left line reappears 2 m off: held (it was seen 0.2 s ago) ...
    assert _coeffs(_frame(np.full_like(XS, 3.8), np.full_like(XS, -1.8), f, stamp=1.1))[0][0] == pytest.approx(1.8,
                                                                                                          abs=0.02)
    # ... but after a jump back in time the filter starts afresh and takes it
    assert _coeffs(_frame(np.full_like(XS, 3.8), np.full_like(XS, -1.8), f, stamp=0.0))[0][0] == pytest.approx(3.8,
                                                                                                          abs=0.02)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="points_worth"):
        EgoLaneFilter(points_worth=0.0)
    with pytest.raises(ValueError, match="process_noise"):
        EgoLaneFilter(process_noise=(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="min_inliers"):
        EgoLaneFilter(min_inliers=1.5)


def test_the_pipeline_tracks_its_ego_lines_on_the_ground_unless_told_not_to() -> None:
    from lanenet_ros.pipeline import LanePipeline

    on = LanePipeline(None, backend="onnxruntime-cpu")
    assert isinstance(on.ego_filter, EgoLaneFilter)
    assert LanePipeline(None, backend="onnxruntime-cpu", tracking={"ground": False}).ego_filter is None
    assert LanePipeline(None, backend="onnxruntime-cpu", tracking=False).ego_filter is None
    # a new projection starts the filter afresh (its lines were in the old one's metres)
    _frame(np.full_like(XS, 1.8), np.full_like(XS, -1.8), on.ego_filter)
    on.set_ground(PROJ)
    assert _coeffs(_frame(np.full_like(XS, 3.8), np.full_like(XS, -1.8), on.ego_filter))[0][0] == pytest.approx(
        3.8, abs=0.02)

