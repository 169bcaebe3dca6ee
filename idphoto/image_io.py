"""Reading photos robustly: EXIF rotation, grayscale, palette, alpha, 16-bit, truncated files, any path.

Pillow decodes (it notices truncated JPEGs, which OpenCV silently pads with grey, and it applies the
EXIF orientation); the result is the BGR uint8 array the rest of the project works with.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import IDPhotoError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MIN_SIDE = 32  # smaller than this is no photo of a person


def load_image(path: str | os.PathLike) -> np.ndarray:
    """The photo at ``path`` as H×W×3 BGR uint8, upright (EXIF orientation applied).

    Transparent pixels of an RGBA/LA/palette image are composited over white. Raises
    :class:`IDPhotoError` with a one-line message for a missing, unreadable, truncated or tiny image.
    """
    path = Path(path)
    if not path.exists():
        raise IDPhotoError(f"{path}: file not found")
    if not path.is_file():
        raise IDPhotoError(f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()  # raises on a truncated file instead of returning grey padding
                im = ImageOps.exif_transpose(im)
                im = _to_rgb(im)
    except FileNotFoundError:
        raise IDPhotoError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise IDPhotoError(f"{path}: not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise IDPhotoError(f"{path}: image too large (over {Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IDPhotoError(f"{path}: cannot decode image ({reason})") from None
    if min(im.size) < MIN_SIDE:
        raise IDPhotoError(f"{path}: image too small ({im.size[0]}×{im.size[1]} px; need at least {MIN_SIDE} px a side)")
    rgb = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB; transparency is flattened onto white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grayscale: scale to 8 bits
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a * 255.0 / peak, 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(a * (255.0 if a.max() <= 1 else 1.0), 0, 255).astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def list_images(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(files with an image extension, other files) in ``folder``, sorted; hidden files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IDPhotoError(f"{folder}: not a folder")
    images, others = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        (images if p.suffix.lower() in IMAGE_EXTENSIONS else others).append(p)
    return images, others
