"""Helpers of the node tests (test/conftest.py's ``ros`` and ``model`` fixtures use them): a tiny,
hand-weighted LaneNet exported by the project (`lanenet_train.export.export_model`), the road picture it
sees lanes in, and a private rclpy context to run lanenet nodes in.

The network marks bright pixels as lane (binary logits from the grey level) and gives every pixel an
embedding that grows with its column, so separate vertical stripes come out as separate lane instances:
what a trained LaneNet does on a straight road, without training one in a test.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

INPUT_WIDTH, INPUT_HEIGHT, EMBEDDING_DIM = 256, 128, 4
DOMAIN_ID = os.getpid() % 200 + 20  # the node tests' own DDS domain (test/conftest.py sets ROS_DOMAIN_ID apart)


def stripes_image(width: int = 320, height: int = 240, columns: tuple[float, ...] = (0.3, 0.7),
                  shade: int = 40) -> np.ndarray:
    """A dark BGR road with a white vertical stripe (1/40 of the width) at each column fraction."""
    image = np.full((height, width, 3), shade, np.uint8)
    half = max(2, width // 80)
    for fraction in columns:
        x = int(fraction * width)
        image[height // 4:, x - half:x + half] = 255
    return image


def export_stripe_model(path: Path) -> Path:
    """Build and export the hand-weighted model to ``path`` (an .onnx file with lanenet metadata)."""
    torch = pytest.importorskip("torch")
    from lanenet_train.export import export_model

    class StripeNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            grid = torch.linspace(0.0, 1.0, INPUT_WIDTH).view(1, 1, 1, INPUT_WIDTH)
            self.register_buffer("columns", grid.repeat(1, 1, INPUT_HEIGHT, 1))

        def forward(self, x):
            grey = x.mean(dim=1, keepdim=True)
            lane = (grey - 0.5) * 20.0
            along = self.columns * 10.0 + grey * 0.0  # ties the batch size to the input's
            return {"binary_logits": torch.cat([-lane, lane], 1),
                    "embedding": torch.cat([along] + [along * 0.0] * (EMBEDDING_DIM - 1), 1)}

    info = {"architecture": "lanenet", "input_width": INPUT_WIDTH, "input_height": INPUT_HEIGHT,
            "input_channels": 3, "channel_order": "bgr", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
            "roi_top": 0.0, "class_names": ["background", "lane"], "lane_class_ids": [1],
            "class_colors": [[0, 0, 0], [255, 255, 255]], "embedding_dim": EMBEDDING_DIM,
            "spec_fingerprint": "test-stripe-net"}
    export_model(StripeNet(), info, path, verify_images=1)
    return path


class RosHarness:
    """One private rclpy context (own DDS domain) with an executor spinning in the background, a probe node
    to publish camera frames and collect the lanenet node's outputs, and the lanenet nodes under test."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = rclpy.create_node("probe", context=self.context)
        self.executor.add_node(self.probe)
        self.nodes: list = []
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def lanenet(self, namespace: str = "", start: bool = True, **params: object):
        """A LaneNetNode with these parameters (dotted names as keys via a dict), added to the executor."""
        from rclpy.parameter import Parameter

        from lanenet_ros.node.lanenet_node import LaneNetNode

        overrides = [Parameter(name, value=value) for name, value in params.items()]
        node = LaneNetNode(context=self.context, namespace=namespace, parameter_overrides=overrides)
        self.nodes.append(node)
        self.executor.add_node(node)
        if start:
            assert node.start(), "the lanenet node did not configure and activate"
        return node

    def collect(self, msg_type: type, topic: str, depth: int = 50) -> list:
        """Every message arriving on ``topic`` (reliable subscription), appended as it comes."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        received: list = []
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        self.probe.create_subscription(msg_type, topic, received.append, qos)
        return received

    def publisher(self, msg_type: type, topic: str, reliable: bool = True, depth: int = 10):
        """A publisher on the probe node."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        policy = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        return self.probe.create_publisher(msg_type, topic, QoSProfile(depth=depth, reliability=policy))

    @staticmethod
    def feed(publisher, make_msg, until, timeout: float = 15.0, period: float = 0.05) -> int:
        """Publish ``make_msg(i)`` every ``period`` s until ``until()`` holds; returns messages sent.

        Raises:
            AssertionError: ``until()`` did not hold within ``timeout`` seconds.
        """
        deadline, sent = time.monotonic() + timeout, 0
        while not until():
            assert time.monotonic() < deadline, f"condition not met after {sent} messages in {timeout:.0f} s"
            publisher.publish(make_msg(sent))
            sent += 1
            time.sleep(period)
        return sent

    def close(self) -> None:
        """Stop spinning, close every node, shut the context down."""
        self.executor.shutdown(timeout_sec=5.0)
        for node in self.nodes:
            node.close()
            node.destroy_node()
        self.probe.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)


FIRST_STAMP_S = 1_700_000_000


def camera_header(seq: int, frame_id: str = "front_camera_optical"):
    """The std_msgs/Header of camera frame ``seq`` of a 20 Hz camera."""
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = FIRST_STAMP_S + seq // 20, (seq % 20) * 50_000_000
    return header


def frame_seq(header) -> int:
    """The ``seq`` that :func:`camera_header` encoded in a header's stamp."""
    return (header.stamp.sec - FIRST_STAMP_S) * 20 + header.stamp.nanosec // 50_000_000


def export_trained_format_model(tmp: Path, architecture: str = "lanenet") -> Path:
    """The project's own network (untrained, a quarter wide) saved as a training checkpoint and exported
    with ``lanenet-train export``: the path every real model takes to the node."""
    pytest.importorskip("torch")
    from lanenet_train.checkpoint import make_model_info, save_checkpoint
    from lanenet_train.cli import main
    from lanenet_train.models import build_model
    from lanenet_train.spec import parse_spec, spec_fingerprint, spec_to_dict

    spec = parse_spec(f"model_config {{ architecture: \"{architecture}\" input_image_width: 128 "
                      "input_image_height: 64 width_multiplier: 0.25 num_classes: 3 }")
    names, colors = ["background", "white", "yellow"], [(0, 0, 0), (255, 255, 255), (255, 200, 0)]
    info = make_model_info(spec, names, colors, spec_fingerprint(spec))
    checkpoint, model = tmp / f"{architecture}.pth", tmp / f"{architecture}.onnx"
    save_checkpoint(checkpoint, {"model_state": build_model(spec.model_config).eval().state_dict(),
                                 "spec": spec_to_dict(spec), "model_info": info, "epoch": 1})
    assert main(["export", "-m", str(checkpoint), "-o", str(model), "--verify-images", "1"]) == 0
    return model
