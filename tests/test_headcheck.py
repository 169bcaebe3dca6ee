"""idphoto.headcheck: a face detection far narrower than the head under it is rejected as a false one."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import head_and_body
from idphoto.face import FaceBox
from idphoto.headcheck import MIN_FACE_TO_HEAD, head_width_at, implausible_face


def test_a_face_far_narrower_than_the_head_is_rejected():
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
