"""Apollo colour label -> trainId: the vectorised lookup (one pass per image) against comparing the
image with each of the 38 class colours in turn, on the same label images, side by side.

    .venv/bin/python bench/bench_apollo_lookup.py [--images 6] [--width 3384 --height 2710]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lanenet_train.data.labels import apollo_train_ids, apollo_train_ids_per_class
from lanenet_train.synth import SynthConfig, render_frame


def labels(count: int, width: int, height: int) -> list[np.ndarray]:
    """Apollo colour labels from the generator (rendered small, resized to Apollo's size)."""
    cfg = SynthConfig(width=width // 4, height=height // 4, vehicles=(3, 8))
    return [cv2.resize(render_frame(cfg, seed).apollo_label, (width, height), interpolation=cv2.INTER_NEAREST)
            for seed in range(count)]


def timed(fn, images: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = [fn(img) for img in images]
    return (time.perf_counter() - start) / len(images), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--width", type=int, default=3384)
    parser.add_argument("--height", type=int, default=2710)
    args = parser.parse_args()
    images = labels(args.images, args.width, args.height)
    fast, ids_fast = timed(lambda img: apollo_train_ids(img)[0], images)
    slow, ids_slow = timed(apollo_train_ids_per_class, images)
    same = all(np.array_equal(a, b) for a, b in zip(ids_fast, ids_slow, strict=True))
    print(f"{args.images} labels of {args.width}x{args.height}; identical results: {same}")
    print(f"  vectorised lookup : {fast * 1000:8.1f} ms/image")
    print(f"  per-class compare : {slow * 1000:8.1f} ms/image")
    print(f"  -> vectorised is {slow / fast:.1f}x faster")
    if not same:
        raise SystemExit("the two lookups disagree")


if __name__ == "__main__":
    main()
