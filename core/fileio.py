"""Files: the one atomic writer and the one image reader of the project.

*Writing.* Every file (converted samples, lists, reports, checkpoints, ID photos) is written to a temporary
file beside its target and renamed into place, so a reader never sees a half-written file and a re-run
never trusts one: :func:`atomic_path` for one file, :func:`write_all` for a set that must appear all
together or not at all. A failed write names the target, not the temporary file.

*Reading.* :func:`open_image` decodes with Pillow and applies the EXIF orientation, so data preparation,
training, inference and evaluation all see a photo upright and with the same pixels. Pillow also notices
truncated JPEGs (OpenCV silently pads them with grey). :func:`read_image` gives the OpenCV-style arrays
(BGR, grey or unchanged) the rest of the code works with.
"""
from __future__ import annotations

import functools
import io
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


# ------------------------------------------------------------------------------------------------ writing
def _temp_beside(path: Path, suffix: str = ".tmp") -> str:
    """A new empty file named ``.<name>.<random><suffix>`` in ``path``'s folder (created if needed), with
    the permissions of a normal file. An error names ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write here ({exc.strerror or exc})", str(path)) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
    return tmp


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on failure removed."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        # the temporary name means nothing to the user (and a write error often names no file): the target does
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either complete or absent."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_image(path: str | os.PathLike, image: np.ndarray, params: list | None = None) -> None:
    """Encode ``image`` by the extension of ``path`` and write it atomically."""
    ok, buf = cv2.imencode(Path(path).suffix or ".png", image, params or [])
    if not ok:
        raise ValueError(f"OpenCV could not encode an image for {path}")
    atomic_write_bytes(path, buf.tobytes())


def write_all(files: dict[Path, bytes]) -> list[Path]:
    """Write every file, all or nothing: a run leaves either all of its outputs or none, and a failed run
    leaves the files of a previous run exactly as they were.

    Each file is first written to a temporary file beside its target; only when all are complete are they
    renamed into place (an existing target is kept as a hard-linked backup meanwhile). If anything fails,
    the targets already replaced get their previous content back (or are removed when they are new) and
    every temporary file is deleted.
    """
    temps: dict[Path, str] = {}      # target → complete temporary file beside it
    backups: dict[Path, str] = {}    # target → its previous content, while the new one moves in
    replaced: list[Path] = []
    try:
        for path, data in files.items():
            path = Path(path)
            temps[path] = _temp_beside(path)
            try:
                with open(temps[path], "wb") as f:
                    f.write(data)
            except OSError as exc:  # a full disk names no file: name the output it was writing
                raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        for path, tmp in temps.items():
            if path.exists():
                backups[path] = _backup(path)
            os.replace(tmp, path)
            replaced.append(path)
    except BaseException:
        for path in reversed(replaced):  # undo: the previous file back, or no file where there was none
            if path in backups:
                os.replace(backups.pop(path), path)
            else:
                path.unlink(missing_ok=True)
        for leftover in (*temps.values(), *backups.values()):
            Path(leftover).unlink(missing_ok=True)
        raise
    for bak in backups.values():
        Path(bak).unlink(missing_ok=True)
    return list(temps)


def _backup(path: Path) -> str:
    """A second name (hard link, or a copy where links are not supported) for ``path``'s current content."""
    bak = _temp_beside(path, ".bak")
    try:
        os.unlink(bak)
        try:
            os.link(path, bak)
        except OSError:
            shutil.copy2(path, bak)
    except BaseException:
        Path(bak).unlink(missing_ok=True)
        raise
    return bak


# ------------------------------------------------------------------------------------------------ reading
class UnreadableImage(UserError):
    """An image file that can't be decoded; the message names the file and says why, in one line."""


class NotAnImage(UnreadableImage):
    """The bytes are no image Pillow can identify."""


class ImageTooLarge(UnreadableImage):
    """The image declares more pixels than allowed (checked from the header, before decoding)."""


