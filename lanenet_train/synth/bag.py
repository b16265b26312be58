"""`lanenet-train synth --bag`: one continuous synthetic drive as a rosbag2 bag of camera images, with its
ground truth beside it (``BAG.labels.json``: TuSimple-format lanes keyed by timestamp), as ``make demo`` and
``lanenet-replay --labels`` use. The bag is written by the runtime's writer (:mod:`lanenet_ros.replay.bags`).
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import numpy as np

from lanenet_ros.fileio import atomic_write_text
from lanenet_ros.image_codec import check_dimensions
from lanenet_ros.replay.bags import labels_path, write_bag
from lanenet_train.synth.config import SynthConfig
from lanenet_train.synth.render import iter_drive
from lanenet_train.synth.writers import tusimple_h_samples, tusimple_lane_xs


def drive_frames(config: SynthConfig, seed: int, count: int, fps: float) -> tuple[Iterator[np.ndarray], list[dict]]:
    """A synthetic drive's images, and its TuSimple-format labels (filled in as the images are drawn)."""
    h_samples = tusimple_h_samples(config.height)
    labels: list[dict] = []

    def frames() -> Iterator[np.ndarray]:
        for index, frame in enumerate(iter_drive(config, seed, count, fps)):
            labels.append({"raw_file": str(index), "h_samples": h_samples,
                           "lanes": [np.round(x, 1).tolist() for x in tusimple_lane_xs(frame, np.asarray(h_samples))],
                           "camera": frame.camera.to_dict()})
            yield frame.image

    return frames(), labels


def write_drive_bag(args: argparse.Namespace, config: SynthConfig) -> int:
    """Write ``args.count`` frames of the drive of ``args.seed`` at ``args.fps`` to the bag ``args.out`` and its
    labels beside it; returns the number of frames.

    Raises:
        ValueError: an image size beyond what the node takes, or a bag option out of range (the message names it).
        FileExistsError: the bag exists already.
    """
    check_dimensions(config.width, config.height)
    frames, labels = drive_frames(config, args.seed, args.count, args.fps)
    stamps = write_bag(frames, args, args.fps, total=args.count, rate_flag="--fps",
                       camera_of=lambda i: labels[i]["camera"])
    rows = [dict(label, timestamp_ns=stamp) for label, stamp in zip(labels, stamps, strict=True)]
    atomic_write_text(labels_path(args.out), "".join(json.dumps(row) + "\n" for row in rows))
    return len(stamps)
