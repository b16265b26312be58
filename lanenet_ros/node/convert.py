"""ROS messages in and out of the lanenet node: images to BGR arrays, LaneFrames to mask, overlay, RViz markers
and diagnostics (the LaneArray is written straight to its serialized form: :mod:`lanenet_ros.node.wire`).

Every output carries the input image's header unchanged (stamp and frame id), except ground-plane markers,
which are expressed in the ground frame at the same stamp. Image input goes through cv_bridge where it is
installed and through :mod:`lanenet_ros.image_codec` otherwise; the field checks are the project's own either
way, so a bad message is refused with the same reason on every machine.
"""
from __future__ import annotations

import array
from collections.abc import Mapping, Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from lanenet_ros.image_codec import MAX_PIXELS, ImageError, decode_compressed, image_to_bgr, image_view
from lanenet_ros.lanes import DetectedLane, LaneFrame
from lanenet_ros.node.wire import WireCompressedImage, WireImage, ros_header
from lanenet_ros.overlay import lane_label, position_color_rgb

try:  # cv_bridge is optional: a ROS install has it, the pip environment does not
    from cv_bridge import CvBridge
except ImportError:  # pragma: no cover - depends on the machine
    CvBridge = None

_BRIDGE = CvBridge() if CvBridge is not None else None


def image_msg_to_bgr(msg: Image | WireImage, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/Image (or its fields read from the wire) as a (H, W, 3) uint8 BGR array (a view of
    ``msg.data`` for bgr8).

    Args:
        msg: the image message.
        max_pixels: largest width * height accepted.

    Returns:
        The picture in BGR order.

    Raises:
        ImageError: unknown encoding, bad or too big size, bad step, empty or truncated data (the reason in the
            message).
    """
    fields = (msg.encoding, msg.width, msg.height, msg.step, msg.data, msg.is_bigendian, max_pixels)
    if _BRIDGE is None or msg.encoding in ("bgr8", "8UC3"):  # ours: a view of the buffer, no copy
        return image_to_bgr(*fields)
    view = image_view(*fields)  # our checks
    if isinstance(msg, WireImage):  # cv_bridge wants the message
        msg = Image(header=ros_header(msg.header), height=msg.height, width=msg.width, encoding=msg.encoding,
                    is_bigendian=msg.is_bigendian, step=msg.step, data=bytes(msg.data))
    try:
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="bgr8")
    except Exception as exc:  # cv_bridge raises its own error types for what it cannot convert
        raise ImageError(f"cv_bridge cannot convert {msg.encoding} ({view.shape}): {exc}") from exc


def compressed_msg_to_bgr(msg: CompressedImage | WireCompressedImage, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/CompressedImage (JPEG or PNG) as a (H, W, 3) uint8 BGR array.

    Raises:
        ImageError: empty, truncated or corrupt data, absurd size or over ``max_pixels`` (read from the
            header, before decoding), or a depth stream.
    """
    return decode_compressed(msg.data, msg.format, max_pixels)


def _bytes_field(image: np.ndarray) -> array.array:
    """The pixels as the array.array('B') rclpy keeps in a uint8[] field (one copy, no per-byte checks)."""
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(image).data)
    return data


def bgr8_msg(image_bgr: np.ndarray, header: Header) -> Image:
    """A bgr8 sensor_msgs/Image of a (H, W, 3) uint8 array, with the given header."""
    height, width = image_bgr.shape[:2]
    # check_fields=True keeps the array.array as it is; unchecked, rclpy copies it item by item (10x slower)
    return Image(header=header, height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3,
                 data=_bytes_field(image_bgr), check_fields=True)


def mask_msg(class_mask: np.ndarray, header: Header) -> Image:
    """A mono8 sensor_msgs/Image whose pixel values are class ids (0 = background), with the given header."""
    height, width = class_mask.shape[:2]
    return Image(header=header, height=height, width=width, encoding="mono8", is_bigendian=0, step=width,
                 data=_bytes_field(class_mask.astype(np.uint8, copy=False)), check_fields=True)


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=min(round((seconds - sec) * 1e9), 999_999_999))


