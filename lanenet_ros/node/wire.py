"""Camera messages read straight from their serialized bytes (the node's raw subscription), and the LaneArray
written straight to them.

rclpy turns a received ``sensor_msgs/Image`` into a Python message by copying its pixels twice more (into a C
struct, then into an ``array.array``): 0.7 ms for a 1280x720 frame, more than the rest of the conversion. The
node subscribes with ``raw=True`` instead and reads the fields here: the pixels stay a view of the received
bytes. The bytes are CDR (XCDR1, the encoding ROS 2's middlewares use for these messages), little or big
endian as the encapsulation header says; anything else is handed to rclpy's own deserialization.

Layout (alignment counted from the end of the 4-byte encapsulation header)::

    Image:           int32 sec, uint32 nanosec, string frame_id, uint32 height, uint32 width,
                     string encoding, uint8 is_bigendian, uint32 step, sequence<uint8> data
    CompressedImage: int32 sec, uint32 nanosec, string frame_id, string format, sequence<uint8> data

A string is a uint32 length (with the terminating NUL) and the bytes; a sequence a uint32 count and the items.

Out, rclpy's generated ``LaneArray`` with a few hundred ``Point32`` objects, then its conversion to a C struct
and CDR, cost more than the rest of publishing; :func:`lane_array_bytes` writes the same CDR from the lanes'
arrays (msg/LaneArray.msg, msg/Lane.msg), and the publisher sends the bytes as they are.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lanenet_ros.image_codec import ImageError
from lanenet_ros.lanes import DetectedLane, LaneFrame

_ENDIAN = {b"\x00\x01": "<", b"\x00\x00": ">"}  # CDR_LE, CDR_BE


@dataclass
class Stamp:
    sec: int
    nanosec: int


@dataclass
class WireHeader:
    """std_msgs/Header's fields."""

    stamp: Stamp
    frame_id: str


@dataclass
class WireImage:
    """sensor_msgs/Image's fields; ``data`` a view of the received bytes."""

    header: WireHeader
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


@dataclass
class WireCompressedImage:
    """sensor_msgs/CompressedImage's fields; ``data`` a view of the received bytes."""

    header: WireHeader
    format: str
    data: memoryview


class _Reader:
    def __init__(self, raw: bytes | bytearray | memoryview) -> None:
        self.raw = memoryview(raw).cast("B")
        self.end = self.raw[:2].tobytes()
        if len(self.raw) < 4 or self.end not in _ENDIAN:
            raise _UnparsedError
        self.order = _ENDIAN[self.end]
        self.pos = 4

    def _take(self, size: int, align: int) -> int:
        self.pos += -(self.pos - 4) % align
        start, self.pos = self.pos, self.pos + size
        if self.pos > len(self.raw):
            raise ImageError(f"truncated message: {len(self.raw)} bytes, a field needs {self.pos}")
        return start

    def u32(self) -> int:
        return struct.unpack_from(self.order + "I", self.raw, self._take(4, 4))[0]

    def i32(self) -> int:
        return struct.unpack_from(self.order + "i", self.raw, self._take(4, 4))[0]

    def u8(self) -> int:
        return self.raw[self._take(1, 1)]

    def string(self, field: str) -> str:
        size = self.u32()
        if size == 0:  # some writers leave even the NUL out of an empty string
            return ""
        start = self._take(size, 1)
        try:
            return bytes(self.raw[start:start + size - 1]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImageError(f"{field} is not UTF-8 text") from exc

    def octets(self) -> memoryview:
        size = self.u32()
        start = self._take(size, 1)
        return self.raw[start:start + size]

    def header(self) -> WireHeader:
        sec, nanosec = self.i32(), self.u32()
        return WireHeader(Stamp(sec, nanosec), self.string("header.frame_id"))


class _UnparsedError(Exception):
    """Bytes in an encoding this module does not read (rclpy deserializes them instead)."""


def parse_image(raw: bytes) -> WireImage | Any:
    """A serialized sensor_msgs/Image: its fields, the pixels a view of ``raw`` (rclpy's message for an
    encapsulation other than plain CDR).

    Raises:
        ImageError: the bytes end before the message does (the message names the field).
    """
    try:
        r = _Reader(raw)
    except _UnparsedError:
        return _deserialize(raw, "Image")
    header = r.header()
    height, width = r.u32(), r.u32()
    encoding = r.string("encoding")
    is_bigendian = r.u8()
    step = r.u32()
    return WireImage(header, height, width, encoding, is_bigendian, step, r.octets())


def parse_compressed(raw: bytes) -> WireCompressedImage | Any:
    """A serialized sensor_msgs/CompressedImage: its fields, the data a view of ``raw`` (rclpy's message for
    an encapsulation other than plain CDR).

    Raises:
        ImageError: the bytes end before the message does.
    """
    try:
        r = _Reader(raw)
    except _UnparsedError:
        return _deserialize(raw, "CompressedImage")
    header = r.header()
    return WireCompressedImage(header, r.string("format"), r.octets())


def ros_header(header: WireHeader | Any) -> Any:
    """A std_msgs/Header of a parsed header (a message's own is returned as it is)."""
    if not isinstance(header, WireHeader):
        return header
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec), frame_id=header.frame_id)


