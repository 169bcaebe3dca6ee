"""The compact TNet: a MobileNetV3 encoder whose stride 2/4/8/16/32 features feed a U-Net decoder,
with pyramid pooling on the top features.

Why not the PSPNet head on a dilated MobileNetV3 (the earlier compact model): dilation keeps every
late layer at stride 16, which is what makes it slow to train on a CPU, and its decoder only upsamples
the pooled features, so edges come out blobby and the thin "unknown" band of the trimap is barely
learnt. Here the encoder runs at its normal strides (about 4× cheaper) and each decoder stage
concatenates the encoder's feature map of the same stride, so the band is placed from stride-2 detail.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from .pspnet import PSPModule

# MobileNetV3-Large ``features`` indices whose outputs are the stride 2/4/8/16/32 maps, and their channels.
MOBILENETV3_TAPS = (1, 3, 6, 12, 16)
MOBILENETV3_CHANNELS = (16, 24, 40, 112, 960)


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MobileNetV3Encoder(nn.Module):
    """torchvision's MobileNetV3-Large trunk (not dilated) returning the stride 2, 4, 8, 16 and 32 maps."""

    def __init__(self):
        super().__init__()
        # BatchNorm momentum 0.1, not torchvision's 0.01: from scratch on a few thousand photos the slow
        # running statistics lag the weights for many epochs and the eval-mode output is garbage.
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)
        self.features = torchvision.models.mobilenet_v3_large(weights=None, norm_layer=norm).features

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in MOBILENETV3_TAPS:
                outs.append(x)
        return outs


class UpBlock(nn.Module):
    """×2 bilinear upsampling of the coarser map, concatenated with the encoder map of that stride, then 3×3 conv."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv = conv_bn_relu(cin + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class UNetTNet(nn.Module):
    """MobileNetV3 encoder → pyramid pooling at stride 32 → four U-Net up-blocks (strides 16, 8, 4, 2)
    → 1×1 classifier → bilinear to the input size."""

    def __init__(self, num_classes: int = 3, decoder_channels=(128, 96, 64, 32, 16), sizes=(1, 2, 3, 6)):
        super().__init__()
        c2, c4, c8, c16, c32 = MOBILENETV3_CHANNELS
        d32, d16, d8, d4, d2 = decoder_channels
        self.encoder = MobileNetV3Encoder()
        # reduce before pooling: 960-channel pyramid convolutions would be most of the model's weights
        self.reduce = conv_bn_relu(c32, d32, 1)
        self.psp = PSPModule(d32, d32, sizes)
        self.up16 = UpBlock(d32, c16, d16)
        self.up8 = UpBlock(d16, c8, d8)
        self.up4 = UpBlock(d8, c4, d4)
        self.up2 = UpBlock(d4, c2, d2)
        self.dropout = nn.Dropout2d(p=0.1)
        self.final = nn.Conv2d(d2, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        f2, f4, f8, f16, f32 = self.encoder(x)
        y = self.dropout(self.psp(self.reduce(f32)))
        y = self.up16(y, f16)
        y = self.up8(y, f8)
        y = self.up4(y, f4)
        y = self.up2(y, f2)
        return F.interpolate(self.final(y), size=size, mode="bilinear", align_corners=False)
