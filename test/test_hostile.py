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


# ---- what the C decoders print, and user strings in log lines (item 8) -------------------------------------
def noisy_picture() -> np.ndarray:
    return (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)


def damaged_jpeg() -> bytes:
    """A JPEG whose headers are whole but whose compressed pixels are overwritten: libjpeg warns and fills in."""
    data = bytearray(cv2.imencode(".jpg", noisy_picture())[1].tobytes())
    for i in range(data.index(b"\xff\xda") + 30, len(data) - 4, 5):
        data[i] = 0x5A
    return bytes(data)


def test_a_damaged_jpeg_is_refused_with_libjpegs_reason_and_nothing_reaches_stderr(capfd):
    with pytest.raises(ImageError, match=r"corrupt JPEG.*Corrupt JPEG data: premature end of data segment"):
        decode_compressed(damaged_jpeg())
    assert capfd.readouterr().err == ""


def test_harmless_jpeg_warnings_are_silenced_and_the_picture_kept(capfd):
    data = cv2.imencode(".jpg", noisy_picture())[1].tobytes()
    sof = data.index(b"\xff\xc0")
    end = sof + 2 + int.from_bytes(data[sof + 2:sof + 4], "big")
    padded = data[:end] + b"\x01\x02\x03" + data[end:]  # libjpeg: "3 extraneous bytes before marker 0xc4"
    assert np.array_equal(decode_compressed(padded), decode_compressed(data))
    assert capfd.readouterr().err == ""


def test_a_corrupt_png_says_what_libpng_found_and_nothing_reaches_stderr(capfd):
    data = bytearray(cv2.imencode(".png", noisy_picture())[1].tobytes())
    data[data.index(b"IDAT") + 100] ^= 0xFF
    with pytest.raises(ImageError, match=r"corrupt PNG.*libpng error: IDAT: CRC error"):
        decode_compressed(bytes(data))
    assert capfd.readouterr().err == ""


def test_other_output_during_a_decode_still_reaches_stderr(capfd):
    from lanenet_ros.image_codec import decoder_messages

    with decoder_messages() as said:
        os.write(2, b"[INFO] [1.0] [other_node]: written by another thread meanwhile\n")
        os.write(2, b"Corrupt JPEG data: bad Huffman code\n")
    assert said == ["Corrupt JPEG data: bad Huffman code"]
    assert capfd.readouterr().err == "[INFO] [1.0] [other_node]: written by another thread meanwhile\n"


def test_a_64_kib_encoding_name_is_cut_short_in_the_reason():
    with pytest.raises(ImageError) as caught:
        image_to_bgr("x" * 65536, 4, 3, 12, bytes(36))
    assert len(str(caught.value)) < 600 and "65536 characters" in str(caught.value)
    with pytest.raises(ImageError) as caught:
        decode_compressed(b"\x89PNG", "compressedDepth " * 4096)
    assert len(str(caught.value)) < 600


@pytest.mark.ros
def test_bad_frames_leave_only_throttled_short_lines_in_the_log(ros, model, capfd):
    node = ros.lanenet(model=model, tracking=False, input="compressed", warn_period=60.0,
                       **{"qos.reliability": "reliable", "qos.depth": 50})
    pub = ros.publisher(CompressedImage, "image/compressed", depth=100)
    damaged = damaged_jpeg()
    ros.feed(pub, lambda i: CompressedImage(header=camera_header(i), format="jpeg", data=damaged),
             lambda: node.stats.totals["bad"] >= 40, period=0.01)
    raw = ros.lanenet(namespace="raw", model=model, tracking=False, warn_period=60.0)
    ros.feed(ros.publisher(Image, "raw/image"),
             lambda i: Image(header=camera_header(i), encoding="e" * 65536, width=4, height=3, step=12,
                             data=bytes(36)), lambda: raw.stats.totals["bad"] >= 5)
    err = capfd.readouterr().err
    assert err.count("Corrupt JPEG data") == 1  # in the one warning, as its reason
    assert err.count("skipped a bad image") == 2  # one per node: the rest within warn_period
    assert max(len(line) for line in err.splitlines()) < 1000
