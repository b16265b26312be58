"""A tiny canonical dataset (docs/dataset_layout.md) drawn here: straight lanes converging to a horizon.

Used by the training tests so they do not depend on the synthetic generator; written with the
``lanenet_train.data.layout`` helpers, as a converter would.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lanenet_train.data.layout import default_meta, write_dataset_meta, write_index


def draw_sample(rng: np.random.Generator, width: int, height: int, n_lanes: int = 3, classes: int = 1):
    """One road image with lanes: (BGR image, class mask, instance mask, lanes as point lists)."""
    image = np.full((height, width, 3), 60, np.uint8)
    image[: height // 3] = (200, 160, 120)  # sky
    image += rng.integers(0, 12, image.shape, dtype=np.uint8)
    mask = np.zeros((height, width), np.uint8)
    instance = np.zeros((height, width), np.uint8)
    horizon, spacing = height // 3, width / (n_lanes + 0.5)
    offset = rng.uniform(-0.2, 0.2) * spacing
    lanes = []
    for k in range(n_lanes):
        bottom_x = (k + 0.75) * spacing + offset
        top_x = width / 2 + (bottom_x - width / 2) * 0.15
        pts = [(bottom_x + (top_x - bottom_x) * t, height - 1 - (height - 1 - horizon) * t)
               for t in np.linspace(0, 1, 8)]
        poly = np.round(np.array(pts)).astype(np.int32)
        thickness = max(2, width // 100)
        cv2.polylines(image, [poly], False, (230, 230, 230), thickness)
        cv2.polylines(mask, [poly], False, 1 + k % classes, thickness)
        cv2.polylines(instance, [poly], False, k + 1, thickness)
        lanes.append([[float(x), float(y)] for x, y in pts])
    return image, mask, instance, lanes


def make_dataset(root: Path, n_train: int = 6, n_val: int = 2, width: int = 128, height: int = 64,
                 seed: int = 0, classes: int = 1, instances: bool = True) -> Path:
    """Write the dataset under ``root`` and return ``root``."""
    rng = np.random.default_rng(seed)
    names = ["background"] + (["lane"] if classes == 1 else [f"mark{i}" for i in range(1, classes + 1)])
    colors = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]
    meta = default_meta("fixture", "tusimple", [{"id": i, "name": n, "color": colors[i % 5]}
                                                for i, n in enumerate(names)], 2)
    samples, counts = [], np.zeros(len(names))
    for i in range(n_train + n_val):
        split = "train" if i < n_train else "val"
        image, mask, instance, lanes = draw_sample(rng, width, height, classes=classes)
        rel = {"image": f"images/{split}/{i:04d}.png", "mask": f"masks/{split}/{i:04d}.png",
               "instance": f"instances/{split}/{i:04d}.png" if instances else None}
        for key, data in (("image", image), ("mask", mask), ("instance", instance)):
            if rel[key]:
                (root / rel[key]).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / rel[key]), data)
        counts += np.bincount(mask.ravel(), minlength=len(names))[: len(names)]
        h_samples = list(range(height // 3 + 2, height, 2))
        samples.append({"id": f"{split}/{i:04d}", "split": split, **rel, "width": width, "height": height,
                        "lanes": lanes, "tusimple": {"lanes": [_tusimple(lane, h_samples) for lane in lanes],
                                                     "h_samples": h_samples}})
    meta["splits"] = {"train": n_train, "val": n_val}
    meta["pixel_counts"] = counts.tolist()
    write_dataset_meta(root, meta)
    write_index(root, samples)
    return root


def _tusimple(lane: list[list[float]], h_samples: list[int]) -> list[float]:
    pts = np.array(lane)
    order = np.argsort(pts[:, 1])
    xs = np.interp(h_samples, pts[order, 1], pts[order, 0], left=-2, right=-2)
    return [round(float(x), 1) if x != -2 else -2 for x in xs]
