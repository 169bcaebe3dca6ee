"""One photo (bytes, in memory) + :class:`~idphoto.options.IDPhotoOptions` → every output, in memory.

:func:`make_idphoto` is what the web app and the HTTP API run per request; :func:`process_image` is the
same work on an already decoded photo, so ``infer.py`` (which reads files) can share it. Nothing here
touches the disk: uploaded photos are personal data.
"""
from __future__ import annotations

import io
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import IDPhotoError
from .image_io import MIN_SIDE, _to_rgb
from .maker import MIN_PERSON_SHARE, make_id_photo
from .options import IDPhotoOptions, Resolved
from .output import encode_jpeg, encode_jpeg_max_kb, encode_png, print_sheet
from .pipeline import MattingWarning, Pipeline

DEFAULT_MAX_PIXELS = 40_000_000  # decoded size limit: a 40-megapixel photo is already 120 MB as BGR


class NotAnImageError(IDPhotoError):
    """The bytes are no image Pillow can identify."""


class TooLargeError(IDPhotoError):
    """The image declares more pixels than allowed (checked before decoding: no decompression bomb)."""


@dataclass
class ServiceResult:
    idphoto: bytes                  # JPEG at the spec's pixel size, DPI in the header
    cutout: bytes                   # RGBA PNG, colours from the estimated foreground
    trimap: bytes                   # PNG, 0/128/255
    alpha: bytes                    # PNG, 8-bit alpha
    sheet: bytes | None             # JPEG print sheet with options.layout, else None
    size: tuple[int, int]           # ID photo (width, height) in pixels
    dpi: int
    quality: int                    # JPEG quality used (lower than asked under max_kb)
    copies: int                     # photos on the sheet (0 without one)
    spec_name: str
    input_size: tuple[int, int]     # the photo's (width, height), upright
    timings: dict = field(default_factory=dict)   # stage → seconds
    notes: list[str] = field(default_factory=list)  # warnings worth showing (several faces, matting trouble)
    report: dict | None = None      # rule → {value, allowed, pass}, when a compliance check is available

    @property
    def kb(self) -> float:
        return len(self.idphoto) / 1024


