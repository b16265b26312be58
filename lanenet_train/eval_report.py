"""Pictures of an evaluation (matplotlib, Agg backend): per-class IoU bars, confusion matrix, worst frames."""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from lanenet_ros.fileio import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_class_iou(iou: Sequence[float], names: Sequence[str], path: str | os.PathLike) -> None:
    """Horizontal bars of IoU per class (absent classes shown as n/a), mIoU as a dashed line."""
    plt = _pyplot()
    values = np.asarray(iou, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1.2))
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(values), color=["#4c72b0" if np.isfinite(v) else "#cccccc" for v in values])
    for i, v in enumerate(values):
        ax.text(min(np.nan_to_num(v), 0.92) + 0.01, i, f"{v:.3f}" if np.isfinite(v) else "n/a", va="center")
    if np.isfinite(values).any():
        ax.axvline(np.nanmean(values), color="k", ls="--", lw=1, label=f"mIoU {np.nanmean(values):.3f}")
        ax.legend(loc="lower right")
    ax.set_yticks(y, list(names))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU")
    ax.set_title("Per-class IoU")
    _save(fig, path)


def plot_confusion(matrix: np.ndarray, names: Sequence[str], path: str | os.PathLike) -> None:
    """Row-normalised confusion matrix (rows: ground truth), log-free so small classes still show."""
    plt = _pyplot()
    rows = matrix.sum(1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=np.float64), where=rows > 0)
    size = 2.5 + 0.35 * len(names)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if len(names) <= 12:
        for (r, c), v in np.ndenumerate(norm):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="white" if v > 0.5 else "black", fontsize=8)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, list(names), rotation=60, ha="right")
    ax.set_yticks(ticks, list(names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title("Confusion matrix (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_worst_frames(overlays: Sequence[np.ndarray], titles: Sequence[str], path: str | os.PathLike) -> None:
    """A grid of overlay images (BGR) with their scores as titles."""
    plt = _pyplot()
    n = len(overlays)
    cols = min(3, max(n, 1))
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, overlays, titles, strict=False):
        ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        ax.set_title(title, fontsize=9)
    fig.suptitle("Worst frames (prediction overlay; ground truth in thin white)")
    _save(fig, path)


def draw_ground_truth(image: np.ndarray, lanes: Sequence[Sequence[Sequence[float]]]) -> np.ndarray:
    """Ground-truth lane polylines in thin white over a copy of ``image``."""
    out = image.copy()
    for lane in lanes:
        pts = np.round(np.asarray(lane, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
        if len(pts) > 1:
            cv2.polylines(out, [pts], False, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) and return it."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)
