"""A camera in its own process, for the tests that run the node as a user would (test_ros_graph.py).

    python test/ros_camera.py TOPIC --width 1280 --height 720 --rate 30 --seconds 12

Publishes ``bgr8`` frames of two white stripes (what the test model sees as two lanes) on ``TOPIC``, best
effort by default like a camera driver, at a steady rate, each with ``frame_id`` ``camera_optical`` and the
stamp ``--stamp-base`` + frame number seconds (so a receiver can tell which frame an output belongs to).
It waits until the topic has a subscriber, publishes for ``--seconds`` (until SIGINT/SIGTERM without it),
then prints ``published N`` and exits 0.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("topic")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--seconds", type=float, default=0.0, help="how long to publish (0: until stopped)")
    parser.add_argument("--reliable", action="store_true", help="reliable instead of best effort")
    parser.add_argument("--stamp-base", type=int, default=1000)
    args = parser.parse_args()

    stop: list[int] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, _frame: stop.append(signum))
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from node_fixtures import stripes_image

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("test_camera")
    reliability = ReliabilityPolicy.RELIABLE if args.reliable else ReliabilityPolicy.BEST_EFFORT
    publisher = node.create_publisher(Image, args.topic, QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                                                    reliability=reliability))
    image = stripes_image(args.width, args.height)
    msg = Image(height=args.height, width=args.width, encoding="bgr8", step=args.width * 3,
                data=np.ascontiguousarray(image).tobytes())
    msg.header.frame_id = "camera_optical"
    while publisher.get_subscription_count() == 0 and not stop:
        time.sleep(0.05)
    print("subscribed", flush=True)
    start, sent = time.monotonic(), 0
    while not stop and (args.seconds <= 0 or sent < args.seconds * args.rate):
        msg.header.stamp.sec = args.stamp_base + sent
        publisher.publish(msg)
        sent += 1
        time.sleep(max(0.0, start + sent / args.rate - time.monotonic()))
    print(f"published {sent} in {time.monotonic() - start:.2f} s", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
