"""DeepLabV3+ (Chen et al., 2018) on a small ResNet-style backbone written here (no pretrained weights).

The backbone keeps ``output_stride`` (8 or 16) by replacing the last strides with dilation, as DeepLab does;
ASPP uses the given atrous rates and an image-pooling branch; the decoder fuses low-level features at
stride 4 and returns class logits at the input size.
"""
from __future__ import annotations

import torch
from torch import nn

from lanenet_train.models.layers import ConvBNReLU, resize_to, scaled


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with a projected shortcut when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(in_ch, out_ch, 3, stride, dilation)
        self.conv2 = nn.Sequential(nn.Conv2d(out_ch, out_ch, 3, 1, dilation, dilation=dilation, bias=False),
                                   nn.BatchNorm2d(out_ch))
        self.short: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.short = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.short(x) + self.conv2(self.conv1(x)))


class ResNetBackbone(nn.Module):
    """ResNet-18-like backbone; returns (stride-4 features, deep features at ``output_stride``)."""

    def __init__(self, in_channels: int, width_multiplier: float, output_stride: int) -> None:
        super().__init__()
        chans = [scaled(c, width_multiplier) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(ConvBNReLU(in_channels, chans[0] // 2, 3, 2), ConvBNReLU(chans[0] // 2, chans[0]),
                                  nn.MaxPool2d(3, 2, 1))
        # (stride, dilation) of stages 2..4 for each output stride
        plan = {16: [(2, 1), (2, 1), (1, 2)], 8: [(2, 1), (1, 2), (1, 4)]}[output_stride]
        self.layer1 = nn.Sequential(BasicBlock(chans[0], chans[0]), BasicBlock(chans[0], chans[0]))
        layers = []
        for (stride, dilation), cin, cout in zip(plan, chans[:-1], chans[1:], strict=True):
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride, max(1, dilation // 2)),
                                        BasicBlock(cout, cout, 1, dilation)))
        self.layer2, self.layer3, self.layer4 = layers
        self.low_channels, self.out_channels = chans[0], chans[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.layer1(self.stem(x))
        return low, self.layer4(self.layer3(self.layer2(low)))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, one 3x3 per atrous rate, and global image pooling."""

    def __init__(self, in_ch: int, out_ch: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ConvBNReLU(in_ch, out_ch, 1)]
                                      + [ConvBNReLU(in_ch, out_ch, 3, dilation=r) for r in rates])
        # no BatchNorm after global pooling: a batch of one would give it a single value per channel
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(ConvBNReLU(out_ch * (len(rates) + 2), out_ch, 1), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [b(x) for b in self.branches]
        feats.append(self.pool(x).expand_as(feats[0]))
        return self.project(torch.cat(feats, dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+: ``forward(x)`` returns ``class_logits`` (N,C,H,W) at the input size.

    Args:
        num_classes: C, including background.
        in_channels: image channels.
        atrous_rates: ASPP rates (6, 12, 18 at output stride 16).
        output_stride: 8 or 16.
        width_multiplier: scales the backbone's 64..512 channels.
        aspp_channels: channels of the ASPP branches and of the decoder.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, atrous_rates: tuple[int, ...] = (6, 12, 18),
                 output_stride: int = 16, width_multiplier: float = 1.0, aspp_channels: int = 256) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(in_channels, width_multiplier, output_stride)
        self.aspp = ASPP(self.backbone.out_channels, aspp_channels, tuple(atrous_rates))
        low_ch = max(8, aspp_channels // 5)  # DeepLab reduces the low-level features to 48 of 256
        self.low_project = ConvBNReLU(self.backbone.low_channels, low_ch, 1)
        self.decoder = nn.Sequential(ConvBNReLU(aspp_channels + low_ch, aspp_channels),
                                     ConvBNReLU(aspp_channels, aspp_channels),
                                     nn.Conv2d(aspp_channels, num_classes, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        low, deep = self.backbone(x)
        low = self.low_project(low)
        fused = torch.cat([resize_to(self.aspp(deep), low), low], dim=1)
        return {"class_logits": resize_to(self.decoder(fused), x)}
