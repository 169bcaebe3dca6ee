"""TNet: the PSPNet trimap network, its backbones and weight loading.

The names are imported on first use (PEP 562): ``models.catalog`` (the variants' names, for command
lines) loads without PyTorch, and the rest when first asked for.
"""
from __future__ import annotations

from core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "catalog": ("BACKBONES", "DECODERS", "DEFAULT_WEIGHTS", "WeightsError"),
    "pspnet": ("PSPModule", "PSPNet", "PSPUpsample"),
    "tnet": ("TNet",),
    "weights": ("load_backbone_weights", "load_tnet", "load_tnet_state"),
}, globals())
