"""ROS messages in and out of the node, built from real message objects (no node, no DDS)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Point32
from lanenet_ros.msg import Lane, LaneArray
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from lanenet_ros.image_codec import ImageError
from lanenet_ros.lanes import DetectedLane, LaneFrame, MarkingColor, MarkingType, Position
from lanenet_ros.node.convert import (
    MarkerBuilder,
    bgr8_msg,
    compressed_msg_to_bgr,
    diagnostics_msg,
    image_msg_to_bgr,
    mask_msg,
)
from lanenet_ros.node.wire import CALIBRATION, lane_array_bytes
from lanenet_ros.overlay import position_color_rgb

pytestmark = pytest.mark.ros


def header() -> Header:
    h = Header(frame_id="front_camera_optical")
    h.stamp.sec, h.stamp.nanosec = 1700000123, 456
    return h


def lane(x: float, position: Position, track_id: int = 0, ground: bool = False) -> DetectedLane:
    ys = np.linspace(239.0, 120.0, 12)
    out = DetectedLane(image_coeffs=np.array([x, 0.1]), y_min=120.0, y_max=239.0,
                       points=np.stack([x + 0.1 * ys, ys], axis=1).astype(np.float32), confidence=0.75,
                       position=position, marking_type=MarkingType.SOLID, color=MarkingColor.YELLOW,
                       track_id=track_id)
    if ground:
        out.ground_coeffs = np.array([1.8, 0.01, 1e-3, -1e-5])
        out.ground_x_range = (5.0, 40.0)
        out.ground_points = np.stack([np.linspace(5, 40, 8), np.full(8, 1.8)], axis=1)
    return out


def frame(lanes: list[DetectedLane]) -> LaneFrame:
    mask = np.zeros((240, 320), np.uint8)
    mask[200:, 50:60] = 1
    return LaneFrame(width=320, height=240, class_mask=mask, lanes=lanes, ego_left_index=0, ego_right_index=1)


def lane_array(f: LaneFrame, ground_frame_id: str = "") -> LaneArray:
    return deserialize_message(lane_array_bytes(f, header(), ground_frame_id), LaneArray)


def test_lane_array_copies_the_header_and_every_lane_field():
    msg = lane_array(frame([lane(60, Position.EGO_LEFT, 7, ground=True), lane(250, Position.EGO_RIGHT)]),
                     ground_frame_id="base_link")
    assert msg.header == header() and (msg.image_width, msg.image_height) == (320, 240)
    assert (msg.ego_left_index, msg.ego_right_index) == (0, 1) and msg.ground_frame_id == "base_link"
    first, second = msg.lanes
    assert (first.track_id, first.position, first.type, first.color) == (
        7, Lane.POSITION_EGO_LEFT, Lane.TYPE_SOLID, Lane.COLOR_YELLOW)
    assert first.confidence == pytest.approx(0.75) and list(first.image_coeffs) == [60.0, 0.1]
    assert (first.image_y_min, first.image_y_max) == (120.0, 239.0)
    assert len(first.image_points) == 12 and first.image_points[0].y == 239.0
    assert first.ground_valid and (first.c0, first.c3) == (1.8, -1e-5)
    assert (first.ground_x_min, first.ground_x_max) == (5.0, 40.0) and len(first.ground_points) == 8
    assert not second.ground_valid and len(second.ground_points) == 0


def test_lane_array_bytes_are_what_rclpy_serializes():
    """The CDR written from the lanes' arrays reads back as the message rclpy's own serialization gives (the
    same message built field by field with the generated classes), for every field and lane count."""

    def points(xy: np.ndarray | None) -> list[Point32]:
        return [] if xy is None else [Point32(x=float(x), y=float(y)) for x, y in np.asarray(xy, np.float64)]

    def expected(f: LaneFrame, ground_frame_id: str) -> LaneArray:
        lanes = []
        for ln in f.lanes:
            msg = Lane(track_id=ln.track_id, position=int(ln.position), type=int(ln.marking_type),
                       color=int(ln.color), confidence=float(ln.confidence),
                       image_coeffs=[float(c) for c in ln.image_coeffs], image_y_min=float(ln.y_min),
                       image_y_max=float(ln.y_max), image_points=points(ln.points))
            if ln.ground_coeffs is not None:
                msg.ground_valid = True
                msg.c0, msg.c1, msg.c2, msg.c3 = [*map(float, ln.ground_coeffs), 0.0, 0.0, 0.0][:4]
                msg.ground_x_min, msg.ground_x_max = map(float, ln.ground_x_range)
                msg.ground_points = points(ln.ground_points)
            lanes.append(msg)
        grounded = any(m.ground_valid for m in lanes)
        out = LaneArray(header=header(), image_width=f.width, image_height=f.height, lanes=lanes,
                        ego_left_index=f.ego_left_index, ego_right_index=f.ego_right_index,
                        ground_frame_id=ground_frame_id if grounded else "",
                        calibration=CALIBRATION[f.calibration] if grounded else 0)
        return deserialize_message(serialize_message(out), LaneArray)  # float32 fields rounded as on the wire

    odd = lane(300, Position.SECOND_RIGHT, 2**32 - 1, ground=True)
    odd.image_coeffs, odd.ground_coeffs = np.array([5.0]), np.array([0.5, 0.25])  # short polynomials
    odd.points, odd.ground_points = np.zeros((0, 2), np.float32), None
    for lanes, calibration in (([], ""), ([lane(60, Position.EGO_LEFT, 7, ground=True)], "estimated"),
                               ([lane(60, Position.EGO_LEFT), odd, lane(250, Position.EGO_RIGHT, 9, True)], "given")):
        f = frame(lanes)
        f.calibration = calibration
        for ground_frame_id in ("", "base_link"):
            assert lane_array(f, ground_frame_id) == expected(f, ground_frame_id)
    assert CALIBRATION == {"": LaneArray.CALIBRATION_NONE, "given": LaneArray.CALIBRATION_GIVEN,
                           "estimated": LaneArray.CALIBRATION_ESTIMATED}


def test_ground_frame_stays_empty_when_no_lane_is_on_the_ground():
    assert lane_array(frame([lane(60, Position.EGO_LEFT)]), ground_frame_id="base_link").ground_frame_id == ""


def test_mask_and_overlay_images_carry_the_header_and_come_back_identical():
    mask = frame([]).class_mask
    msg = mask_msg(mask, header())
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("mono8", 320, 240, 320)
    assert msg.header == header()
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8).reshape(240, 320), mask)
    picture = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_msg_to_bgr(bgr8_msg(picture[:, ::-1], header())), picture[:, ::-1])


def test_image_messages_convert_and_bad_ones_raise_the_reason():
    rgb = Image(height=2, width=2, encoding="rgb8", step=8, data=bytes([255, 0, 0, 0, 255, 0, 9, 9] * 2))
    assert image_msg_to_bgr(rgb)[1].tolist() == [[0, 0, 255], [0, 255, 0]]
    with pytest.raises(ImageError, match="truncated"):
        image_msg_to_bgr(Image(height=2, width=2, encoding="rgb8", step=8, data=bytes(10)))
    with pytest.raises(ImageError, match="neither JPEG nor PNG"):
        compressed_msg_to_bgr(CompressedImage(format="jpeg", data=b"not a picture"))


def test_markers_follow_track_ids_and_delete_lanes_that_vanished():
    builder = MarkerBuilder()
    first = builder.build(frame([lane(60, Position.EGO_LEFT, 7), lane(250, Position.EGO_RIGHT, 9)]), header())
    strips = [m for m in first.markers if m.type == Marker.LINE_STRIP]
    texts = [m for m in first.markers if m.type == Marker.TEXT_VIEW_FACING]
    assert [m.id for m in strips] == [7, 9] and [m.id for m in texts] == [7, 9]
    assert all(m.header == header() and m.action == Marker.ADD for m in strips + texts)
    assert "0.75" in texts[0].text and len(strips[0].points) == 12
    r, g, b = (c / 255 for c in position_color_rgb(Position.EGO_RIGHT))
    assert (strips[1].color.r, strips[1].color.g, strips[1].color.b) == pytest.approx((r, g, b))
    second = builder.build(frame([lane(250, Position.EGO_RIGHT, 9)]), header())
    deleted = [(m.ns, m.id) for m in second.markers if m.action == Marker.DELETE]
    assert deleted == [("lanes", 7), ("labels", 7)]
    empty = builder.build(frame([]), header())
    assert [m.action for m in empty.markers] == [Marker.DELETEALL]


def test_untracked_lanes_get_ids_by_index_apart_from_track_ids():
    lanes = [lane(60, Position.EGO_LEFT), lane(250, Position.EGO_RIGHT)]
    markers = MarkerBuilder().build(frame(lanes), header())
    ids = sorted({m.id for m in markers.markers})
    assert ids == [MarkerBuilder.UNTRACKED_ID_BASE, MarkerBuilder.UNTRACKED_ID_BASE + 1]


def test_image_plane_markers_line_up_with_the_camera_rays():
    fx, fy, cx, cy = 200.0, 210.0, 160.0, 120.0
    markers = MarkerBuilder().build(frame([lane(60, Position.EGO_LEFT)]), header(),
                                    intrinsics=(fx, fy, cx, cy), image_depth=3.0)
    strip = markers.markers[0]
    assert strip.header.frame_id == "front_camera_optical"
    u, v = 60 + 0.1 * 239.0, 239.0
    p = strip.points[0]
    assert (p.x, p.y, p.z) == pytest.approx(((u - cx) / fx * 3.0, (v - cy) / fy * 3.0, 3.0))
    assert 0.0 < strip.scale.x < 0.05


def test_calibrated_lanes_are_drawn_in_the_ground_frame_in_metres():
    markers = MarkerBuilder().build(frame([lane(60, Position.EGO_LEFT, 3, ground=True)]), header(),
                                    ground_frame_id="base_link")
    strip = markers.markers[0]
    assert strip.header.frame_id == "base_link" and strip.header.stamp == header().stamp
    assert strip.points[-1].x == pytest.approx(40.0) and strip.points[-1].y == pytest.approx(1.8)
    assert strip.scale.x == pytest.approx(0.12)


def test_diagnostics_carry_name_backend_and_values():
    msg = diagnostics_msg(header().stamp, "/cam_front/lanenet: lane detection", "onnxruntime-cpu",
                          DiagnosticStatus.OK, "running", {"input rate (Hz)": 9.87, "dropped frames": 3})
    status = msg.status[0]
    assert status.hardware_id == "onnxruntime-cpu" and status.level == DiagnosticStatus.OK
    assert {kv.key: kv.value for kv in status.values} == {"input rate (Hz)": "9.87", "dropped frames": "3"}
