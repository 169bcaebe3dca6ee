"""The names and shapes of the TNet variants, the shipped weights file and the weights error, without PyTorch:
what command lines, ``--help`` and a run without PyTorch need."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

# The compact model that ships with the project (see weights/MODEL_CARD.md); infer.py's default.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "tnet_unet_mobilenetv3.pth"


class WeightsError(UserError, RuntimeError):
    """Weights that can't be had or don't fit; the message is one line meant for the user."""


@dataclass(frozen=True)
class BackboneSpec:
    """How one backbone plugs into the PSPNet head."""

    feat_channels: int          # channels of the last feature map
    psp_out: int                # channels after the pyramid-pooling bottleneck
    up_channels: tuple          # output channels of the three upsampling blocks
    weights: str                # torchvision weights enum name, for --pretrained imagenet


BACKBONES = {
    # the research model: dilated ResNet-50, output stride 8
    "resnet50": BackboneSpec(2048, 1024, (256, 64, 64), "ResNet50_Weights.IMAGENET1K_V1"),
    "resnet101": BackboneSpec(2048, 1024, (256, 64, 64), "ResNet101_Weights.IMAGENET1K_V1"),
    # the compact model that ships with the project: dilated MobileNetV3-Large, output stride 16
    "mobilenetv3": BackboneSpec(960, 256, (128, 64, 32), "MobileNet_V3_Large_Weights.IMAGENET1K_V1"),
}

DECODERS = ("psp", "unet")
UNET_BACKBONES = ("mobilenetv3",)
