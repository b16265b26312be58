"""LaneTracker over sequences of frames: stable ids, smoothing, confirmation, coasting and removal."""
from __future__ import annotations

import numpy as np
import pytest

from lanenet_ros.decode.fitting import sample_points
from lanenet_ros.decode.settings import DecodeParams
from lanenet_ros.lanes import DetectedLane, LaneFrame, MarkingColor, MarkingType, Position
from lanenet_ros.tracking import LaneTracker

W, H = 1280, 720


def lane(bottom: float, slope: float = 0.0, conf: float = 0.9) -> DetectedLane:
    """A straight lane through (bottom, 719) with x changing by ``slope`` per row upwards."""
    coeffs = np.array([bottom + 719 * slope, -slope])
    return DetectedLane(coeffs, 300.0, 719.0, sample_points(coeffs, 300.0, 719.0, 10.0), confidence=conf,
                        marking_type=MarkingType.SOLID)


def frame(*lanes: DetectedLane) -> LaneFrame:
    return LaneFrame(W, H, np.zeros((H, W), np.uint8), list(lanes))


def bottoms(f: LaneFrame) -> list[float]:
    return [float(ln.x_at(719.0)) for ln in f.lanes]


def test_ids_are_stable_and_confirmed_after_min_hits() -> None:
    tracker = LaneTracker(min_hits=2)
    first = tracker.update(frame(lane(200, 0.5), lane(600, 0.1), lane(1000, -0.5)))
    assert [ln.track_id for ln in first.lanes] == [0, 0, 0]  # tentative
    ids = None
    for k in range(1, 8):  # lanes drift 3 px per frame; detections come in shuffled order
        dets = [lane(1000 + 3 * k, -0.5), lane(200 + 3 * k, 0.5), lane(600 + 3 * k, 0.1)]
        out = tracker.update(frame(*dets))
        now = [ln.track_id for ln in out.lanes]
        assert all(i > 0 for i in now) and len(set(now)) == 3
        assert ids is None or now == ids
        ids = now
        assert (out.ego_left_index, out.ego_right_index) == (1, 2)
        assert out.lanes[1].position == Position.EGO_LEFT


def test_smoothing_reduces_jitter() -> None:
    tracker = LaneTracker(min_hits=1, alpha=0.3)
    raw = [500.0 + (10.0 if k % 2 else -10.0) for k in range(20)]
    out = [bottoms(tracker.update(frame(lane(x))))[0] for x in raw]
    assert np.std(out[5:]) < 0.5 * np.std(raw[5:])
    assert abs(np.mean(out[5:]) - 500.0) < 5.0
    no_smooth = LaneTracker(min_hits=1, alpha=1.0)
    assert [bottoms(no_smooth.update(frame(lane(x))))[0] for x in raw] == pytest.approx(raw)


def test_the_default_smoothing_follows_a_lane_that_moves_steadily() -> None:
    """A lane drifting 12 px a frame (a bend, a lane change): the default smoothing trails it by under half a
    frame's drift once settled (0.5, the default until 7 December, trailed by a whole frame's)."""
    tracker = LaneTracker()
    drift = 12.0
    for k in range(15):
        out = tracker.update(frame(lane(400.0 + drift * k)))
    lag = 400.0 + drift * 14 - bottoms(out)[0]
    assert 0 < lag < 0.5 * drift


def test_coasting_then_removal_after_max_misses() -> None:
    tracker = LaneTracker(min_hits=1, max_misses=3, coast_after=1)
    tid = tracker.update(frame(lane(400), lane(900))).lanes[0].track_id
    coasted = tracker.update(frame(lane(900)))  # the 400 lane is missed once
    assert coasted.lanes[0].track_id == tid and len(coasted.lanes) == 2
    assert coasted.lanes[0].confidence == pytest.approx(0.45)
    back = tracker.update(frame(lane(402), lane(900)))
    assert back.lanes[0].track_id == tid and back.lanes[0].confidence == pytest.approx(0.9)
    for _ in range(4):  # missed 4 times > max_misses: dropped
        out = tracker.update(frame(lane(900)))
    assert len(out.lanes) == 1
    reborn = tracker.update(frame(lane(400), lane(900)))
    assert reborn.lanes[0].track_id not in (0, tid)


