"""`lanenet-bag`: rosbag2 bags of camera images (sqlite3 or mcap), read and written with `rosbags`.

Sources: a video file, a folder of images, or a synthetic drive from the generator (with its
ground truth written beside the bag as TuSimple-format labels keyed by timestamp, and its camera as
CameraInfo messages on the image topic's sibling ``camera_info``). No rclpy here.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lanenet_ros.fileio import atomic_write_text

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass
class BagImage:
    """One camera image read from a bag."""

    timestamp_ns: int  # when the bag recorded it
    stamp_ns: int  # header.stamp
    frame_id: str
    image: np.ndarray  # BGR uint8


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def labels_path(bag: Path) -> Path:
    """Where the ground truth of a synthetic bag lives: beside the bag directory."""
    return bag.with_name(bag.name + ".labels.json")


class ImageBagWriter:
    """Writes camera images to a new rosbag2 bag, atomically (a `.partial` directory renamed at the end).

    Args:
        path: bag directory to create; must not exist.
        topic: image topic, e.g. ``/camera/image_raw``.
        frame_id: header.frame_id of every image.
        storage: ``sqlite3`` or ``mcap``.
        compressed: write ``sensor_msgs/CompressedImage`` (JPEG) instead of ``Image`` (bgr8).
    """

    def __init__(self, path: Path, topic: str, frame_id: str, storage: str = "sqlite3", compressed: bool = False):
        from rosbags.rosbag2 import StoragePlugin, Writer

        if path.exists():
            raise FileExistsError(f"{path} exists already; choose another --out or remove it")
        self.path, self.frame_id, self.compressed = path, frame_id, compressed
        self.partial = path.with_name(path.name + ".partial")
        shutil.rmtree(self.partial, ignore_errors=True)
        plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
        self.store = _typestore()
        self.writer = Writer(self.partial, version=9, storage_plugin=plugin)
        self.writer.open()
        msgtype = COMPRESSED_TYPE if compressed else IMAGE_TYPE
        self.msgtype, self.topic = msgtype, topic
        self.connection = self.writer.add_connection(topic, msgtype, typestore=self.store)
        self.info_connection = None

    def write(self, image_bgr: np.ndarray, stamp_ns: int) -> None:
        """Append one image with header.stamp and bag time ``stamp_ns``."""
        types = self.store.types
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
            frame_id=self.frame_id)
        if self.compressed:
            ok, jpeg = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok, "JPEG encoding failed"
            msg = types[COMPRESSED_TYPE](header=header, format="bgr8; jpeg compressed bgr8", data=jpeg.ravel())
        else:
            h, w = image_bgr.shape[:2]
            msg = types[IMAGE_TYPE](header=header, height=h, width=w, encoding="bgr8", is_bigendian=0,
                                    step=w * 3, data=np.ascontiguousarray(image_bgr).reshape(-1))
        self.writer.write(self.connection, stamp_ns, self.store.serialize_cdr(msg, self.msgtype))

    def write_camera_info(self, camera: dict, stamp_ns: int) -> None:
        """Append a sensor_msgs/CameraInfo (``fx fy cx cy k1 k2 width height`` of the synthetic camera) on the
        image topic's sibling ``camera_info`` (``/camera/image_raw`` -> ``/camera/camera_info``)."""
        types = self.store.types
        if self.info_connection is None:
            topic = self.topic.rsplit("/", 1)[0] + "/camera_info"
            self.info_connection = self.writer.add_connection(topic, CAMERA_INFO_TYPE, typestore=self.store)
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
            frame_id=self.frame_id)
        c = camera
        k = np.array([c["fx"], 0, c["cx"], 0, c["fy"], c["cy"], 0, 0, 1], np.float64)
        roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        msg = types[CAMERA_INFO_TYPE](
            header=header, height=int(c["height"]), width=int(c["width"]), distortion_model="plumb_bob",
            d=np.array([c["k1"], c["k2"], 0, 0, 0], np.float64), k=k, r=np.eye(3).ravel(),
            p=np.array([c["fx"], 0, c["cx"], 0, 0, c["fy"], c["cy"], 0, 0, 0, 1, 0], np.float64),
            binning_x=0, binning_y=0, roi=roi)
        self.writer.write(self.info_connection, stamp_ns, self.store.serialize_cdr(msg, CAMERA_INFO_TYPE))

    def close(self) -> None:
        """Finish the bag and move it into place."""
        self.writer.close()
        self.partial.rename(self.path)

    def abort(self) -> None:
        """Drop everything written so far."""
        try:
            self.writer.close()
        finally:
            shutil.rmtree(self.partial, ignore_errors=True)


