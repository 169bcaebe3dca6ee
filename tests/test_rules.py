"""ID photos by the rules: the spec catalogue, landmarks and levelling, framing, backgrounds, the compliance report."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from idphoto import IDPhotoError, load_image, compose_id_photo, print_sheet
from idphoto.compliance import check_photo
from idphoto.face import FaceBox, detect_faces
from idphoto.framing import Placement, make_background, plan_by_rules, render
from idphoto.output import encode_jpeg
from idphoto.specs import CATALOGUE, SPECS, SpecError, get_spec, load_catalogue, parse_entry
from conftest import synthetic_face

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
SHARED = REPO.parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------- catalogue
def test_catalogue_validates_and_holds_the_required_specs():
    raw = json.loads(CATALOGUE.read_text(encoding="utf-8"))["specs"]
    specs, aliases = load_catalogue(CATALOGUE)
    assert len(specs) == len(raw) >= 40
    for e in raw:
        assert e["source"].strip() and e["background"] and e["format"] == "jpeg"
        assert any(e.get(k) for k in ("head_height", "face_width")), e["id"]  # something sets the scale
    sizes = {k: (s.size_px, s.dpi) for k, s in specs.items()}
    assert sizes["1inch"] == ((295, 413), 300) and sizes["small-1inch"] == ((260, 378), 300)
    assert sizes["large-1inch"] == ((390, 567), 300) and sizes["2inch"] == ((413, 579), 300)
    assert sizes["small-2inch"] == ((413, 531), 300)
    assert sizes["cn-id-card"] == ((358, 441), 350) and sizes["cn-social-security"] == ((358, 441), 350)
    assert sizes["cn-passport"] == ((390, 567), 300) and sizes["cn-hk-macau-permit"] == ((390, 567), 300)
    assert sizes["cn-chsi"][0] == (480, 640)
    assert sum(s.region == "China" and "exam" in s.description.lower() for s in specs.values()) >= 2
    for key in ("icao", "schengen", "us-passport", "us-visa", "uk-passport", "ca-passport", "in-evisa",
                "jp-passport", "kr-passport", "au-passport"):
        assert key in specs
    us = specs["us-passport"]
    assert us.rule_px("head") == pytest.approx((300, 412.5)) and us.rule_px("eyes") == pytest.approx((337.5, 412.5))
    assert get_spec("passport") == specs["icao"] and get_spec("US") == specs["us-passport"]


GOOD = {"id": "my-card", "unit": "mm", "size": [30, 40], "dpi": 300, "head_height": [25, 30],
        "background": ["#FFFFFF"], "source": "my club's rules"}


@pytest.mark.parametrize("change,field", [
    ({"size": [30, "40"]}, "size"),
    ({"unit": "cm"}, "unit"),
    ({"head_height": [30, 25]}, "head_height"),
    ({"head_height": [25, 50]}, "head_height"),      # taller than the photo
    ({"eyes_from_bottom": [10]}, "eyes_from_bottom"),
    ({"background": ["white"]}, "background"),
    ({"file_kb": [-1, 20]}, "file_kb"),
    ({"format": "png"}, "format"),
    ({"source": " "}, "source"),
    ({"dpi": 0}, "dpi"),
    ({"id": "My Card"}, "id"),
    ({"head_hieght": [25, 30]}, "head_hieght"),      # a typo is named, not ignored
])
def test_malformed_spec_names_the_bad_field(change, field):
    with pytest.raises(SpecError, match=f"field '{field}'") as info:
        parse_entry({**GOOD, **change}, "my.json: spec #1")
    assert "\n" not in str(info.value)
    spec, _ = parse_entry(GOOD, "ok")
    assert spec.size_px == (354, 472) and spec.rule_px("head") == pytest.approx((25 / 40 * 472, 30 / 40 * 472))


@pytest.fixture
def fresh_catalogue(monkeypatch):
    """--spec-file adds to the process-wide catalogue: give each test its own copy."""
    import idphoto.specs as specs_mod

    monkeypatch.setattr(specs_mod, "SPECS", dict(specs_mod.SPECS))
    monkeypatch.setattr(specs_mod, "ALIASES", dict(specs_mod.ALIASES))


def run_infer(capsys, *args):
    import infer

    try:
        rc = infer.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_spec_file_and_list_specs(tmp_path, capsys, fresh_catalogue):
    good = tmp_path / "mine.json"
    good.write_text(json.dumps([GOOD]))
    n_builtin = len(SPECS)
    rc, out, err = run_infer(capsys, "--spec-file", good, "--list-specs")
    assert rc == 0, err
    assert "my-card" in out and "cn-id-card" in out and "358×441 px @ 350 DPI" in out
    assert len(out.strip().splitlines()) == n_builtin + 2  # header + built-ins + the user's
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**GOOD, "size": [30]}))
    rc, out, err = run_infer(capsys, "--spec-file", bad, "--image", ASTRONAUT)
    assert rc == 2 and "field 'size'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    bad.write_text("{not json")
    rc, out, err = run_infer(capsys, "--spec-file", bad, "--list-specs")
    assert rc == 2 and "not valid JSON" in err


def test_readme_table_is_generated_from_the_catalogue(capsys):
    from idphoto import spec_table

    assert spec_table.main(["--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    assert table.count("\n") == len(SPECS) + 1
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's spec table is stale: paste `python -m idphoto.spec_table --markdown`"


# ------------------------------------------------------------------------------------------------ framing


@pytest.mark.parametrize("name", ["icao", "us-passport", "cn-passport", "cn-id-card", "1inch", "us-visa", "nz-passport"])
def test_plan_meets_every_rule_of_the_spec(name):
    spec = get_spec(name)
    face = synthetic_face()
    crown = 100.0
    plan = plan_by_rules(face, crown, spec.size_px, spec)
    assert plan.gave_way == []
    p = plan.placement
    w, h = spec.size_px
    top = p.apply(0, crown)[1]
    head = p.apply(0, face.chin_y)[1] - top
    eyes = h - p.apply(0, face.eye_y)[1]
    assert p.apply(face.center_x, 0)[0] == pytest.approx(w / 2)
    for value, rule in ((head, "head"), (eyes, "eyes"), (top, "top"), (face.landmarks.face_width * p.scale, "face_width")):
        r = spec.rule_px(rule)
        if r is not None:
            assert (r[0] is None or value >= r[0] - 0.5) and (r[1] is None or value <= r[1] + 0.5), (rule, value, r)


def test_conflicting_rules_say_which_gave_way():
    spec = get_spec("us-passport")
    # eyes very low in the head (long forehead): head height and eye line can't both hold; the eye line gives way
    face = synthetic_face(crown=0.0, eye=300.0, chin=330.0)
    plan = plan_by_rules(face, 0.0, spec.size_px, spec)
    assert plan.gave_way and plan.gave_way[0].startswith("eye line")
    head = plan.head_px
    lo, hi = spec.rule_px("head")
    assert lo - 0.5 <= head <= hi + 0.5


def person_photo(h=800, w=600, chin_gap=400):
    """A plain 'portrait': grey background, a skin ellipse head on a dark body reaching the bottom edge."""
    img = np.full((h, w, 3), 200, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, 250), (100, 130), 0, 0, 360, 1.0, -1)
    cv2.rectangle(alpha, (w // 2 - 45, 350), (w // 2 + 45, 520), 1.0, -1)  # the neck
    cv2.ellipse(alpha, (w // 2, h + 100), (250, 400 - (400 - chin_gap)), 0, 180, 360, 1.0, -1)
    img[alpha > 0.5] = (60, 90, 160)
    return img, alpha


def test_too_little_below_the_chin_is_refused():
    img, alpha = person_photo()
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    cut = slice(0, 390)  # the photo stops 10 px under the chin
    with pytest.raises(IDPhotoError, match="shoulders"):
        compose_id_photo(img[cut], alpha[cut], img[cut] / 255.0, get_spec("icao"), faces=[face])
    photo = compose_id_photo(img, alpha, img / 255.0, get_spec("icao"), faces=[face])  # whole photo: fine
    assert photo.image.shape == (531, 413, 3)


def test_no_room_above_is_filled_with_the_background():
    img, alpha = person_photo()
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    top = slice(100, 800)  # hair 20 px from the photo's top: the canvas reaches above the photo
    shifted = FaceBox(face.x, face.y - 100, face.w, face.h, face.landmarks.transformed(np.array([[1, 0, 0], [0, 1, -100.0]])),
                      1.0, "landmarks")
    photo = compose_id_photo(img[top], alpha[top], img[top] / 255.0, get_spec("cn-passport"), (219, 142, 67), faces=[shifted])
    assert tuple(photo.image[2, 2]) == (219, 142, 67) and tuple(photo.image[2, 200]) == (219, 142, 67)


# ---------------------------------------------------------------------------------------------- backgrounds
def test_background_styles_and_keep():
    size = (100, 140)
    solid = make_background(size, (219, 142, 67), "solid")
    grad = make_background(size, (219, 142, 67), "gradient")
    radial = make_background(size, (219, 142, 67), "radial")
    assert np.ptp(solid) == 0 or (solid == solid[0, 0]).all()
    assert tuple(grad[0, 50].round()) == (219, 142, 67) and grad[-1, 50, 2] > grad[0, 50, 2] + 50  # lighter downwards
    assert (grad[:, 0] == grad[:, -1]).all()
    assert radial[70, 50, 2] > radial[0, 0, 2] + 50 and np.abs(radial[0, 0] - (219, 142, 67)).max() < 3
    img, alpha = person_photo()
    rng = np.random.default_rng(0)
    img[alpha < 0.5] = rng.integers(0, 255, (int((alpha < 0.5).sum()), 3))  # a busy background, kept as it is
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    kept = compose_id_photo(img, alpha, img / 255.0, get_spec("1inch"), faces=[face], keep_background=True)
    p = kept.placement
    x, y = 5, 5  # a canvas pixel on the background maps back to the original photo's pixel
    sx, sy = (x - p.tx) / p.scale, (y - p.ty) / p.scale
    ref = cv2.getRectSubPix(img, (1, 1), (sx, sy))[0, 0] if p.scale >= 1 else None
    assert np.std(kept.image[:20, :20]) > 20  # noise kept, not a plain colour
    if ref is not None:
        assert np.abs(kept.image[y, x].astype(int) - ref.astype(int)).max() <= 40
    plain = compose_id_photo(img, alpha, img / 255.0, get_spec("1inch"), faces=[face])
    assert (plain.image[:20, :20] == 255).all()


def test_print_sheets_5inch_and_a4_turn_when_more_fit():
    photo = np.zeros((531, 413, 3), np.uint8)
    sheet, n = print_sheet(photo, 300, "a4")
    assert sorted(sheet.shape[:2]) == [2481, 3507] and n == 36  # 6×6 edge to edge
    sheet, n = print_sheet(np.zeros((600, 600, 3), np.uint8), 300, "5inch")
    assert n == 2 and sorted(sheet.shape[:2]) == [1050, 1500]
    wide = np.zeros((413, 1000, 3), np.uint8)  # a wide picture: more fit on the sheet turned
    sheet, n = print_sheet(wide, 300, "6inch")
    assert n == 4 and sheet.shape[:2] == (1800, 1200)


# ------------------------------------------------------------------------------------- landmarks, levelling
def rotate(img, degrees):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_landmarks_on_the_astronaut():
    img = load_image(ASTRONAUT)
    faces = detect_faces(img, "landmarks")
    assert len(faces) == 1
    m = faces[0].landmarks
    # positions read off the picture by hand (512×512): eyes at about (204, 101) and (246, 103), chin (221, 175)
    assert math.dist(m.left_eye, (204, 101)) < 5 and math.dist(m.right_eye, (246, 103)) < 5
    assert math.dist(m.chin, (221, 175)) < 8 and m.source == "mesh"
    assert faces[0].chin_y == m.chin[1] and faces[0].eye_y == pytest.approx((m.left_eye[1] + m.right_eye[1]) / 2)
    assert detect_faces(np.full((200, 160, 3), 180, np.uint8)) == []


@pytest.mark.parametrize("degrees", [7, -7])
def test_a_portrait_rotated_7_degrees_is_levelled(degrees):
    img = load_image(ASTRONAUT)
    alpha = np.ones(img.shape[:2], np.float32)
    upright = detect_faces(img)[0].landmarks.roll_degrees
    tilted = rotate(img, degrees)
    seen = detect_faces(tilted)[0].landmarks.roll_degrees
    assert abs(seen - (upright - degrees)) < 1.0  # the tilt is measured to within 1°
    spec = get_spec("icao")
    photo = compose_id_photo(tilted, alpha, tilted / 255.0, spec)
    assert abs(photo.levelled_degrees - seen) < 1e-6 and abs(photo.levelled_degrees) >= 1
    assert any("levelled the eyes" in w for w in photo.warnings)
    again = detect_faces(photo.image)[0].landmarks.roll_degrees  # measured on the output itself
    assert abs(again) < 1.0
    kept = compose_id_photo(tilted, alpha, tilted / 255.0, spec, level_eyes=False)
    assert abs(detect_faces(kept.image)[0].landmarks.roll_degrees) > 3


# ------------------------------------------------------------------------------------------- the report
def test_report_passes_a_good_photo_and_flags_a_bad_one():
    img = load_image(ASTRONAUT)
    alpha = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(alpha, (224, 125), (78, 95), 0, 0, 360, 1.0, -1)  # head with hair
    cv2.ellipse(alpha, (230, 512), (210, 330), 0, 180, 360, 1.0, -1)  # suit
    spec = get_spec("icao")
    photo = compose_id_photo(img, alpha, img / 255.0, spec)
    jpeg = encode_jpeg(photo.image, spec.dpi)
    good = check_photo(photo.image, spec, jpeg, photo.alpha)
    assert good.passed, good.lines()
    names = {c.rule for c in good.checks}
    for rule in ("pixel size", "DPI", "exactly one face", "head height (chin to crown)", "horizontal centring",
                 "eye-level tilt", "background uniformity", "background colour"):
        assert rule in names
    # the same person built too small (head 80 % of the planned size), off-centre, on a blue background
    p = photo.placement
    small = Placement(p.scale * 0.8, p.tx + 60, p.ty + 40)
    bad_img, bad_alpha = render(img / 255.0, alpha, small, spec.size_px, make_background(spec.size_px, (219, 142, 67)),
                                return_alpha=True)
    bad = check_photo(bad_img, spec, encode_jpeg(bad_img, 200), bad_alpha)
    failed = {c.rule for c in bad.failed}
    assert {"head height (chin to crown)", "horizontal centring", "background colour", "DPI"} <= failed
    head = next(c for c in bad.checks if c.rule.startswith("head height"))
    assert head.value < 378 - 1 and not bad.passed
    data = json.loads(bad.to_json())
    assert data["passed"] is False and any(c["rule"] == "DPI" and c["passed"] is False for c in data["checks"])


def test_report_on_a_photo_without_a_face():
    spec = get_spec("1inch")
    blank = np.full((413, 295, 3), 255, np.uint8)
    report = check_photo(blank, spec, encode_jpeg(blank, 300))
    face = next(c for c in report.checks if c.rule == "exactly one face")
    assert face.passed is False and face.value == 0 and not report.passed


# ------------------------------------------------------------------------------------ real portraits
PORTRAITS = [("pfcn_portrait_seg", "00010"), ("pfcn_portrait_seg", "00001"), ("vikram_human_seg", "10")]


@pytest.mark.skipif(not (SHARED / "pfcn_portrait_seg").is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("folder,stem", PORTRAITS)
def test_real_portraits_meet_the_rules_of_several_specs(folder, stem):
    img = load_image(SHARED / folder / "images" / f"{stem}.jpg")
    mask = cv2.imread(str(SHARED / folder / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    alpha = cv2.resize(mask, img.shape[1::-1], interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    faces = detect_faces(img)
    for name in ("icao", "us-passport", "cn-passport", "1inch", "us-visa"):
        spec = get_spec(name)
        photo = compose_id_photo(img, alpha, img / 255.0, spec, faces=faces)
        jpeg = encode_jpeg(photo.image, spec.dpi)
        report = check_photo(photo.image, spec, jpeg, photo.alpha)
        for c in report.checks:
            if c.rule.split()[0] in ("head", "eye", "top") and c.rule != "eye-level tilt":
                lo, hi = (spec.rule_px({"head": "head", "eye": "eyes", "top": "top"}[c.rule.split()[0]]))
                assert (lo is None or c.value >= lo - 2) and (hi is None or c.value <= hi + 2), (name, c)
        assert report.passed, (name, report.lines())


def test_hard_rules_are_never_written_and_soft_ones_are_warnings():
    """A second face on the photo and a head cut by its top edge are hard failures (the service refuses the
    photo whatever the options); a background off the spec's colours is a soft miss."""
    from idphoto.service import RefusedError

    img = load_image(ASTRONAUT)
    face = cv2.resize(img[40:240, 120:320], (200, 200))
    two = np.full((531, 413, 3), 255, np.uint8)
    two[150:350, 0:200] = face
    two[150:350, 210:410] = face
    spec = get_spec("icao")
    report = check_photo(two, spec, encode_jpeg(two, spec.dpi))
    assert [c.rule for c in report.hard_failed] == ["exactly one face"] and report.hard_failed[0].value == 2
    assert "refused: exactly one face 2" in str(RefusedError(report))
    one = np.full((531, 413, 3), 255, np.uint8)
    one[150:350, 100:300] = face
    alpha = np.zeros((531, 413), np.float32)
    alpha[0:350, 100:300] = 1.0                      # the person runs off the top edge over the head
    report = check_photo(one, spec, encode_jpeg(one, spec.dpi), alpha)
    cut = next(c for c in report.checks if c.rule == "whole head in the frame")
    assert cut.passed is False and cut.hard and cut in report.hard_failed
    alpha[0:140] = 0.0
    report = check_photo(one, spec, encode_jpeg(one, spec.dpi), alpha)
    assert not report.hard_failed and "body reaches the bottom edge" in {c.rule for c in report.soft_failed}


