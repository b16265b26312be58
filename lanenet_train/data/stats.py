"""`lanenet-train stats`: pixel counts per class over a converted dataset, and class weights for the loss.

ENet's bounded inverse frequency: ``w = 1 / ln(1.02 + p)``, with ``p`` the share of a class among all
labelled (not ignored) pixels; rare classes get at most ``1 / ln(1.02) ~ 50.5``. Manual weights (as in the
Apollo lane-mark project) replace the computed ones with ``--weights``.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lanenet_train.data.layout import ENET_METHOD, DatasetError, load_dataset, samples_in_split, write_dataset_meta

ENET_C = 1.02


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `lanenet-train stats`."""
    parser.add_argument("--dataset", required=True, type=Path, help="converted dataset folder (holds dataset.json)")
    parser.add_argument("--split", default="train", help="split to count (default train; 'all' for every split)")
    parser.add_argument("--weights", default=None,
                        help="manual class weights instead of ENet's, comma separated, one per class id")
    parser.add_argument("--nproc", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")


def enet_weights(counts: np.ndarray, c: float = ENET_C) -> np.ndarray:
    """ENet class weights ``1 / ln(c + p)`` from per-class pixel counts.

    Args:
        counts: (C,) pixel counts per class id (ignored pixels excluded).
        c: the bounding constant (1.02 in ENet).

    Returns:
        (C,) float64 weights.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    p = counts / total if total > 0 else np.zeros_like(counts)
    return 1.0 / np.log(c + p)


def count_mask(path: str) -> np.ndarray:
    """Histogram (256 bins) of one class-id mask."""
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DatasetError(f"{path}: missing or unreadable mask; re-run `lanenet-train convert`")
    return np.bincount(mask.ravel(), minlength=256).astype(np.int64)


def count_pixels(root: Path, samples: list[dict], nproc: int) -> np.ndarray:
    """Sum of the 256-bin histograms of the samples' masks."""
    paths = [str(root / s["mask"]) for s in samples if s.get("mask")]
    total = np.zeros(256, np.int64)
    with tqdm(total=len(paths), unit="mask", desc="stats") as bar:
        if nproc == 1 or len(paths) < 8:
            results = map(count_mask, paths)
            for hist in results:
                total += hist
                bar.update(1)
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(nproc) as pool:
                for hist in pool.imap_unordered(count_mask, paths, chunksize=8):
                    total += hist
                    bar.update(1)
    return total


def parse_weights(text: str, n_classes: int) -> list[float]:
    """``"1.5,2.3,..."`` to floats, exactly one per class id.

    Raises:
        ValueError: naming --weights, when the count is wrong or a value is not a positive number.
    """
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ValueError(f"--weights: not a number ({exc}); give comma-separated numbers") from exc
    if len(values) != n_classes or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"--weights: need {n_classes} non-negative numbers (one per class id 0..{n_classes - 1}), "
                         f"got {len(values)}")
    return values


def run(args: argparse.Namespace) -> int:
    """Count pixels and write ``pixel_counts`` and ``class_weights`` into dataset.json."""
    try:
        meta, samples = load_dataset(args.dataset)
        n_classes = max(c["id"] for c in meta["classes"]) + 1
        manual = parse_weights(args.weights, n_classes) if args.weights else None
        chosen = samples if args.split == "all" else samples_in_split(samples, args.split)
        if not chosen:
            raise ValueError(f"--split {args.split}: no samples (splits here: {sorted(meta.get('splits', {}))})")
        hist = count_pixels(args.dataset, chosen, args.nproc)
    except (DatasetError, ValueError) as exc:
        print(f"lanenet-train stats: {exc}", file=sys.stderr)
        return 1
    counts = hist[:n_classes]
    other = int(hist[n_classes:255].sum())
    weights = manual if manual is not None else [round(float(w), 6) for w in enet_weights(counts)]
    meta.update(pixel_counts=[int(c) for c in counts], class_weights=weights,
                class_weights_method="manual" if manual is not None else ENET_METHOD, stats_split=args.split)
    write_dataset_meta(args.dataset, meta)
    names = {c["id"]: c["name"] for c in meta["classes"]}
    total = max(int(counts.sum()), 1)
    print(f"{args.dataset}: {len(chosen)} masks, {int(hist[255])} ignored pixels"
          + (f", {other} pixels with ids outside the class table" if other else ""))
    for cid in range(n_classes):
        print(f"  {cid:3d} {names.get(cid, '?'):>12s}  {int(counts[cid]):>12d} px  "
              f"p={counts[cid] / total:.5f}  w={weights[cid]:.3f}")
    return 0