def test_only_a_lane_seen_for_a_while_coasts() -> None:
    tracker = LaneTracker(min_hits=2, max_misses=3, coast_after=5)  # the defaults but max_misses
    for _ in range(4):  # a lane seen in four frames (a line along a barrier's base, say), then missed
        out = tracker.update(frame(lane(400), lane(900)))
    assert out.lanes[0].track_id > 0  # confirmed
    assert len(tracker.update(frame(lane(900))).lanes) == 1  # not carried on
    for _ in range(5):  # seen in five frames: it coasts through a frame that misses it
        tracker.update(frame(lane(400), lane(900)))
    assert len(tracker.update(frame(lane(900))).lanes) == 2
    with pytest.raises(ValueError, match="coast_after"):
        LaneTracker(coast_after=0)


def test_a_lane_seen_again_a_little_away_is_not_doubled_by_its_coasting_track() -> None:
    tracker = LaneTracker(min_hits=1, max_misses=3, coast_after=1)
    tracker.update(frame(lane(400), lane(900)))
    tracker.update(frame(lane(400), lane(900)))
    moved = tracker.update(frame(lane(400 + 0.03 * W + 20), lane(900)))  # beyond the gate: a new track
    assert len(moved.lanes) == 2  # the old track coasts unseen: the new one stands where it was
    missed = tracker.update(frame(lane(900)))  # nothing near the old place now: the coaster shows
    assert len(missed.lanes) == 3 and bottoms(missed)[1] == pytest.approx(400 + 0.03 * W + 20)


def test_coasting_tracks_keep_to_the_decoders_lane_limits() -> None:
    # the decoder kept the nearest lane each side (max_per_side=1); the ego-left lane is missed for a frame and
    # the next one out is seen: the coasting ego-left lane stands in, the farther one is not added beside it
    tracker = LaneTracker(min_hits=1, max_misses=3, max_per_side=1, coast_after=1)
    tracker.update(frame(lane(400), lane(900)))
    out = tracker.update(frame(lane(150), lane(900)))
    assert bottoms(out) == pytest.approx([400, 900]) and out.lanes[0].confidence == pytest.approx(0.45)
    assert (out.ego_left_index, out.ego_right_index) == (0, 1)
    unlimited = LaneTracker(min_hits=1, max_misses=3, coast_after=1)
    unlimited.update(frame(lane(400), lane(900)))
    assert len(unlimited.update(frame(lane(150), lane(900))).lanes) == 3
    # max_lanes: the most confident, coasting ones counted at their lowered confidence
    capped = LaneTracker(min_hits=1, max_misses=3, max_lanes=2, coast_after=1)
    capped.update(frame(lane(400), lane(900)))
    assert bottoms(capped.update(frame(lane(150), lane(900)))) == pytest.approx([150, 900])


def test_a_tracker_for_a_decoder_keeps_its_lane_limits() -> None:
    # the pipeline's tracker (and the benches' stand-ins for it) report no more lanes than the decoder keeps
    tracker = LaneTracker.for_decoder(DecodeParams(max_per_side=1, ego_center=0.6))
    out = tracker.update(frame(lane(150), lane(400), lane(900), lane(1150)))
    assert bottoms(out) == pytest.approx([400, 900])
    out = tracker.update(frame(lane(150), lane(400), lane(700), lane(900)))  # 700 is now the ego-left line
    assert bottoms(out) == pytest.approx([700, 900])


def test_no_coasting_and_far_jumps_start_new_tracks() -> None:
    tracker = LaneTracker(min_hits=1, coast=False)
    a = tracker.update(frame(lane(400))).lanes[0].track_id
    assert tracker.update(frame()).lanes == []
    jumped = tracker.update(frame(lane(400 + 0.03 * W + 20)))  # beyond the gate: another lane
    assert jumped.lanes[0].track_id != a


def test_ground_fields_are_left_to_be_fitted_to_the_tracked_lane() -> None:
    tracker = LaneTracker(min_hits=1, alpha=0.5)
    for c0 in (1.8, 2.0):  # a new track and a matched one alike
        det = lane(500)
        det.ground_coeffs, det.ground_x_range = np.array([c0, 0.0, 0.0, 0.0]), (5.0, 40.0)
        out = tracker.update(frame(det))
        assert (out.lanes[0].ground_coeffs, out.lanes[0].ground_x_range, out.lanes[0].ground_points) == \
            (None, None, None)


def test_marking_type_and_colour_are_voted_over_frames() -> None:
    tracker = LaneTracker(min_hits=1)
    for kind, colour in [(MarkingType.DASHED, MarkingColor.YELLOW)] * 3 + [(MarkingType.SOLID, MarkingColor.UNKNOWN)]:
        det = lane(500)
        det.marking_type, det.color = kind, colour
        out = tracker.update(frame(det))
    assert (out.lanes[0].marking_type, out.lanes[0].color) == (MarkingType.DASHED, MarkingColor.YELLOW)


