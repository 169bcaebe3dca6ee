"""TNet: the trimap network (background / unknown / foreground logits), in one of two designs.

* ``decoder="psp"``: the research design, a PSPNet on a dilated ResNet-50 (or ResNet-101, or a dilated
  MobileNetV3) — the trimap network of SHM (Chen et al. 2018);
* ``decoder="unet"``: the compact model, a MobileNetV3 U-Net with pyramid pooling (:mod:`models.unet`),
  which learns from scratch on a CPU and runs in tens of milliseconds.

Both keep their whole network (trunk, pooling and decoder) under ``TNet.net`` and give 3-class logits
at the input size, so training, checkpoints (``{"arch", "model", ...}``) and inference are the same for
either. Weights saved under the attribute's earlier names (``backbone.…``, then ``pspnet.…`` keys, the
shipped weights among them) still load: :func:`models.weights.normalize_tnet_keys` maps them.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .catalog import BACKBONES, DECODERS, UNET_BACKBONES
from .pspnet import PSPNet
from .unet import UNetTNet


class TNet(nn.Module):
    def __init__(self, backbone: str = "resnet50", num_classes: int = 3, decoder: str = "psp"):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
        if decoder == "unet" and backbone not in UNET_BACKBONES:
            raise ValueError(f"the unet decoder needs the backbone {' or '.join(UNET_BACKBONES)}, not {backbone!r}")
        self.arch = {"backbone": backbone, "num_classes": num_classes, "decoder": decoder}
        self.net = PSPNet(num_classes=num_classes, backbone=backbone) if decoder == "psp" else UNetTNet(num_classes)

    def encoder_features(self) -> nn.Module:
        """The ImageNet-initialisable trunk (torchvision layout) of either design."""
        return self.net.feats if self.arch["decoder"] == "psp" else self.net.encoder.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
