"""Write synthetic frames in the real datasets' formats: TuSimple, CULane and Apollo lane marks.

Each format splits into a per-frame part (image, per-image label files), done in worker processes, and a
per-dataset part (label lists), done once at the end with atomic writes. ``camera_params.jsonl`` beside
the data gives every frame's camera and the lanes' attributes and ground points.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanenet_ros.fileio import atomic_write_bytes, atomic_write_text
from lanenet_ros.lanes import Position
from lanenet_train.synth.markings import SynthLane
from lanenet_train.synth.render import SynthFrame, describe_lanes

FORMATS = ("tusimple", "culane", "apollo")
CAMERA_FILE = "camera_params.jsonl"
PARTS_DIR = ".camera_params.parts"
# The lines TuSimple and CULane label: those of the ego lane and of its two neighbours, left to right.
# Lines further out stay unlabelled, as in the real datasets (TuSimple scores at most 4 lanes per frame).
BENCHMARK_SLOTS = (Position.SECOND_LEFT, Position.EGO_LEFT, Position.EGO_RIGHT, Position.SECOND_RIGHT)


@dataclass(frozen=True)
class FrameKey:
    """Where a frame goes: its split, its drive (or group of independent frames) and number in it."""

    index: int
    split: str
    group: int
    number: int


def tusimple_h_samples(height: int) -> list[int]:
    """TuSimple's label rows: every 10 px from 160 to 710 at 720 px, scaled to other heights."""
    start = round(height * 160 / 720 / 10.0) * 10
    return list(range(start, height, 10))


def lane_x_at_rows(points: np.ndarray, rows: np.ndarray, width: int) -> np.ndarray:
    """x of a near-to-far image polyline at the given rows; NaN where the lane is absent or outside.

    Args:
        points: (N, 2) image points ordered near (large y) to far (small y).
        rows: image rows.
        width: image width (x outside [0, width) counts as absent).

    Returns:
        (len(rows),) float x values.
    """
    ys, xs = points[::-1, 1], points[::-1, 0]
    keep = np.concatenate([[True], np.diff(ys) > 1e-9])
    ys, xs = ys[keep], xs[keep]
    rows = np.asarray(rows, float)
    x = np.interp(rows, ys, xs)
    absent = (rows < ys[0]) | (rows > ys[-1]) | (x < 0) | (x > width - 1)
    return np.where(absent, np.nan, x)


def benchmark_lanes(frame: SynthFrame, rows: np.ndarray, all_lanes: bool = False,
                    keep: Callable[[SynthLane], bool] | None = None) -> list[tuple[SynthLane, np.ndarray]]:
    """The labelled lanes (:data:`BENCHMARK_SLOTS`, left to right) with their x at ``rows``, NaN where absent.

    Lanes with no point inside the image are left out. ``all_lanes`` labels every line the generator drew
    (in its order), for training a network that finds them all (the decoder's ``max_per_side`` then keeps
    the ones a benchmark labels). ``keep``, when given, chooses among those lanes (by their wear, say).
    """
    w = frame.image.shape[1]
    by_slot = {lane.position: lane for lane in frame.lanes}
    chosen = frame.lanes if all_lanes else [by_slot[p] for p in BENCHMARK_SLOTS if p in by_slot]
    if keep is not None:
        chosen = [lane for lane in chosen if keep(lane)]
    pairs = [(lane, lane_x_at_rows(lane.points, rows, w)) for lane in chosen]
    return [(lane, x) for lane, x in pairs if (~np.isnan(x)).any()]


def tusimple_lane_xs(frame: SynthFrame, rows: np.ndarray, all_lanes: bool = False,
                     keep: Callable[[SynthLane], bool] | None = None) -> list[np.ndarray]:
    """x of :func:`benchmark_lanes` in TuSimple's convention: ``-2`` where a lane is absent."""
    return [np.nan_to_num(x, nan=-2.0) for _, x in benchmark_lanes(frame, rows, all_lanes, keep)]


def _save_image(path: Path, image: np.ndarray, quality: int) -> None:
    ext = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise OSError(f"{path}: could not encode the image as {ext}")
    atomic_write_bytes(path, buf.tobytes())


