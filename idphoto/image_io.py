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


class NotAnImageError(IDPhotoError):
    """The bytes are no image Pillow can identify."""


class TooLargeError(IDPhotoError):
    """The image declares more pixels than allowed (checked before decoding: no decompression bomb)."""


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
    return decode_image(path, where=f"{path}: ")


def decode_image(source, max_pixels: int | None = None, where: str = "") -> np.ndarray:
    """A photo (a path or a binary file object) as H×W×3 BGR uint8, upright; messages start with ``where``.

    With ``max_pixels`` the pixel count is read from the header and checked before anything is decoded
    (:class:`TooLargeError`); Pillow's own decompression-bomb guard holds in any case. Raises
    :class:`NotAnImageError` or :class:`IDPhotoError` (truncated, tiny…), in one line.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                w, h = im.size
                if max_pixels and w * h > max_pixels:
                    raise TooLargeError(f"{where}image too large: {w}×{h} px is over the limit of "
                                        f"{max_pixels / 1e6:g} megapixels")
                im.load()  # raises on a truncated file instead of returning grey padding
                im = _to_rgb(ImageOps.exif_transpose(im))
    except UnidentifiedImageError:
        raise NotAnImageError(f"{where}not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own guard, at open
        limit = f"{max_pixels / 1e6:g}" if max_pixels else f"{Image.MAX_IMAGE_PIXELS / 1e6:.0f}"
        raise TooLargeError(f"{where}image too large: over the limit of {limit} megapixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IDPhotoError(f"{where}cannot decode image ({reason})") from None
    if min(im.size) < MIN_SIDE:
        raise IDPhotoError(f"{where}image too small ({im.size[0]}×{im.size[1]} px; need at least {MIN_SIDE} px a side)")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8)[:, :, ::-1])


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
