"""idphoto.retouch: each setting changes the person the way it says, never the background, and 0 is off."""
from __future__ import annotations

import numpy as np
import pytest

from idphoto.options import IDPhotoOptions, OptionsError
from idphoto.retouch import Retouch, apply_retouch, skin_mask


def portrait():
    """A 'person' (a textured skin-coloured disk with a darker stripe) on a flat blue background, and its alpha."""
    rng = np.random.default_rng(0)
    h, w = 120, 100
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = ((yy - 60) ** 2 + (xx - 50) ** 2 < 35 ** 2).astype(np.float32)
    img = np.empty((h, w, 3), np.uint8)
    img[...] = (219, 142, 67)                                     # BGR blue background
    skin = np.clip(np.array([120, 150, 200]) + rng.normal(0, 12, (h, w, 3)), 0, 255)
    skin[50:56] *= 0.5                                            # a darker feature line
    img[alpha > 0] = skin[alpha > 0].astype(np.uint8)
    return img, alpha


def person_stats(img, alpha):
    p = img[alpha > 0].astype(float)
    grey = p.mean(1)
    return p.mean(), grey.std(), (p.max(1) - p.min(1)).mean()


def test_zero_is_off_and_returns_the_photo_itself():
    img, alpha = portrait()
    assert apply_retouch(img, alpha, Retouch()) is img
    assert IDPhotoOptions().retouch().is_off


@pytest.mark.parametrize("setting,check", [
    ({"brightness": 20}, lambda before, after: after[0] > before[0] * 1.15),
    ({"brightness": -20}, lambda before, after: after[0] < before[0] * 0.85),
    ({"contrast": 40}, lambda before, after: after[1] > before[1] * 1.3),
    ({"saturation": -100}, lambda before, after: after[2] < 3),
    ({"saturation": 40}, lambda before, after: after[2] > before[2] * 1.3),
])
def test_each_setting_changes_the_person_and_not_the_background(setting, check):
    img, alpha = portrait()
    out = apply_retouch(img, alpha, Retouch(**setting))
    assert check(person_stats(img, alpha), person_stats(out, alpha))
    assert (out[alpha == 0] == img[alpha == 0]).all()            # the spec's background colour is untouched


def test_sharpening_adds_detail_and_skin_smoothing_removes_it():
    img, alpha = portrait()

    def detail(x):  # mean absolute difference of horizontal neighbours inside the person
        inside = (alpha[:, 1:] > 0) & (alpha[:, :-1] > 0)
        return np.abs(np.diff(x.astype(float), axis=1)).sum(2)[inside].mean()

    sharp = apply_retouch(img, alpha, Retouch(sharpness=40))
    smooth = apply_retouch(img, alpha, Retouch(smooth_skin=100))
    assert detail(sharp) > detail(img) * 1.2 and detail(smooth) < detail(img) * 0.8
    assert skin_mask(img)[60, 50] > 0.5 and skin_mask(img)[5, 5] < 0.01   # skin, and not the blue background


def test_the_options_are_range_checked_flags_and_form_fields():
    with pytest.raises(OptionsError, match="--brightness must be between -50 and 50"):
        IDPhotoOptions(brightness=80).validate()
    with pytest.raises(OptionsError, match="--smooth-skin must be between 0 and 100"):
        IDPhotoOptions(smooth_skin=-1).validate()
    opts = IDPhotoOptions.from_form({"saturation": "-30", "smooth_skin": "40"}, IDPhotoOptions(), ("idphoto",))
    assert opts.retouch() == Retouch(saturation=-30.0, smooth_skin=40.0)
