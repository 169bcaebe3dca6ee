"""Colour management: photos with an embedded ICC profile are converted to sRGB when read (inference, the
API, preparation and evaluation share the one reader), and every image written says it is sRGB.

The test profiles are built here (ICC v2 matrix/TRC monitor profiles, the kind cameras and phones embed),
and the reference conversion is plain arithmetic: decode the profile's curve, its primaries to XYZ (D50),
XYZ to linear sRGB (Bradford-adapted to D50), the sRGB curve."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from core.fileio import decode_image

# D50-adapted colorants (the rXYZ/gXYZ/bXYZ tags) and the tone curve's gamma
ADOBE_RGB = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446)), 563 / 256
DISPLAY_P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841)), 2.2
# XYZ (D50) → linear sRGB: the inverse of sRGB's D50-adapted colorants
SRGB_D50 = np.array([[0.4361, 0.3851, 0.1431], [0.2225, 0.7169, 0.0606], [0.0139, 0.0971, 0.7141]])


def icc_profile(colorants, gamma: float, name: str) -> bytes:
    """A minimal ICC v2 RGB display profile: description, white point, colorants and one gamma curve."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v) -> bytes:
        return b"XYZ " + b"\0" * 4 + b"".join(s15(c) for c in v)

    desc = name.encode() + b"\0"
    tags = {b"desc": b"desc" + b"\0" * 4 + struct.pack(">I", len(desc)) + desc + b"\0" * 12 + b"\0" * 67,
            b"wtpt": xyz((0.9642, 1.0, 0.8249)),
            b"rXYZ": xyz(colorants[0]), b"gXYZ": xyz(colorants[1]), b"bXYZ": xyz(colorants[2])}
    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", round(gamma * 256)) + b"\0\0"
    for sig in (b"rTRC", b"gTRC", b"bTRC"):
        tags[sig] = curve
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags.items():
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntr" + b"RGB " + b"XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def reference_srgb(rgb: np.ndarray, colorants, gamma: float) -> np.ndarray:
    linear = (rgb / 255.0) ** gamma
    xyz = linear @ np.array(colorants)                       # rows of colorants are the primaries' XYZ
    out = np.clip(xyz @ np.linalg.inv(SRGB_D50).T, 0, 1)
    encoded = np.where(out <= 0.0031308, 12.92 * out, 1.055 * out ** (1 / 2.4) - 0.055)
    return encoded * 255


def patches() -> np.ndarray:
    """Flat 16×16 patches of skin, hair, shirt and background colours (in gamut of every profile here)."""
    colours = [(224, 172, 140), (198, 134, 104), (90, 60, 40), (60, 90, 160), (200, 200, 205), (128, 128, 128),
               (150, 60, 60), (70, 140, 80)]
    img = np.zeros((16, 16 * len(colours), 3), np.uint8)
    for i, c in enumerate(colours):
        img[:, 16 * i:16 * (i + 1)] = c
    return img


@pytest.mark.parametrize("profile", [ADOBE_RGB, DISPLAY_P3], ids=["adobe-rgb", "display-p3"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_photo_with_a_wide_gamut_profile_is_read_as_srgb(profile, fmt):
    colorants, gamma = profile
    img = patches()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, icc_profile=icc_profile(colorants, gamma, "test profile"),
                              **({"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}))
    got = decode_image(io.BytesIO(buf.getvalue()))[:, :, ::-1].astype(float)   # BGR → RGB
    stored = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), float)
    want = reference_srgb(stored, colorants, gamma)
    assert np.abs(got - want).max() <= 2, np.abs(got - want).max()
    assert np.abs(got - stored).max() >= 8                      # and it did change: read as sRGB it would be off


def test_untagged_and_srgb_photos_are_left_as_they_are():
    from idphoto.output import encode_jpeg

    img = patches()
    plain = io.BytesIO()
    Image.fromarray(img).save(plain, "PNG")
    assert (decode_image(io.BytesIO(plain.getvalue()))[:, :, ::-1] == img).all()
    ours = encode_jpeg(img[:, :, ::-1].copy(), 300, 100)        # tagged sRGB by this tool
    from PIL import ImageCms

    with Image.open(io.BytesIO(ours)) as im:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)
        stored = np.asarray(im.convert("RGB"))
    assert (decode_image(io.BytesIO(ours))[:, :, ::-1] == stored).all()


def test_outputs_are_tagged_srgb():
    from idphoto.output import encode_jpeg, encode_png

    img = patches()[:, :, ::-1].copy()
    with Image.open(io.BytesIO(encode_jpeg(img, 300))) as im:
        assert im.info.get("icc_profile") and im.info.get("dpi") == (300, 300)
    with Image.open(io.BytesIO(encode_png(img))) as im:
        im.load()
        assert "srgb" in im.info
        assert (np.asarray(im.convert("RGB")) == img[:, :, ::-1]).all()
    with Image.open(io.BytesIO(encode_png(img[:, :, 0].copy()))) as im:      # an alpha matte: data, not colour
        im.load()
        assert "srgb" not in im.info


def test_the_id_photo_of_an_adobe_rgb_photo_keeps_its_colours(tmp_path):
    """End to end through infer.py's reader and writer: --spec none --bg keep writes the photo itself."""
    from idphoto.image_io import load_image
    from idphoto.output import encode_jpeg

    colorants, gamma = ADOBE_RGB
    img = np.repeat(patches(), 4, axis=0)           # 64 px tall: the reader's minimum is 32
    path = tmp_path / "adobe.png"
    Image.fromarray(img).save(path, icc_profile=icc_profile(colorants, gamma, "Adobe RGB test"))
    loaded = load_image(path)
    out = encode_jpeg(loaded, 300, 100)
    with Image.open(io.BytesIO(out)) as im:
        written = np.asarray(im.convert("RGB"), float)
    want = reference_srgb(img.astype(float), colorants, gamma)
    centres = (slice(24, 40), slice(4, None, 16))  # the middle of each patch: JPEG's chroma blurs their borders
    assert np.abs(written[centres] - want[centres]).max() <= 3   # the JPEG round trip adds a level or so
