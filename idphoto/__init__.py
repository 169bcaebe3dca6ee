"""ID photos from everyday photos: TNet trimap → alpha matting → framing by the face → print-ready files.

Public API (used by the commands, evaluate.py and the benchmarks)::

    from idphoto import open_trimap_model, Pipeline, predict_trimap, estimate_alpha, estimate_foreground
    from idphoto import load_image, get_spec, compose_id_photo

The command line is :mod:`idphoto.cli` (``python infer.py``, installed as ``idphoto``); the web page and
API are :mod:`idphoto.web`. The names are imported on first use (PEP 562), so ``import idphoto`` or ``idphoto.specs`` costs no
PyTorch, OpenCV or SciPy start-up: the spec tables and every ``--help`` answer at once.
"""
from __future__ import annotations

from core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "errors": ("IDPhotoError",),
    "face": ("FaceBox", "detect_faces"),
    "framing": ("Placement", "composite", "place_by_face", "place_by_mask", "render"),
    "image_io": ("IMAGE_EXTENSIONS", "list_images", "load_image"),
    "maker": ("IDPhoto", "compose_id_photo"),
    "output": ("COLORS", "encode_jpeg", "encode_jpeg_max_kb", "parse_color", "print_sheet"),
    "pipeline": ("DEFAULT_MAX_SIDE", "MATTING_METHODS", "MattingResult", "MattingWarning", "Pipeline",
                 "estimate_alpha", "estimate_foreground", "predict_trimap", "predict_trimap_pair"),
    "runner": ("open_trimap_model",),
    "specs": ("SPECS", "PhotoSpec", "custom_spec", "get_spec"),
}, globals())
