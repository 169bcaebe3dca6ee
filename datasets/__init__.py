"""Portrait matting data:

* :mod:`datasets.prepare` — raw AiFenGe / AISegment portraits (or images/ + masks/ pairs) → img/, alpha/,
  trimap/ folders and JSON lists, resumably (``python prepare_aifenge.py`` calls its :func:`convert_dataset`);
* :mod:`datasets.human` — :class:`HumanDataset` over those lists, with the recipe's transforms;
* :mod:`datasets.transforms` — the joint augmentations of photo, alpha and trimap, and the tensor conversion.

The names are imported on first use (PEP 562), so the conversion runs without PyTorch.
"""
from __future__ import annotations

from core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "human": ("HumanDataset", "list_paths", "read_lists", "recipe_transforms"),
    "prepare": ("convert_dataset", "find_samples"),
    "transforms": ("IMAGENET_MEAN", "IMAGENET_STD", "Compose", "RandomFlip", "RandomPatch", "RandomScale", "Resize",
                   "ToTensor", "image_to_tensor", "tensor_to_image", "train_transforms", "val_transforms"),
}, globals())
