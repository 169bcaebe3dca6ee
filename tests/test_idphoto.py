"""Unit tests of the idphoto package: loading, trimap, matting, framing, specs, output files."""
from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pymatting
import pytest
import torch
from PIL import Image

from idphoto import (IDPhotoError, Pipeline, detect_faces, encode_jpeg, encode_jpeg_max_kb, estimate_alpha,
                     estimate_foreground, get_spec, load_image, compose_id_photo, parse_color, predict_trimap,
                     predict_trimap_pair, print_sheet, render)
from idphoto.face import FaceBox
from idphoto.framing import Placement, place_by_face, place_by_mask
from idphoto.output import write_all
from idphoto.specs import custom_spec
from models import TNet
from conftest import class_logits, disk_scene

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO = SHARED / "data" / "unlabeled_portraits" / "hivision_idphotos_demo" / "test0.jpg"


# ------------------------------------------------------------------------------------------------ helpers


# ------------------------------------------------------------------------------------------------ loading
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


# ------------------------------------------------------------------------------------------------- trimap
def test_predict_trimap_shape_values_and_rgb_normalisation(monkeypatch):
    torch.manual_seed(0)
    model = TNet("mobilenetv3").eval()
    image = np.random.default_rng(0).integers(0, 255, (130, 100, 3), np.uint8)
    trimap = predict_trimap(model, image, input_size=96)
    assert trimap.shape == (130, 100) and trimap.dtype == np.uint8
    assert set(np.unique(trimap)) <= {0, 128, 255}

    seen = {}

    def spy(x):
        seen["x"] = x
        return torch.zeros(1, 3, *x.shape[-2:])

    image[:] = (0, 0, 255)  # pure red in BGR
    predict_trimap(spy, image, input_size=64)
    x = seen["x"]
    assert x.shape == (1, 3, 64, 64)
    # channel 0 must be R (ImageNet normalised: (1 - 0.485) / 0.229), channel 2 B ((0 - 0.406) / 0.225)
    assert x[0, 0].mean().item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-3)
    assert x[0, 2].mean().item() == pytest.approx(-0.406 / 0.225, abs=1e-3)


def test_predict_trimap_maps_unknown_to_128():
    # the argmax classes 0/1/2 must become 0/128/255: unscaled they look black, and "unknown" must not merge
    # into the foreground
    image = np.zeros((90, 60, 3), np.uint8)
    trimap = predict_trimap(class_logits(torch.ones(8, 8, dtype=torch.long)), image, input_size=64)
    assert trimap.shape == (90, 60) and np.all(trimap == 128)
    bands = torch.tensor([[0, 0, 1, 1, 2, 2]]).repeat(6, 1)  # background | unknown | foreground, left to right
    trimap = predict_trimap(class_logits(bands), image, input_size=48, refine_kernel=0)
    assert np.all(trimap[:, :15] == 0) and np.all(trimap[:, 25:35] == 128) and np.all(trimap[:, 45:] == 255)
    raw, refined = predict_trimap_pair(class_logits(bands), image, input_size=48)
    assert np.array_equal(raw, trimap)
    assert (refined == 128).sum() > (raw == 128).sum()  # the refinement widens the unknown band
    assert np.array_equal(refined, predict_trimap(class_logits(bands), image, input_size=48))


# ------------------------------------------------------------------------------------------------ matting
def test_estimate_alpha_crop_matches_full_resolution_solve():
    image, true_alpha, trimap = disk_scene()
    # pad with plain background so the crop around the unknown band is much smaller than the photo
    image = cv2.copyMakeBorder(image, 40, 40, 40, 40, cv2.BORDER_REPLICATE)
    trimap = cv2.copyMakeBorder(trimap, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=0)
    true_alpha = cv2.copyMakeBorder(true_alpha, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=0)
    alpha = estimate_alpha(image, trimap, "cf")
    assert alpha.shape == trimap.shape and alpha.dtype == np.float32
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    full = pymatting.estimate_alpha_cf(image[:, :, ::-1] / 255.0, trimap / 255.0)
    assert np.abs(alpha - full).max() < 0.02
    assert np.abs(alpha - true_alpha)[trimap == 128].mean() < 0.1
    soft = alpha[trimap == 128]
    assert ((soft > 0.05) & (soft < 0.95)).any()  # a real matte, not a hard mask


