"""idphoto.output: JPEG and PNG encoding, file-size limits, print sheets and output names (found by mutation
testing)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from idphoto import IDPhotoError
from idphoto import output as O
from idphoto.output import encode_jpeg, encode_jpeg_max_kb, parse_color, print_sheet


# ------------------------------------------------------------------------------------------------ output
def jpeg_info(data):
    with Image.open(io.BytesIO(data)) as im:
        return im.format, im.info.get("dpi"), np.asarray(im.convert("RGB"))


def noisy_photo(h=120, w=90):
    rng = np.random.default_rng(1)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), np.uint8), (0, 0), 1.5)


def test_jpeg_keeps_colours_in_order_and_writes_dpi_only_when_asked():
    red = np.zeros((16, 16, 3), np.uint8)
    red[...] = (0, 0, 255)                                                # BGR red
    fmt, dpi, rgb = jpeg_info(O.encode_jpeg(red, 300))
    assert fmt == "JPEG" and tuple(round(v) for v in dpi) == (300, 300) and rgb[8, 8, 0] > 240 and rgb[8, 8, 2] < 15
    assert jpeg_info(O.encode_jpeg(red))[1] in (None, (72, 72), (1, 1))   # no DPI asked: none written (JFIF default)
    photo = noisy_photo()
    plain = io.BytesIO()
    Image.fromarray(photo[:, :, ::-1]).save(plain, "JPEG", quality=95, icc_profile=O.srgb_icc(), comment=O.OUTPUT_MARK)
    assert len(O.encode_jpeg(photo)) < len(plain.getvalue())              # optimised Huffman tables: smaller


def test_the_size_cap_finds_the_highest_quality_that_fits_exactly():
    photo = noisy_photo()
    sizes = {q: len(O.encode_jpeg(photo, 300, q)) for q in range(1, 96)}
    for q in (1, 2, 37, 94, 95):
        data, quality = O.encode_jpeg_max_kb(photo, sizes[q] / 1024, 300)  # a limit of exactly that file's size
        best = max(k for k, n in sizes.items() if n <= sizes[q])
        assert quality == best and len(data) == sizes[best] and jpeg_info(data)[1] is not None
    with pytest.raises(IDPhotoError, match=rf"--max-kb 0\.1: even JPEG quality 1 gives {sizes[1] / 1024:.1f} KB; raise the limit"):
        O.encode_jpeg_max_kb(photo, 0.1, 300)


def test_encode_for_spec_caps_by_the_users_limit_then_the_specs():
    photo = noisy_photo()
    full = O.encode_jpeg(photo, 300)
    data, q = O.encode_for_spec(photo, 300)
    assert q == 95 and data == full
    data, q = O.encode_for_spec(photo, 200, quality=80)
    assert q == 80 and data == O.encode_jpeg(photo, 200, 80)
    small = len(full) / 1024 * 0.5
    data, q = O.encode_for_spec(photo, 300, kb=(1, small))
    assert len(data) <= small * 1024 and q < 95 and round(jpeg_info(data)[1][0]) == 300
    user = len(full) / 1024 * 0.3
    data, q2 = O.encode_for_spec(photo, 300, kb=(1, small), max_kb=user)
    assert len(data) <= user * 1024 and q2 < q
    assert O.encode_for_spec(photo, 300, kb=(1, small), max_kb=len(full) / 1024)[1] == 95   # the user's looser limit wins


def test_png_and_output_names():
    img = noisy_photo(20, 10)
    data = O.encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) == img).all()
    paths = O.output_paths("out", "me", None)
    assert paths == {"trimap": Path("out/me_trimap.png"), "alpha": Path("out/me_alpha.png"),
                     "cutout": Path("out/me_cutout.png"), "idphoto": Path("out/me_idphoto.jpg"),
                     "idphoto_hd": Path("out/me_idphoto_hd.jpg")}
    more = O.output_paths(Path("o"), "x", "a4", report=True)
    assert more["sheet"] == Path("o/x_sheet_a4.jpg") and more["report"] == Path("o/x_report.json")


def copies_on(sheet, colour):
    mask = (sheet == colour).all(-1).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    return [tuple(s[:4]) for s in stats[1:]]


def sheet_layouts(photo_shape, size, gap, margin):
    """Copies per layout: portrait and landscape sheet, with gaps and margins or edge to edge."""
    ph, pw = photo_shape
    out = {}
    for W, H in (size, size[::-1]):
        for g, m in ((gap, margin), (0, 0)):
            out[(W, H, g)] = ((W - 2 * m + g) // (pw + g)) * ((H - 2 * m + g) // (ph + g))
    return out


def test_print_sheet_keeps_gaps_and_cut_lines_when_they_cost_no_copy():
    """85×135 px photos on a 4×6 in sheet at 100 DPI: 16 fit edge to edge and 16 with 2 mm gaps and a 3 mm
    margin, so the sheet has the gaps, centred, with cut lines along every photo edge."""
    photo = np.full((135, 85, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(photo, 100, "6inch", line_bgr=(1, 2, 3))
    layouts = sheet_layouts((135, 85), (400, 600), 8, 12)
    assert n == max(layouts.values()) == 16
    boxes = copies_on(sheet, (10, 20, 30))
    assert len(boxes) == 16 and all(b[2:] == (85, 135) for b in boxes)   # separate copies, none overlapping
    h, w = sheet.shape[:2]
    xs, ys = sorted({b[0] for b in boxes}), sorted({b[1] for b in boxes})
    assert all(b - a == 85 + 8 for a, b in zip(xs, xs[1:])) and all(b - a == 135 + 8 for a, b in zip(ys, ys[1:]))
    assert xs[0] >= 12 and ys[0] >= 12                                    # inside the margin
    assert abs(xs[0] - (w - xs[-1] - 85)) <= 1 and abs(ys[0] - (h - ys[-1] - 135)) <= 1   # centred
    for x in xs:                                                           # cut lines along every edge, across the sheet
        assert (sheet[:, x - 1] == (1, 2, 3)).all() and (sheet[:, x + 85] == (1, 2, 3)).all()
    for y in ys:
        assert (sheet[y - 1] == (1, 2, 3)).all() and (sheet[y + 135] == (1, 2, 3)).all()
    wide, n = O.print_sheet(photo, 100, "6inch", gap_mm=5.08, margin_mm=2.54)
    assert n == max(sheet_layouts((135, 85), (400, 600), 20, 10).values())


def test_print_sheet_goes_edge_to_edge_when_that_fits_more():
    photo = np.full((100, 80, 3), 50, np.uint8)
    sheet, n = O.print_sheet(photo, 100)
    assert n == 30 > max(v for (W, H, g), v in sheet_layouts((100, 80), (400, 600), 8, 12).items() if g)
    assert (sheet == 50).all(-1).sum() == 30 * 100 * 80 and sorted(sheet.shape[:2]) == [400, 600]
    edge = np.full((600, 400, 3), 7, np.uint8)                             # exactly the sheet: one copy
    sheet, n = O.print_sheet(edge, 100, "6inch")
    assert n == 1 and sheet.shape[:2] == (600, 400)
    with pytest.raises(IDPhotoError, match=r"a 700×130 px photo does not fit on a 6inch sheet at 100 DPI"):
        O.print_sheet(np.zeros((130, 700, 3), np.uint8), 100, "6inch")
    with pytest.raises(IDPhotoError, match="unknown layout 'a5'; choose one of 6inch, 5inch, a4"):
        O.print_sheet(photo, 100, "a5")


def test_the_size_cap_is_in_kib_and_the_search_tries_every_quality():
    """max_kb counts 1024 bytes a KB: a file of exactly max_kb·1024 bytes fits, one byte more does not; and
    with each quality's own size as the cap, the search lands on that quality (or one no larger)."""
    photo = noisy_photo()
    sizes = {q: len(O.encode_jpeg(photo, 300, q)) for q in range(1, 96)}
    for q in range(1, 96):
        best = max(k for k, n in sizes.items() if n <= sizes[q])
        assert O.encode_jpeg_max_kb(photo, sizes[q] / 1024, 300)[1] == best
    for q in (3, 37, 95):
        data, quality = O.encode_jpeg_max_kb(photo, (sizes[q] - 1) / 1024, 300)   # one byte under the file
        assert quality < q and len(data) <= sizes[q] - 1
    with pytest.raises(IDPhotoError, match="even JPEG quality 1"):
        O.encode_jpeg_max_kb(photo, (sizes[1] - 1) / 1024, 300)


