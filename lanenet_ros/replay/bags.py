"""`lanenet-bag`: rosbag2 bags of camera images (sqlite3 or mcap), read and written with `rosbags`.

Sources: a video file or a folder of images. A synthetic drive, with its ground truth beside the bag as
TuSimple-format labels keyed by timestamp (:func:`labels_path`) and its camera as CameraInfo on the image
topic's sibling ``camera_info``, is made by the training toolkit's generator:
``lanenet-train synth --bag`` (the runtime never imports ``lanenet_train``). No rclpy here.

Reading tolerates damage: a message that cannot be read is listed (:class:`Unreadable`) and reading goes on;
damage to the file's own structure ends the reading there, listing the messages not reached. mcap bags
written here carry chunk checksums (as ``ros2 bag record`` writes them), so bytes changed inside a picture
are found; sqlite3 bags have no checksums, and such a change there cannot be noticed.
"""
from __future__ import annotations

import argparse
import mmap
import re
import shutil
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lanenet_ros.image_codec import ImageError, clip, decode_compressed

SYNTH_COMMAND = "lanenet-train synth --bag --count N --out BAG"

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


class BagError(ValueError):
    """A bag, or some of its messages, that cannot be read; the message says which and why."""


@dataclass
class BagImage:
    """One camera image read from a bag."""

    timestamp_ns: int  # when the bag recorded it
    stamp_ns: int  # header.stamp
    frame_id: str
    image: np.ndarray  # BGR uint8
    index: int = 0  # position among the topic's messages in the bag, from 0


@dataclass(frozen=True)
class Unreadable:
    """``count`` messages of the image topic, from position ``index`` (0-based), that could not be read."""

    index: int
    count: int
    reason: str

    def describe(self) -> str:
        """``#4: corrupt JPEG ...`` or ``#6-#11: ...``."""
        where = f"#{self.index}" if self.count == 1 else f"#{self.index}-#{self.index + self.count - 1}"
        return f"{where}: {self.reason}"