def test_estimate_alpha_caps_resolution_and_keeps_known_pixels_exact():
    image, _, trimap = disk_scene(240, 200)
    alpha = estimate_alpha(image, trimap, "cf", max_side=64)
    assert alpha.shape == (240, 200)
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    assert np.abs(alpha - estimate_alpha(image, trimap, "cf", max_side=None))[trimap == 128].mean() < 0.1


def test_estimate_alpha_degenerate_trimaps():
    image = np.full((50, 40, 3), 128, np.uint8)
    assert np.all(estimate_alpha(image, np.full((50, 40), 255, np.uint8)) == 1)
    assert np.all(estimate_alpha(image, np.zeros((50, 40), np.uint8)) == 0)
    with pytest.warns(UserWarning, match="no sure"):
        a = estimate_alpha(image, np.full((50, 40), 128, np.uint8))
    assert a.shape == (50, 40) and np.all(a == 0)
    with pytest.raises(ValueError, match="unknown matting method"):
        estimate_alpha(image, np.zeros((50, 40), np.uint8), "nope")


def test_estimate_foreground_removes_old_background_colour():
    image, alpha, _ = disk_scene(fg=(40, 40, 220), bg=(60, 200, 60))  # red person on green
    fg = estimate_foreground(image, alpha)
    assert fg.shape == image.shape and fg.dtype == np.float32
    soft = (alpha > 0.2) & (alpha < 0.8)
    red = np.array([40, 40, 220]) / 255
    raw_error = np.abs(image[soft] / 255 - red).mean()
    assert np.abs(fg[soft] - red).mean() < raw_error / 3  # the green fringe is gone
    opaque = alpha == 1
    assert np.allclose(fg[opaque], image[opaque] / 255, atol=1e-6)


@pytest.mark.filterwarnings("ignore::idphoto.MattingWarning")  # a random-init TNet finds no person
def test_pipeline_run_returns_everything_with_timings():
    torch.manual_seed(0)
    pipe = Pipeline(TNet("mobilenetv3"), input_size=96)
    image = np.random.default_rng(1).integers(0, 255, (90, 70, 3), np.uint8)
    result = pipe.run(image)
    assert result.trimap.shape == result.alpha.shape == (90, 70)
    assert result.foreground.shape == (90, 70, 3)
    assert set(result.timings) == {"trimap", "alpha", "foreground"}
    assert result.cutout_rgba().shape == (90, 70, 4)


# -------------------------------------------------------------------------------------------------- specs
@pytest.mark.parametrize("name,size", [
    ("1inch", (295, 413)), ("small-1inch", (260, 378)), ("2inch", (413, 579)), ("small-2inch", (413, 531)),
    ("icao", (413, 531)), ("passport", (413, 531)), ("schengen", (413, 531)), ("uk", (413, 531)),
    ("cn-passport", (390, 567)), ("us", (600, 600)),
])
def test_spec_sizes_at_300_dpi(name, size):
    assert get_spec(name).size_px == size and get_spec(name).dpi == 300


def test_custom_specs():
    assert custom_spec(size_px=(300, 400)).size_px == (300, 400)
    assert custom_spec(size_mm=(35, 45), dpi=600).size_px == (827, 1063)
    with pytest.raises(KeyError):
        get_spec("3inch")


# ------------------------------------------------------------------------------------------------ framing
def test_place_by_face_follows_the_rule():
    spec = get_spec("icao")
    w, h = spec.size_px
    face = FaceBox(200, 300, 100, 100)
    crown = face.crown_y()
    p = place_by_face(face, crown, (w, h), spec)
    cx, crown_c = p.apply(face.center_x, crown)
    _, chin_c = p.apply(face.center_x, face.chin_y)
    assert cx == pytest.approx(w / 2)
    assert crown_c == pytest.approx(spec.top_ratio * h)
    assert (chin_c - crown_c) / h == pytest.approx(spec.head_ratio)


def test_crown_from_alpha_when_plausible():
    face = FaceBox(40, 100, 60, 60)
    alpha = np.zeros((300, 200), np.float32)
    alpha[80:, 30:110] = 1  # hair starts 20 px above the box
    assert face.crown_y(alpha) == 80
    alpha[:] = 1  # mask reaching the photo's top: implausible, fall back to the box rule
    assert face.crown_y(alpha) == pytest.approx(100 - 0.31 * 60)


