"""core.fileio's reading on demand: a photo's pyramid of halvings, and a JPEG decoded straight at ½, ¼ or ⅛ of
its size (never whole when not needed whole), upright, with the reader's one-line errors; and write_all, which
writes a photo's output files all or none."""
from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from core.fileio import (EncodedPhoto, ImageTooLarge, Pyramid, UnreadableImage, decode_image, image_size,
                         write_all)


def photo(w: int = 1200, h: int = 900) -> np.ndarray:
    """Smooth gradients and a few sharp shapes: a JPEG of it decodes the same at every scale."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.dstack([255 * x / w, 255 * y / h, 128 + 100 * np.sin(x / 40) * np.cos(y / 55)]).astype(np.uint8)
    cv2.circle(img, (w // 3, h // 2), h // 5, (20, 40, 220), -1)
    cv2.rectangle(img, (2 * w // 3, h // 4), (2 * w // 3 + w // 8, 3 * h // 4), (240, 240, 240), -1)
    return img


def jpeg(img: np.ndarray, orientation: int | None = None) -> bytes:
    im = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def test_a_jpeg_level_is_decoded_at_its_size_and_matches_the_halved_photo():
    img = photo()
    data = jpeg(img)
    pyr = EncodedPhoto(data)
    assert pyr.size == (1200, 900) and pyr.made == []          # the header only
    quarter = pyr.level(2)
    assert pyr.made == [2]                                      # never decoded whole
    assert quarter.shape == (225, 300, 3) and quarter.dtype == np.uint8
    whole = decode_image(io.BytesIO(data))
    area = cv2.resize(whole, (300, 225), interpolation=cv2.INTER_AREA)
    assert np.abs(area.astype(int) - quarter).mean() < 2.0
    eighth = pyr.level(3)                                       # from the quarter at hand, not decoded again
    assert eighth.shape == (112, 150, 3) and pyr.made == [2, 3]
    assert pyr.finest() is quarter
    assert np.abs(pyr.level(0).astype(int) - whole).max() == 0 and pyr.finest().shape == whole.shape


def test_a_turned_jpeg_is_upright_at_every_level():
    img = photo(800, 600)
    data = jpeg(cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE), orientation=8)   # stored turned, EXIF turns it back
    assert image_size(io.BytesIO(data)) == (800, 600)
    pyr = EncodedPhoto(data)
    half = pyr.level(1)
    assert pyr.size == (800, 600) and half.shape == (300, 400, 3)
    area = cv2.resize(img, (400, 300), interpolation=cv2.INTER_AREA)
    assert np.abs(area.astype(int) - half).mean() < 2.5


def test_other_formats_are_decoded_whole_then_halved(tmp_path):
    img = photo(640, 480)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), img)
    pyr = EncodedPhoto(path)
    half = pyr.level(1)
    assert pyr.made == [0, 1] and np.array_equal(pyr.level(0), img)
    assert np.array_equal(half, cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA))


def test_an_array_pyramid_halves_from_the_nearest_level():
    img = photo(1000, 750)
    pyr = Pyramid(img)
    assert pyr.level(0) is img and pyr.size == (1000, 750)
    assert pyr.level(2).shape == (187, 250, 3) and pyr.made == [0, 1, 2]
    assert pyr.finest() is img


def test_limits_at_the_header_and_broken_data_on_decoding():
    data = jpeg(photo())
    with pytest.raises(ImageTooLarge, match="1200×900"):
        EncodedPhoto(data, max_pixels=1_000_000)
    cut = EncodedPhoto(data[: len(data) // 2], where="cut.jpg: ")   # the header is whole: read at once
    assert cut.size == (1200, 900)
    with pytest.raises(UnreadableImage, match="^cut.jpg: cannot decode image"):
        cut.level(1)


# ------------------------------------------------------------------------------------- writing, all or none
def test_write_all_leaves_nothing_on_failure(tmp_path):
    files = {tmp_path / "a.png": b"a", tmp_path / "sub" / "b.png": b"b"}
    write_all(files)
    assert (tmp_path / "a.png").read_bytes() == b"a"
    blocker = tmp_path / "blocked"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OSError):
        write_all({tmp_path / "a.png": b"new a", tmp_path / "c.png": b"c", blocker / "d.png": b"d"})
    assert (tmp_path / "a.png").read_bytes() == b"a"  # the previous run's output is kept
    assert not (tmp_path / "c.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "blocked", "sub"]


def test_write_all_failing_rename_keeps_the_previous_outputs(tmp_path, monkeypatch):
    names = ["trimap.png", "alpha.png", "cutout.png", "idphoto.jpg"]
    write_all({tmp_path / n: b"old " + n.encode() for n in names[:3]})  # a previous run, without the ID photo
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        write_all({tmp_path / n: b"new " + n.encode() for n in names})
    monkeypatch.undo()
    assert len(calls) > 3  # the first two files had been replaced, then were put back
    for n in names[:3]:
        assert (tmp_path / n).read_bytes() == b"old " + n.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[:3])  # no temporary or backup files
    assert write_all({tmp_path / n: b"new " + n.encode() for n in names}) == [tmp_path / n for n in names]
    assert all((tmp_path / n).read_bytes() == b"new " + n.encode() for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
