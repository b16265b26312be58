"""A tiny, hand-weighted LaneNet exported by the project (`lanenet_train.export.export_model`) for the
node tests, and the road picture it sees lanes in.

The network marks bright pixels as lane (binary logits from the grey level) and gives every pixel an
embedding that grows with its column, so separate vertical stripes come out as separate lane instances:
what a trained LaneNet does on a straight road, without training one in a test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

INPUT_WIDTH, INPUT_HEIGHT, EMBEDDING_DIM = 256, 128, 4


def stripes_image(width: int = 320, height: int = 240, columns: tuple[float, ...] = (0.3, 0.7),
                  shade: int = 40) -> np.ndarray:
    """A dark BGR road with a white vertical stripe (1/40 of the width) at each column fraction."""
    image = np.full((height, width, 3), shade, np.uint8)
    half = max(2, width // 80)
    for fraction in columns:
        x = int(fraction * width)
        image[height // 4:, x - half:x + half] = 255
    return image


def export_stripe_model(path: Path) -> Path:
    """Build and export the hand-weighted model to ``path`` (an .onnx file with lanenet metadata)."""
    torch = pytest.importorskip("torch")
    from lanenet_train.export import export_model

    class StripeNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            grid = torch.linspace(0.0, 1.0, INPUT_WIDTH).view(1, 1, 1, INPUT_WIDTH)
            self.register_buffer("columns", grid.repeat(1, 1, INPUT_HEIGHT, 1))

        def forward(self, x):
            grey = x.mean(dim=1, keepdim=True)
            lane = (grey - 0.5) * 20.0
            along = self.columns * 10.0 + grey * 0.0  # ties the batch size to the input's
            return {"binary_logits": torch.cat([-lane, lane], 1),
                    "embedding": torch.cat([along] + [along * 0.0] * (EMBEDDING_DIM - 1), 1)}

    info = {"architecture": "lanenet", "input_width": INPUT_WIDTH, "input_height": INPUT_HEIGHT,
            "input_channels": 3, "channel_order": "bgr", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
            "roi_top": 0.0, "class_names": ["background", "lane"], "lane_class_ids": [1],
            "class_colors": [[0, 0, 0], [255, 255, 255]], "embedding_dim": EMBEDDING_DIM,
            "spec_fingerprint": "test-stripe-net"}
    export_model(StripeNet(), info, path, verify_images=1)
    return path


def test_exported_model_describes_itself_and_marks_the_stripes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from lanenet_ros.model_info import read_model_info
    from lanenet_ros.preprocess import Preprocessor

    path = export_stripe_model(tmp_path / "stripes.onnx")
    info = read_model_info(path)
    assert (info.architecture, info.input_width, info.embedding_dim) == ("lanenet", INPUT_WIDTH,
                                                                          EMBEDDING_DIM)
    batch, _ = Preprocessor.from_info(info)(stripes_image())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    binary, embedding = session.run(["binary_logits", "embedding"], {info.input_name: batch})
    lane = binary[0, 1] > binary[0, 0]
    columns = np.nonzero(lane.any(axis=0))[0]
    assert columns.min() < INPUT_WIDTH // 2 < columns.max() and lane.mean() < 0.1
    on_left = np.arange(INPUT_WIDTH) < INPUT_WIDTH // 2
    left, right = embedding[0, 0][lane & on_left], embedding[0, 0][lane & ~on_left]
    assert right.min() - left.max() > 3.0  # far apart in embedding space: two instances