class MarkerBuilder:
    """Lanes as RViz markers: a LINE_STRIP and a TEXT_VIEW_FACING label per lane.

    Marker ids come from track ids (stable while a lane is tracked; lanes without a track id get ids from
    their index). Markers of lanes that disappeared are deleted; a frame without lanes sends DELETEALL.
    Lanes with ground coordinates are drawn in the ground frame; the others in the camera frame on a plane
    ``image_depth`` metres in front of the camera, where they line up with the picture in RViz's camera view.
    """

    UNTRACKED_ID_BASE = 1_000_000

    def __init__(self) -> None:
        self._previous: set[int] = set()

    def build(self, frame: LaneFrame, header: Header, ground_frame_id: str = "",
              intrinsics: Sequence[float] | None = None, lifetime: float = 0.5,
              image_depth: float = 2.0) -> MarkerArray:
        """The MarkerArray for one frame.

        Args:
            frame: the pipeline's result.
            header: the input image's header (its frame is the camera's optical frame).
            ground_frame_id: frame of lanes with ground points ("" = draw every lane in the image plane).
            intrinsics: (fx, fy, cx, cy) of the camera, or None to assume a 53 degree field of view.
            lifetime: seconds a marker lives without an update (0 = forever).
            image_depth: distance of the image plane in metres.

        Returns:
            The markers, deletions first.
        """
        out = MarkerArray()
        if not frame.lanes:
            out.markers.append(Marker(header=header, action=Marker.DELETEALL))
            self._previous = set()
            return out
        ids = [lane.track_id if lane.track_id > 0 else self.UNTRACKED_ID_BASE + i
               for i, lane in enumerate(frame.lanes)]
        for gone in sorted(self._previous - set(ids)):
            out.markers += [Marker(header=header, ns=ns, id=gone, action=Marker.DELETE)
                            for ns in ("lanes", "labels")]
        self._previous = set(ids)
        project = _image_plane(frame, intrinsics, image_depth)
        for marker_id, lane in zip(ids, frame.lanes, strict=True):
            if ground_frame_id and lane.ground_points is not None and len(lane.ground_points) > 1:
                ground = np.asarray(lane.ground_points, dtype=np.float64).reshape(-1, 2)
                points = [Point(x=x, y=y, z=0.0) for x, y in ground.tolist()]
                where, width = Header(stamp=header.stamp, frame_id=ground_frame_id), 0.12
            else:
                points, where, width = project(lane.points), header, 0.004 * image_depth
            out.markers += _lane_markers(lane, marker_id, points, where, width, lifetime)
        return out


def _image_plane(frame: LaneFrame, intrinsics: Sequence[float] | None, depth: float):
    """A function from (N, 2) pixel points to geometry_msgs/Points on the plane z = depth (optical frame)."""
    fx, fy, cx, cy = intrinsics if intrinsics is not None else (frame.width, frame.width,
                                                                 frame.width / 2.0, frame.height / 2.0)

    def project(pixels: np.ndarray) -> list[Point]:
        uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        scaled = ((uv - (cx, cy)) / (fx, fy) * depth).tolist()
        return [Point(x=x, y=y, z=float(depth)) for x, y in scaled]

    return project


def _lane_markers(lane: DetectedLane, marker_id: int, points: list[Point], header: Header, width: float,
                  lifetime: float) -> list[Marker]:
    r, g, b = (c / 255.0 for c in position_color_rgb(lane.position))
    color = ColorRGBA(r=r, g=g, b=b, a=1.0)
    life = _duration(lifetime)
    line = Marker(header=header, ns="lanes", id=marker_id, type=Marker.LINE_STRIP, action=Marker.ADD,
                  points=points, color=color, lifetime=life)
    line.pose.orientation.w = 1.0
    line.scale.x = width
    text = Marker(header=header, ns="labels", id=marker_id, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                  text=lane_label(lane), color=color, lifetime=life)
    text.pose.orientation.w = 1.0
    if points:
        far = points[-1]
        text.pose.position = Point(x=far.x, y=far.y, z=far.z + width * 2)
    text.scale.z = width * 6
    return [line, text]


def diagnostics_msg(stamp: Time, name: str, hardware_id: str, level: bytes, message: str,
                    values: Mapping[str, object]) -> DiagnosticArray:
    """One DiagnosticStatus in a DiagnosticArray.

    Args:
        stamp: time of the report.
        name: status name (the node's fully qualified name, so several cameras stay apart).
        hardware_id: what runs the work (the backend's name).
        level: DiagnosticStatus.OK / WARN / ERROR / STALE.
        message: one-line summary.
        values: key-value details (rendered with str()).

    Returns:
        The message for ``/diagnostics``.
    """
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    return DiagnosticArray(header=Header(stamp=stamp), status=[status])
