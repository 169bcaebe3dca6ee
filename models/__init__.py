"""TNet: the PSPNet trimap network, its backbones and weight loading.

The names are imported on first use (PEP 562): ``models.catalog`` (the variants' names, for command
lines) loads without PyTorch, and the rest when first asked for.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "catalog": ("BACKBONES", "DECODERS", "DEFAULT_WEIGHTS", "WeightsError"),
    "pspnet": ("PSPModule", "PSPNet", "PSPUpsample"),
    "tnet": ("TNet",),
    "weights": ("load_backbone_weights", "load_tnet", "load_tnet_state"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
