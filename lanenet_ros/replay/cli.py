"""`lanenet-replay`: run a bag's camera images through lanenet and report what it found.

Offline (default): every image through the same LanePipeline the node uses, as fast as the machine
allows. Live (``--live``): the images are published over ROS at the recorded rate into a running
lanenet node, and its LaneArray outputs are collected to measure true end-to-end latency and drops.
Either way: ``report.json``, plots, an overlay video and a printed summary in ``--out``. Offline, with
intrinsics (``--camera-info``, a CameraInfo topic in the bag, or ``--horizontal-fov``) the camera's height,
pitch and yaw are estimated from the lanes as the node does (docs/node.md, "Self-calibration"), printed, and
written to ``calibration.yaml``, a parameter file for the node. Offline, the summary also says where the ego
vehicle's bonnet was found (its edge's median row, and the ``decode.hood`` that would fix it there).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import cv2
from tqdm import tqdm

from lanenet_ros.calibrate import Intrinsics, MountingEstimator
from lanenet_ros.fileio import read_json_lines
from lanenet_ros.replay.bags import BagImage, Unreadable, count_images, labels_path, pick_topic, read_images
from lanenet_ros.replay.camera import (
    bag_camera_info,
    calibration_summary,
    format_calibration,
    load_camera_info,
    write_calibration_params,
)
from lanenet_ros.replay.report import ReplayLog, format_summary

EXIT_CODES = """exit codes:
  0  the whole bag replayed (live: the node answered at least --min-answered of the frames)
  2  nothing replayed: a bad argument, model or labels file, or a bag that cannot be opened
  3  part of the bag could not be read: the rest is replayed and reported, the damaged messages are named
  4  live: the node answered fewer than --min-answered of the frames published"""


class VideoSink:
    """Overlay frames into an mp4 file (written to a temporary name, renamed when closed)."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = path, fps
        self.tmp = path.with_name(path.stem + ".partial" + path.suffix)
        self.writer: cv2.VideoWriter | None = None

    def add(self, image) -> None:
        if self.writer is None:
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise OSError(f"{self.tmp}: OpenCV cannot write an mp4 video here")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.tmp.replace(self.path)


def load_labels(path: Path | None, bag: Path) -> list[dict] | None:
    """TuSimple-format label rows: ``path``, else the synthetic ground truth beside the bag, else None."""
    path = path or (labels_path(bag) if labels_path(bag).exists() else None)
    if path is None:
        return None
    return read_json_lines(path, ("h_samples", "lanes"), "label")


def replay_offline(args: argparse.Namespace, images: Iterator[BagImage], total: int, log: ReplayLog,
                   video: VideoSink) -> None:
    """Every image through one LanePipeline."""
    from lanenet_ros.decode.settings import parse_pairs
    from lanenet_ros.overlay import draw_overlay
    from lanenet_ros.pipeline import LanePipeline

    pipeline = LanePipeline(model_path=args.model, backend=args.backend,
                            decode_params=parse_pairs(getattr(args, "decode", [])))
    print(f"model: {pipeline.describe()}")
    log.hood_setting = pipeline.decoder.params.hood
    intrinsics = camera_intrinsics(args)
    for item in tqdm(images, total=total, desc="replay", unit="frame"):
        if pipeline.calibrator is None and (intrinsics or args.horizontal_fov):
            h, w = item.image.shape[:2]
            pipeline.set_calibrator(MountingEstimator(
                intrinsics or Intrinsics.from_fov(w, h, args.horizontal_fov), lane_width_m=args.lane_width,
                height_m=args.camera_height, estimate_roll=args.roll))
        start = time.perf_counter()
        frame = pipeline.process(item.image, stamp=item.stamp_ns)
        log.add(item.index, item.stamp_ns, frame, (time.perf_counter() - start) * 1000.0)
        video.add(draw_overlay(item.image, frame, pipeline.info.class_colors))
    if pipeline.calibrator is not None:
        status = pipeline.calibrator.status
        log.calibration = calibration_summary(status)
        print(format_calibration(status))
        if status.mounting is not None:
            write_calibration_params(args.out / "calibration.yaml", status, args.lane_width)
            print(f"calibration parameters: {args.out / 'calibration.yaml'} (lanenet-node --ros-args "
                  "--params-file FILE)")