def _failure(exc: BaseException) -> str:
    """One short line for an error of the storage libraries (their exception types vary with the damage)."""
    return clip(f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no detail'}", 200)


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
        """Finish the bag (with chunk checksums in an mcap file) and move it into place."""
        self.writer.close()
        for file in self.partial.glob("*.mcap"):
            seal_mcap_chunks(file)
        self.partial.rename(self.path)

    def abort(self) -> None:
        """Drop everything written so far."""
        try:
            self.writer.close()
        finally:
            shutil.rmtree(self.partial, ignore_errors=True)


_MCAP_CHUNK, _MCAP_DATA_END, _MCAP_FOOTER = 0x06, 0x0F, 0x02


def seal_mcap_chunks(path: Path) -> None:
    """Write the checksum of each uncompressed chunk of an mcap file into its header, in place.

    rosbags writes 0 there ("no checksum"), so a changed byte inside a picture would go unnoticed; readers
    (rosbags, ``ros2 bag``) check a checksum that is there.
    """
    with open(path, "r+b") as file, mmap.mmap(file.fileno(), 0) as data:
        pos = 8  # after the magic
        while pos + 9 <= len(data) and data[pos] not in (_MCAP_DATA_END, _MCAP_FOOTER):
            (length,) = struct.unpack_from("<Q", data, pos + 1)
            body = pos + 9
            if data[pos] == _MCAP_CHUNK:  # start, end, uncompressed size, crc, compression, records
                (name_len,) = struct.unpack_from("<I", data, body + 28)
                if name_len == 0:
                    (size,) = struct.unpack_from("<Q", data, body + 32)
                    start = body + 40
                    struct.pack_into("<I", data, body + 24, zlib.crc32(data[start:start + size]))
            pos = body + length


@contextmanager
def _open_bag(bag: Path):
    """An open rosbags Reader; a bag that cannot be opened raises :class:`BagError` with the reason."""
    from rosbags.rosbag2 import Reader

    try:
        reader = Reader(bag)
        reader.open()
    except Exception as exc:  # damage makes rosbags, apsw and the YAML parser fail each in their own way
        raise BagError(f"{bag}: cannot open the bag: {_failure(exc)}") from exc
    try:
        yield reader
    finally:
        with suppress(Exception):  # closing a damaged file can fail too; there is nothing left to lose
            reader.close()


def image_topics(bag: Path) -> dict[str, str]:
    """Image topics in a bag and their message types."""
    with _open_bag(bag) as reader:
        return {c.topic: c.msgtype for c in reader.connections if c.msgtype in (IMAGE_TYPE, COMPRESSED_TYPE)}


def read_images(bag: Path, topic: str | None = None, unreadable: list[Unreadable] | None = None,
                ) -> Iterator[BagImage]:
    """Yield the camera images of ``bag`` in recorded order.

    Args:
        bag: rosbag2 directory (sqlite3 or mcap).
        topic: image topic; the only image topic of the bag when None.
        unreadable: where the messages that cannot be read are listed: reading goes on after a damaged
            message, and ends at damage to the file's structure (the messages not reached are listed). None:
            the first one raises :class:`BagError`.

    Raises:
        BagError: a bag that cannot be opened, or (``unreadable`` None) a message that cannot be read.
        ValueError: no image topic, several without ``topic`` given, or ``topic`` is not an image topic.
    """
    def note(item: Unreadable) -> None:
        if unreadable is None:
            raise BagError(f"{bag}: message {item.describe()}")
        unreadable.append(item)

    topic = pick_topic(bag, topic)
    store = _typestore()
    with _open_bag(bag) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        total = sum(c.msgcount for c in connections)
        messages, index = reader.messages(connections=connections), 0
        while True:
            try:
                message = next(messages, None)
            except Exception as exc:  # the storage itself is damaged here: nothing further can be read
                note(Unreadable(index, max(1, total - index), f"the bag's file is damaged: {_failure(exc)}"))
                return
            if message is None:
                break
            try:
                item = _bag_image(store, *message, index)
            except Exception as exc:  # a damaged message: its CDR or its picture
                note(Unreadable(index, 1, _failure(exc)))
            else:
                yield item
            index += 1
        if index < total:
            note(Unreadable(index, total - index, f"missing: metadata.yaml lists {total} messages, the file "
                                                  f"holds {index}"))


def _bag_image(store, connection, timestamp: int, raw: bytes, index: int) -> BagImage:
    from lanenet_ros.image_codec import image_to_bgr

    msg = store.deserialize_cdr(raw, connection.msgtype)
    if connection.msgtype == COMPRESSED_TYPE:
        image = decode_compressed(bytes(msg.data))
    else:
        image = image_to_bgr(msg.encoding, msg.width, msg.height, msg.step, msg.data, msg.is_bigendian)
    stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
    return BagImage(timestamp, stamp, msg.header.frame_id, image, index)


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
    """Number of messages on ``topic`` (as the bag's metadata declares them)."""
    with _open_bag(bag) as reader:
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
        yield _read_image_file(file)


def _read_image_file(file: Path) -> np.ndarray:
    """A JPEG or PNG file checked as the node checks a CompressedImage (whole, not damaged, not too big)."""
    data = file.read_bytes()
    if file.suffix.lower() == ".bmp":
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{file}: not a readable image")
        return image
    try:
        return decode_compressed(data)
    except ImageError as exc:
        raise ValueError(f"{file}: not a readable image ({exc})") from exc


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
    parser.add_argument("--start", type=float, default=1_700_000_000.0,
                        help="stamp of the first frame, seconds since 1970 (until early 2038)")


_TOPIC = re.compile(r"/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
LAST_START_S = 2**31 - 10**6
"""Latest --start: header stamps count seconds in 32 bits; this leaves 11 days of recording after it."""


def check_bag_options(args: argparse.Namespace, rate: float, rate_flag: str = "--rate") -> None:
    """Refuse options that would fail halfway through writing the bag (or exhaust the machine).

    Raises:
        ValueError: naming the option (``rate_flag`` for the frame rate) and what is allowed.
    """
    if not 0.001 <= rate <= 10_000:
        raise ValueError(f"{rate_flag} must be between 0.001 and 10000 frames per second, got {rate}")
    if not 0 <= args.start <= LAST_START_S:
        raise ValueError(f"--start must be between 0 and {LAST_START_S} seconds, got {args.start}")
    if not _TOPIC.fullmatch(args.topic) or "__" in args.topic:
        raise ValueError(f"--topic {clip(repr(args.topic), 80)} is not a valid ROS topic name (letters, digits, "
                         "single underscores, / between the parts)")


def write_bag(frames: Iterable[np.ndarray], args: argparse.Namespace, rate: float, total: int | None = None,
              limit: int = 0, rate_flag: str = "--rate",
              camera_of: Callable[[int], Mapping[str, float]] | None = None) -> list[int]:
    """Write camera images to the new bag ``args.out`` as :func:`add_bag_options` says, atomically.

    Args:
        frames: BGR images in order.
        args: ``out`` and the options of :func:`add_bag_options`.
        rate: frames per second (stamps ``args.start`` + i / rate).
        total: the number of frames, for the progress bar, when known.
        limit: stop after this many frames (0: all).
        rate_flag: the option that gave ``rate``, for messages.
        camera_of: the camera of frame i (``fx fy cx cy k1 k2 width height``), written as a CameraInfo beside
            each image (:meth:`ImageBagWriter.write_camera_info`); None writes none.

    Returns:
        The stamp (nanoseconds) of each frame written.

    Raises:
        ValueError: an option out of range (:func:`check_bag_options`), or a frame that cannot be read.
        FileExistsError: ``args.out`` exists.
    """
    check_bag_options(args, rate, rate_flag)
    period, start = round(1e9 / rate), round(args.start * 1e9)
    writer = ImageBagWriter(args.out, args.topic, args.frame_id, args.storage, args.compressed)
    stamps: list[int] = []
    try:
        for frame in tqdm(frames, total=total, desc="bag", unit="frame"):
            stamps.append(start + len(stamps) * period)
            writer.write(frame, stamps[-1])
            if camera_of is not None:  # the camera of each frame, for self-calibration (lanenet-replay)
                writer.write_camera_info(camera_of(len(stamps) - 1), stamps[-1])
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