def open_image(source, max_pixels: int | None = None, where: str | None = None, reduce: int = 1):
    """The picture in ``source`` (a path or a binary file object) as a decoded Pillow image, upright (EXIF
    orientation applied). Messages start with ``where`` (by default the path).

    With ``max_pixels`` the pixel count is read from the header and checked before anything is decoded;
    Pillow's own decompression-bomb guard holds in any case. ``reduce`` (2, 4 or 8) asks a JPEG for that
    fraction of its size, decoded straight from its DCT coefficients (libjpeg's scaled decoding: a 12 MP
    photo at ½ in 40 % of the full decode's time); other formats ignore it and come whole. Raises
    :class:`UnreadableImage` (or its :class:`NotAnImage`, :class:`ImageTooLarge`) for a missing, unreadable,
    truncated or oversized file.
    """
    from PIL import ImageOps

    with _opened(source, max_pixels, where) as im:
        if reduce > 1:
            w, h = im.size
            im.draft("RGB", (-(-w // reduce), -(-h // reduce)))
        im.load()  # raises on a truncated file instead of returning grey padding
        ImageOps.exif_transpose(im, in_place=True)  # no copy of an upright photo (a 12 MP one: 36 MB)
        return im


def image_size(source, max_pixels: int | None = None, where: str | None = None) -> tuple[int, int]:
    """(width, height) of the picture in ``source`` as :func:`open_image` gives it (upright), from its header
    alone; the same checks and errors, except those only decoding can find (a truncated file)."""
    with _opened(source, max_pixels, where) as im:
        w, h = im.size
        turned = im.getexif().get(0x0112) in (5, 6, 7, 8)   # EXIF orientations that swap the sides
        return (h, w) if turned else (w, h)


@contextmanager
def _opened(source, max_pixels: int | None, where: str | None):
    """``source`` opened by Pillow, its size checked against ``max_pixels``; any failure inside the block
    becomes an :class:`UnreadableImage` (or subclass) with a one-line message starting with ``where``."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
        where = f"{source}: " if where is None else where
        if not source.exists():
            raise UnreadableImage(f"{where}file not found")
        if not source.is_file():
            raise UnreadableImage(f"{where}not a file")
    where = where or ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                w, h = im.size
                if max_pixels and w * h > max_pixels:
                    raise ImageTooLarge(f"{where}image too large: {w}×{h} px is over the limit of "
                                        f"{max_pixels / 1e6:g} megapixels")
                yield im
    except FileNotFoundError:
        raise UnreadableImage(f"{where}file not found") from None
    except UnidentifiedImageError:
        raise NotAnImage(f"{where}not an image (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own guard, at open
        limit = f"{max_pixels / 1e6:g}" if max_pixels else f"{Image.MAX_IMAGE_PIXELS / 1e6:.0f}"
        raise ImageTooLarge(f"{where}image too large: over the limit of {limit} megapixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableImage(f"{where}cannot decode image ({reason})") from None


def decode_image(source, flags: int = cv2.IMREAD_COLOR, max_pixels: int | None = None,
                 where: str | None = None) -> np.ndarray:
    """The picture in ``source`` (a path or a binary file object) as an OpenCV-style array, upright;
    :class:`UnreadableImage` when it can't be read. ``max_pixels`` and ``where`` as for :func:`open_image`.

    ``flags`` as for ``cv2.imread``: ``IMREAD_COLOR`` gives H×W×3 BGR uint8 (transparent pixels composited
    over white), ``IMREAD_GRAYSCALE`` H×W uint8, ``IMREAD_UNCHANGED`` the stored channels (grey H×W, BGR,
    BGRA; 16-bit grey as uint16).
    """
    return _to_array(open_image(source, max_pixels, where), flags)


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """:func:`decode_image`, or None when the file can't be read (for callers that report it themselves)."""
    try:
        return decode_image(path, flags)
    except UnreadableImage:
        return None


def halved(image: np.ndarray) -> np.ndarray:
    """Half the size, each pixel the mean of four: OpenCV's fastest resize, a few ms for 12 megapixels."""
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)


class Pyramid:
    """A colour photo (H×W×3 BGR uint8) and its halvings, each made when first asked for and kept: level
    ``i`` is the photo at 2**-i of its size, made from the nearest finer level at hand."""

    def __init__(self, image: np.ndarray | None = None, size: tuple[int, int] | None = None):
        self._levels: dict[int, np.ndarray] = {}
        if image is not None:
            self._levels[0] = image
            size = (image.shape[1], image.shape[0])
        self.size = size   # (width, height) of level 0

    def level(self, i: int) -> np.ndarray:
        if i not in self._levels:
            if i > 0 and (any(j < i for j in self._levels) or not self._can_decode(i)):
                self._levels[i] = halved(self.level(i - 1))
            else:
                got, image = self._decode(i)
                self._levels[got] = image
                return self.level(i)   # a format decoded whole gave level 0: halve it
        return self._levels[i]

    @property
    def made(self) -> list[int]:
        """The levels made so far."""
        return sorted(self._levels)

    def finest(self) -> np.ndarray:
        """The largest level made so far (level 0 when none is)."""
        return self._levels[min(self._levels)] if self._levels else self.level(0)

    def _can_decode(self, i: int) -> bool:
        return False

    def _decode(self, i: int) -> tuple[int, np.ndarray]:
        raise LookupError("a pyramid made from an array has its level 0")


class EncodedPhoto(Pyramid):
    """A photo file (its bytes, or a path), decoded when a level is first asked for, at that level's size: a
    JPEG's levels 1–3 come straight from its DCT coefficients (:func:`open_image`'s ``reduce``), so a 12 MP
    phone photo wanted at a quarter of its size is never decoded whole. The header is read (and
    ``max_pixels`` checked) at once; a file only decoding finds broken fails when a level is asked for.
    Levels are BGR, with :func:`decode_image`'s colour conversion."""

    DCT_LEVELS = 3  # libjpeg decodes at 1/2, 1/4 and 1/8

    def __init__(self, source, max_pixels: int | None = None, where: str | None = None):
        if isinstance(source, (str, os.PathLike)) and where is None:
            where = f"{Path(source)}: "
        self._source, self._where = source, where
        super().__init__(size=image_size(self._file(), max_pixels, where))

    def _file(self):
        if isinstance(self._source, (bytes, bytearray, memoryview)):
            return io.BytesIO(self._source)
        if hasattr(self._source, "seek"):
            self._source.seek(0)
        return self._source

    def _can_decode(self, i: int) -> bool:
        return i <= self.DCT_LEVELS

    def _decode(self, i: int) -> tuple[int, np.ndarray]:
        image = _to_array(open_image(self._file(), None, self._where, reduce=2 ** i), cv2.IMREAD_COLOR)
        # a format without scaled decoding comes whole: that is level 0, and the level asked for its halving
        got = round(np.log2(self.size[0] / image.shape[1])) if image.shape[1] < self.size[0] else 0
        return got, image


def _to_array(im, flags: int) -> np.ndarray:
    if flags == cv2.IMREAD_COLOR:
        return cv2.cvtColor(np.asarray(to_srgb(_to_rgb(im), im.info.get("icc_profile"))), cv2.COLOR_RGB2BGR)
    if flags == cv2.IMREAD_GRAYSCALE:
        if im.mode in ("L", "LA"):
            return np.asarray(im.getchannel("L") if im.mode == "LA" else im)
        if im.mode in ("1", "I;16", "I;16B", "I;16L", "I", "F"):
            return np.asarray(_deep_to_8bit(im))
        return cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2GRAY)  # OpenCV's weights, as imread
    if flags != cv2.IMREAD_UNCHANGED:
        raise ValueError(f"read_image supports IMREAD_COLOR, IMREAD_GRAYSCALE and IMREAD_UNCHANGED, not {flags}")
    if im.mode in ("L", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im)
        return a.astype(a.dtype.newbyteorder("=")) if a.dtype.byteorder == ">" else a
    if im.mode in ("1", "I"):
        return np.asarray(im.convert("L") if im.mode == "1" else im).astype(np.uint16 if im.mode == "I" else np.uint8)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return cv2.cvtColor(np.asarray(im.convert("RGBA")), cv2.COLOR_RGBA2BGRA)
    return cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)


