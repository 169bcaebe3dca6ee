"""idphoto.image_io: load_image's colour modes, EXIF orientation and one-line errors for bad files."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from idphoto.errors import IDPhotoError
from idphoto.image_io import load_image


def test_load_image_modes_and_exif(tmp_path):
    rgb = np.zeros((60, 40, 3), np.uint8)
    rgb[:10] = (255, 0, 0)  # red band on top
    # EXIF orientation 6: stored rotated, displayed rotated 90° clockwise back to upright
    ex = Image.Exif()
    ex[0x0112] = 6
    Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "exif.png", exif=ex)
    up = load_image(tmp_path / "exif.png")
    assert up.shape == (60, 40, 3) and tuple(up[2, 20]) == (0, 0, 255)  # BGR red on top again

    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    assert load_image(tmp_path / "gray.png").shape == (60, 40, 3)

    rgba = np.dstack([rgb, np.full((60, 40), 255, np.uint8)])
    rgba[30:, :, 3] = 0  # transparent lower half → white
    Image.fromarray(rgba).save(tmp_path / "照片 α.png")  # non-ASCII name
    out = load_image(tmp_path / "照片 α.png")
    assert tuple(out[50, 5]) == (255, 255, 255) and tuple(out[5, 5]) == (0, 0, 255)


@pytest.mark.parametrize("content,message", [
    (None, "file not found"),
    (b"hello, not an image", "not an image"),
    ("truncated", "cannot decode"),
    ("tiny", "too small"),
])
def test_load_image_bad_files(tmp_path, content, message):
    path = tmp_path / "x.jpg"
    if content == "truncated":
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(buf, "JPEG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif content == "tiny":
        Image.new("RGB", (8, 8)).save(path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(IDPhotoError, match=message) as info:
        load_image(path)
    assert "\n" not in str(info.value)
