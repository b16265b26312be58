"""Models: plain torch, no downloads. ``build_model`` maps the spec's ``architecture`` to a class.

Every model's ``forward(x)`` returns a dict of logits (never an int64 argmax, which TensorRT handles badly):
LaneNet ``binary_logits`` (N,2,H,W) and ``embedding`` (N,E,H,W); DeepLabV3+ ``class_logits`` (N,C,H,W).
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lanenet_train.models.deeplab import DeepLabV3Plus
from lanenet_train.models.lanenet import LaneNet

ARCHITECTURES = ("lanenet", "deeplabv3plus")
OUTPUTS = {"lanenet": ("binary_logits", "embedding"), "deeplabv3plus": ("class_logits",)}


def build_model(model_config: Any, num_classes: int | None = None) -> nn.Module:
    """Build the network that ``model_config`` (``spec.ModelConfig``) describes.

    Args:
        model_config: the spec's model section (architecture and its options).
        num_classes: class count for multi-class models; default ``model_config.num_classes``.

    Returns:
        The model, in training mode, with freshly initialised weights.

    Raises:
        ValueError: unknown architecture, or a multi-class model without a class count.
    """
    arch = model_config.architecture
    if arch == "lanenet":
        return LaneNet(model_config.input_image_channels, model_config.embedding_dim,
                       model_config.width_multiplier, model_config.dropout, model_config.hood_output,
                       model_config.marking_output, model_config.painted_output)
    if arch == "deeplabv3plus":
        classes = num_classes or model_config.num_classes
        if classes < 2:
            raise ValueError("model_config.num_classes: deeplabv3plus needs at least 2 classes "
                             "(set num_classes or give the dataset's class table)")
        return DeepLabV3Plus(classes, model_config.input_image_channels, tuple(model_config.atrous_rates),
                             model_config.output_stride, model_config.width_multiplier,
                             model_config.aspp_channels)
    raise ValueError(f"model_config.architecture: unknown {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
