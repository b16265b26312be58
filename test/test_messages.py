"""lanenet_ros messages: generated, importable, constants in step with the core, and intact over DDS."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from lanenet_ros.msg import Lane, LaneArray  # noqa: E402

from lanenet_ros.lanes import MarkingColor, MarkingType, Position  # noqa: E402

pytestmark = pytest.mark.ros

PUBLISHER = textwrap.dedent(
    """
    import time
    import rclpy
    from geometry_msgs.msg import Point32
    from lanenet_ros.msg import Lane, LaneArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy, DurabilityPolicy

    rclpy.init()
    node = rclpy.create_node("lane_array_publisher")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = node.create_publisher(LaneArray, "lanes", qos)
    msg = LaneArray()
    msg.header.stamp.sec = 1700000000
    msg.header.stamp.nanosec = 123456789
    msg.header.frame_id = "front_camera_optical"
    msg.image_width, msg.image_height = 1280, 720
    msg.ground_frame_id = "base_link"
    for i, (pos, typ, col) in enumerate([
        (Lane.POSITION_SECOND_LEFT, Lane.TYPE_DOUBLE_SOLID, Lane.COLOR_YELLOW),
        (Lane.POSITION_EGO_LEFT, Lane.TYPE_DASHED, Lane.COLOR_WHITE),
        (Lane.POSITION_EGO_RIGHT, Lane.TYPE_SOLID, Lane.COLOR_WHITE),
    ]):
        lane = Lane(track_id=100 + i, position=pos, type=typ, color=col, confidence=0.5 + 0.1 * i)
        lane.image_coeffs = [300.0 + 400.0 * i, -0.25 * (i - 1), 1e-4 * i]
        lane.image_y_min, lane.image_y_max = 400.0, 719.0
        lane.image_points = [Point32(x=300.0 + 400.0 * i + k, y=719.0 - 10.0 * k, z=0.0) for k in range(30)]
        lane.ground_valid = True
        lane.c0, lane.c1, lane.c2, lane.c3 = 3.6 - 3.6 * i, 0.01, -2e-4, 1e-6
        lane.ground_x_min, lane.ground_x_max = 4.5, 60.0
        lane.ground_points = [Point32(x=5.0 + k, y=3.6 - 3.6 * i, z=0.0) for k in range(50)]
        msg.lanes.append(lane)
    msg.ego_left_index, msg.ego_right_index = 1, 2
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)
    """
)


def test_constants_match_the_core_enums():
    for enum, prefix in ((Position, "POSITION_"), (MarkingType, "TYPE_"), (MarkingColor, "COLOR_")):
        for member in enum:
            assert getattr(Lane, prefix + member.name) == member.value, (prefix, member.name)
        msg_names = {n for n in dir(Lane) if n.startswith(prefix) and n.isupper()}
        assert msg_names == {prefix + m.name for m in enum}


def test_lane_array_defaults_mean_no_ego_lane():
    msg = LaneArray()
    assert (msg.ego_left_index, msg.ego_right_index) == (-1, -1)
    assert list(msg.lanes) == [] and msg.ground_frame_id == ""


def test_lane_array_crosses_processes_intact():
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER])
    received: list[LaneArray] = []
    rclpy.init()
    try:
        node = rclpy.create_node("lane_array_listener")
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(LaneArray, "lanes", received.append, qos)
        deadline = time.monotonic() + 20.0
        while not received and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.2)
        node.destroy_node()
    finally:
        rclpy.shutdown()
        publisher.kill()
        publisher.wait()
    assert received, "no LaneArray arrived from the publisher process within 20 s"
    msg = received[0]
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1700000000, 123456789)
    assert msg.header.frame_id == "front_camera_optical" and msg.ground_frame_id == "base_link"
    assert (msg.image_width, msg.image_height) == (1280, 720)
    assert (msg.ego_left_index, msg.ego_right_index) == (1, 2)
    assert [lane.position for lane in msg.lanes] == [
        Lane.POSITION_SECOND_LEFT, Lane.POSITION_EGO_LEFT, Lane.POSITION_EGO_RIGHT]
    assert [lane.type for lane in msg.lanes] == [Lane.TYPE_DOUBLE_SOLID, Lane.TYPE_DASHED, Lane.TYPE_SOLID]
    assert [lane.color for lane in msg.lanes] == [Lane.COLOR_YELLOW, Lane.COLOR_WHITE, Lane.COLOR_WHITE]
    assert [lane.track_id for lane in msg.lanes] == [100, 101, 102]
    for i, lane in enumerate(msg.lanes):
        assert lane.confidence == pytest.approx(0.5 + 0.1 * i)
        assert list(lane.image_coeffs) == pytest.approx([300.0 + 400.0 * i, -0.25 * (i - 1), 1e-4 * i])
        assert len(lane.image_points) == 30 and lane.image_points[29].y == pytest.approx(429.0)
        assert lane.ground_valid and lane.c0 == pytest.approx(3.6 - 3.6 * i) and lane.c3 == pytest.approx(1e-6)
        assert (lane.ground_x_min, lane.ground_x_max) == (4.5, 60.0)
        assert len(lane.ground_points) == 50 and lane.ground_points[-1].x == pytest.approx(54.0)
