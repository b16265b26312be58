"""`lanenet-train inference -e SPEC -i IMAGES_OR_VIDEO -o OUT -m MODEL [-k KEY]`.

Runs a trained checkpoint on a folder of images, one image or a video, and writes into OUT one overlay
image per frame (``overlays/``), the lanes found per frame (``lanes.jsonl``, camera pixels) and all
overlays merged into ``overlay.mp4``, as the Apollo lane-mark project's visualisation script does.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lanenet_ros.fileio import atomic_write_text
from lanenet_ros.lanes import LaneFrame
from lanenet_ros.overlay import draw_overlay
from lanenet_train.checkpoint import CheckpointError
from lanenet_train.distributed import check_device
from lanenet_train.spec import SpecError, load_spec

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lanenet-train inference``."""
    parser.add_argument("-e", "--experiment_spec", required=True,
                        help="spec file (its evaluation_config.batch_size is used)")
    parser.add_argument("-i", "--input", required=True, help="image folder, single image or video file")
    parser.add_argument("-o", "--output_dir", required=True, help="folder for overlays, lanes.jsonl, overlay.mp4")
    parser.add_argument("-m", "--model", required=True, help="training checkpoint or exported .onnx")
    parser.add_argument("-k", "--key", default=None, help="passphrase of an encrypted checkpoint")
    parser.add_argument("--fps", type=float, default=0.0, help="video frame rate (default: the input's, or 10)")
    parser.add_argument("--no-video", action="store_true", help="write overlay images only")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--decode", action="append", default=[], metavar="NAME=VALUE",
                        help="decoder setting (after evaluation_config.decode), e.g. --decode max_lanes=5")


def read_frames(source: str | Path) -> tuple[Iterator[tuple[str, np.ndarray]], float]:
    """Frames of an image folder, an image or a video, with the source frame rate (0 if unknown).

    Raises:
        FileNotFoundError: nothing readable at ``source``.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"{source}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        return ((p.stem, _imread(p)) for p in files), 0.0
    if source.suffix.lower() in IMAGE_EXTENSIONS:
        return iter([(source.stem, _imread(source))]), 0.0
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise FileNotFoundError(f"{source}: not an image folder, an image or a readable video")
    return _video_frames(capture), float(capture.get(cv2.CAP_PROP_FPS) or 0.0)


def _imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read this image")
    return image


def _video_frames(capture: cv2.VideoCapture) -> Iterator[tuple[str, np.ndarray]]:
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            capture.release()
            return
        yield f"{index:06d}", frame
        index += 1


def frame_record(name: str, frame: LaneFrame) -> dict:
    """One line of ``lanes.jsonl``: the lanes of a frame in camera pixels."""
    return {"frame": name, "width": frame.width, "height": frame.height,
            "ego_left_index": frame.ego_left_index, "ego_right_index": frame.ego_right_index,
            "lanes": [{"points": np.round(lane.points, 1).tolist(), "confidence": round(float(lane.confidence), 3),
                       "position": lane.position.name, "type": lane.marking_type.name, "color": lane.color.name}
                      for lane in frame.lanes]}


class VideoSink:
    """Writes overlays into an mp4 (``mp4v``), opened lazily at the first frame's size."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps, self.writer = path, fps, None

    def write(self, image: np.ndarray) -> None:
        """Append one BGR frame (frames of another size are resized to the first one's)."""
        if self.writer is None:
            self.size = (image.shape[1], image.shape[0])
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)

    def close(self) -> None:
        """Finish the file."""
        if self.writer is not None:
            self.writer.release()


def run(args: argparse.Namespace) -> int:
    """Run inference; returns the exit code (2 for bad inputs)."""
    from tqdm import tqdm

    from lanenet_ros.decode.settings import parse_pairs
    from lanenet_train.predict import Predictor

    try:
        spec = load_spec(args.experiment_spec, check_paths=False)
        params = parse_pairs([*spec.evaluation_config.decode, *args.decode])
        predictor = Predictor(args.model, args.key, check_device(args.device), params)
        frames, source_fps = read_frames(args.input)
    except (SpecError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    video = None if args.no_video else VideoSink(out / "overlay.mp4", args.fps or source_fps or 10.0)
    records, batch = [], []
    for item in tqdm(frames, desc="inference", unit="frame"):
        batch.append(item)
        if len(batch) == spec.evaluation_config.batch_size:
            records += _process(predictor, batch, out, video)
            batch = []
    records += _process(predictor, batch, out, video)
    if video is not None:
        video.close()
    atomic_write_text(out / "lanes.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    print(f"{len(records)} frames -> {out}")
    return 0


def _process(predictor, batch: list[tuple[str, np.ndarray]], out: Path, video: VideoSink | None) -> list[dict]:
    if not batch:
        return []
    records = []
    for (name, image), frame in zip(batch, predictor([image for _, image in batch]), strict=True):
        overlay = draw_overlay(image, frame, predictor.info.class_colors)
        cv2.imwrite(str(out / "overlays" / f"{name}.jpg"), overlay)
        if video is not None:
            video.write(overlay)
        records.append(frame_record(name, frame))
    return records