def frame_paths(fmt: str, key: FrameKey, sequence: bool) -> dict[str, str]:
    """Relative paths of a frame's files in a format's folder layout."""
    if fmt == "tusimple":
        if sequence:
            return {"image": f"clips/drive_{key.group:04d}/{key.number // 20:05d}/{key.number % 20 + 1}.jpg"}
        return {"image": f"clips/synth_{key.group:04d}/{key.index:07d}/20.jpg"}
    if fmt == "culane":
        video = f"{key.group:05d}.MP4" if sequence else f"{key.index // 100:05d}.MP4"
        number = key.number if sequence else (key.index % 100) * 30
        base = f"driver_synth_{key.group:04d}frame/{video}/{number:05d}" if sequence else \
            f"driver_synth_{key.index // 10000:04d}frame/{video}/{number:05d}"
        return {"image": base + ".jpg", "lines": base + ".lines.txt", "seg": f"laneseg_label_w16/{base}.png"}
    record = key.group if sequence else key.index // 100
    number = key.number if sequence else key.index % 100
    ms = 25742296 + number * 100 + record * 7
    stamp = f"171206_{ms // 1000 // 3600 % 24:02d}{ms // 1000 // 60 % 60:02d}{ms // 1000 % 60:02d}{ms % 1000:03d}"
    folder = f"Record{record + 1:03d}/Camera 5"
    return {"image": f"ColorImage_road02/ColorImage/{folder}/{stamp}_Camera_5.jpg",
            "label": f"Labels_road02/Label/{folder}/{stamp}_Camera_5_bin.png"}


def write_frame(out: Path, fmt: str, frame: SynthFrame, key: FrameKey, sequence: bool, quality: int = 95,
                all_lanes: bool = False, ignore_worn: float | None = None, label_hood: bool = False) -> dict:
    """Write one frame's image and per-image label files; return what the dataset lists need.

    Args:
        out: dataset root.
        fmt: ``tusimple``, ``culane`` or ``apollo``.
        frame: the rendered frame.
        key: where it goes.
        sequence: whether frames come from drives (changes the folder layout).
        quality: JPEG quality.
        all_lanes: TuSimple: label every line, not just the benchmark's four (see :func:`benchmark_lane_xs`).
        ignore_worn: TuSimple: lines whose paint is worn by this share or more go to ``ignore_lanes``
            (neither lane nor background in training, see docs/data.md) instead of ``lanes``; None: all
            in ``lanes``.
        label_hood: TuSimple: the label gets ``hood``, the bonnet's top edge as [x, y] points left to right
            (empty when none shows), which ``convert`` draws as class ``hood`` for a network to learn.

    Returns:
        A JSON-able record for :func:`finish_dataset`.
    """
    paths = frame_paths(fmt, key, sequence)
    _save_image(out / paths["image"], frame.image, quality)
    h, w = frame.image.shape[:2]
    camera = {"image": paths["image"], "camera": frame.camera.to_dict(), "frame": frame.index,
              "timestamp": frame.timestamp, "scene": frame.info, "lanes": describe_lanes(frame), "split": key.split}
    record = {"split": key.split, "image": paths["image"], "index": key.index,
              "camera": json.dumps(camera, separators=(",", ":"))}
    if fmt == "tusimple":
        rows = tusimple_h_samples(h)

        def xs(pairs: list[tuple[SynthLane, np.ndarray]]) -> list[list[int]]:
            return [[round(float(v)) for v in np.nan_to_num(x, nan=-2.0)] for _, x in pairs]

        def chosen(keep: Callable[[SynthLane], bool] | None) -> list[tuple[SynthLane, np.ndarray]]:
            return benchmark_lanes(frame, np.array(rows), all_lanes, keep)

        labelled = chosen(None if ignore_worn is None else (lambda lane: lane.wear < ignore_worn))
        label = {"lanes": xs(labelled), "h_samples": rows, "raw_file": paths["image"],
                 # each labelled lane's painted type and colour (names of lanenet_ros.lanes.MarkingType/Color)
                 "markings": [[lane.marking_type.name, lane.color.name] for lane, _ in labelled]}
        if ignore_worn is not None:
            label["ignore_lanes"] = xs(chosen(lambda lane: lane.wear >= ignore_worn))
        if label_hood:
            label["hood"] = frame.hood_edge
        record["label"] = json.dumps(label, separators=(",", ":"))
    elif fmt == "culane":
        record["flags"], record["seg"] = _write_culane_labels(out, paths, frame, w, h), paths["seg"]
    else:
        _save_image(out / paths["label"], cv2.cvtColor(frame.apollo_label, cv2.COLOR_RGB2BGR), quality)
    return record


