"""The overlay picture: mask tinted in the class colours, lanes drawn in their position colours."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lanenet_ros.lanes import DetectedLane, LaneFrame, MarkingColor, MarkingType, Position
from lanenet_ros.overlay import draw_overlay, label_origins, lane_label, position_color_rgb


def vertical_lane(x: float, position: Position, height: int = 120) -> DetectedLane:
    ys = np.linspace(height - 1, 20, 30)
    return DetectedLane(image_coeffs=np.array([x]), y_min=20.0, y_max=height - 1.0,
                        points=np.stack([np.full_like(ys, x), ys], axis=1).astype(np.float32),
                        confidence=0.87, position=position, marking_type=MarkingType.DASHED,
                        color=MarkingColor.WHITE, track_id=4)


@pytest.fixture()
def scene():
    image = np.full((120, 160, 3), 60, np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[60:, 10:14] = 1
    mask[60:, 100:104] = 2
    lanes = [vertical_lane(40.0, Position.EGO_LEFT), vertical_lane(120.0, Position.EGO_RIGHT)]
    frame = LaneFrame(width=160, height=120, class_mask=mask, lanes=lanes)
    return image, frame


def test_mask_pixels_are_tinted_in_their_class_colour_and_the_rest_untouched(scene):
    image, frame = scene
    frame.lanes = []
    out = draw_overlay(image, frame, class_colors=[(0, 0, 0), (255, 0, 0), (0, 0, 255)])
    assert out is not image and np.all(image == 60)  # input untouched
    b, _, r = out[80, 11].astype(int)
    assert r > 120 and b < 60  # class 1 is red (RGB), so the BGR pixel leans red
    b, _, r = out[80, 101].astype(int)
    assert b > 120 and r < 60
    assert np.all(out[:60] == 60) and np.all(out[80, 20:90] == 60)


def test_lanes_are_drawn_in_their_position_colours(scene):
    image, frame = scene
    frame.class_mask[:] = 0
    out = draw_overlay(image, frame, labels=False)
    for lane in frame.lanes:
        x = int(lane.points[0, 0])
        expected = np.array(position_color_rgb(lane.position)[::-1])
        assert np.abs(out[100, x].astype(int) - expected).max() <= 2
    assert np.all(out[100, 70:90] == 60)  # between the lanes nothing is drawn


def test_labels_add_text_pixels_near_the_far_end(scene):
    image, frame = scene
    frame.class_mask[:] = 0
    plain = draw_overlay(image, frame, labels=False)
    labelled = draw_overlay(image, frame, labels=True)
    changed = np.argwhere(np.any(plain != labelled, axis=2))
    assert len(changed) > 20 and changed[:, 0].max() < 40  # text sits at the top (far) end


def test_labels_of_lanes_that_meet_do_not_cover_one_another():
    ends = [(640.0, 300.0), (650.0, 302.0), (630.0, 298.0), (1270.0, 5.0)]
    sizes = [(300, 20), (280, 20), (320, 20), (200, 20)]
    origins = label_origins(ends, sizes, (720, 1280))
    boxes = [(x, y - h, x + w, y) for (x, y), (w, h) in zip(origins, sizes, strict=True)]
    for a, b in itertools.combinations(boxes, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    for x0, y0, x1, y1 in boxes:
        assert x0 >= 0 and x1 <= 1280 and y0 >= 0 and y1 <= 720
    assert origins[0] == (490, 292)  # the first keeps its place: centred just above its lane's end
    assert origins[1][1] > origins[0][1] and origins[2][1] > origins[1][1]


def test_label_reads_position_track_type_colour_and_confidence():
    assert lane_label(vertical_lane(1.0, Position.EGO_LEFT)) == "L1 #4 dashed white 0.87"
    lane = DetectedLane(image_coeffs=np.zeros(1), y_min=0, y_max=1, points=np.zeros((0, 2)), confidence=0.5)
    assert lane_label(lane) == "? 0.50"


def test_a_frame_from_another_image_size_is_refused(scene):
    image, frame = scene
    with pytest.raises(ValueError, match="160x120 but the image is 80x120"):
        draw_overlay(image[:, :80], frame)


def test_a_read_only_padded_view_can_be_drawn_on():
    raw = np.full((120, 170 * 3), 60, np.uint8)  # rows padded to 170 pixels, read-only like a message buffer
    raw.setflags(write=False)
    view = np.ndarray((120, 160, 3), np.uint8, raw, strides=(170 * 3, 3, 1))
    frame = LaneFrame(width=160, height=120, class_mask=np.zeros((120, 160), np.uint8),
                      lanes=[vertical_lane(40.0, Position.EGO_LEFT)])
    out = draw_overlay(view, frame)
    assert out.flags.writeable and out.shape == (120, 160, 3) and np.any(out != 60)
