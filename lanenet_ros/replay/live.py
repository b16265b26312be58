"""Live replay: a bag's images published over rclpy into a running lanenet node, its LaneArrays collected.

Latency is measured end to end (publish to receipt of the LaneArray with the same header stamp);
frames published but never answered count as dropped.
"""
from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from tqdm import tqdm

from lanenet_ros.lanes import DetectedLane, LaneFrame, MarkingColor, MarkingType, Position
from lanenet_ros.msg import LaneArray
from lanenet_ros.replay.bags import BagImage
from lanenet_ros.replay.report import ReplayLog


def frame_from_msg(msg: LaneArray) -> LaneFrame:
    """A LaneFrame (lanes only, empty mask) rebuilt from a received LaneArray."""
    lanes = [
        DetectedLane(
            image_coeffs=np.asarray(lane.image_coeffs, dtype=np.float64), y_min=lane.image_y_min,
            y_max=lane.image_y_max, points=np.array([[p.x, p.y] for p in lane.image_points], np.float32).reshape(-1, 2),
            confidence=lane.confidence, position=Position(lane.position), marking_type=MarkingType(lane.type),
            color=MarkingColor(lane.color), track_id=lane.track_id)
        for lane in msg.lanes
    ]
    mask = np.zeros((msg.image_height, msg.image_width), np.uint8)
    return LaneFrame(msg.image_width, msg.image_height, mask, lanes, msg.ego_left_index, msg.ego_right_index)


def image_msg(image: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """A bgr8 sensor_msgs/Image of ``image``."""
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.header.frame_id = frame_id
    msg.height, msg.width = image.shape[:2]
    msg.encoding, msg.step = "bgr8", image.shape[1] * 3
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


class LiveSession:
    """Publisher of images and collector of the node's answers, on one rclpy node."""

    def __init__(self, namespace: str, image_topic: str):
        self.node = rclpy.create_node("lanenet_replay", namespace=namespace or "/")
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.node.create_publisher(Image, image_topic, reliable)
        answers = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.sub = self.node.create_subscription(LaneArray, "lanes", self._on_lanes, answers)
        self.sent: dict[int, float] = {}
        self.received: dict[int, tuple[float, LaneArray]] = {}
        self.lock = threading.Lock()

    def _on_lanes(self, msg: LaneArray) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        with self.lock:
            self.received.setdefault(stamp, (time.monotonic(), msg))

    def wait_for_node(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pub.get_subscription_count() == 0 or self.sub.get_publisher_count() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no lanenet node on {self.pub.topic_name} -> {self.sub.topic_name} "
                                   f"within {timeout:.0f} s")
            time.sleep(0.1)

    def publish(self, image: np.ndarray, stamp_ns: int, frame_id: str) -> None:
        msg = image_msg(image, stamp_ns, frame_id)
        with self.lock:
            self.sent[stamp_ns] = time.monotonic()
        self.pub.publish(msg)


def replay_live(args: argparse.Namespace, bag_images: Iterator[BagImage], total: int, log: ReplayLog,
                video) -> int:
    """Publish the images at their recorded rate into a running node; returns the number of frames published."""
    from lanenet_ros.overlay import draw_overlay

    rclpy.init()
    session = LiveSession(args.node_namespace, args.image_topic)
    executor = SingleThreadedExecutor()
    executor.add_node(session.node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        session.wait_for_node(args.wait)
        images, first_bag, first_wall = {}, None, time.monotonic()
        for item in tqdm(bag_images, total=total, desc="live", unit="frame"):
            first_bag = item.timestamp_ns if first_bag is None else first_bag
            due = first_wall + (item.timestamp_ns - first_bag) / 1e9 / args.rate_scale
            time.sleep(max(0.0, due - time.monotonic()))
            session.publish(item.image, item.stamp_ns, item.frame_id)
            images[item.stamp_ns] = item
        _wait_for_answers(session, len(images), timeout=5.0)
        with session.lock:  # answers to frames of this replay only (not another publisher's)
            answered = sorted((stamp, got) for stamp, got in session.received.items() if stamp in images)
        for stamp, (received_at, msg) in answered:
            frame = frame_from_msg(msg)
            log.add(images[stamp].index, stamp, frame, (received_at - session.sent[stamp]) * 1000.0)
            video.add(draw_overlay(images[stamp].image, frame))
        return len(images)
    finally:
        executor.shutdown()
        session.node.destroy_node()
        rclpy.shutdown()


def _wait_for_answers(session: LiveSession, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session.lock:
            if len(session.received) >= expected:
                return
        time.sleep(0.05)
