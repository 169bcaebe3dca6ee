"""ID photos from everyday photos: TNet trimap → pymatting alpha → framing by the face → print-ready files.

Public API (used by infer.py, evaluate.py and the benchmarks)::

    from idphoto import Pipeline, predict_trimap, estimate_alpha, estimate_foreground
    from idphoto import load_image, get_spec, make_id_photo
"""
from .errors import IDPhotoError
from .face import FaceBox, detect_faces
from .framing import Placement, composite, place_by_face, place_by_mask, render
from .image_io import IMAGE_EXTENSIONS, list_images, load_image
from .maker import IDPhoto, make_id_photo
from .output import COLORS, encode_jpeg, encode_jpeg_max_kb, parse_color, print_sheet
from .pipeline import (DEFAULT_MAX_SIDE, MATTING_METHODS, MattingResult, MattingWarning, Pipeline,
                       estimate_alpha, estimate_foreground, predict_trimap, predict_trimap_pair)
from .specs import SPECS, PhotoSpec, custom_spec, get_spec

__all__ = [
    "IDPhotoError", "FaceBox", "detect_faces", "Placement", "composite", "place_by_face", "place_by_mask",
    "render", "IMAGE_EXTENSIONS", "list_images", "load_image", "IDPhoto", "make_id_photo", "COLORS",
    "encode_jpeg", "encode_jpeg_max_kb", "parse_color", "print_sheet", "DEFAULT_MAX_SIDE", "MATTING_METHODS",
    "MattingResult", "MattingWarning", "Pipeline", "estimate_alpha", "estimate_foreground", "predict_trimap",
    "predict_trimap_pair",
    "SPECS", "PhotoSpec", "custom_spec", "get_spec",
]
