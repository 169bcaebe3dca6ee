"""TNet: the PSPNet trimap network, its backbones and weight loading."""
from .pspnet import BACKBONES, PSPModule, PSPNet, PSPUpsample
from .tnet import DECODERS, TNet
from .weights import DEFAULT_WEIGHTS, WeightsError, load_backbone_weights, load_tnet, load_tnet_state

__all__ = [
    "BACKBONES", "DECODERS", "PSPModule", "PSPNet", "PSPUpsample", "TNet",
    "DEFAULT_WEIGHTS", "WeightsError", "load_backbone_weights", "load_tnet", "load_tnet_state",
]