def test_the_report_sees_a_hand_on_the_face(monkeypatch):
    """The uncovered-face rule is hard and measured on the final photo: a hand found on the face fails it."""
    from idphoto import landmarks

    img = load_image(ASTRONAUT)
    canvas = np.full((531, 413, 3), 255, np.uint8)
    canvas[100:400, 50:350] = cv2.resize(img[20:260, 100:340], (300, 300))
    spec = get_spec("icao")
    clean = check_photo(canvas, spec, encode_jpeg(canvas, spec.dpi))
    check = next(c for c in clean.checks if c.rule == "uncovered face")
    assert check.passed is True and check.hard
    face = detect_faces(canvas)[0]
    x, y = face.landmarks.nose
    monkeypatch.setattr(landmarks, "detect_hands", lambda image: [(x - 30, y - 30, 60.0, 60.0, 0.99)])
    covered = check_photo(canvas, spec, encode_jpeg(canvas, spec.dpi))
    assert "uncovered face" in [c.rule for c in covered.hard_failed]
    # the photo it was made from already told: no second look on the ID photo, its answer is the check's
    monkeypatch.setattr(landmarks, "detect_hands", lambda image: pytest.fail("looked for hands again"))
    told = check_photo(canvas, spec, encode_jpeg(canvas, spec.dpi), uncovered=True)
    assert next(c for c in told.checks if c.rule == "uncovered face").passed is True and not told.hard_failed
    assert "uncovered face" in [c.rule for c in check_photo(canvas, spec, uncovered=False).hard_failed]