def test_a_frame_whose_types_a_head_read_votes_more() -> None:
    # two frames read from the paint say dashed, one read by the heads (every third frame) says solid
    tracker = LaneTracker(min_hits=1)
    for kind, votes in [(MarkingType.SOLID, 3), (MarkingType.DASHED, 1), (MarkingType.DASHED, 1)]:
        det = lane(500)
        det.marking_type = kind
        out = tracker.update(frame(det), type_votes=votes)
    assert out.lanes[0].marking_type == MarkingType.SOLID
    det.marking_type = MarkingType.DASHED  # a third one ties (3 votes each): the latest wins, as with one vote each
    assert tracker.update(frame(det)).lanes[0].marking_type == MarkingType.DASHED


def test_time_jumps_reset_the_tracks() -> None:
    tracker = LaneTracker(min_hits=1, max_gap_s=0.5)
    first = tracker.update(frame(lane(400)), stamp=10.0).lanes[0].track_id
    assert tracker.update(frame(lane(401)), stamp=10_100_000_000).lanes[0].track_id == first  # int: ns
    assert tracker.update(frame(lane(402)), stamp=9.0).lanes[0].track_id != first  # the bag looped


@pytest.mark.parametrize(("kwargs", "word"), [({"min_hits": 0}, "min_hits"), ({"alpha": 0.0}, "alpha"),
                                             ({"max_per_side": -1}, "max_per_side")])
def test_bad_parameters(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        LaneTracker(**kwargs)


def test_lane_distances_are_mean_gaps_over_shared_rows_and_the_bottom_row() -> None:
    from lanenet_ros.tracking import lane_distances

    near, shifted = lane(600.0), lane(620.0)
    short = DetectedLane(np.array([700.0]), 600.0, 719.0, sample_points(np.array([700.0]), 600.0, 719.0, 10.0))
    d = lane_distances([near, short], [shifted, near], H)
    assert d.shape == (2, 2)
    assert d[0] == pytest.approx([20.0, 0.0])
    assert d[1] == pytest.approx([80.0, 100.0])  # constant gaps: the mean is the gap, whatever rows are shared
    slanted = lane(600.0, slope=0.1)  # 0 at the bottom, growing up the image
    ys = np.linspace(0.0, H - 1.0, 16)
    shared = ys[(ys >= 300.0) & (ys <= 719.0)]
    assert lane_distances([near], [slanted], H)[0, 0] == pytest.approx((0.1 * (719 - shared)).sum() / (len(shared) + 1))
    assert lane_distances([], [near], H).shape == (0, 1)


def test_the_nodes_tracker_parameters_reach_the_pipelines_tracker() -> None:
    from lanenet_ros.node.configure import open_pipeline
    from lanenet_ros.node.params import NodeParams, ParamError

    pipeline, _ = open_pipeline(NodeParams.from_values({"backend": "onnxruntime-cpu", "tracker.smoothing": 0.8,
                                                        "tracker.max_misses": 1, "tracker.coast": False,
                                                        "tracker.coast_after": 2}))
    tracker = pipeline.tracker
    assert (tracker.alpha, tracker.max_misses, tracker.coast, tracker.coast_after) == (0.8, 1, False, 2)
    assert tracker.max_per_side == pipeline.decoder.params.max_per_side  # still the decoder's limits
    default, _ = open_pipeline(NodeParams.from_values({"backend": "onnxruntime-cpu"}))
    assert (default.tracker.alpha, default.tracker.max_misses, default.tracker.coast,
            default.tracker.coast_after) == (0.7, 3, True, 5)
    off, _ = open_pipeline(NodeParams.from_values({"backend": "onnxruntime-cpu", "tracking": False}))
    assert off.tracker is None and off.ego_filter is None and off.hood_memory is None
    assert default.ego_filter is not None and default.hood_memory is not None
    flat, _ = open_pipeline(NodeParams.from_values({"backend": "onnxruntime-cpu", "tracker.ground": False,
                                                    "tracker.hood": False}))
    assert flat.tracker is not None and flat.ego_filter is None and flat.hood_memory is None
    from lanenet_ros.pipeline import HEADS_EVERY

    assert default.heads_every == HEADS_EVERY == NodeParams().heads_every  # the node's default is the pipeline's
    lean, _ = open_pipeline(NodeParams.from_values({"backend": "onnxruntime-cpu", "heads_every": 0}))
    assert lean.heads_every == 0 and lean.heads_backend is None
    with pytest.raises(ParamError, match=r"tracker\.smoothing. is 0.0, outside its range"):
        NodeParams.from_values({"tracker.smoothing": 0.0})