def image_topics(bag: Path) -> dict[str, str]:
    """Image topics in a bag and their message types."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return {c.topic: c.msgtype for c in reader.connections if c.msgtype in (IMAGE_TYPE, COMPRESSED_TYPE)}


def read_images(bag: Path, topic: str | None = None) -> Iterator[BagImage]:
    """Yield the camera images of ``bag`` in recorded order.

    Args:
        bag: rosbag2 directory (sqlite3 or mcap).
        topic: image topic; the only image topic of the bag when None.

    Raises:
        ValueError: no image topic, several without ``topic`` given, or ``topic`` is not an image topic.
    """
    from rosbags.rosbag2 import Reader

    from lanenet_ros.image_codec import decode_compressed, image_to_bgr

    topic = pick_topic(bag, topic)
    store = _typestore()
    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        for connection, timestamp, raw in reader.messages(connections=connections):
            msg = store.deserialize_cdr(raw, connection.msgtype)
            if connection.msgtype == COMPRESSED_TYPE:
                image = decode_compressed(bytes(msg.data))
            else:
                image = image_to_bgr(msg.encoding, msg.width, msg.height, msg.step, msg.data, msg.is_bigendian)
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            yield BagImage(timestamp, stamp, msg.header.frame_id, image)


def pick_topic(bag: Path, topic: str | None) -> str:
    """The image topic to read: ``topic`` checked against the bag, or its only image topic."""
    topics = image_topics(bag)
    if topic is not None:
        if topic not in topics:
            raise ValueError(f"{bag}: no image topic {topic!r}; image topics here: {sorted(topics) or 'none'}")
        return topic
    if len(topics) != 1:
        raise ValueError(f"{bag}: {len(topics)} image topics ({sorted(topics)}); choose one with --topic")
    return next(iter(topics))


def count_images(bag: Path, topic: str) -> int:
    """Number of messages on ``topic``."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return sum(c.msgcount for c in reader.connections if c.topic == topic)


def frames_from_video(path: Path) -> Iterator[np.ndarray]:
    """BGR frames of a video file, in order."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot open as a video (missing, or a format OpenCV cannot read)")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def frames_from_images(folder: Path) -> Iterator[np.ndarray]:
    """BGR images of a folder, in file-name order; unreadable files stop with their name."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{file}: not a readable image")
        yield image


def synth_frames(count: int, seed: int, width: int, height: int, fps: float) -> tuple[Iterator[np.ndarray], list]:
    """A synthetic drive's frames, and its TuSimple-format labels (filled in as the frames are drawn).

    The generator lives in ``lanenet_train`` (numpy and OpenCV only, no torch); it is imported here
    only when a synthetic bag is asked for.
    """
    from lanenet_train.synth import SynthConfig, iter_drive
    from lanenet_train.synth.writers import tusimple_h_samples, tusimple_lane_xs

    h_samples = tusimple_h_samples(height)
    labels: list[dict] = []

    def frames() -> Iterator[np.ndarray]:
        config = SynthConfig(width=width, height=height)
        for index, frame in enumerate(iter_drive(config, seed, count, fps)):
            labels.append({"raw_file": str(index), "h_samples": h_samples,
                           "lanes": [np.round(x, 1).tolist() for x in tusimple_lane_xs(frame, np.asarray(h_samples))],
                           "camera": frame.camera.to_dict()})
            yield frame.image

    return frames(), labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `lanenet-bag`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path, help="video file to turn into a bag")
    source.add_argument("--images", type=Path, help="folder of images (sorted by name)")
    source.add_argument("--synth", type=int, metavar="N", help="N frames of a synthetic drive (labels beside the bag)")
    parser.add_argument("--out", type=Path, required=True, help="bag directory to create")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="rosbag2 storage plugin")
    parser.add_argument("--topic", default="/camera/image_raw", help="image topic (default %(default)s)")
    parser.add_argument("--frame-id", default="camera", help="header.frame_id (default %(default)s)")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (default %(default)s)")
    parser.add_argument("--compressed", action="store_true", help="write CompressedImage (JPEG) instead of Image")
    parser.add_argument("--start", type=float, default=1_700_000_000.0, help="stamp of the first frame, seconds")
    parser.add_argument("--seed", type=int, default=7, help="synthetic drive: random seed")
    parser.add_argument("--width", type=int, default=1280, help="synthetic drive: image width")
    parser.add_argument("--height", type=int, default=720, help="synthetic drive: image height")
    parser.add_argument("--limit", type=int, default=0, help="video/images: at most this many frames (0: all)")


def make_bag(args: argparse.Namespace) -> int:
    """Write the bag the arguments describe; returns the number of frames written."""
    if args.rate <= 0:
        raise ValueError(f"--rate must be positive, got {args.rate}")
    labels: list[dict] | None = None
    if args.synth is not None:
        frames, labels = synth_frames(args.synth, args.seed, args.width, args.height, args.rate)
        total = args.synth
    else:
        frames = frames_from_video(args.video) if args.video else frames_from_images(args.images)
        total = args.limit or None
    period = round(1e9 / args.rate)
    start = round(args.start * 1e9)
    writer = ImageBagWriter(args.out, args.topic, args.frame_id, args.storage, args.compressed)
    count = 0
    try:
        for count, frame in enumerate(tqdm(frames, total=total, desc="bag", unit="frame"), start=1):
            writer.write(frame, start + (count - 1) * period)
            if labels is not None:  # the synthetic camera, for self-calibration (lanenet-replay)
                writer.write_camera_info(labels[count - 1]["camera"], start + (count - 1) * period)
            if args.limit and count >= args.limit:
                break
    except BaseException:
        writer.abort()
        raise
    writer.close()
    if labels is not None:
        stamped = [dict(label, timestamp_ns=start + i * period) for i, label in enumerate(labels[:count])]
        atomic_write_text(labels_path(args.out), "".join(json.dumps(row) + "\n" for row in stamped))
    return count


def main(argv: list[str] | None = None) -> int:
    """`lanenet-bag`: make a rosbag2 bag of camera images."""
    parser = argparse.ArgumentParser(prog="lanenet-bag", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        count = make_bag(args)
    except (ValueError, FileExistsError, OSError) as exc:
        print(f"lanenet-bag: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} frames to {args.out} ({args.storage}, {args.topic})")
    if args.synth is not None:
        print(f"ground truth: {labels_path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
