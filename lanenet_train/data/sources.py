"""What every converter shares: a source sample, the bad-input error, and the per-sample writer that turns a
sample into canonical files (image copy, class mask, instance mask) plus its index record."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lanenet_train.data.raster import IGNORE, order_lanes, rasterise_lanes

CONVERTER_VERSION = 1
LANE_CLASSES = [{"id": 0, "name": "background", "color": [0, 0, 0]},
                {"id": 1, "name": "lane", "color": [255, 255, 255]}]
HOOD_CLASS = {"id": 2, "name": "hood", "color": [255, 0, 255]}  # the ego vehicle's bonnet (synth --label-hood)


class BadInputError(Exception):
    """An input file is missing or malformed; the message names the file (and line) and what would fix it."""


@dataclass
class SourceSample:
    """One image of a source dataset and where its labels are.

    Attributes:
        name: output file stem, unique within the dataset.
        split: ``train``, ``val`` or ``test``.
        group: clip / video / record the image belongs to (val is carved by whole groups).
        image: the source image file.
        origin: ``file:line`` (or file) the sample came from, for error messages.
        lanes: lane polylines [(x, y), ...] in image pixels, in source order (TuSimple).
        ignore_lanes: polylines drawn as ignore (255) in the mask where no lane is: lines whose paint is
            worn away, neither lane nor background (the generator's ``ignore_lanes``).
        lines_file: CULane ``*.lines.txt`` to read the lanes from.
        tusimple: ``{"lanes", "h_samples"}`` exactly as in the TuSimple label file.
        label: Apollo colour label or folder mask file.
        instance: optional instance mask file (folder format).
        meta: extra per-sample metadata (source path, camera, ...).
        hood: the bonnet's top edge as (x, y) points left to right, drawn as class ``hood`` below it; an
            empty list for a labelled frame without a bonnet, None where bonnets are not labelled.
        markings: each lane's painted (type, colour) as ``MarkingType`` / ``MarkingColor`` values, in the order
            of ``lanes``; None where not labelled (the generator labels them).
    """

    name: str
    split: str
    group: str
    image: Path
    origin: str
    lanes: list | None = None
    ignore_lanes: list = field(default_factory=list)
    lines_file: Path | None = None
    tusimple: dict | None = None
    label: Path | None = None
    instance: Path | None = None
    meta: dict = field(default_factory=dict)
    hood: list | None = None
    markings: list | None = None


@dataclass
class ConvertOptions:
    """Settings every per-sample conversion needs (picklable, sent to worker processes)."""

    fmt: str
    lane_width: int
    value_map: np.ndarray | None = None
    label_mapper: str = ""


def safe_name(rel: str) -> str:
    """A file stem from a relative source path: separators and spaces become ``_``, extension dropped."""
    stem = os.path.splitext(rel.replace("\\", "/").strip("/"))[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)


def fingerprint(sample: SourceSample, options: ConvertOptions) -> str:
    """Hash of everything the sample's output depends on (re-runs skip samples whose hash is unchanged)."""
    h = hashlib.sha1()
    for path in (sample.image, sample.lines_file, sample.label, sample.instance):
        if path is not None:
            try:
                st = path.stat()
                h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode())
            except OSError:
                h.update(f"{path}|missing".encode())
    payload = {"lanes": sample.lanes, "ignore": sample.ignore_lanes, "split": sample.split, "fmt": options.fmt,
               **({"hood": sample.hood} if sample.hood is not None else {}),
               **({"markings": sample.markings} if sample.markings is not None else {}),
               "w": options.lane_width,
               "map": None if options.value_map is None else options.value_map.tolist(), "v": CONVERTER_VERSION,
               "meta": sample.meta}
    h.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def read_image(path: Path, origin: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image, or raise :class:`BadInputError` naming it and the label that refers to it."""
    data = None
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror}); referenced at {origin}") from exc
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        raise BadInputError(f"{path}: missing, empty or not a readable image; referenced at {origin}")
    return img


def read_culane_lines(path: Path, origin: str) -> list[list[tuple[float, float]]]:
    """Parse a CULane ``*.lines.txt``: one lane per line, ``x y x y ...``.

    Raises:
        BadInputError: the file is missing, or a line has an odd count or a non-number (names file:line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the lane file ({exc}); listed at {origin}") from exc
    lanes = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            values = [float(t) for t in tokens]
        except ValueError as exc:
            raise BadInputError(f"{path}:{lineno}: not a number in the lane ({exc}); expected 'x y x y ...'") from exc
        if len(values) % 2:
            raise BadInputError(f"{path}:{lineno}: odd number of values ({len(values)}); expected x y pairs")
        lanes.append(list(zip(values[0::2], values[1::2], strict=True)))
    return lanes


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link the source image into the dataset (no copy, no extra space); copy across file systems."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"{path}: could not write the PNG")


def check_labels_fit(lanes: list, width: int, height: int, sample: SourceSample) -> None:
    """Refuse lane labels that reach below the image: labels made for a larger image (TuSimple's are for
    1280 x 720) drawn on a smaller one would give a nearly empty mask without a word.

    Raises:
        BadInputError: a label row lies below the image's last row (one pixel of slack).
    """
    rows = [float(y) for lane in lanes for _, y in lane]
    if rows and max(rows) > height:
        raise BadInputError(f"{sample.origin}: the labels reach row {max(rows):g} but {sample.image} is "
                            f"{width}x{height}: the labels were made for a larger image; resize the image to the "
                            "size it was labelled at, or scale the labels to this image")


def draw_hood(mask: np.ndarray, edge: list) -> None:
    """Class ``hood`` (:data:`HOOD_CLASS`) on and below the bonnet's edge ((x, y) points left to right), where
    the mask is background (in place)."""
    h, w = mask.shape
    pts = np.asarray(edge, np.float64)
    poly = np.vstack([pts, [[w - 1 + 2, h + 2], [-2, h + 2]]])
    below = np.zeros_like(mask)
    cv2.fillPoly(below, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    mask[(below > 0) & (mask == 0)] = HOOD_CLASS["id"]


def convert_one(sample: SourceSample, options: ConvertOptions, staging: Path, mapper=None) -> dict:
    """Convert one sample into ``staging`` and return its index record and diagnostics.

    Args:
        sample: the source sample.
        options: conversion settings.
        staging: folder the output files are written into (same layout as the dataset root).
        mapper: ``(sample, image) -> (mask, instance or None, unknown {colour: pixels})`` for label
            images (Apollo, folder); None for lane polylines.

    Returns:
        ``{"record": index record, "unknown": {...}}``.

    Raises:
        BadInputError: the image or its labels are missing, malformed or of the wrong size.
    """
    image = read_image(sample.image, sample.origin)
    h, w = image.shape[:2]
    ext = sample.image.suffix.lower() or ".jpg"
    rel_img = f"images/{sample.split}/{sample.name}{ext}"
    rel_mask = f"masks/{sample.split}/{sample.name}.png"
    rel_inst = f"instances/{sample.split}/{sample.name}.png"
    unknown: dict = {}
    lanes_out: list = []
    markings_out: list | None = None
    if mapper is None:
        lanes = sample.lanes if sample.lines_file is None else read_culane_lines(sample.lines_file, sample.origin)
        check_labels_fit(lanes + list(sample.ignore_lanes), w, h, sample)
        order = order_lanes([np.asarray(ln, float).reshape(-1, 2) for ln in lanes], w, h)
        lanes_out = [[[round(float(x), 3), round(float(y), 3)] for x, y in lanes[i]] for i in order]
        if sample.markings is not None:  # lane k of the instance mask (k = 1..N) has markings_out[k - 1]
            markings_out = [list(sample.markings[i]) for i in order]
        mask, instance = rasterise_lanes([np.asarray(ln, float).reshape(-1, 2) for ln in lanes_out], w, h,
                                         options.lane_width)
        if sample.ignore_lanes:
            worn_px, _ = rasterise_lanes([np.asarray(ln, float).reshape(-1, 2) for ln in sample.ignore_lanes],
                                            w, h, options.lane_width)
            mask[(worn_px > 0) & (mask == 0)] = IGNORE
        if sample.hood:
            draw_hood(mask, sample.hood)
    else:
        mask, instance, unknown = mapper(sample, image)
    (staging / rel_img).parent.mkdir(parents=True, exist_ok=True)
    _link_or_copy(sample.image, staging / rel_img)
    _write_png(staging / rel_mask, mask)
    if instance is not None:
        _write_png(staging / rel_inst, instance)
    record = {"id": f"{sample.split}/{sample.name}", "split": sample.split, "image": rel_img, "mask": rel_mask,
              "instance": rel_inst if instance is not None else None, "width": w, "height": h, "lanes": lanes_out}
    if sample.tusimple is not None:
        record["tusimple"] = sample.tusimple
    if sample.hood is not None:
        record["hood"] = [[round(x, 2), round(y, 2)] for x, y in sample.hood]
    if markings_out is not None:
        record["markings"] = markings_out
    record["meta"] = dict(sample.meta)
    return {"record": record, "unknown": unknown}
