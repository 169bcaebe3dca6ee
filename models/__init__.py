"""The trimap network (TNet) and its files:

* :mod:`models.tnet` — :class:`~models.tnet.TNet`, the PSPNet research design or the compact U-Net under one
  interface; :mod:`models.pspnet`, :mod:`models.unet` — the two networks;
* :mod:`models.catalog` — the backbones' and decoders' names and the shipped weights' path (no PyTorch);
* :mod:`models.weights` — reading checkpoints and weights files (older key layouts mapped), ImageNet starts;
* :mod:`models.export`, :mod:`models.onnx_model` — fp16 weights files, ONNX and the OpenCV export.

Inference opens a model through :func:`idphoto.runner.open_trimap_model`, which reads these files.

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
