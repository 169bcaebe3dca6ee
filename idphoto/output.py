"""Colours, JPEG encoding with DPI and a size limit, print sheets, and the output paths of a photo (written all
or nothing by :func:`core.fileio.write_all`)."""
from __future__ import annotations

import functools
import io
import os
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.fileio import write_all  # noqa: F401  (the all-or-nothing writer of every photo's outputs)

from .errors import IDPhotoError

# Named backgrounds, as BGR. Blue and red are the ones used for Chinese ID photos (证件照 蓝底 / 红底).
COLORS = {
    "white": (255, 255, 255),
    "blue": (219, 142, 67),    # #438EDB
    "red": (0, 0, 255),        # #FF0000
    "gray": (240, 240, 240),   # #F0F0F0, light grey accepted by many visa offices
}
SHEETS = {"6inch": (4.0, 6.0), "5inch": (3.5, 5.0), "a4": (8.27, 11.69)}  # inches, short × long side
DEFAULT_QUALITY = 95
# Every image this tool writes carries this mark (a JPEG comment, a PNG tEXt chunk), so that a later batch
# run over the same folder knows its own outputs and never takes them for photos.
OUTPUT_MARK = b"written by tnet-idphoto"


def parse_color(text: str) -> tuple[int, int, int]:
    """``white``/``blue``/``red``/``gray`` or ``#RRGGBB`` → a BGR tuple; ValueError otherwise."""
    key = text.strip().lower()
    if key in COLORS:
        return COLORS[key]
    m = re.fullmatch(r"#?([0-9a-f]{6})", key)
    if not m:
        raise ValueError(f"not a colour: {text!r} (use {', '.join(COLORS)} or #RRGGBB)")
    r, g, b = (int(m.group(1)[i:i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def encode_jpeg(image_bgr: np.ndarray, dpi: int | None = None, quality: int = DEFAULT_QUALITY) -> bytes:
    """JPEG bytes with the DPI stored in the JFIF header (what printers and upload forms read)."""
    im = Image.fromarray(np.ascontiguousarray(image_bgr[:, :, ::-1]))
    buf = io.BytesIO()
    kwargs = {"dpi": (dpi, dpi)} if dpi else {}
    im.save(buf, "JPEG", quality=int(quality), optimize=True, comment=OUTPUT_MARK, icc_profile=srgb_icc(), **kwargs)
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    """littleCMS's sRGB profile, embedded in every JPEG written: the pixels are sRGB (inputs with another
    profile are converted on reading), and the file says so."""
    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    # littleCMS stamps the creation time (header bytes 24–35) and an MD5 of the whole (84–99): zeroed, the
    # same photo gives the same bytes in every process (an ID of zeros means "not computed")
    icc[24:36] = bytes(12)
    icc[84:100] = bytes(16)
    return bytes(icc)


def encode_jpeg_max_kb(image_bgr: np.ndarray, max_kb: float, dpi: int | None = None,
                       max_quality: int = DEFAULT_QUALITY) -> tuple[bytes, int]:
    """(JPEG bytes, quality): the highest quality ≤ ``max_quality`` whose file is at most ``max_kb`` KiB.

    File size grows with quality almost monotonically, so a binary search over 1…max_quality needs
    about 7 encodes. Raises :class:`IDPhotoError` when even quality 1 is too large.
    """
    limit = max_kb * 1024
    best = None
    lo, hi = 1, max_quality
    while lo <= hi:
        q = (lo + hi) // 2
        data = encode_jpeg(image_bgr, dpi, q)
        if len(data) <= limit:
            best, lo = (data, q), q + 1
        else:
            hi = q - 1
    if best is None:
        smallest = len(encode_jpeg(image_bgr, dpi, 1)) / 1024
        raise IDPhotoError(f"--max-kb {max_kb:g}: even JPEG quality 1 gives {smallest:.1f} KB; raise the limit")
    return best


def encode_for_spec(image_bgr: np.ndarray, dpi: int, kb: tuple | None = None, max_kb: float | None = None,
                    quality: int = DEFAULT_QUALITY) -> tuple[bytes, int]:
    """(JPEG bytes, quality) for an ID photo: ``max_kb`` (the user's limit) or else the spec's file-size
    range ``kb`` caps the size; the highest quality under the cap is used."""
    limit = max_kb if max_kb is not None else (kb[1] if kb is not None else None)
    if limit is None:
        return encode_jpeg(image_bgr, dpi, quality), quality
    return encode_jpeg_max_kb(image_bgr, limit, dpi, quality)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes (OpenCV's encoder) with, right after the header, an sRGB chunk (the colour PNG's own way to
    say its pixels are sRGB; grey images and alpha mattes are data, and get none) and :data:`OUTPUT_MARK`
    in a tEXt chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise IDPhotoError("OpenCV could not encode a PNG")
    data = buf.tobytes()
    extra = chunk(b"sRGB", b"\x00") if image.ndim == 3 else b""  # rendering intent 0: perceptual
    extra += chunk(b"tEXt", b"Software\0" + OUTPUT_MARK)
    end_of_header = 8 + 25  # the signature, then the IHDR chunk (13 bytes of data + length, type and CRC)
    return data[:end_of_header] + extra + data[end_of_header:]


MIN_SHEET_PHOTO_MM = 15         # a print sheet of smaller photos is a mistake (ID photos are 22 mm wide or more)
MAX_SHEET_PIXELS = 40_000_000   # an A4 sheet at 600 DPI is 35 megapixels; 1200 DPI would be 139


def sheet_problem(size_px: tuple[int, int], dpi: int, layout: str) -> str | None:
    """Why a print sheet of a ``size_px`` photo at ``dpi`` can't be made (one line), or None: the photo must
    be at least ``MIN_SHEET_PHOTO_MM`` on its short side, and the sheet at most ``MAX_SHEET_PIXELS``. The
    CLI's --layout and the API's /api/layout both ask this."""
    w, h = size_px
    mm = min(w, h) / dpi * 25.4
    if mm < MIN_SHEET_PHOTO_MM:
        return (f"the photo is {w}×{h} px at {dpi} DPI, {mm:.1f} mm on its short side; print sheets need at least "
                f"{MIN_SHEET_PHOTO_MM} mm (lower the DPI or enlarge the photo)")
    sw, sh = SHEETS[layout]
    pixels = round(sw * dpi) * round(sh * dpi)
    if pixels > MAX_SHEET_PIXELS:
        return (f"the {layout} sheet at {dpi} DPI would be {pixels / 1e6:.0f} megapixels (at most "
                f"{MAX_SHEET_PIXELS / 1e6:.0f}); lower the DPI")
    return None


def print_sheet(photo_bgr: np.ndarray, dpi: int, sheet: str = "6inch", gap_mm: float = 2.0,
                margin_mm: float = 3.0, line_bgr=(200, 200, 200)) -> tuple[np.ndarray, int]:
    """A print sheet (e.g. 4×6 in at ``dpi``) tiled with as many copies of ``photo_bgr`` as fit, with
    cut lines through the gaps. The orientation (portrait/landscape) holding more copies is used.
    Returns (sheet image, number of copies)."""
    if sheet not in SHEETS:
        raise IDPhotoError(f"unknown layout {sheet!r}; choose one of {', '.join(SHEETS)}")
    short, long = (round(v * dpi) for v in SHEETS[sheet])
    ph, pw = photo_bgr.shape[:2]

    def fit(sheet_w, sheet_h, gap, margin):
        cols = max(0, (sheet_w - 2 * margin + gap) // (pw + gap))
        rows = max(0, (sheet_h - 2 * margin + gap) // (ph + gap))
        return cols * rows, gap, sheet_w, sheet_h, cols, rows, gap   # as many copies; then gaps over none

    # portrait or landscape sheet, with gaps between copies or (when that fits more) edge to edge
    spaced = round(gap_mm / 25.4 * dpi), round(margin_mm / 25.4 * dpi)
    best = max(fit(w, h, *spacing) for w, h in ((short, long), (long, short)) for spacing in (spaced, (0, 0)))
    _, _, sheet_w, sheet_h, cols, rows, gap = best
    if cols * rows == 0:
        raise IDPhotoError(f"a {pw}×{ph} px photo does not fit on a {sheet} sheet at {dpi} DPI")
    canvas = np.full((sheet_h, sheet_w, 3), 255, dtype=np.uint8)
    grid_w, grid_h = cols * pw + (cols - 1) * gap, rows * ph + (rows - 1) * gap
    left, top = (sheet_w - grid_w) // 2, (sheet_h - grid_h) // 2
    xs = [left + c * (pw + gap) for c in range(cols)]
    ys = [top + r * (ph + gap) for r in range(rows)]
    # cut lines: along every photo edge, across the whole sheet (drawn first, photos on top)
    for x in sorted({x - 1 for x in xs} | {x + pw for x in xs}):
        canvas[:, min(max(x, 0), sheet_w - 1)] = line_bgr
    for y in sorted({y - 1 for y in ys} | {y + ph for y in ys}):
        canvas[min(max(y, 0), sheet_h - 1), :] = line_bgr
    for y in ys:
        for x in xs:
            canvas[y:y + ph, x:x + pw] = photo_bgr
    return canvas, cols * rows


def output_paths(out_dir: str | os.PathLike, stem: str, layout: str | None, report: bool = False) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {
        "trimap": out_dir / f"{stem}_trimap.png",
        "alpha": out_dir / f"{stem}_alpha.png",
        "cutout": out_dir / f"{stem}_cutout.png",
        "idphoto": out_dir / f"{stem}_idphoto.jpg",
        "idphoto_hd": out_dir / f"{stem}_idphoto_hd.jpg",
    }
    if layout:
        paths["sheet"] = out_dir / f"{stem}_sheet_{layout}.jpg"
    if report:
        paths["report"] = out_dir / f"{stem}_report.json"
    return paths
