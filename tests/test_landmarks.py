"""idphoto.landmarks: the face mesh's eyes and chin where they are on a real portrait."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import ASTRONAUT
from idphoto.face import detect_faces
from idphoto.image_io import load_image


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
