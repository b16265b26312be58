"""Small building blocks shared by the models (all export to plain ONNX ops)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def scaled(channels: int, width_multiplier: float, minimum: int = 8) -> int:
    """Scale a channel count by ``width_multiplier``, rounded to a multiple of 4 and at least ``minimum``.

    Args:
        channels: channel count at width 1.0.
        width_multiplier: scale factor (0.25 makes a model about 16x cheaper).
        minimum: lower bound of the result.

    Returns:
        The scaled channel count.
    """
    return max(minimum, round(channels * width_multiplier / 4.0) * 4)


class ConvBNReLU(nn.Sequential):
    """Convolution, batch norm and ReLU, padded so that stride 1 keeps the size."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                 groups: int = 1) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


def resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``like`` (ONNX ``Resize``); ``x`` itself when the sizes
    agree."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x.float(), size=like.shape[-2:], mode="bilinear", align_corners=False)
