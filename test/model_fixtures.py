"""Tiny networks with the documented lanenet outputs, and helpers to export them (tests only).

``TinyLaneNet`` / ``TinySegNet`` have random weights and the output layout of the real models
(docs/model_format.md). ``export_tiny`` writes a real, verified, self-describing ONNX file through
``lanenet_train.export``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

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
