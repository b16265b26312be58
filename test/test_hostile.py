"""Hostile input (issue 24): what an attacker or a broken device can send the node and the bag tools.

The quick part of the hostile-input suite; ``tools/hostile_barrage.py`` runs the long barrage and the soak
against a live node (docs/node.md, "Hostile input").
"""
from __future__ import annotations

import array
import os
import time
import zlib

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from lanenet_ros.msg import LaneArray  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from test_node_model import RosHarness, camera_header, export_stripe_model, stripes_image  # noqa: E402

from lanenet_ros.image_codec import MAX_PIXELS, ImageError, compressed_size, decode_compressed, image_to_bgr  # noqa: E402
from lanenet_ros.node.params import check  # noqa: E402

DOMAIN_ID = os.getpid() % 200 + 20


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(export_stripe_model(tmp_path_factory.mktemp("model") / "stripes.onnx"))


@pytest.fixture()
def ros():
    harness = RosHarness(DOMAIN_ID)
    yield harness
    harness.close()


def wait(future, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < deadline, "no answer from the parameter service"
        time.sleep(0.02)
    return future.result()


# ---- runtime ground.homography (item 9) --------------------------------------------------------------------
HOMOGRAPHY = [0.0, -0.02, 7.0, -0.01, 0.0, 6.4, 0.0, -0.001, 1.0]


def test_a_homography_arrives_from_the_parameter_service_as_an_array_and_is_accepted():
    check("ground.homography", array.array("d", HOMOGRAPHY))  # what rclpy hands the set-parameters gate


@pytest.mark.ros
def test_ground_homography_set_at_run_time_through_the_parameter_service(ros, model):
    node = ros.lanenet(model=model, tracking=False)
    client = AsyncParameterClient(ros.probe, "/lanenet")
    assert client.wait_for_services(timeout_sec=10.0)
    result = wait(client.set_parameters([Parameter("ground.homography", Parameter.Type.DOUBLE_ARRAY,
                                                   HOMOGRAPHY)])).results[0]
    assert result.successful, result.reason
    assert list(node.get_parameter("ground.homography").value) == HOMOGRAPHY
    bad = wait(client.set_parameters([Parameter("ground.homography", Parameter.Type.DOUBLE_ARRAY,
                                                [1.0, 2.0, 3.0])])).results[0]
    assert not bad.successful and "9 finite numbers" in bad.reason
    node.trigger_deactivate()
    node.trigger_cleanup()
    assert node.start() and node.params.ground_homography == tuple(HOMOGRAPHY)  # in force after a configure


# ---- decompression bombs (item 3) --------------------------------------------------------------------------
def jpeg_declaring(width: int, height: int) -> bytes:
    """A tiny real JPEG (16x16 pixels of data) whose start-of-frame header declares ``width`` x ``height``."""
    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny real PNG whose header chunk declares ``width`` x ``height`` (its checksum made to match)."""
    data = bytearray(cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def test_a_tiny_jpeg_declaring_8000x8000_is_refused_before_it_is_decoded():
    bomb = jpeg_declaring(8000, 8000)
    assert len(bomb) < 1000 and compressed_size(bomb) == ("jpeg", 8000, 8000)
    with pytest.raises(ImageError, match=r"8000x8000 .*over the limit of 16\.8 megapixels \(max_pixels\)"):
        decode_compressed(bomb)
    with pytest.raises(ImageError, match="max_pixels"):
        decode_compressed(png_declaring(8000, 8000))


def test_the_pixel_limit_is_a_setting_and_holds_for_raw_images_alike():
    assert MAX_PIXELS == 16 * 1024 * 1024
    frame = jpeg_declaring(640, 480)
    assert compressed_size(frame)[1:] == (640, 480)
    with pytest.raises(ImageError, match="max_pixels"):
        decode_compressed(frame, max_pixels=640 * 480 - 1)
    with pytest.raises(ImageError, match="max_pixels"):
        image_to_bgr("mono8", 640, 480, 640, bytes(640 * 480), max_pixels=100_000)
    assert image_to_bgr("mono8", 640, 480, 640, bytes(640 * 480), max_pixels=640 * 480).shape == (480, 640, 3)


@pytest.mark.ros
def test_the_node_refuses_a_decompression_bomb_and_its_max_pixels_applies_at_once(ros, model):
    node = ros.lanenet(model=model, tracking=False, input="compressed", warn_period=0.1)
    lanes = ros.collect(LaneArray, "lanes")
    pub = ros.publisher(CompressedImage, "image/compressed")
    bomb = jpeg_declaring(8000, 8000)
    ros.feed(pub, lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=bomb),
             lambda: node.stats.totals["bad"] >= 3)
    assert not lanes and node.stats.totals["processed"] == 0
    jpeg = cv2.imencode(".jpg", stripes_image(320, 240))[1].tobytes()
    good = lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=jpeg)  # noqa: E731
    ros.feed(pub, good, lambda: lanes)
    assert node.set_parameters([Parameter("max_pixels", value=320 * 240 - 1)])[0].successful
    bad = node.stats.totals["bad"]
    ros.feed(pub, good, lambda: node.stats.totals["bad"] >= bad + 3)
    assert node.params.max_pixels == 320 * 240 - 1
    raw = ros.lanenet(namespace="raw", model=model, tracking=False, max_pixels=1000)
    ros.feed(ros.publisher(Image, "raw/image"),
             lambda i: Image(header=camera_header(i), encoding="mono8", width=40, height=30, step=40,
                             data=bytes(1200)), lambda: raw.stats.totals["bad"] >= 3)
