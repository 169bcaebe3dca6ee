"""idphoto.face: the face box's crown, read from the alpha when that is plausible."""
from __future__ import annotations

import numpy as np
import pytest

from idphoto.face import FaceBox


def test_crown_from_alpha_when_plausible():
    face = FaceBox(40, 100, 60, 60)
    alpha = np.zeros((300, 200), np.float32)
    alpha[80:, 30:110] = 1  # hair starts 20 px above the box
    assert face.crown_y(alpha) == 80
    alpha[:] = 1  # mask reaching the photo's top: implausible, fall back to the box rule
    assert face.crown_y(alpha) == pytest.approx(100 - 0.31 * 60)
