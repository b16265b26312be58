"""Tiny networks with the documented lanenet outputs, and helpers to export them (tests only).

``TinyLaneNet`` / ``TinySegNet`` have random weights and the output layout of the real models
(docs/model_format.md). ``export_tiny`` writes a real, verified, self-describing ONNX file through
``lanenet_train.export``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from lanenet_train.export import ExportReport, export_model

WIDTH, HEIGHT = 64, 32


class _Trunk(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.AvgPool2d(2), nn.Conv2d(width, width, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        return nn.functional.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


class TinyLaneNet(nn.Module):
    """Binary segmentation + instance embedding, like lanenet_train.models' LaneNet."""

    def __init__(self, embedding_dim: int = 4) -> None:
        super().__init__()
        self.trunk = _Trunk()
        self.binary = nn.Conv2d(8, 2, 1)
        self.embedding = nn.Conv2d(8, embedding_dim, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.trunk(x)
        return {"binary_logits": self.binary(y), "embedding": self.embedding(y)}


class TinySegNet(nn.Module):
    """Multi-class lane-marking segmentation, like lanenet_train.models' DeepLabV3+."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.trunk = _Trunk()
        self.classes = nn.Conv2d(8, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"class_logits": self.classes(self.trunk(x))}


def model_info(architecture: str = "lanenet", **overrides: Any) -> dict[str, Any]:
    """A checkpoint's ``model_info`` as training writes it."""
    info: dict[str, Any] = {
        "architecture": architecture, "input_width": WIDTH, "input_height": HEIGHT, "input_channels": 3,
        "channel_order": "rgb", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "roi_top": 0.0,
        "class_names": ["background", "lane"], "class_colors": [[0, 0, 0], [255, 255, 255]],
        "lane_class_ids": [1], "embedding_dim": 4, "spec_fingerprint": "ab" * 32,
    }
    if architecture == "deeplabv3plus":
        info.update(class_names=["background", "white_solid", "yellow_dashed"],
                    class_colors=[[0, 0, 0], [255, 255, 255], [255, 200, 0]], lane_class_ids=[1, 2],
                    embedding_dim=0)
    info.update(overrides)
    return info


def tiny_model(architecture: str = "lanenet", seed: int = 0) -> nn.Module:
    """A tiny network with random (seeded) weights for the architecture."""
    torch.manual_seed(seed)
    model = TinyLaneNet() if architecture == "lanenet" else TinySegNet()
    return model.eval()


def export_tiny(path: Path, architecture: str = "lanenet", model: nn.Module | None = None,
                info_overrides: dict[str, Any] | None = None, **kwargs: Any) -> ExportReport:
    """Export a tiny model of the architecture to ``path`` (verified, with metadata)."""
    model = model if model is not None else tiny_model(architecture)
    return export_model(model, model_info(architecture, **(info_overrides or {})), path, **kwargs)


class BrightLineNet(nn.Module):
    """A hand-set LaneNet that really finds straight painted lines on a dark road.

    ``binary_logits``: lane where the de-normalised grey level exceeds ``threshold``. ``embedding``: the angle
    of each pixel seen from the vanishing point (scaled), constant along any straight lane line, so every
    line becomes one tight embedding cluster, as a trained LaneNet's embedding is meant to be.
    """

    def __init__(self, width: int, height: int, vanish: tuple[float, float], mean: list[float],
                 std: list[float], threshold: float = 0.7, embedding_dim: int = 4) -> None:
        super().__init__()
        self.grey = nn.Conv2d(3, 1, 1)
        with torch.no_grad():  # grey = mean over channels of (x * std + mean), the pixel level in [0, 1]
            self.grey.weight.copy_(torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) / 3)
            self.grey.bias.fill_(sum(mean) / 3 - threshold)
        ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                                torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
        angle = torch.atan2(xs - vanish[0], (ys - vanish[1]).clamp(min=1.0))
        embedding = torch.zeros(1, embedding_dim, height, width)
        embedding[0, 0] = 8.0 * angle
        self.register_buffer("angle_embedding", embedding)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        lane = 40.0 * self.grey(x)
        return {"binary_logits": torch.cat([torch.zeros_like(lane), lane], dim=1),
                "embedding": self.angle_embedding.expand(x.shape[0], -1, -1, -1) + 0.0 * lane}


def export_line_model(path: Path, width: int = 256, height: int = 128, roi_top: float = 0.0,
                      horizon: float = 0.4) -> ExportReport:
    """Export :class:`BrightLineNet` for camera images whose lines meet at (0.5, ``horizon``) of the frame."""
    info = model_info("lanenet", input_width=width, input_height=height, roi_top=roi_top)
    vanish_y = (horizon - roi_top) / (1 - roi_top) * height
    model = BrightLineNet(width, height, (width / 2, vanish_y), info["mean"], info["std"]).eval()
    return export_model(model, info, path, verify_images=2)


def draw_road(lines_bottom_x: tuple[float, ...] = (0.2, 0.8), size: tuple[int, int] = (720, 1280),
              horizon: float = 0.4, seed: int = 0, thickness: int = 12) -> np.ndarray:
    """A BGR road frame with white straight lines from the bottom edge to the vanishing point."""
    h, w = size
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 70, (h, w, 3), dtype=np.uint8)
    image[: int(horizon * h)] = (200, 160, 120)  # bright sky: cut it with roi_top or it reads as lane
    top = int(horizon * h) + int(0.08 * h)
    for fx in lines_bottom_x:
        x0, xv, yv = fx * w, w / 2, horizon * h
        x_top = xv + (x0 - xv) * (top - yv) / (h - 1 - yv)
        cv2.line(image, (round(x0), h - 1), (round(x_top), top), (235, 235, 235), thickness)
    return image