def test_print_sheet_keeps_the_default_3_mm_margin():
    """At 300 DPI the 3 mm margin is 35 px and the 2 mm gap 24 px: two 553 px columns fill 1200 − 2·35 px
    exactly (2·553 + 24) and two 853 px rows 1800 − 2·35 px, so the spaced 2×2 layout fits, touching the
    margins (as many copies as edge to edge, so the gaps are kept)."""
    photo = np.full((853, 553, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(photo, 300, line_bgr=(1, 2, 3))
    assert n == 4 and sheet.shape[:2] == (1800, 1200)
    boxes = sorted(copies_on(sheet, (10, 20, 30)))
    assert boxes == [(35, 35, 553, 853), (35, 35 + 853 + 24, 553, 853), (35 + 553 + 24, 35, 553, 853),
                     (35 + 553 + 24, 35 + 853 + 24, 553, 853)]
    assert (sheet[:, 34] == (1, 2, 3)).all() and (sheet[34] == (1, 2, 3)).all()   # the cut lines before them
    assert (sheet[:33, :33] == 255).all()                                  # and a blank corner of margin outside
    # one pixel wider (2·554 + 24 = 1200 − 2·34): the spaced columns would need 34 px margins, so the sheet
    # goes edge to edge instead (the same 4 copies, touching)
    wider = np.full((853, 554, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(wider, 300)
    assert n == 4 and copies_on(sheet, (10, 20, 30)) == [((1200 - 1108) // 2, (1800 - 1706) // 2, 1108, 1706)]


def test_print_sheet_cut_lines_on_a_one_pixel_border():
    """Edge to edge with a pixel to spare on every side (2×599 = 1200 − 2, 2×899 = 1800 − 2): the cut lines
    before the first and after the last photo are the sheet's outermost rows and columns."""
    photo = np.full((899, 599, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(photo, 300, line_bgr=(1, 2, 3))
    assert n == 4 and sheet.shape[:2] == (1800, 1200)
    assert sorted(copies_on(sheet, (10, 20, 30))) == [(1, 1, 1198, 1798)]  # the four copies side by side
    for edge in (sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1]):
        assert (edge == (1, 2, 3)).all()

def test_written_files_have_the_usual_permissions_and_failures_name_the_file(tmp_path):
    umask = os.umask(0o022)
    try:
        O.write_all({tmp_path / "a" / "b" / "c.png": b"x"})
    finally:
        os.umask(umask)
    assert (tmp_path / "a" / "b" / "c.png").stat().st_mode & 0o777 == 0o644
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as info:
        O.write_all({blocker / "d.png": b"d"})
    assert info.value.filename == str(blocker / "d.png") and info.value.errno is not None and info.value.strerror


def test_backups_fall_back_to_a_copy_where_links_fail(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError("no links here")))
    (tmp_path / "b.png").mkdir()                                          # a folder in the way: its rename fails
    (tmp_path / "b.png" / "keep").write_bytes(b"k")
    with pytest.raises(OSError):
        O.write_all({target: b"new", tmp_path / "b.png": b"b"})
    monkeypatch.undo()
    assert target.read_bytes() == b"old"                                  # put back from the copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"] and (tmp_path / "b.png").is_dir()


def test_output_details_a_user_meets():
    photo = noisy_photo()
    sheet, _ = O.print_sheet(np.zeros((100, 80, 3), np.uint8), 100)
    assert sheet.dtype == np.uint8                                        # ready for encode_jpeg
    with pytest.raises(IDPhotoError, match=r"a 80×700 px photo does not fit on a 6inch sheet at 100 DPI"):
        O.print_sheet(np.zeros((700, 80, 3), np.uint8), 100, "6inch")      # too tall either way round
    big = len(O.encode_jpeg(photo, 300)) / 1024 * 4
    assert O.encode_for_spec(photo, 300, kb=(1, big), quality=70)[1] == 70  # never above the quality asked for
    with pytest.raises(ValueError, match=r"^not a colour: '#12345' \(use white, blue, red, gray or #RRGGBB\)$"):
        O.parse_color("#12345")


def test_sheet_problem_names_the_limit_it_breaks():
    from idphoto.output import MAX_SHEET_PIXELS, MIN_SHEET_PHOTO_MM, sheet_problem

    assert sheet_problem((295, 413), 300, "6inch") is None                 # 25 mm wide at 300 DPI
    small = sheet_problem((295, 413), 600, "6inch")                        # 12.5 mm: too small to cut
    assert small.startswith("the photo is 295×413 px at 600 DPI, 12.5 mm on its short side")
    assert f"at least {MIN_SHEET_PHOTO_MM} mm" in small
    edge = round(MIN_SHEET_PHOTO_MM / 25.4 * 300)                        # exactly the minimum passes
    assert sheet_problem((edge + 1, edge + 1), 300, "6inch") is None
    assert sheet_problem((edge - 2, 900), 300, "6inch") is not None       # the short side counts
    big = sheet_problem((4000, 5000), 1200, "a4")                         # A4 at 1200 DPI: 139 MP
    assert big.startswith("the a4 sheet at 1200 DPI would be 139 megapixels") and "lower the DPI" in big
    assert f"(at most {MAX_SHEET_PIXELS / 1e6:.0f})" in big
    assert sheet_problem((2000, 2500), 600, "a4") is None                 # A4 at 600 DPI: 35 MP, allowed


# ---------------------------------------------------------------------------- colours, JPEG files, sheets
def test_parse_color():
    assert parse_color("white") == (255, 255, 255)
    assert parse_color("#438EDB") == (219, 142, 67) == parse_color("blue")
    assert parse_color("ff0000") == (0, 0, 255)
    with pytest.raises(ValueError):
        parse_color("#12345")


def test_jpeg_dpi_and_max_kb():
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (413, 295, 3), np.uint8), (0, 0), 2)
    data = encode_jpeg(image, 300)
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (295, 413) and tuple(round(v) for v in im.info["dpi"]) == (300, 300)
    limit = len(data) / 1024 * 0.5
    small, quality = encode_jpeg_max_kb(image, limit, 300)
    assert len(small) <= limit * 1024 and 1 <= quality < 95
    assert len(encode_jpeg(image, 300, quality + 1)) > limit * 1024  # the highest quality that fits
    with pytest.raises(IDPhotoError, match="max-kb"):
        encode_jpeg_max_kb(image, 0.2, 300)


def test_print_sheet_6inch():
    photo = np.zeros((413, 295, 3), np.uint8)
    sheet, copies = print_sheet(photo, 300, "6inch")
    assert sorted(sheet.shape[:2]) == [1200, 1800]
    assert copies == 16 and (sheet == 0).all(-1).sum() == 16 * 413 * 295  # 4×4 edge to edge
    assert ((sheet == 200).all(-1)).any()  # cut lines
    sheet, copies = print_sheet(np.zeros((600, 600, 3), np.uint8), 300, "6inch")
    assert copies == 6  # 2×2 in photos: edge to edge fits 6, with gaps only 2


def test_print_sheets_5inch_and_a4_turn_when_more_fit():
    photo = np.zeros((531, 413, 3), np.uint8)
    sheet, n = print_sheet(photo, 300, "a4")
    assert sorted(sheet.shape[:2]) == [2481, 3507] and n == 36  # 6×6 edge to edge
    sheet, n = print_sheet(np.zeros((600, 600, 3), np.uint8), 300, "5inch")
    assert n == 2 and sorted(sheet.shape[:2]) == [1050, 1500]
    wide = np.zeros((413, 1000, 3), np.uint8)  # a wide picture: more fit on the sheet turned
    sheet, n = print_sheet(wide, 300, "6inch")
    assert n == 4 and sheet.shape[:2] == (1800, 1200)
