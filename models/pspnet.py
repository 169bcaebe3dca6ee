"""PSPNet trimap network on torchvision backbones: a dilated trunk, pyramid pooling and three upsampling blocks.

Parameter names are those of the widely used PyTorch PSPNet layout, so that state dicts saved in it load:
``feats.layer1…`` (the backbone), ``psp.stages…`` / ``psp.bottleneck`` (pyramid pooling),
``up_1…up_3`` (upsampling blocks) and ``final`` (the 1×1 classifier).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from .catalog import BACKBONES, BackboneSpec  # noqa: F401 (re-exported)


class ResNetFeatures(nn.Module):
    """A torchvision ResNet without its classifier: returns the last (dilated) feature map."""

    def __init__(self, resnet: torchvision.models.ResNet):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def make_backbone(name: str) -> nn.Module:
    """The feature extractor for ``name``, randomly initialised (weights are loaded separately)."""
    if name in ("resnet50", "resnet101"):
        resnet = getattr(torchvision.models, name)(weights=None, replace_stride_with_dilation=[False, True, True])
        return ResNetFeatures(resnet)
    if name == "mobilenetv3":
        # torchvision's MobileNetV3 uses BatchNorm momentum 0.01, tuned for long ImageNet runs; its running
        # statistics then lag far behind a network trained from scratch on a few thousand portraits, and the
        # eval-mode output is garbage for many epochs. PyTorch's default 0.1 tracks them.
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)
        return torchvision.models.mobilenet_v3_large(weights=None, dilated=True, norm_layer=norm).features
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


class PSPModule(nn.Module):
    """Pyramid pooling: pools of 1, 2, 3, 6 → 1×1 conv → upsample, concatenated with the input."""

    def __init__(self, features: int, out_features: int = 1024, sizes=(1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Conv2d(features, features, 1, bias=False)) for size in sizes
        )
        self.bottleneck = nn.Conv2d(features * (len(sizes) + 1), out_features, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        priors = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return self.relu(self.bottleneck(torch.cat(priors + [x], dim=1)))


class PSPUpsample(nn.Module):
    """×2 bilinear upsampling, then 3×3 conv + BatchNorm + PReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.PReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


class PSPNet(nn.Module):
    def __init__(self, num_classes: int = 3, backbone: str = "resnet50", sizes=(1, 2, 3, 6)):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        spec = BACKBONES[backbone]
        self.feats = make_backbone(backbone)
        self.psp = PSPModule(spec.feat_channels, spec.psp_out, sizes)
        self.drop_1 = nn.Dropout2d(p=0.3)
        c1, c2, c3 = spec.up_channels
        self.up_1 = PSPUpsample(spec.psp_out, c1)
        self.up_2 = PSPUpsample(c1, c2)
        self.up_3 = PSPUpsample(c2, c3)
        self.drop_2 = nn.Dropout2d(p=0.15)
        self.final = nn.Conv2d(c3, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        p = self.drop_1(self.psp(self.feats(x)))
        p = self.drop_2(self.up_1(p))
        p = self.drop_2(self.up_2(p))
        p = self.drop_2(self.up_3(p))
        logits = self.final(p)
        if logits.shape[-2:] != size:  # output stride 16, or an input side not divisible by 8
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits
