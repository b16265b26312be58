"""A trained checkpoint as a lane detector: the runtime's preprocessing and decoding around the torch model.

Evaluation and ``inference`` use the same ROS-free pieces as the node (``lanenet_ros.preprocess``,
``lanenet_ros.decode.decoder``), so what they measure is what the car will run, up to the ONNX export.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from lanenet_ros.decode.decoder import LaneDecoder
from lanenet_ros.decode.settings import DecodeParams
from lanenet_ros.lanes import LaneFrame
from lanenet_ros.model_info import ModelInfo
from lanenet_ros.pipeline import run_model
from lanenet_ros.preprocess import Preprocessor
from lanenet_train.checkpoint import load_model


class Predictor:
    """Camera images in, :class:`LaneFrame` out, with a trained checkpoint or an exported model.

    Args:
        model_path: checkpoint written by ``lanenet-train train``, or an exported ``.onnx`` model (run by the
            runtime's ONNX Runtime backend, image by image unless its batch dimension is dynamic).
        key: the checkpoint's passphrase when encrypted.
        device: torch device for a checkpoint's network.
        decode_params: decoder settings ``name -> value`` (``parse_pairs`` of ``--decode`` pairs) on top
            of those an exported model carries (its description's ``decode``), as in the node
            (``DecodeParams.override``).
    """

    def __init__(self, model_path: str | os.PathLike, key: str | None = None, device: str = "cpu",
                 decode_params: Mapping[str, Any] | None = None) -> None:
        self.backend, self.model = None, None
        if str(model_path).lower().endswith(".onnx"):
            from lanenet_ros.backends import create_backend

            self.backend = create_backend(str(model_path), "onnxruntime", reuse_outputs=False)  # outputs kept
            self.info = self.backend.info
        else:
            self.model, checkpoint = load_model(model_path, key)
            self.device = torch.device(device)
            self.model.to(self.device)
            self.info = ModelInfo.from_dict(checkpoint["model_info"], str(model_path))
        self.preprocessor = Preprocessor.from_info(self.info, reuse_output=False)
        self.decoder = LaneDecoder(self.info, DecodeParams.from_pairs(self.info.decode).override(decode_params))

    @torch.no_grad()
    def outputs(self, images_bgr: Sequence[np.ndarray]) -> tuple[dict[str, np.ndarray], list[Any]]:
        """Raw network outputs of a batch of camera images (any sizes) and each image's geometry."""
        inputs, geometries = zip(*(self.preprocessor(img) for img in images_bgr), strict=True)
        flip = self.decoder.params.flip_average
        if self.backend is not None:
            step = len(inputs) if self.info.dynamic_batch else 1
            parts = [run_model(self.backend.infer, np.concatenate(inputs[i:i + step]), self.info, flip)
                     for i in range(0, len(inputs), step)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, list(geometries)
        return run_model(self._torch_infer, np.concatenate(inputs), self.info, flip), list(geometries)

    def _torch_infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        out = self.model(torch.from_numpy(batch).to(self.device))
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def __call__(self, images_bgr: Sequence[np.ndarray]) -> list[LaneFrame]:
        """Detect lanes in a batch of camera images.

        Args:
            images_bgr: (H, W, 3) uint8 BGR images.

        Returns:
            One frame per image (class mask at camera resolution, lanes left to right).
        """
        if not images_bgr:
            return []
        out, geometries = self.outputs(images_bgr)
        return [self.decoder.decode({k: v[i] for k, v in out.items()}, geo, img)
                for i, (geo, img) in enumerate(zip(geometries, images_bgr, strict=True))]