def decode_image(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Photo bytes → H×W×3 BGR uint8, upright; the same decoding as :func:`idphoto.load_image` for files.

    The pixel count is read from the header and checked against ``max_pixels`` before anything is decoded.
    Raises :class:`NotAnImageError`, :class:`TooLargeError` or :class:`IDPhotoError` (truncated, tiny…).
    """
    if not data:
        raise NotAnImageError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if max_pixels and w * h > max_pixels:
                    raise TooLargeError(f"image too large: {w}×{h} px is over the limit of "
                                        f"{max_pixels / 1e6:g} megapixels")
                im.load()  # raises on a truncated file instead of returning grey padding
                im = _to_rgb(ImageOps.exif_transpose(im))
    except UnidentifiedImageError:
        raise NotAnImageError("not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own guard, at open
        limit = f"{max_pixels / 1e6:g}" if max_pixels else f"{Image.MAX_IMAGE_PIXELS / 1e6:.0f}"
        raise TooLargeError(f"image too large: over the limit of {limit} megapixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IDPhotoError(f"cannot decode image ({reason})") from None
    if min(im.size) < MIN_SIDE:
        raise IDPhotoError(f"image too small ({im.size[0]}×{im.size[1]} px; need at least {MIN_SIDE} px a side)")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8)[:, :, ::-1])


def pipeline_for(model, options: IDPhotoOptions, device: str = "cpu") -> Pipeline:
    """The matting pipeline of ``options`` around an already loaded model (cheap: nothing is copied)."""
    return Pipeline(model, device, options.input_size, options.matting, options.refine_kernel,
                    options.max_side or None, flip=options.tta == "flip")


def process_image(image: np.ndarray, options: IDPhotoOptions, pipeline: Pipeline,
                  resolved: Resolved | None = None) -> ServiceResult:
    """All outputs of one decoded photo (BGR uint8), encoded, in memory; the work ``infer.py`` does per photo."""
    resolved = resolved or options.validate()
    timings = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MattingWarning)
        result = pipeline.run(image)
        timings.update(result.timings)

        t = time.perf_counter()
        photo = make_id_photo(image, result.alpha, result.foreground, resolved.spec, resolved.bg,
                              options.no_face_ok, options.dpi)
        timings["idphoto"] = time.perf_counter() - t

        t = time.perf_counter()
        if options.max_kb is not None:
            jpeg, quality = encode_jpeg_max_kb(photo.image, options.max_kb, photo.dpi, options.quality)
        else:
            jpeg, quality = encode_jpeg(photo.image, photo.dpi, options.quality), options.quality
        sheet, copies = None, 0
        if options.layout:
            sheet_image, copies = print_sheet(photo.image, photo.dpi, options.layout)
            sheet = encode_jpeg(sheet_image, photo.dpi, 95)
        out = ServiceResult(
            idphoto=jpeg, cutout=encode_png(result.cutout_rgba()), trimap=encode_png(result.trimap),
            alpha=encode_png((result.alpha * 255 + 0.5).astype("uint8")), sheet=sheet,
            size=(photo.image.shape[1], photo.image.shape[0]), dpi=photo.dpi, quality=quality, copies=copies,
            spec_name=resolved.spec_name, input_size=(image.shape[1], image.shape[0]))
        timings["encode"] = time.perf_counter() - t
    out.timings = timings
    out.notes = photo.warnings + [str(w.message).splitlines()[0] for w in caught
                                  if issubclass(w.category, MattingWarning)]
    return out


def make_idphoto(photo: bytes, options: IDPhotoOptions, pipeline: Pipeline,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ServiceResult:
    """Photo bytes + options → the ID photo, cut-out, trimap, alpha, print sheet, timings (and the
    compliance report when one is available). Raises :class:`~idphoto.options.OptionsError` for impossible
    options and :class:`IDPhotoError` (or a subclass) for a photo that can't make an ID photo."""
    resolved = options.validate()  # before any decoding: a wrong option costs nothing
    t = time.perf_counter()
    image = decode_image(photo, max_pixels)
    decode_s = time.perf_counter() - t
    out = process_image(image, options, pipeline, resolved)
    out.timings = {"decode": decode_s, **out.timings}
    return out


def make_cutout(photo: bytes, options: IDPhotoOptions, pipeline: Pipeline,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[bytes, dict]:
    """Photo bytes → (RGBA PNG of the person, timings): the matting alone, no framing."""
    options.validate()
    t = time.perf_counter()
    image = decode_image(photo, max_pixels)
    timings = {"decode": time.perf_counter() - t}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MattingWarning)
        result = pipeline.run(image)
    timings.update(result.timings)
    if float((result.alpha >= 0.5).mean()) < MIN_PERSON_SHARE:
        raise IDPhotoError("no person found in the photo (the segmentation is empty)")
    t = time.perf_counter()
    png = encode_png(result.cutout_rgba())
    timings["encode"] = time.perf_counter() - t
    return png, timings


def make_sheet(photo: bytes, layout: str, dpi: int | None = None,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[bytes, int, int]:
    """An ID photo's bytes → (JPEG print sheet, copies, DPI used). ``dpi`` None: the photo's own DPI
    (from its JPEG/PNG header), else 300."""
    image = decode_image(photo, max_pixels)
    if dpi is None:
        with Image.open(io.BytesIO(photo)) as im:
            stored = im.info.get("dpi")
        dpi = round(float(stored[0])) if stored and float(stored[0]) >= 1 else 300
    sheet, copies = print_sheet(image, dpi, layout)
    return encode_jpeg(sheet, dpi, 95), copies, dpi
