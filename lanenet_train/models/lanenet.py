"""LaneNet (Neven et al., 2018) on an ENet-style encoder.

Stages 1 and 2 of the encoder are shared; stage 3 and the decoder are repeated once for the binary
lane-segmentation branch and once for the instance-embedding branch. Max-unpooling of the original ENet
is replaced by transposed convolutions so that the model exports to plain ONNX / TensorRT layers.
"""
from __future__ import annotations

import torch
from torch import nn

from lanenet_ros.lanes import LEARNED_COLORS, LEARNED_TYPES
from lanenet_train.models.layers import ConvBNReLU, resize_to, scaled


class InitialBlock(nn.Module):
    """ENet's stem: a strided 3x3 convolution concatenated with a max-pooled copy of the input."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch - in_ch, 3, 2, 1, bias=False)
        self.pool = nn.MaxPool2d(2, 2)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class Bottleneck(nn.Module):
    """ENet bottleneck: 1x1 reduce, a regular / dilated / asymmetric / strided conv, 1x1 expand, residual."""

    def __init__(self, in_ch: int, out_ch: int, kind: str = "regular", dilation: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        mid = max(4, out_ch // 4)
        stride = 2 if kind == "down" else 1
        if kind == "asymmetric":
            middle: nn.Module = nn.Sequential(
                nn.Conv2d(mid, mid, (5, 1), padding=(2, 0), bias=False),
                ConvBNReLU(mid, mid, kernel=1), nn.Conv2d(mid, mid, (1, 5), padding=(0, 2), bias=False))
        else:
            middle = nn.Conv2d(mid, mid, 3, 1, dilation, dilation=dilation, bias=False)
        self.branch = nn.Sequential(
            ConvBNReLU(in_ch, mid, kernel=2 if stride == 2 else 1, stride=stride),
            middle, nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.Dropout2d(dropout))
        self.main: nn.Module = nn.Identity()
        if stride == 2 or in_ch != out_ch:
            pool = nn.MaxPool2d(2, 2) if stride == 2 else nn.Identity()
            self.main = nn.Sequential(pool, nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.main(x) + self.branch(x))


class UpBlock(nn.Module):
    """Decoder step: 2x transposed convolution fused with the encoder skip of the same size, then refine."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 2, 2, bias=False), nn.BatchNorm2d(out_ch))
        self.refine = Bottleneck(out_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.refine(torch.relu(self.up(x) + skip))


def stage3(ch: int, dropout: float) -> nn.Sequential:
    """ENet stage 3: dilated and asymmetric bottlenecks at stride 8 (one per branch in LaneNet)."""
    kinds = [("regular", 1), ("regular", 2), ("asymmetric", 1), ("regular", 4),
             ("regular", 1), ("regular", 8), ("asymmetric", 1), ("regular", 16)]
    return nn.Sequential(*[Bottleneck(ch, ch, k, d, dropout) for k, d in kinds])


class Decoder(nn.Module):
    """Branch decoder: stride 8 -> 4 -> 2 with skips, then a transposed conv to full size and the head."""

    def __init__(self, chans: tuple[int, int, int], out_ch: int) -> None:
        super().__init__()
        c1, c2, c3 = chans
        self.up4 = UpBlock(c3, c2)
        self.up2 = UpBlock(c2, c1)
        self.head = nn.ConvTranspose2d(c1, out_ch, 2, 2)

    def forward(self, x: torch.Tensor, skip4: torch.Tensor, skip2: torch.Tensor) -> torch.Tensor:
        return self.head(self.up2(self.up4(x, skip4), skip2))


class SideHeads(nn.Module):
    """The outputs beside the lane branches (the bonnet, the marking type and colour) from features of their own:
    three convolutions on the shared encoder's output (stride 8, dilated 1/2/4 to see a whole bonnet or several
    dashes), fused by a 1x1 convolution with the stride-4 encoder features for detail, then one 1x1 convolution
    per output, left at stride 4 (the loss and the decoder resize them; a resize in the network cost a tenth
    more inference). They read only the shared encoder, so training them alone (``train_config.train_only:
    "heads"``) leaves every lane output as it was.
    """

    def __init__(self, c_deep: int, c_skip: int, hood: bool, markings: bool, width: int = 32,
                 painted: bool = False) -> None:
        super().__init__()
        self.deep = nn.Sequential(ConvBNReLU(c_deep, width), ConvBNReLU(width, width, dilation=2),
                                  ConvBNReLU(width, width, dilation=4))
        self.fuse = ConvBNReLU(width + c_skip, 24, kernel=1)
        self.hood = nn.Conv2d(24, 1, 1) if hood else None
        self.marking = nn.Conv2d(24, len(LEARNED_TYPES) + len(LEARNED_COLORS), 1) if markings else None
        self.painted = nn.Conv2d(24, 1, 1) if painted else None

    def forward(self, shared: torch.Tensor, skip4: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.fuse(torch.cat([resize_to(self.deep(shared), skip4), skip4], 1))
        out = {}
        if self.hood is not None:
            out["hood_logits"] = self.hood(f)
        if self.marking is not None:
            out["marking_logits"] = self.marking(f)
        if self.painted is not None:
            out["painted_logits"] = self.painted(f)
        return out


class LaneNet(nn.Module):
    """LaneNet: ``forward(x)`` returns ``binary_logits`` (N,2,H,W) and ``embedding`` (N,E,H,W), and with
    ``hood`` also ``hood_logits`` (N,1,H/4,W/4): the ego vehicle's bonnet, and with ``markings`` also
    ``marking_logits`` (N,T+C,H/4,W/4): each lane pixel's marking type (``LEARNED_TYPES``) and colour
    (``LEARNED_COLORS``), two softmaxes, and with ``painted`` also ``painted_logits`` (N,1,H/4,W/4): whether
    what the lane branch marks there is a painted line (not a bare road edge, a barrier's base, a shadow's
    edge); all from :class:`SideHeads`.

    Args:
        in_channels: image channels (3).
        embedding_dim: E, the instance-embedding dimension.
        width_multiplier: scales ENet's 16/64/128 channels (0.5 gives 8/32/64).
        dropout: spatial dropout in the bottlenecks while training.
        hood: add the bonnet output.
        markings: add the marking output.
        painted: add the painted-line output.
    """

    def __init__(self, in_channels: int = 3, embedding_dim: int = 4, width_multiplier: float = 1.0,
                 dropout: float = 0.1, hood: bool = False, markings: bool = False, painted: bool = False) -> None:
        super().__init__()
        c1, c2, c3 = (scaled(16, width_multiplier), scaled(64, width_multiplier), scaled(128, width_multiplier))
        c1 = max(c1, in_channels + 4)
        self.initial = InitialBlock(in_channels, c1)
        self.stage1 = nn.Sequential(Bottleneck(c1, c2, "down", dropout=dropout / 10),
                                    *[Bottleneck(c2, c2, dropout=dropout / 10) for _ in range(3)])
        self.stage2 = nn.Sequential(Bottleneck(c2, c3, "down", dropout=dropout), *stage3(c3, dropout))
        self.binary_stage3 = stage3(c3, dropout)
        self.embedding_stage3 = stage3(c3, dropout)
        self.binary_decoder = Decoder((c1, c2, c3), 2)
        self.embedding_decoder = Decoder((c1, c2, c3), embedding_dim)
        self.heads = SideHeads(c3, c2, hood, markings, painted=painted) if hood or markings or painted else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        skip2 = self.initial(x)
        skip4 = self.stage1(skip2)
        shared = self.stage2(skip4)
        # called as a module (not its parts), so that an exported graph names its nodes binary_decoder/...,
        # which lanenet_train.onnx_weights maps back to the modules
        out = {"binary_logits": self.binary_decoder(self.binary_stage3(shared), skip4, skip2),
               "embedding": self.embedding_decoder(self.embedding_stage3(shared), skip4, skip2)}
        if self.heads is not None:
            out.update(self.heads(shared, skip4))
        return out
