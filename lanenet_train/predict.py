"""A trained checkpoint or an exported model as a lane detector: the runtime's own pipeline.

Evaluation and ``inference`` run :class:`lanenet_ros.pipeline.LanePipeline`, as the node does, so what they
measure is what the car will run, up to the ONNX export. A checkpoint's network runs behind the runtime's
backend interface (:class:`TorchBackend`); an exported ``.onnx`` model on ONNX Runtime.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from lanenet_ros.lanes import LaneFrame
from lanenet_ros.model_info import ModelInfo
from lanenet_ros.pipeline import LanePipeline
from lanenet_train.checkpoint import load_model


class TorchBackend:
    """A checkpoint's network behind the runtime's backend interface (:class:`lanenet_ros.backends.Backend`).

    Args:
        model: the network, in eval mode.
        info: its description.
        device: torch device the network runs on.
    """

    name = "torch"
    max_batch = sys.maxsize  # the network takes any batch at once

    def __init__(self, model: torch.nn.Module, info: ModelInfo, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.info = info
        self.skipped: list[str] = []

    @classmethod
    def open(cls, path: str | os.PathLike, key: str | None = None, device: str = "cpu") -> TorchBackend:
        """The network of a checkpoint written by ``lanenet-train train``.

        Raises:
            CheckpointError: unreadable checkpoint, wrong key, or weights that do not fit its spec.
        """
        model, checkpoint = load_model(path, key)
        return cls(model, ModelInfo.from_dict(checkpoint["model_info"], str(path)), device)

    @torch.no_grad()
    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network on an (N, C, H, W) float32 batch; outputs by tensor name."""
        out = self.model(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
        return {k: v.float().cpu().numpy() for k, v in out.items()}


class Predictor(LanePipeline):
    """Camera images in, :class:`LaneFrame` out (no tracking), with a trained checkpoint or an exported model.

    Args:
        model_path: checkpoint written by ``lanenet-train train``, or an exported ``.onnx`` model (run by the
            runtime's ONNX Runtime backend, image by image unless its batch dimension is dynamic).
        key: the checkpoint's passphrase when encrypted.
        device: torch device for a checkpoint's network.
        decode_params: decoder settings ``name -> value`` (``parse_pairs`` of ``--decode`` pairs) on top of
            those an exported model carries (its description's ``decode``), as in the node.
    """

    def __init__(self, model_path: str | os.PathLike, key: str | None = None, device: str = "cpu",
                 decode_params: Mapping[str, Any] | None = None) -> None:
        if str(model_path).lower().endswith(".onnx"):
            super().__init__(model_path, "onnxruntime", decode_params, tracking=False)
        else:
            super().__init__(model_path, TorchBackend.open(model_path, key, device), decode_params, tracking=False)

    def __call__(self, images_bgr: Sequence[np.ndarray]) -> list[LaneFrame]:
        """Detect lanes in a batch of camera images (:meth:`LanePipeline.process_batch`)."""
        return self.process_batch(images_bgr)
