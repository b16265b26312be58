"""Camera messages read from their serialized bytes (lanenet_ros.node.wire) against rclpy's own serialization."""
from __future__ import annotations

import struct

import numpy as np
import pytest

pytest.importorskip("rclpy")
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from lanenet_ros.image_codec import ImageError
from lanenet_ros.node.convert import image_msg_to_bgr
from lanenet_ros.node.wire import parse_compressed, parse_image, ros_header


def header(frame_id: str) -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = -3, 999_999_999
    return h


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera_optical_frame", "é"])
@pytest.mark.parametrize("encoding", ["mono8", "bgr8", "rgba8"])
def test_image_fields_and_pixels_read_from_the_bytes(frame_id: str, encoding: str) -> None:
    channels = {"mono8": 1, "bgr8": 3, "rgba8": 4}[encoding]
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7 * channels + 3), dtype=np.uint8)  # padded rows
    msg = Image(header=header(frame_id), height=5, width=7, encoding=encoding, is_bigendian=1,
                step=7 * channels + 3, data=pixels.tobytes())
    raw = serialize_message(msg)
    got = parse_image(raw)
    assert (got.height, got.width, got.encoding, got.is_bigendian, got.step) == (5, 7, encoding, 1, 7 * channels + 3)
    assert got.header.frame_id == frame_id and (got.header.stamp.sec, got.header.stamp.nanosec) == (-3, 999_999_999)
    assert bytes(got.data) == pixels.tobytes() and got.data.obj is raw  # a view of the received bytes
    assert ros_header(got.header) == msg.header


def test_compressed_fields_read_from_the_bytes() -> None:
    msg = CompressedImage(header=header("cam"), format="jpeg", data=bytes(range(200)))
    raw = serialize_message(msg)
    got = parse_compressed(raw)
    assert got.format == "jpeg" and bytes(got.data) == bytes(range(200)) and got.header.frame_id == "cam"


def test_big_endian_bytes() -> None:
    def string(text: str) -> bytes:
        data = text.encode() + b"\0"
        return struct.pack(">I", len(data)) + data

    body = struct.pack(">iI", 7, 8) + string("cam") + struct.pack(">II", 1, 2) + string("mono8")
    body += b"\x00" + b"\0" * (-(len(body) + 1) % 4) + struct.pack(">I", 2) + struct.pack(">I", 2) + b"\x05\x06"
    got = parse_image(b"\x00\x00\x00\x00" + body)
    assert (got.header.stamp.sec, got.header.frame_id, got.height, got.width, got.encoding) == (7, "cam", 1, 2, "mono8")
    assert bytes(got.data) == b"\x05\x06"


def test_every_truncation_is_an_image_error_and_the_converter_checks_the_rest() -> None:
    msg = Image(header=header("cam"), height=2, width=3, encoding="bgr8", is_bigendian=0, step=9, data=bytes(18))
    raw = serialize_message(msg)
    for cut in range(4, len(raw)):
        with pytest.raises(ImageError):
            parsed = parse_image(raw[:cut])
            image_msg_to_bgr(parsed)  # the data field was cut: the converter refuses its size
    assert image_msg_to_bgr(parse_image(raw)).shape == (2, 3, 3)