def _deep_to_8bit(im):
    """A 1-, 16- or 32-bit grey or float Pillow image as 8-bit grey, scaled to its range."""
    from PIL import Image

    if im.mode == "1":
        return im.convert("L")
    a = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        a = a * (255.0 if a.max() <= 1 else 1.0)
    else:
        a = a * 255.0 / (65535.0 if a.max() > 255 else 255.0)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")


def _srgb_profile():
    from PIL import ImageCms

    return ImageCms.createProfile("sRGB")


@functools.lru_cache(maxsize=16)
def _transform_to_srgb(icc: bytes):
    """littleCMS's transform from the embedded profile ``icc`` to sRGB (RGB in, RGB out), or None for a profile
    that already is sRGB, one that is not an RGB profile, or one that can't be read (the pixels are then
    taken as sRGB, as before)."""
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if profile.profile.xcolor_space.strip() != "RGB":
            return None
        if "srgb" in (ImageCms.getProfileDescription(profile) or "").lower().replace(" ", ""):
            return None
        return ImageCms.buildTransform(profile, _srgb_profile(), "RGB", "RGB",
                                       renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def to_srgb(rgb_image, icc: bytes | None):
    """An RGB Pillow image whose pixels are in the colour space of ``icc`` (its embedded profile), converted
    to sRGB: a phone's Display P3 or a camera's Adobe RGB read as if it were sRGB shifts every colour (a
    face's red by ~10 levels). Without a profile, or with an sRGB one, the image is returned as it is."""
    if not icc or rgb_image.mode != "RGB":
        return rgb_image
    transform = _transform_to_srgb(bytes(icc))
    if transform is None:
        return rgb_image
    from PIL import ImageCms

    return ImageCms.applyTransform(rgb_image, transform)


def _to_rgb(im):
    """Any Pillow mode → RGB; transparency is flattened onto white."""
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        im = _deep_to_8bit(im)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")