def camera_intrinsics(args: argparse.Namespace) -> Intrinsics | None:
    """Intrinsics for self-calibration: ``--camera-info``, else the bag's first CameraInfo, else None."""
    if args.camera_info is not None:
        return load_camera_info(args.camera_info)
    return bag_camera_info(args.bag)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `lanenet-replay`."""
    parser.add_argument("bag", type=Path, help="rosbag2 directory (sqlite3 or mcap)")
    parser.add_argument("--model", type=Path, default=None,
                        help="ONNX model or TensorRT engine, or a packaged model by name: default, default_heads "
                             "(default: default_heads on a GPU backend, default on the CPU)")
    parser.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cpu, ... (default auto)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="TuSimple-format labels keyed by timestamp_ns or raw_file (default: BAG.labels.json)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--topic", default=None, help="image topic in the bag (default: its only image topic)")
    parser.add_argument("--live", action="store_true", help="publish into a running lanenet node instead")
    parser.add_argument("--node-namespace", default="", help="live: namespace of the lanenet node's topics")
    parser.add_argument("--image-topic", default="image", help="live: topic the node subscribes to (relative)")
    parser.add_argument("--rate-scale", type=float, default=1.0, help="live: play faster (>1) or slower (<1)")
    parser.add_argument("--wait", type=float, default=30.0, help="live: seconds to wait for the node to appear")
    parser.add_argument("--min-answered", type=_share, default=0.8, metavar="SHARE",
                        help="live: fail (exit 4) when the node answers fewer than this share of the frames "
                             "published, 0..1 (default %(default)s)")
    parser.add_argument("--fps", type=float, default=10.0, help="overlay video frame rate")
    parser.add_argument("--camera-info", type=Path, default=None,
                        help="offline: camera_info YAML (camera_calibration_parsers format) for self-calibration "
                             "(default: the bag's first CameraInfo, if any)")
    parser.add_argument("--horizontal-fov", type=float, default=0.0, metavar="DEG",
                        help="offline: without camera_info, self-calibrate with intrinsics from this horizontal "
                             "field of view (square pixels, centred, no distortion)")
    parser.add_argument("--lane-width", type=float, default=3.6,
                        help="offline: lane width in metres that sets the scale of the estimated camera height "
                             "(default %(default)s; 2.5-5)")
    parser.add_argument("--camera-height", type=float, default=None,
                        help="offline: known camera height in metres: estimate only pitch and yaw, and measure "
                             "the lane width")
    parser.add_argument("--roll", action="store_true",
                        help="offline: also estimate the camera's roll from the widths of the lanes beside the ego "
                             "lane (roads whose lanes are one width; the node's calibration.roll)")
    parser.add_argument("--decode", action="append", default=[], metavar="NAME=VALUE",
                        help="offline: decoder setting (DecodeParams, docs/node.md), e.g. --decode max_lanes=4; "
                             "live: set the node's decode.* parameters instead")


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Replay the bag and write the report; returns an exit code (see ``EXIT_CODES``)."""
    if not args.bag.is_dir():
        raise ValueError(f"{args.bag}: not a rosbag2 directory")
    topic = pick_topic(args.bag, args.topic)
    total = count_images(args.bag, topic)
    args.out.mkdir(parents=True, exist_ok=True)
    log = ReplayLog(load_labels(args.labels, args.bag))
    video = VideoSink(args.out / "overlay.mp4", args.fps)
    unreadable: list[Unreadable] = []
    images = read_images(args.bag, topic, unreadable)
    published = None
    if args.live:
        from lanenet_ros.replay.live import replay_live

        published = replay_live(args, images, total, log, video)
    else:
        replay_offline(args, images, total, log, video)
    video.close()
    lost = sum(item.count for item in unreadable)
    summary = log.write(args.out, published, {"bag_messages": total, "unreadable_messages": lost,
                                              "unreadable": [asdict(item) for item in unreadable]})
    print(format_summary(summary))
    print(f"report: {args.out / 'report.json'}; video: {args.out / 'overlay.mp4'}")
    if unreadable:
        where = "; ".join(item.describe() for item in unreadable[:3]) + ("; ..." if len(unreadable) > 3 else "")
        print(f"lanenet-replay: {lost} of {total} messages of {topic} could not be read ({where}); "
              "report.json lists them", file=sys.stderr)
        return 3
    if published and summary["frames"] < args.min_answered * published:
        print(f"lanenet-replay: the node answered {summary['frames']} of {published} frames published "
              f"({summary['frames'] / published:.0%}), fewer than --min-answered {args.min_answered:.0%}: "
              "the node is too slow for this rate (see its /diagnostics) or frames are lost on the way",
              file=sys.stderr)
        return 4
    return 0


def main(argv: list[str] | None = None) -> int:
    """`lanenet-replay`."""
    parser = argparse.ArgumentParser(prog="lanenet-replay", description=__doc__.splitlines()[0], epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, TimeoutError) as exc:
        print(f"lanenet-replay: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