def _write_culane_labels(out: Path, paths: dict, frame: SynthFrame, w: int, h: int) -> list[int]:
    rows = np.arange(h - 1 - (h - 1) % 10, 0, -10)
    by_slot = {lane.position: lane for lane in frame.lanes}
    lines, flags = [], []
    seg = np.zeros((h, w), np.uint8)
    thickness = max(1, round(16 * w / 1640))
    for slot, position in enumerate(BENCHMARK_SLOTS, 1):
        lane = by_slot.get(position)
        x = lane_x_at_rows(lane.points, rows, w) if lane is not None else np.array([np.nan])
        ok = ~np.isnan(x)
        flags.append(int(ok.sum() >= 2))
        if ok.sum() >= 2:
            lines.append(" ".join(f"{xv:.3f} {int(yv)}" for xv, yv in zip(x[ok], rows[ok], strict=True)) + " ")
            pts = np.round(np.stack([x[ok], rows[ok]], 1) * 16).astype(np.int32)
            cv2.polylines(seg, [pts], False, slot, thickness, cv2.LINE_8, 4)
    atomic_write_text(out / paths["lines"], "".join(line + "\n" for line in lines))
    _save_image(out / paths["seg"], seg, 100)
    return flags


def stash_camera_lines(out: Path, records: list[dict]) -> None:
    """Move the records' camera_params lines into a part file (workers call this, so the parent process
    does not hold every frame's lane geometry in memory); :func:`finish_dataset` joins the parts."""
    if not records:
        return
    first = min(r["index"] for r in records)
    lines = "".join(r.pop("camera") + "\n" for r in sorted(records, key=lambda r: r["index"]))
    atomic_write_text(out / PARTS_DIR / f"{first:09d}.jsonl", lines)


def finish_dataset(out: Path, fmt: str, records: list[dict]) -> dict[str, int]:
    """Write the format's label lists and camera_params.jsonl (atomically), in frame order.

    Args:
        out: dataset root.
        fmt: the format.
        records: every frame's record from :func:`write_frame` (camera lines possibly stashed).

    Returns:
        Frames per split.
    """
    records = sorted(records, key=lambda r: r["index"])
    splits: dict[str, list[dict]] = {}
    for r in records:
        splits.setdefault(r["split"], []).append(r)
    if fmt == "tusimple":
        for split, recs in splits.items():
            text = "".join(r["label"] + "\n" for r in recs)
            atomic_write_text(out / f"label_data_{split}.json", text)
    elif fmt == "culane":
        for split, recs in splits.items():
            atomic_write_text(out / "list" / f"{split}.txt", "".join(f"/{r['image']}\n" for r in recs))
            gt = "".join(f"/{r['image']} /{r['seg']} {' '.join(map(str, r['flags']))}\n" for r in recs)
            atomic_write_text(out / "list" / f"{split}_gt.txt", gt)
    elif fmt == "apollo":  # Apollo's folders have no split: lists keep it (`convert` reads them)
        for split, recs in splits.items():
            atomic_write_text(out / "splits" / f"{split}.txt", "".join(f"{r['image']}\n" for r in recs))
    parts = sorted((out / PARTS_DIR).glob("*.jsonl")) if (out / PARTS_DIR).is_dir() else []
    cams = "".join(p.read_text(encoding="utf-8") for p in parts)
    cams += "".join(r["camera"] + "\n" for r in records if "camera" in r)
    atomic_write_text(out / CAMERA_FILE, cams)
    shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
    return {k: len(v) for k, v in splits.items()}


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and parents), naming it in the error when that fails."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OSError(f"{path}: cannot create the output folder ({exc.strerror})") from exc
