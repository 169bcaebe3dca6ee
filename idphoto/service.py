"""One photo (bytes, in memory) + :class:`~idphoto.options.IDPhotoOptions` → every output, in memory.

:func:`make_idphoto` is what the web app and the HTTP API run per request; :func:`process_image` is the
same work on an already decoded photo, so ``infer.py`` (which reads files) can share it. Nothing here
touches the disk: uploaded photos are personal data.
"""
from __future__ import annotations

import dataclasses
import io
import time
import warnings
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.fileio import Pyramid

from . import image_io
from .compliance import Report, check_photo
from .errors import IDPhotoError
from .image_io import NotAnImageError
from .maker import MIN_PERSON_SHARE, compose_id_photo, work_scale
from .options import WHITE, IDPhotoOptions, Resolved
from .output import encode_for_spec, encode_jpeg, encode_png, print_sheet, sheet_problem
from .pipeline import MattingWarning, Pipeline
from .retouch import apply_retouch
from .specs import PhotoSpec

DEFAULT_MAX_PIXELS = 40_000_000  # decoded size limit: a 40-megapixel photo is already 120 MB as BGR


class RefusedError(IDPhotoError):
    """The finished photo breaks a hard rule of its report (no face, a second face, the head cut off): it is
    never written, whatever the options."""

    def __init__(self, report):
        super().__init__(f"refused: {report.summary(report.hard_failed)}")
        self.report = report


class StrictError(IDPhotoError):
    """``strict`` and the compliance report missed a rule: nothing is made."""

    def __init__(self, report):
        super().__init__(f"--strict: {len(report.failed)} rule(s) of {report.spec} missed: {report.summary()}")
        self.report = report


@dataclass
class ServiceResult:
    idphoto: bytes                  # JPEG at the spec's pixel size, DPI in the header
    cutout: bytes | None            # RGBA PNG, colours from the estimated foreground   } the whole photo at its
    trimap: bytes | None            # PNG, 0/128/255                                     } size, with matte_files
    alpha: bytes | None             # PNG, 8-bit alpha                                   } or spec none, else None
    sheet: bytes | None             # JPEG print sheet with options.layout, else None
    report: Report | None           # the compliance report, measured on the final JPEG (None with spec none)
    size: tuple[int, int]           # ID photo (width, height) in pixels
    dpi: int
    quality: int                    # JPEG quality used (lower than asked under a file-size limit)
    copies: int                     # photos on the sheet (0 without one)
    spec_name: str
    input_size: tuple[int, int]     # the photo's (width, height), upright
    idphoto_hd: bytes | None = None  # with options.hd: the same framing at up to twice the pixels, if the photo has them
    timings: dict = field(default_factory=dict)   # stage → seconds
    notes: list[str] = field(default_factory=list)  # warnings worth showing (several faces, matting trouble)

    @property
    def kb(self) -> float:
        return len(self.idphoto) / 1024