def test_render_background_size_and_colour():
    image, alpha, _ = disk_scene(200, 160)
    fg = image.astype(np.float32) / 255
    spec = get_spec("1inch")
    p = place_by_mask(alpha, spec.size_px, spec)
    blue = parse_color("blue")
    out = render(fg, alpha, p, spec.size_px, blue)
    assert out.shape == (413, 295, 3) and out.dtype == np.uint8
    for y, x in ((0, 0), (0, 294), (412, 0), (412, 294), (5, 147)):
        assert tuple(out[y, x]) == blue
    # the person is there: the disk colour in the middle of its placed box
    cy = int(p.apply(80, 200 * 0.55)[1])
    assert np.abs(out[cy, 147].astype(int) - (40, 40, 220)).max() <= 2


def test_render_never_continues_a_body_cut_by_the_photo_bottom():
    alpha = np.zeros((100, 80), np.float32)
    alpha[40:, 20:60] = 1  # a "torso" touching the bottom edge
    fg = np.zeros((100, 80, 3), np.float32)
    out = render(fg, alpha, Placement(1.0, 0, 0), (80, 160), (255, 255, 255))
    assert tuple(out[90, 40]) == (0, 0, 0)
    assert (out[101:] == 255).all()  # below the photo: the background, never the last row repeated


def test_make_id_photo_without_face():
    image, alpha, _ = disk_scene(200, 160)
    fg = image.astype(np.float32) / 255
    spec = get_spec("1inch")
    with pytest.raises(IDPhotoError, match="no face"):
        compose_id_photo(image, alpha, fg, spec, faces=[])
    photo = compose_id_photo(image, alpha, fg, spec, no_face_ok=True, faces=[])
    assert photo.image.shape == (413, 295, 3) and photo.warnings
    photo = compose_id_photo(image, alpha, fg, None, parse_color("red"), faces=[])
    assert photo.image.shape == (200, 160, 3) and tuple(photo.image[0, 0]) == (0, 0, 255)


@pytest.mark.parametrize("spec_name", ["1inch", None])
def test_make_id_photo_without_person_is_an_error(spec_name):
    image, _, _ = disk_scene(200, 160)
    fg = image.astype(np.float32) / 255
    spec = spec_name and get_spec(spec_name)
    face = [FaceBox(60, 80, 40, 40)]  # a face found on the raw photo does not make up for an empty segmentation
    for alpha in (np.zeros((200, 160), np.float32), np.where(np.arange(200 * 160) < 200, 1.0, 0.0).reshape(200, 160)):
        with pytest.raises(IDPhotoError, match="no person found"):
            compose_id_photo(image, alpha.astype(np.float32), fg, spec, no_face_ok=True, faces=face)
    small = np.zeros((200, 160), np.float32)
    small[80:100, 60:80] = 1.0  # 400 px = 1.25 %: a (small) person
    assert compose_id_photo(image, small, fg, spec, no_face_ok=True, faces=[]).image.dtype == np.uint8


@pytest.mark.skipif(not DEMO.is_file(), reason="needs ../shared/data (real portraits)")
@pytest.mark.parametrize("spec_name", ["icao", "1inch", "us"])
def test_haar_fallback_still_frames_by_the_head_rule(spec_name):
    """Without landmarks (the Haar box only) the head height rule is still met; the eye line is unknown."""
    image = load_image(DEMO)
    faces = detect_faces(image, "haar")
    assert len(faces) == 1 and faces[0].landmarks is None
    spec = get_spec(spec_name)
    alpha = np.ones(image.shape[:2], np.float32)  # a mask reaching the top edge: the crown comes from the box rule
    photo = compose_id_photo(image, alpha, image.astype(np.float32) / 255, spec, faces=faces, detector="haar")
    w, h = spec.size_px
    assert photo.image.shape == (h, w, 3)
    face, p = photo.face, photo.placement
    crown = p.apply(0, face.crown_y(alpha))[1]
    chin = p.apply(0, face.chin_y)[1]
    lo, hi = spec.rule_px("head")
    assert lo - 1 <= chin - crown <= hi + 1 and crown >= 0
    assert any("no landmarks" in w for w in photo.warnings)
    again = detect_faces(photo.image)  # found again in the ID photo itself, centred
    assert again and abs(again[0].center_x - w / 2) < 0.05 * w


