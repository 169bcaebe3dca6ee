"""idphoto.subject: one real, frontal, uncovered face, and its person alone (issue 19's rules, on generated
faces and mattes; the real photos of ../shared/data/real_id_cases where present)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from conftest import SHARED, disk_scene
from idphoto.errors import IDPhotoError
from idphoto.face import FaceBox
from idphoto.framing import Placement
from idphoto.landmarks import Landmarks
from idphoto.maker import compose_id_photo
from idphoto.specs import get_spec
from idphoto.subject import (MAX_ROLL_DEGREES, MAX_YAW_DEGREES, check_hands, check_other_faces, choose_subject,
                             isolate_person)


def face_at(cx: float, eye: float, width: float = 100.0, roll: float = 0.0, nose_dx: float = 0.0,
            fitted: bool = True) -> FaceBox:
    """A face box with landmarks: eyes ``width``·0.45 apart about (cx, eye), turned by ``roll`` degrees; the
    nose ``nose_dx`` px across the eye line from its middle (a turned head); ``fitted=False``: BlazeFace's
    keypoints only (Face Mesh found no face there)."""
    d = 0.45 * width
    c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    left, right = (cx - d / 2 * c, eye - d / 2 * s), (cx + d / 2 * c, eye + d / 2 * s)
    nose = (cx + nose_dx * c - 0.45 * d * s, eye + nose_dx * s + 0.45 * d * c)
    chin = (cx - 1.7 * d * s, eye + 1.7 * d * c)
    mouth = eye + 1.0 * d
    marks = Landmarks(left, right, nose, (cx - d / 2, mouth), (cx + d / 2, mouth), chin if fitted else None,
                      "mesh" if fitted else "blazeface", 2.1 * d if fitted else None)
    return FaceBox(cx - width / 2, eye - 0.35 * width, width, width, marks, 0.9, "landmarks")


def person(h=800, w=600, cx=300, head_y=250, head=(100, 130), body=True) -> np.ndarray:
    """Alpha of one person: a head, a neck and shoulders reaching the bottom edge."""
    a = np.zeros((h, w), np.float32)
    cv2.ellipse(a, (cx, head_y), head, 0, 0, 360, 1.0, -1)
    if body:
        cv2.rectangle(a, (cx - 45, head_y + 80), (cx + 45, head_y + 260), 1.0, -1)
        cv2.ellipse(a, (cx, h + 100), (250, h + 100 - head_y - 230), 0, 180, 360, 1.0, -1)
    return a


# ------------------------------------------------------------------------------------- which face, and is it one
def test_the_landmarks_yaw_follows_the_nose():
    for dx in (0.0, 10.0, -20.0):
        f = face_at(300, 200, nose_dx=dx)
        d = f.landmarks.eye_distance
        assert f.landmarks.yaw_degrees == pytest.approx(math.degrees(math.atan(2 * dx / d)), abs=1e-6)
    tilted = face_at(300, 200, roll=20, nose_dx=0.0)  # a tilt is not a turn
    assert abs(tilted.landmarks.yaw_degrees) < 1e-6 and tilted.landmarks.roll_degrees == pytest.approx(20)


def test_a_face_the_mesh_could_not_fit_is_refused_or_ignored_with_no_face_ok():
    alpha = person()
    lion = face_at(300, 230, fitted=False)
    with pytest.raises(IDPhotoError, match="could not be fitted with facial landmarks"):
        choose_subject([lion], alpha)
    assert choose_subject([lion], alpha, no_face_ok=True).face is None


@pytest.mark.parametrize("roll,refused", [(MAX_ROLL_DEGREES - 1, False), (MAX_ROLL_DEGREES + 2, True), (-22.0, True)])
def test_the_tilt_limit(roll, refused):
    alpha = person()
    face = face_at(300, 230, roll=roll)
    if refused:
        with pytest.raises(IDPhotoError, match=rf"tilted by {abs(roll):.0f}° .* up to {MAX_ROLL_DEGREES:.0f}°"):
            choose_subject([face], alpha)
    else:
        assert choose_subject([face], alpha).face is face


def test_the_yaw_limit():
    alpha = person()
    d = 45.0
    turned = face_at(300, 230, nose_dx=d * math.tan(math.radians(MAX_YAW_DEGREES + 5)) / 2)
    with pytest.raises(IDPhotoError, match=r"turned 35° to the side"):
        choose_subject([turned], alpha)
    slight = face_at(300, 230, nose_dx=d * math.tan(math.radians(MAX_YAW_DEGREES - 5)) / 2)
    assert choose_subject([slight], alpha).face is slight


def test_a_second_face_touching_is_refused_and_a_distant_one_is_kept_as_another():
    alpha = person(w=900, head=(60, 80)) + person(w=900, cx=420, head=(60, 80))
    main, near = face_at(300, 230, 100), face_at(420, 235, 95)
    with pytest.raises(IDPhotoError, match="touches the subject's"):
        choose_subject([main, near], np.clip(alpha, 0, 1))
    far = face_at(800, 230, 95)
    s = choose_subject([main, far], np.clip(alpha, 0, 1))
    assert s.face is main and s.others == [far]


def test_another_head_in_the_frame_is_refused():
    alpha = person(w=900)
    main, other = face_at(300, 230), face_at(470, 240, 90)
    alpha = np.maximum(alpha, person(w=900, cx=470))
    inside = Placement(1.0, -150.0, -100.0)       # canvas x 0..400 ↔ photo x 150..550: the other head is in
    with pytest.raises(IDPhotoError, match="a second face"):
        check_other_faces([other], main, inside, (400, 500), alpha)
    narrow = Placement(1.0, -200.0, -100.0)       # photo x 200..350 on a 150-px canvas: its hair stays out
    check_other_faces([other], main, narrow, (150, 500), alpha)


def test_a_hand_on_the_face_is_refused_and_one_below_is_not():
    face = face_at(300, 230)
    with pytest.raises(IDPhotoError, match="a hand covers the face"):
        check_hands(face, [(270.0, 250.0, 60.0, 60.0, 0.99)])     # over the nose and mouth
    check_hands(face, [(270.0, 420.0, 60.0, 60.0, 0.99)])            # under the chin, on the chest
    check_hands(face, [])


# ------------------------------------------------------------------------------------------ the person alone
def test_islands_are_removed_and_a_raised_arm_is_kept():
    alpha = person()
    cv2.rectangle(alpha, (20, 100), (80, 160), 1.0, -1)              # a wall patch, apart from the person
    cv2.rectangle(alpha, (330, 420), (560, 450), 1.0, -1)            # an arm raised across, joined to the body
    cv2.rectangle(alpha, (540, 150), (570, 450), 1.0, -1)
    strand = alpha.copy()
    cv2.line(strand, (300, 118), (300, 116), 1.0, 1)                 # a loose strand 1 px off the hair
    clean, removed = isolate_person(alpha, face_at(300, 230), [])
    assert (clean[100:161, 20:81] == 0).all()                        # the island is gone
    assert (clean[150:450, 540:571] == 1).all() and (clean[420:451, 330:561] == 1).all()   # the arm is kept
    assert removed == pytest.approx(61 * 61 / alpha.sum(), rel=0.05)
    kept, _ = isolate_person(strand, face_at(300, 230), [])
    assert kept[116, 300] == 1


def test_another_persons_region_is_removed():
    alpha = np.clip(person(w=1000) + person(w=1000, cx=800), 0, 1)
    clean, removed = isolate_person(alpha, face_at(300, 230), [face_at(800, 230)])
    assert clean[600, 800] == 0 and clean[250, 800] == 0             # the other head and body
    assert clean[600, 300] == 1 and clean[250, 300] == 1 and 0.4 < removed < 0.6


def test_a_matte_whose_face_lands_on_nothing_is_left_alone():
    alpha = person()
    clean, removed = isolate_person(alpha, face_at(50, 700, 40), [])  # the face is off the person
    assert removed == 0.0 and (clean == alpha).all()


# ------------------------------------------------------------------------------------------------ real photos
CASES = SHARED / "data" / "real_id_cases" / "images"


@pytest.mark.skipif(not CASES.is_dir(), reason="needs ../shared/data/real_id_cases")
@pytest.mark.parametrize("name,reason", [
    ("g01_two_people_touching.jpg", "touches the subject's"),
    ("n01_lion.jpg", "could not be fitted"),
    ("r02_head_tilted_30deg_closeup.jpg", "tilted by"),
    ("r03_head_turned_sideways_street.jpg", "turned"),
    ("o04_hand_over_one_eye.jpg", "a hand covers the face"),
    ("t01_clapton_crown_cut_off.jpg", "the top of the head is cut off|too little to show the neck"),
])
def test_real_photos_are_refused_with_the_reason(name, reason, shipped_pipeline):
    from idphoto.image_io import load_image

    image = load_image(CASES / name)
    res = shipped_pipeline.run(image)
    with pytest.raises(IDPhotoError, match=reason):
        compose_id_photo(image, res.alpha, res.foreground, get_spec("icao"))


@pytest.fixture(scope="module")
def shipped_pipeline():
    from idphoto.pipeline import Pipeline
    from idphoto.runner import open_trimap_model

    return Pipeline(open_trimap_model(None, "cpu", 1))


def test_sunglasses_hide_the_eyes_and_are_refused():
    """Dark lenses painted over the astronaut's eyes: the eye contrast drops under the limit, and the photo is
    refused with the reason (the same photo without them is made)."""
    from idphoto.face import detect_faces
    from idphoto.image_io import load_image
    from idphoto.subject import MIN_EYE_CONTRAST
    from conftest import ASTRONAUT

    img = load_image(ASTRONAUT)
    face = detect_faces(img)[0]
    assert face.landmarks.eye_contrast >= 2 * MIN_EYE_CONTRAST
    shaded = img.copy()
    d = face.landmarks.eye_distance
    for eye in (face.landmarks.left_eye, face.landmarks.right_eye):
        cv2.ellipse(shaded, (round(eye[0]), round(eye[1])), (round(0.42 * d), round(0.28 * d)), 0, 0, 360, (25, 20, 20), -1)
    covered = detect_faces(shaded)[0]
    assert covered.landmarks.eye_contrast < MIN_EYE_CONTRAST
    alpha = np.ones(img.shape[:2], np.float32)
    with pytest.raises(IDPhotoError, match="the eyes can't be seen"):
        choose_subject([covered], alpha)


def test_a_mask_over_the_mouth_is_refused():
    """A flat, lightly textured mask painted over the astronaut's nose and mouth: the lips' contrast drops
    under the limit (hers is about 0.46), and the photo is refused with the reason."""
    from idphoto.face import detect_faces
    from idphoto.image_io import load_image
    from idphoto.subject import MIN_MOUTH_CONTRAST
    from conftest import ASTRONAUT

    img = load_image(ASTRONAUT)
    face = detect_faces(img)[0]
    m, d = face.landmarks, face.landmarks.eye_distance
    assert m.mouth_contrast >= 3 * MIN_MOUTH_CONTRAST
    corners = np.array([[m.left_eye[0] - 0.35 * d, m.nose[1] - 0.25 * d], [m.right_eye[0] + 0.35 * d, m.nose[1] - 0.25 * d],
                        [m.right_eye[0] + 0.3 * d, m.chin[1] - 0.1 * d], [m.left_eye[0] - 0.3 * d, m.chin[1] - 0.1 * d]],
                       np.int32)
    region = cv2.fillPoly(np.zeros(img.shape[:2], np.uint8), [corners], 1)[..., None]
    noise = np.random.default_rng(0).normal(0, 6, img.shape)
    masked = np.where(region > 0, np.clip(np.array([230, 200, 170]) + noise, 0, 255), img).astype(np.uint8)
    covered = detect_faces(masked)[0]
    assert covered.landmarks.source == "mesh" and covered.landmarks.mouth_contrast < MIN_MOUTH_CONTRAST
    with pytest.raises(IDPhotoError, match="the mouth can't be seen"):
        choose_subject([covered], np.ones(img.shape[:2], np.float32))


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