def decode_upload(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Uploaded photo bytes → H×W×3 BGR uint8, upright: :func:`idphoto.image_io.decode_photo` (the decoding of
    ``infer.py``'s files), with the server's pixel limit checked from the header before decoding."""
    if not data:
        raise NotAnImageError("empty file")
    return image_io.decode_photo(io.BytesIO(data), max_pixels)


def process_image(image: np.ndarray | Pyramid, options: IDPhotoOptions, pipeline: Pipeline,
                  resolved: Resolved | None = None) -> ServiceResult:
    """All outputs of one photo (BGR uint8, or an :func:`idphoto.image_io.open_photo` decoded at the size the
    ID photo needs), encoded, in memory: what ``infer.py`` writes per photo and what the API answers. Raises
    :class:`RefusedError` when the finished photo breaks a hard rule, and :class:`StrictError` when
    ``options.strict`` and any rule was missed."""
    resolved = resolved or options.validate()
    spec = resolved.spec
    timings = {}
    whole = options.matte_files or spec is None
    pyramid = image if isinstance(image, Pyramid) else Pyramid(image)   # decoded once for every photo made
    hd_notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MattingWarning)
        result, photo = matte_and_frame(pyramid, options, resolved, pipeline, timings, whole)
        jpeg, quality, report = finish_photo(photo, spec, options, spec and spec.kb, options.max_kb, timings)
        if report is not None:
            if report.hard_failed:
                raise RefusedError(report)
            if options.strict and not report.passed:
                raise StrictError(report)
        hd = None
        if options.hd and spec is not None:
            t = time.perf_counter()
            hd, note = high_resolution(pyramid, photo, options, resolved, pipeline)
            hd_notes.append(note)
            timings["hd"] = time.perf_counter() - t
        t = time.perf_counter()
        sheet, copies = None, 0
        if options.layout:
            sheet_image, copies = print_sheet(photo.image, photo.dpi, options.layout)
            sheet = encode_jpeg(sheet_image, photo.dpi, 95)
        out = ServiceResult(
            idphoto=jpeg, cutout=encode_png(result.cutout_rgba()) if whole else None,
            trimap=encode_png(result.trimap) if whole else None,
            alpha=encode_png((result.alpha * 255 + 0.5).astype("uint8")) if whole else None, sheet=sheet, report=report,
            size=(photo.image.shape[1], photo.image.shape[0]), dpi=photo.dpi, quality=quality, copies=copies,
            spec_name=resolved.spec_name, input_size=pyramid.size, idphoto_hd=hd)
        timings["encode"] += time.perf_counter() - t
    out.timings = timings
    out.notes = photo.warnings + [str(w.message).splitlines()[0] for w in caught
                                  if issubclass(w.category, MattingWarning)] + hd_notes
    return out


def finish_photo(photo, spec: PhotoSpec | None, options: IDPhotoOptions, kb, max_kb: float | None,
                 timings: dict) -> tuple[bytes, int, Report | None]:
    """(JPEG, its quality, compliance report or None without a spec) of a made ID photo: retouched (the person
    only) when asked, encoded within the file-size limits ``kb`` / ``max_kb``, and measured on the JPEG itself:
    what is delivered, not what was planned. Stage times go to ``timings``."""
    retouch = options.retouch()
    if not retouch.is_off:  # before encoding: the report measures the retouched photo
        t = time.perf_counter()
        photo.image = apply_retouch(photo.image, photo.alpha, retouch)
        timings["idphoto"] = timings.get("idphoto", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    jpeg, quality = encode_for_spec(photo.image, photo.dpi, kb, max_kb, options.quality)
    timings["encode"] = time.perf_counter() - t
    report = None
    if spec is not None:
        t = time.perf_counter()
        report = check_photo(photo.image, spec, jpeg, photo.alpha, options.face_detector, photo.levelled_degrees,
                             photo.gave_way, face_required=photo.face is not None, uncovered=photo.uncovered)
        timings["check"] = time.perf_counter() - t
    return jpeg, quality, report


HD_FACTOR = 2.0     # the high-resolution copy has up to this many times the standard photo's pixels a side
HD_LEAST = 1.25     # and at least this many: a copy barely larger than the standard one is no use


def high_resolution_spec(spec: PhotoSpec, factor: float) -> PhotoSpec:
    """``spec`` at ``factor`` times its pixels a side: the same millimetres at a higher DPI (the same pixel
    rules, a pixel spec's pixels scaled), with no file-size limit (that limit is for the standard photo)."""
    if spec.px is not None:
        w, h = spec.px
        return spec.with_size_px(round(w * factor), round(h * factor), dpi=round(spec.dpi * factor))
    return dataclasses.replace(spec, dpi=round(spec.dpi * factor), kb=None)


def high_resolution(pyramid: Pyramid, photo, options: IDPhotoOptions, resolved: Resolved,
                    pipeline: Pipeline) -> tuple[bytes | None, str]:
    """(the high-resolution copy's JPEG or None, a note saying what was made or why not). The copy is made like
    the standard photo, for the same spec at up to ``HD_FACTOR`` times its pixels, as many as the photo has
    (the rules are shares of the photo's height, so the framing is the same), and checked by the same rules."""
    if photo.photo_scale is None:
        return None, "no high-resolution copy: the standard photo was not framed on a face"
    factor = min(HD_FACTOR, 1.0 / photo.photo_scale)
    if factor < HD_LEAST:
        return None, (f"no high-resolution copy: the photo has no more than {factor:.2f}× the standard photo's "
                      "pixels (a larger copy would only be blurred)")
    spec = high_resolution_spec(resolved.spec, factor)
    _, hd = matte_and_frame(pyramid, options, Resolved(spec, resolved.bg, spec.dpi), pipeline, {}, False)
    jpeg, _, report = finish_photo(hd, spec, options, None, None, {})   # no file-size limit on this copy
    w, h = spec.size_px
    if report.hard_failed:
        return None, f"no high-resolution copy: at {w}×{h} px {report.summary(report.hard_failed)}"
    missed = [c.rule for c in report.checks if c.passed is False]
    return jpeg, (f"high-resolution copy: {w}×{h} px at {spec.dpi} DPI, "
                  + (f"rules missed: {', '.join(missed)}" if missed else "every rule met"))


def matte_and_frame(image: np.ndarray | Pyramid, options: IDPhotoOptions, resolved: Resolved, pipeline: Pipeline,
                    timings: dict, whole: bool):
    """(matting result, ID photo). ``image``: the photo as an array or a :class:`core.fileio.Pyramid` (a file
    decoded at the sizes asked for). ``whole``: the matte of the whole photo at its size (``matte_files``, spec
    none); otherwise a copy of the photo at the size the ID photo needs (:func:`idphoto.maker.work_scale`), and
    the whole photo again only when the framing turns out to need more pixels than the copy has."""
    spec = resolved.spec
    pyramid = image if isinstance(image, Pyramid) else Pyramid(image)
    faces, matte_scale, region = None, None, None
    if whole:
        t = time.perf_counter()
        work = source = pyramid.level(0)
        timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - t
    else:
        t = time.perf_counter()
        plan = work_scale(pyramid, spec, options.face_detector)
        work, source, faces, matte_scale, region = plan.image, plan.source, plan.faces, plan.matte, plan.region
        timings["scale"] = time.perf_counter() - t
    result = pipeline.run(work, matte_scale, region)
    timings.update(result.timings)
    t = time.perf_counter()
    photo = compose_id_photo(work, result.alpha, result.foreground, spec, resolved.bg or WHITE, options.no_face_ok,
                             resolved.dpi, faces, level_eyes=not options.no_level, bg_style=options.bg_style,
                             keep_background=resolved.bg is None, detector=options.face_detector,
                             original=source, prefer=options.prefer())   # the opaque colours, sharp
    timings["idphoto"] = time.perf_counter() - t
    if photo.placement is not None:
        photo.photo_scale = photo.placement.scale * work.shape[1] / pyramid.size[0]
    if not whole and not made_well(photo, work, pyramid.size, region):
        # the frame fell where the face's first reading did not expect it: the whole photo's matte after all
        timings["retry"] = sum(timings.values())
        return matte_and_frame(pyramid, options, resolved, pipeline, timings, True)
    return result, photo


def made_well(photo, work: np.ndarray, size: tuple[int, int], region) -> bool:
    """Whether an ID photo made from ``work``, a copy of a photo of ``size`` (width, height) pixels, or with the
    matte solved in ``region`` only, lost nothing: a smaller copy gives the canvas no more pixels than it
    has (else the face read for the scale was not the one framed), and the canvas shows no part of the
    photo outside the region."""
    if photo.placement is None:
        return True
    if work.shape[1] < size[0] and photo.placement.scale > 1.0:
        return False
    corners = photo.shown_corners()
    if region is None or corners is None:
        return True
    h, w = work.shape[:2]
    x0, y0, x1, y1 = region
    xs, ys = np.clip(corners[:, 0], 0, w), np.clip(corners[:, 1], 0, h)   # beyond the photo: background anyway
    return bool((xs >= x0 - 1).all() and (xs <= x1 + 1).all() and (ys >= y0 - 1).all() and (ys <= y1 + 1).all())


def make_idphoto(photo: bytes, options: IDPhotoOptions, pipeline: Pipeline,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ServiceResult:
    """Photo bytes + options → the ID photo, cut-out, trimap, alpha, print sheet, compliance report and
    timings. Raises :class:`~idphoto.options.OptionsError` for impossible options and :class:`IDPhotoError`
    (or a subclass: :class:`StrictError`…) for a photo that can't make an ID photo. The photo is decoded
    at the size the ID photo needs (the server's pixel limit checked from the header first)."""
    resolved = options.validate()  # before any decoding: a wrong option costs nothing
    t = time.perf_counter()
    image = image_io.open_photo(photo, max_pixels)
    header_s = time.perf_counter() - t
    out = process_image(image, options, pipeline, resolved)
    out.timings = {"decode": header_s + out.timings.pop("decode", 0.0), **out.timings}
    return out


def make_cutout(photo: bytes, options: IDPhotoOptions, pipeline: Pipeline,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[bytes, dict]:
    """Photo bytes → (RGBA PNG of the person, timings): the matting alone, no framing."""
    options.check_model()
    t = time.perf_counter()
    image = decode_upload(photo, max_pixels)
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
    image = decode_upload(photo, max_pixels)
    if dpi is None:
        with Image.open(io.BytesIO(photo)) as im:
            stored = im.info.get("dpi")
        dpi = round(float(stored[0])) if stored and float(stored[0]) >= 1 else 300
    problem = sheet_problem((image.shape[1], image.shape[0]), dpi, layout)
    if problem:  # the limits of infer.py's --layout
        raise IDPhotoError(f"layout: {problem}")
    sheet, copies = print_sheet(image, dpi, layout)
    return encode_jpeg(sheet, dpi, 95), copies, dpi
