"""Reading photos robustly: EXIF rotation, grayscale, palette, alpha, 16-bit, truncated files, any path.

The decoding is the project's one image reader (:func:`core.fileio.decode_image`), so a photo is seen here
exactly as data preparation and evaluation see it; this module adds the inference's own rules (a photo
too small to hold a person is refused) and its error type.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from core.fileio import IMAGE_EXTENSIONS, EncodedPhoto, ImageTooLarge, NotAnImage, UnreadableImage
from core.fileio import decode_image as _decode

from .errors import IDPhotoError

__all__ = ["IMAGE_EXTENSIONS", "MIN_SIDE", "Photo", "decode_photo", "is_our_output", "list_images", "load_image",
           "open_photo"]

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
    return decode_photo(path)


def decode_photo(source, max_pixels: int | None = None, where: str | None = None) -> np.ndarray:
    """A photo (a path or a binary file object) as H×W×3 BGR uint8, upright; messages start with ``where``
    (by default the path).

    With ``max_pixels`` the pixel count is read from the header and checked before anything is decoded
    (:class:`TooLargeError`). Raises :class:`NotAnImageError` or :class:`IDPhotoError` (missing, truncated,
    tiny…), in one line.
    """
    where = _where(source, where)
    with _one_line(where):
        image = _decode(source, max_pixels=max_pixels, where=where)
    _check_size((image.shape[1], image.shape[0]), where)
    return image


class Photo(EncodedPhoto):
    """A photo file decoded on demand at the sizes asked for (:class:`core.fileio.EncodedPhoto`), with
    :func:`decode_photo`'s errors: a file whose header is fine but whose data is broken is refused in one line
    when first decoded."""

    def _decode(self, i: int):
        with _one_line(self._where):
            return super()._decode(i)


def open_photo(source, max_pixels: int | None = None, where: str | None = None) -> Photo:
    """A photo (bytes, a path or a binary file object) read as far as its header: its size checked as
    :func:`decode_photo` checks it, its pixels decoded when asked for, at the size asked for."""
    if isinstance(source, (bytes, bytearray)) and not source:
        raise NotAnImageError(f"{where or ''}empty file")
    where = _where(source, where)
    with _one_line(where):
        photo = Photo(source, max_pixels, where)
    _check_size(photo.size, where)
    return photo


def _where(source, where: str | None) -> str:
    if where is None:  # the path names the file; a file object gets no prefix
        return f"{Path(source)}: " if isinstance(source, (str, os.PathLike)) else ""
    return where


@contextmanager
def _one_line(where: str):
    """The reader's errors as this package's: one line, an :class:`IDPhotoError`."""
    try:
        yield
    except ImageTooLarge as exc:
        raise TooLargeError(str(exc)) from None
    except NotAnImage as exc:
        raise NotAnImageError(str(exc)) from None
    except UnreadableImage as exc:
        raise IDPhotoError(str(exc)) from None


def _check_size(size: tuple[int, int], where: str) -> None:
    w, h = size
    if min(h, w) < MIN_SIDE:
        raise IDPhotoError(f"{where}image too small ({w}×{h} px; need at least {MIN_SIDE} px a side)")


def is_our_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an image this tool wrote (its mark, ``idphoto.output.OUTPUT_MARK``, sits in the
    first bytes of every JPEG and PNG it writes)."""
    from .output import OUTPUT_MARK

    try:
        with open(path, "rb") as f:
            return OUTPUT_MARK in f.read(4096)
    except OSError:
        return False


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
