"""idphoto.compliance: the report's checks pass a good ID photo, flag a bad one and tell hard failures from soft."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT
from idphoto.compliance import check_photo
from idphoto.face import detect_faces
from idphoto.framing import Placement, make_background, render
from idphoto.image_io import load_image
from idphoto.maker import compose_id_photo
from idphoto.output import encode_jpeg
from idphoto.specs import get_spec


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