# ------------------------------------------------------------------------------------------------- output
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


def test_faces_off_the_person_are_ignored():
    image, alpha, _ = disk_scene(200, 160)
    fg = image.astype(np.float32) / 255
    on = FaceBox(62, 87, 36, 36)       # centre (80, 105) on the disk (the head, 95 px wide; a face of a third of
                                       # that or less is a false detection, see idphoto.headcheck)
    off = FaceBox(0, 0, 60, 60)        # larger, but on the background
    photo = compose_id_photo(image, alpha, fg, get_spec("1inch"), faces=[off, on], detector="haar")
    assert photo.face == on
    with pytest.raises(IDPhotoError, match="touches the subject's"):   # two faces on the person: not one person
        compose_id_photo(image, alpha, fg, get_spec("1inch"), faces=[FaceBox(60, 85, 40, 40), on], detector="haar")


def test_flip_tta_averages_the_photo_and_its_mirror():
    """With flip TTA the trimap of a photo is the mirror of the trimap of the mirrored photo (the averaged
    probabilities are symmetric), and a model that only sees one half of the photo becomes symmetric."""
    import torch

    from idphoto.pipeline import predict_trimap_pair
    from idphoto.runner import model_input_size

    class LeftOnly(torch.nn.Module):      # 'person' wherever x < half the width: foreground logits there
        def forward(self, x):
            n, _, h, w = x.shape
            logits = torch.zeros(n, 3, h, w)
            logits[:, 2, :, : w // 2] = 5.0
            logits[:, 0, :, w // 2:] = 1.0
            return logits

    photo = np.zeros((64, 64, 3), np.uint8)
    raw, _ = predict_trimap_pair(LeftOnly(), photo, 64, refine_kernel=0)
    assert (raw[:, :32] == 255).all() and (raw[:, 32:] == 0).all()
    raw_tta, _ = predict_trimap_pair(LeftOnly(), photo, 64, refine_kernel=0, flip=True)
    # averaged: each side has p(fg) ≈ 0.5 from one view and p(bg) from the other → both sides agree
    assert np.array_equal(raw_tta, raw_tta[:, ::-1]) and (raw_tta == 255).all()
    model = LeftOnly()
    assert model_input_size(model) == 400
    model.meta = {"input_size": 256}
    assert model_input_size(model) == 256


def test_pipeline_cutout_carries_no_fringe_of_the_old_background():
    """A red 'person' with soft edges on a green screen, with TNet replaced by the true trimap: the
    foreground the pipeline hands on (cut-out colours, composite) has the green removed at the soft edge."""
    image, alpha, trimap = disk_scene(160, 140, fg=(40, 40, 220), bg=(60, 200, 60))
    classes = torch.from_numpy(np.digitize(trimap, (64, 192)))
    class Oracle(torch.nn.Module):
        def forward(self, x):
            return class_logits(classes)(x)

    result = Pipeline(Oracle(), input_size=160, refine_kernel=0).run(image)
    soft = (alpha > 0.2) & (alpha < 0.8) & (result.alpha > 0.1)
    assert soft.sum() > 50
    green_in_photo = image[soft][:, 1].mean() / 255
    green_in_cutout = result.foreground[soft][:, 1].mean()
    assert green_in_photo > 0.3 and green_in_cutout < 0.25      # BGR: channel 1 is green
    cut = result.cutout_rgba()
    assert np.abs(cut[soft][:, :3].astype(int) - (40, 40, 220)).mean() < 40


def test_matting_keeps_known_pixels_around_the_band_in_its_crop():
    """A band that spans the photo's width between foreground (top) and background (bottom): only the
    known rows kept around the band's box let the solver see both sides; without them it would give up
    and return a constant."""
    h, w = 80, 60
    ramp = np.clip((np.arange(h, dtype=np.float32) - 35) / 10, 0, 1)[:, None].repeat(w, 1)  # 1 → 0 downwards
    true_alpha = 1 - ramp
    image = (true_alpha[..., None] * np.array([30, 30, 200]) + ramp[..., None] * np.array([200, 200, 30])).astype(np.uint8)
    trimap = np.zeros((h, w), np.uint8)
    trimap[:34] = 255
    trimap[34:47] = 128
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # "no sure foreground/background" would be raised here
        alpha = estimate_alpha(image, trimap, "cf")
    band = alpha[36:45]
    assert band.std() > 0.1 and np.abs(band - true_alpha[36:45]).mean() < 0.15


# ------------------------------------------------------------------------------ false face detections
def head_and_body(h=800, w=600, head_r=150):
    """Alpha (float) of a close-up: a head disk of radius ``head_r`` on a wide body."""
    alpha = np.zeros((h, w), np.float32)
    cv2.circle(alpha, (w // 2, 300), head_r, 1.0, -1)
    cv2.rectangle(alpha, (w // 2 - head_r // 2, 300), (w // 2 + head_r // 2, h - 250), 1.0, -1)   # the neck
    cv2.ellipse(alpha, (w // 2, h), (w // 2 - 20, 300), 0, 180, 360, 1.0, -1)
    return alpha


def test_a_face_far_narrower_than_the_head_is_rejected():
    from idphoto.headcheck import MIN_FACE_TO_HEAD, head_width_at, implausible_face

    alpha = head_and_body()
    cheek = FaceBox(330, 300, 64, 64)      # a patch of cheek: centre on the head
    face = FaceBox(200, 200, 200, 200)     # cheek to cheek
    body = FaceBox(260, 700, 64, 64)       # a false detection on the chest
    off = FaceBox(10, 10, 40, 40)          # on the background: nothing to compare with
    assert head_width_at(cheek, alpha) == pytest.approx(2 * np.sqrt(150**2 - 32**2), abs=3)
    assert head_width_at(off, alpha) is None
    assert head_width_at(cheek, np.ones_like(alpha)) is None  # no outline: no judgement (the photo is all person)
    assert "rejected a 64×64 px detection" in implausible_face(cheek, alpha)
    assert implausible_face(body, alpha) is not None  # the body is far wider still
    assert implausible_face(face, alpha) is None and implausible_face(off, alpha) is None
    for share, rejected in ((MIN_FACE_TO_HEAD + 0.05, False), (MIN_FACE_TO_HEAD - 0.05, True)):
        w = share * 300  # the head is 300 px wide across its middle rows
        box = FaceBox(300 - w / 2, 290, w, 20)
        assert (implausible_face(box, alpha) is not None) == rejected


def test_make_id_photo_refuses_to_frame_on_a_false_face():
    alpha = head_and_body()
    image = (np.dstack([alpha] * 3) * 200).astype(np.uint8)
    fg = image.astype(np.float32) / 255
    cheek, face = FaceBox(330, 300, 64, 64), FaceBox(200, 200, 200, 200)
    with pytest.raises(IDPhotoError, match="no face found; rejected a 64×64 px detection"):
        compose_id_photo(image, alpha, fg, get_spec("1inch"), faces=[cheek], detector="haar")
    photo = compose_id_photo(image, alpha, fg, get_spec("1inch"), faces=[cheek], no_face_ok=True, detector="haar")
    assert photo.face is None and "rejected a 64×64" in photo.warnings[0]
    photo = compose_id_photo(image, alpha, fg, get_spec("1inch"), faces=[cheek, face], detector="haar")  # the real one
    assert photo.face == face and not any("rejected" in w for w in photo.warnings)


PFCN_CLOSE_UP = SHARED / "data" / "pfcn_portrait_seg" / "images" / "00270.jpg"


@pytest.mark.skipif(not PFCN_CLOSE_UP.is_file(), reason="needs ../shared/data (real portraits)")
def test_a_real_close_up_is_not_framed_on_a_cheek():
    """PFCN 00270: a close-up whose only Haar detection is a 69 px patch of cheek; the head is ~510 px wide.
    (The landmark detector finds the real face here; the Haar fallback is what must not be trusted.)"""
    image = load_image(PFCN_CLOSE_UP)
    mask = cv2.imread(str(PFCN_CLOSE_UP.parent.parent / "masks" / "00270.png"), cv2.IMREAD_GRAYSCALE)
    alpha = (mask > 127).astype(np.float32)
    faces = detect_faces(image, method="haar")
    assert len(faces) == 1 and faces[0].w < 100
    with pytest.raises(IDPhotoError, match="rejected a"):
        compose_id_photo(image, alpha, image.astype(np.float32) / 255, get_spec("1inch"), faces=faces)
