"""TuSimple accuracy / FP / FN of a model on synthetic frames pushed past the generator's default ranges, the
way a real dash-cam can differ: a truck's higher mount, a wider lens, stronger barrel distortion, and images
that are more compressed, noisier, softer, darker or blurred than the generator makes by default. A stand-in
for the real highway footage the project does not have. Not a timing: `make bench` does not run it.

    .venv/bin/python bench/camera_shifts.py [--model lanenet_ros/models/default.onnx] [--frames 300]

Camera shifts render the same scenes again with other camera settings (same seeds); image shifts degrade the
frames of the first row. Labels are the generator's (the lines TuSimple labels), scored at 1280x720.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lanenet_ros.metrics import TuSimpleAccumulator, lanes_to_tusimple
from lanenet_ros.pipeline import LanePipeline
from lanenet_train.synth import SynthConfig, effects
from lanenet_train.synth.render import render_frame
from lanenet_train.synth.writers import tusimple_h_samples, tusimple_lane_xs

FIRST_SEED = 50_000  # away from the seeds of the training, tuning and held-out sets

CAMERAS: dict[str, dict] = {
    "the generator's defaults": {},
    "truck mount: camera 2.4-3.0 m high (default 1.15-2.1)": {"camera_height_m": (2.4, 3.0)},
    "wide lens: 90-110 deg field of view (default 53-90)": {"focal_range": (0.35, 0.5)},
    "strong barrel distortion: k1 -0.45..-0.3 (default -0.3..0.02)": {"distortion_prob": 1.0,
                                                                        "k1_range": (-0.45, -0.3)},
}


def _noise(image: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(int(image[::97, ::89].sum()))
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def _soft(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (int(w * factor), int(h * factor)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


IMAGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "JPEG quality 12 (default 25 or more)": lambda im: effects.jpeg_roundtrip(im, 12),
    "sensor noise, sigma 18 grey levels": lambda im: _noise(im, 18.0),
    "soft optics: a third of the resolution, upscaled": lambda im: _soft(im, 1 / 3),
    "under-exposed: gamma 2.2": lambda im: cv2.LUT(im, effects.tone_lut(2.2, 1.0)),
    "motion blur, 15 px horizontal": lambda im: effects.blur(im, "motion", 15, 0.0),
}


def score(pipe: LanePipeline, frames: list[tuple[np.ndarray, list, list]], change=None) -> dict:
    acc = TuSimpleAccumulator()
    for image, lanes, rows in frames:
        out = pipe.process(change(image) if change else image)
        acc.add(lanes_to_tusimple(out.lanes, rows, out.width), lanes, rows)
    return acc.result()


def render(config: SynthConfig, count: int, label: str) -> list[tuple[np.ndarray, list, list]]:
    rows = tusimple_h_samples(config.height)
    frames = []
    for i in tqdm(range(count), desc=f"render: {label[:24]}", unit="frame", leave=False):
        frame = render_frame(config, FIRST_SEED + i)
        lanes = [np.round(x, 1).tolist() for x in tusimple_lane_xs(frame, np.asarray(rows))]
        frames.append((frame.image, lanes, rows))
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the embedded default model)")
    parser.add_argument("--frames", type=int, default=300, help="frames per camera setting (default %(default)s)")
    args = parser.parse_args()
    pipe = LanePipeline(args.model, backend="onnxruntime-cpu", tracking=False)
    rows = []
    base = None
    for name, overrides in CAMERAS.items():
        frames = render(dataclasses.replace(SynthConfig(), **overrides), args.frames, name)
        base = base or frames
        rows.append((name, score(pipe, frames)))
    for name, change in IMAGES.items():
        rows.append((name, score(pipe, base, change)))
    print(f"{'input':66s} frames  accuracy     FP     FN")
    for name, r in rows:
        print(f"{name:66s} {r['frames']:6d} {r['accuracy']:9.3f} {r['fp']:6.3f} {r['fn']:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
