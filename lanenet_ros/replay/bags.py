"""`lanenet-bag`: rosbag2 bags of camera images (sqlite3 or mcap), read and written with `rosbags`.

Sources: a video file or a folder of images. A synthetic drive, with its ground truth beside the bag as
TuSimple-format labels keyed by timestamp (:func:`labels_path`), is made by the training toolkit's generator:
``lanenet-train synth --bag`` (the runtime never imports ``lanenet_train``). No rclpy here.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

SYNTH_COMMAND = "lanenet-train synth --bag --count N --out BAG"
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
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
        self.msgtype = msgtype
        self.connection = self.writer.add_connection(topic, msgtype, typestore=self.store)

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `lanenet-bag`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path, help="video file to turn into a bag")
    source.add_argument("--images", type=Path, help="folder of images (sorted by name)")
    source.add_argument("--synth", type=int, metavar="N", help=f"moved: {SYNTH_COMMAND} (the training toolkit)")
    parser.add_argument("--out", type=Path, required=True, help="bag directory to create")
    add_bag_options(parser)
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (default %(default)s)")
    for name, default in (("--seed", 7), ("--width", None), ("--height", None)):  # --synth's, for its pointer
        parser.add_argument(name, type=int, default=default, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help="at most this many frames (0: all)")


def add_bag_options(parser: argparse.ArgumentParser) -> None:
    """How a bag is written (`lanenet-bag` and `lanenet-train synth --bag`): storage, topic, frame id, ..."""
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="rosbag2 storage plugin")
    parser.add_argument("--topic", default="/camera/image_raw", help="image topic (default %(default)s)")
    parser.add_argument("--frame-id", default="camera", help="header.frame_id (default %(default)s)")
    parser.add_argument("--compressed", action="store_true", help="write CompressedImage (JPEG) instead of Image")
    parser.add_argument("--start", type=float, default=1_700_000_000.0, help="stamp of the first frame, seconds")


def write_bag(frames: Iterable[np.ndarray], args: argparse.Namespace, rate: float, total: int | None = None,
              limit: int = 0) -> list[int]:
    """Write camera images to the new bag ``args.out`` as :func:`add_bag_options` says, atomically.

    Args:
        frames: BGR images in order.
        args: ``out`` and the options of :func:`add_bag_options`.
        rate: frames per second (stamps ``args.start`` + i / rate).
        total: the number of frames, for the progress bar, when known.
        limit: stop after this many frames (0: all).

    Returns:
        The stamp (nanoseconds) of each frame written.

    Raises:
        ValueError: ``rate`` is not positive.
        FileExistsError: ``args.out`` exists.
    """
    if rate <= 0:
        raise ValueError(f"the frame rate must be positive, got {rate}")
    period, start = round(1e9 / rate), round(args.start * 1e9)
    writer = ImageBagWriter(args.out, args.topic, args.frame_id, args.storage, args.compressed)
    stamps: list[int] = []
    try:
        for frame in tqdm(frames, total=total, desc="bag", unit="frame"):
            stamps.append(start + len(stamps) * period)
            writer.write(frame, stamps[-1])
            if limit and len(stamps) >= limit:
                break
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return stamps


def make_bag(args: argparse.Namespace) -> int:
    """Write the bag the arguments of `lanenet-bag` describe; returns the number of frames written."""
    frames = frames_from_video(args.video) if args.video else frames_from_images(args.images)
    return len(write_bag(frames, args, args.rate, args.limit or None, args.limit))


def main(argv: list[str] | None = None) -> int:
    """`lanenet-bag`: make a rosbag2 bag of camera images."""
    parser = argparse.ArgumentParser(prog="lanenet-bag", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.synth is not None:  # the generator is the training toolkit's; the runtime does not import it
        size = "".join(f" --{k} {v}" for k, v in (("width", args.width), ("height", args.height)) if v)
        print(f"lanenet-bag: a synthetic drive is made by the training toolkit: lanenet-train synth --bag "
              f"--count {args.synth} --seed {args.seed} --fps {args.rate:g}{size} --out {args.out}", file=sys.stderr)
        return 2
    try:
        count = make_bag(args)
    except (ValueError, FileExistsError, OSError) as exc:
        print(f"lanenet-bag: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} frames to {args.out} ({args.storage}, {args.topic})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