def _deserialize(raw: bytes, kind: str) -> Any:
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage, Image

    return deserialize_message(bytes(raw), Image if kind == "Image" else CompressedImage)


# LaneArray.CALIBRATION_* by LaneFrame.calibration (test_wire checks them against the generated message)
CALIBRATION = {"": 0, "given": 1, "estimated": 2}


def lane_array_bytes(frame: LaneFrame, header: WireHeader | Any, ground_frame_id: str = "") -> bytes:
    """A LaneFrame as a serialized lanenet_ros/LaneArray (little-endian CDR) carrying the input image's header.

    Args:
        frame: the pipeline's result.
        header: the input image's header (a parsed one or a std_msgs/Header), copied unchanged.
        ground_frame_id: vehicle frame of the ground-plane fields; written only when a lane has them (with the
            frame's ``calibration``; else the message says none).

    Returns:
        What ``rclpy.serialization.serialize_message`` gives for the same message, up to alignment padding.
    """
    out = _Writer()
    out.pack("iI", header.stamp.sec, header.stamp.nanosec)
    out.string(header.frame_id)
    out.pack("III", frame.width, frame.height, len(frame.lanes))
    grounded = False
    for lane in frame.lanes:
        grounded |= _write_lane(out, lane)
    out.pack("ii", frame.ego_left_index, frame.ego_right_index)
    out.string(ground_frame_id if grounded else "")
    out.buf.append(CALIBRATION.get(frame.calibration, 0) if grounded else 0)
    return bytes(out.buf)


def _write_lane(out: _Writer, lane: DetectedLane) -> bool:
    """One lanenet_ros/Lane; whether it has ground fields."""
    out.pack("IBBBxf", lane.track_id, lane.position, lane.marking_type, lane.color, lane.confidence)
    out.array(np.asarray(lane.image_coeffs, "<f8").ravel(), 8)
    out.pack("ff", lane.y_min, lane.y_max)
    out.points(lane.points)
    ground = lane.ground_coeffs is not None and lane.ground_x_range is not None
    out.buf.append(ground)
    if ground:
        c = [*np.asarray(lane.ground_coeffs, np.float64).ravel()[:4].tolist(), 0.0, 0.0, 0.0][:4]
        out.pack("dddd", *c)
        out.pack("ff", *lane.ground_x_range)
        out.points(lane.ground_points)
    else:
        out.pack("dddd", 0.0, 0.0, 0.0, 0.0)
        out.pack("ffI", 0.0, 0.0, 0)
    return ground


class _Writer:
    """CDR little-endian, each field aligned to its size counted from the end of the encapsulation header."""

    def __init__(self) -> None:
        self.buf = bytearray(b"\x00\x01\x00\x00")  # CDR_LE, no options

    def _align(self, size: int) -> None:
        self.buf += bytes(-(len(self.buf) - 4) % size)

    def pack(self, fmt: str, *values: Any) -> None:
        """Fields of one struct format, aligned to the first's size (the format pads the rest)."""
        self._align(struct.calcsize(fmt[0]))
        self.buf += struct.pack("<" + fmt, *values)

    def string(self, text: str) -> None:
        data = text.encode("utf-8")
        self.pack("I", len(data) + 1)
        self.buf += data + b"\x00"

    def array(self, values: np.ndarray, size: int) -> None:
        """A sequence of numbers already in their little-endian type (``size`` bytes each)."""
        self.pack("I", len(values))
        if len(values):
            self._align(size)
            self.buf += values.tobytes()

    def points(self, points: Sequence[Any] | np.ndarray | None) -> None:
        """A geometry_msgs/Point32[] of (N, 2) points, z = 0."""
        xy = np.zeros((0, 2)) if points is None else np.asarray(points).reshape(-1, 2)
        xyz = np.zeros((len(xy), 3), "<f4")
        xyz[:, :2] = xy
        self.pack("I", len(xyz))
        self.buf += xyz.tobytes()
