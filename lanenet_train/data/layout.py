"""Read and write the canonical dataset layout described in docs/dataset_layout.md.

``dataset.json`` holds the dataset metadata, ``index.jsonl`` one sample per line. Every write here is
atomic (temporary file in the same folder, then ``os.replace``), so a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lanenet_ros.fileio import atomic_write_text, read_json_lines

FORMAT_NAME = "lanenet-dataset"
FORMAT_VERSION = 1
META_FILE = "dataset.json"
INDEX_FILE = "index.jsonl"
IGNORE_INDEX = 255
ENET_METHOD = "enet: w = 1 / ln(1.02 + p)"


class DatasetError(Exception):
    """A dataset file is missing or malformed; the message names the file (and line) and a fix."""


def default_meta(name: str, source_format: str, classes: list[dict], lane_width_px: int | None) -> dict:
    """A ``dataset.json`` dictionary with the statistics fields still empty (``null``).

    Args:
        name: dataset name.
        source_format: ``tusimple``, ``culane``, ``apollo`` or ``folder``.
        classes: ``[{"id", "name", "color": [r, g, b]}, ...]``, class 0 is background.
        lane_width_px: width lane polylines were drawn with, or None when masks came as given.

    Returns:
        The metadata dictionary.
    """
    return {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": name, "source_format": source_format,
        "classes": classes, "ignore_index": IGNORE_INDEX, "lane_width_px": lane_width_px,
        "splits": {}, "pixel_counts": None, "class_weights": None, "class_weights_method": None,
    }


def write_dataset_meta(root: str | os.PathLike, meta: dict) -> None:
    """Write ``<root>/dataset.json`` atomically.

    Args:
        root: dataset root folder.
        meta: the metadata dictionary (see docs/dataset_layout.md).

    Raises:
        DatasetError: a required key is missing.
    """
    for key in ("format", "version", "classes", "ignore_index"):
        if key not in meta:
            raise DatasetError(f"{Path(root) / META_FILE}: metadata lacks '{key}'; start from default_meta()")
    atomic_write_text(Path(root) / META_FILE, json.dumps(meta, indent=2) + "\n")


def write_index(root: str | os.PathLike, samples: Iterable[dict]) -> None:
    """Write ``<root>/index.jsonl`` atomically, one compact JSON object per line.

    Args:
        root: dataset root folder.
        samples: sample dictionaries (see docs/dataset_layout.md).
    """
    lines = [json.dumps(s, separators=(",", ":")) for s in samples]
    atomic_write_text(Path(root) / INDEX_FILE, "".join(line + "\n" for line in lines))


def read_dataset_meta(root: str | os.PathLike) -> dict:
    """Read and check ``<root>/dataset.json``.

    Args:
        root: dataset root folder.

    Returns:
        The metadata dictionary.

    Raises:
        DatasetError: the file is missing, is not JSON, or is not a lanenet dataset.
    """
    path = Path(root) / META_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: not found; is {root} a converted dataset? Run `lanenet-train convert`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); re-run `lanenet-train convert`") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path}: 'format' is not '{FORMAT_NAME}'; re-run `lanenet-train convert`")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise DatasetError(f"{path}: version {meta.get('version')} is newer than this lanenet reads "
                           f"({FORMAT_VERSION}); upgrade lanenet")
    return meta


def read_index(root: str | os.PathLike) -> list[dict]:
    """Read ``<root>/index.jsonl``.

    Args:
        root: dataset root folder.

    Returns:
        The samples in file order.

    Raises:
        DatasetError: the file is missing or a line is not a JSON object with ``id``, ``split``, ``image``.
    """
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: not found; re-run `lanenet-train convert`")
    try:
        return read_json_lines(path, ("id", "split", "image"), "sample")
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def load_dataset(root: str | os.PathLike) -> tuple[dict[str, Any], list[dict]]:
    """Load a converted dataset's metadata and index.

    Args:
        root: dataset root folder (holding ``dataset.json`` and ``index.jsonl``).

    Returns:
        ``(meta, samples)``; sample paths stay relative to ``root``.

    Raises:
        DatasetError: a file is missing or malformed.
    """
    return read_dataset_meta(root), read_index(root)


def samples_in_split(samples: list[dict], split: str) -> list[dict]:
    """The samples of one split (``train``, ``val``, ``test``), in index order."""
    return [s for s in samples if s.get("split") == split]
