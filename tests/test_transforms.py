"""datasets.transforms: paired geometry, value sets, tensor formats; and each augmentation with its random
choices set by the test (found by mutation testing): it draws from the range it documents, and does with the
drawn value what it says — to every plane it should touch, and to no other."""
import random

import cv2
import numpy as np
import pytest
import torch

import datasets.transforms as T
from datasets.transforms import (IMAGENET_MEAN, IMAGENET_STD, RandomFlip, RandomPatch, RandomScale, ToTensor,
                                 image_to_tensor, tensor_to_image, train_transforms)
from utils import make_trimap


def coded_sample(h=120, w=90):
    """Image, alpha and trimap whose pixels encode their own coordinates, so misaligned geometry shows."""
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.dstack([(yy * 2) % 256, (xx * 2) % 256, np.full((h, w), 7)]).astype(np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    alpha[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
    return {"image": image, "alpha": alpha, "trimap": make_trimap(alpha, kernel_size=6), "name": "x"}


def consistent(sample):
    """The trimap's sure-fg/bg agree with the alpha, and the image still matches the alpha's box."""
    a, t = sample["alpha"], sample["trimap"]
    assert set(np.unique(t)) <= {0, 128, 255}
    assert (a[t == 255] > 128).all() and (a[t == 0] < 128).all()


def test_flips_move_all_planes_together():
    s = coded_sample()
    random.seed(1)
    for _ in range(10):
        out = RandomFlip(1.0, 1.0)(s)
        assert (out["image"] == s["image"][::-1, ::-1]).all()
        assert (out["alpha"] == s["alpha"][::-1, ::-1]).all() and (out["trimap"] == s["trimap"][::-1, ::-1]).all()
    off = RandomFlip(0.0, 0.0)(s)
    assert off["image"] is s["image"]


def test_vertical_flip_can_be_switched_off():
    s = coded_sample()
    random.seed(0)
    for _ in range(20):
        out = RandomFlip(0.0, 0.5)(s)
        assert (out["image"][0] == s["image"][0]).all() or (out["image"][0] == s["image"][0][::-1]).all()


def test_random_crop_is_the_same_window_in_every_plane():
    s = coded_sample(200, 180)
    random.seed(3)
    out = RandomPatch(64, p=1.0)(s)
    assert out["image"].shape == (64, 64, 3) and out["trimap"].shape == (64, 64) and out["alpha"].shape == (64, 64)
    y0, x0 = out["image"][0, 0, 0] // 2, out["image"][0, 0, 1] // 2  # decode the window from the image
    assert (out["alpha"] == s["alpha"][y0:y0 + 64, x0:x0 + 64]).all()
    assert (out["trimap"] == s["trimap"][y0:y0 + 64, x0:x0 + 64]).all()


def test_patch_resizes_when_image_is_small_or_crop_not_drawn():
    s = coded_sample(50, 40)
    out = RandomPatch(64, p=1.0)(s)  # smaller than the patch: resized instead of cropped
    assert out["image"].shape == (64, 64, 3)
    consistent(out)
    out = RandomPatch(32, p=0.0)(coded_sample())
    assert out["trimap"].shape == (32, 32)
    consistent(out)


def test_scale_keeps_trimap_values_and_alignment():
    random.seed(5)
    for _ in range(5):
        out = RandomScale(1.0, (0.75, 1.25))(coded_sample())
        h, w = out["image"].shape[:2]
        assert 0.74 * 120 <= h <= 1.26 * 120 and out["alpha"].shape == (h, w) == out["trimap"].shape
        consistent(out)


def test_to_tensor_formats_and_normalisation():
    s = coded_sample()
    t = ToTensor()(s)
    assert t["image"].shape == (3, 120, 90) and t["image"].dtype == torch.float32
    assert t["trimap"].shape == (1, 120, 90) and t["trimap"].dtype == torch.int64
    assert set(t["trimap"].unique().tolist()) == {0, 1, 2}
    assert t["alpha"].shape == (1, 120, 90) and float(t["alpha"].max()) == 1.0 and float(t["alpha"].min()) == 0.0
    # ImageNet normalisation of the RGB channels, channel order preserved
    expected = (s["image"][5, 5, 0] / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert float(t["image"][0, 5, 5]) == pytest.approx(expected, abs=1e-5)
    back = (tensor_to_image(t["image"]) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.abs(back.astype(int) - s["image"]).max() <= 1


def test_train_pipeline_end_to_end():
    random.seed(0)
    tf = train_transforms(patch=48)
    for _ in range(6):
        t = tf(coded_sample())
        assert t["image"].shape == (3, 48, 48) and t["trimap"].shape == (1, 48, 48)
        assert set(t["trimap"].unique().tolist()) <= {0, 1, 2}


def test_image_to_tensor_of_constant_mean_colour_is_zero():
    mean_rgb = np.array(IMAGENET_MEAN) * 255
    img = np.broadcast_to(mean_rgb.round().astype(np.uint8), (4, 4, 3))
    assert image_to_tensor(img).abs().max() < 0.01


# ------------------------------------------------------------------------------ the compact recipe's augmentations
from datasets.transforms import (BackgroundSwap, ColorJitter, PortraitCrop, RandomBlur, RandomJPEG,  # noqa: E402
                                 RandomNoise, RandomRotate, remove_person, synthetic_background)


def portrait_sample(h=160, w=120):
    """A 'person' (head disc on shoulders) on a textured background, with its binary alpha and trimap."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    import cv2
    cv2.circle(alpha, (w // 2, h // 3), w // 6, 255, -1)
    cv2.rectangle(alpha, (w // 5, h // 2), (4 * w // 5, h - 1), 255, -1)
    image[alpha > 0] = (200, 30, 40)
    return {"image": image, "alpha": alpha, "trimap": make_trimap(alpha, kernel_size=6), "name": "p"}


def test_portrait_crop_frames_the_head_and_keeps_planes_aligned():
    s = portrait_sample()
    random.seed(0)
    top_of_head = np.flatnonzero((s["alpha"] > 127).any(1))[0]
    for _ in range(20):
        out = PortraitCrop(1.0, (0.5, 0.8))(s)
        h, w = out["alpha"].shape
        assert out["image"].shape[:2] == out["trimap"].shape == (h, w)
        assert 0.5 * 160 - 1 <= h <= 0.8 * 160 + 1 and abs(w / h - 120 / 160) < 0.05   # the photo's aspect ratio
        rows = np.flatnonzero((out["alpha"] > 127).any(1))
        assert rows.size and rows[0] <= 0.25 * h     # the head is in the window, near its top
        consistent(out)
        # the image moved with the masks: the person's colour is where the alpha is
        assert (out["image"][out["alpha"] > 0] == (200, 30, 40)).all()
    assert top_of_head > 0
    assert PortraitCrop(0.0)(s) is s


def test_rotation_turns_all_planes_by_the_same_angle():
    s = portrait_sample()
    random.seed(2)
    out = RandomRotate(1.0, 10)(s)
    assert not np.array_equal(out["alpha"], s["alpha"])           # it did rotate
    assert set(np.unique(out["trimap"])) <= {0, 128, 255}          # nearest-neighbour keeps the classes
    person = out["alpha"] > 200
    assert np.abs(out["image"][person].astype(int) - (200, 30, 40)).max(1).mean() < 20
    # the trimap's sure foreground lies inside the rotated person
    assert (out["alpha"][out["trimap"] == 255] > 100).mean() > 0.98


def test_background_swap_keeps_the_person_and_labels_and_changes_the_background():
    s = portrait_sample()
    other = portrait_sample()
    other["image"] = np.full_like(other["image"], 17)
    random.seed(0)
    for synthetic in (1.0, 0.0):
        out = BackgroundSwap(1.0, lambda: (other["image"], other["alpha"]), p_synthetic=synthetic)(s)
        assert out["trimap"] is s["trimap"] and out["alpha"] is s["alpha"]
        inside, outside = s["alpha"] == 255, s["alpha"] == 0
        inner = cv2_erode(inside)
        assert (out["image"][inner] == s["image"][inner]).all()       # the person's pixels are untouched
        assert (out["image"][outside] != s["image"][outside]).any(axis=-1).mean() > 0.9
    # a photo background: the other photo's pixels (value 17) away from its own removed person
    out = BackgroundSwap(1.0, lambda: (other["image"], other["alpha"]), p_synthetic=0.0)(s)
    far = cv2_erode(s["alpha"] == 0, 9) & cv2_erode(other["alpha"] == 0, 9)
    assert (out["image"][far] == 17).all()


def cv2_erode(mask, k=5):
    import cv2
    return cv2.erode(mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


def test_remove_person_paints_over_the_person_with_the_background():
    s = portrait_sample()
    image = np.full_like(s["image"], 90)
    image[s["alpha"] > 0] = (250, 0, 0)
    clean = remove_person(image, s["alpha"])
    assert clean.shape == image.shape
    assert np.abs(clean.astype(int) - 90).max() < 40          # no red person left
    assert (clean[s["alpha"] == 0] == 90).all() or np.abs(clean[s["alpha"] == 0].astype(int) - 90).max() < 40


def test_synthetic_backgrounds_have_the_size_and_vary():
    rng = random.Random(0)
    bgs = [synthetic_background(40, 30, rng) for _ in range(12)]
    assert all(b.shape == (40, 30, 3) and b.dtype == np.uint8 for b in bgs)
    assert len({b.tobytes() for b in bgs}) == 12


@pytest.mark.parametrize("make", [lambda: ColorJitter(1.0), lambda: RandomBlur(1.0), lambda: RandomNoise(1.0),
                                  lambda: RandomJPEG(1.0, (10, 20))])
def test_photometric_changes_only_the_image(make):
    s = portrait_sample()
    random.seed(5)
    np.random.seed(5)
    out = make()(s)
    assert out["image"].shape == s["image"].shape and out["image"].dtype == np.uint8
    assert not np.array_equal(out["image"], s["image"])
    assert out["alpha"] is s["alpha"] and out["trimap"] is s["trimap"]


def test_photometric_off_is_identity():
    s = portrait_sample()
    for t in (ColorJitter(0.0), RandomBlur(0.0), RandomNoise(0.0), RandomJPEG(0.0), BackgroundSwap(0.0)):
        assert t(s) is s


def test_train_transforms_lists_only_the_enabled_augmentations():
    names = lambda c: [type(t).__name__ for t in c.transforms]  # noqa: E731
    design = train_transforms(64)
    assert names(design) == ["RandomScale", "RandomPatch", "RandomFlip", "ToTensor"]
    full = train_transforms(64, portrait_crop_prob=0.3, rotate_prob=0.3, bg_prob=0.5, color_prob=0.8, blur_prob=0.2,
                            noise_prob=0.2, jpeg_prob=0.3)
    assert names(full) == ["PortraitCrop", "RandomRotate", "RandomScale", "RandomPatch", "BackgroundSwap",
                           "ColorJitter", "RandomBlur", "RandomNoise", "RandomJPEG", "RandomFlip", "ToTensor"]
    random.seed(0)
    out = full(portrait_sample())
    assert out["image"].shape == (3, 64, 64) and out["trimap"].shape == (1, 64, 64)
    assert set(out["trimap"].unique().tolist()) <= {0, 1, 2}


class Draws:
    """Stands in for the ``random`` module inside datasets.transforms: records every range a transform asks
    for, and answers with the values the test chose (``low``/``high``/``mid`` of the range, or a number)."""

    def __init__(self, random=0.0, picks="mid"):
        self.calls: list[tuple] = []
        self._random, self._picks = random, picks

    def _next(self, source):
        return source.pop(0) if isinstance(source, list) else source

    def _pick(self, a, b):
        v = self._next(self._picks)
        return {"low": a, "high": b, "mid": (a + b) / 2}[v] if isinstance(v, str) else v

    def random(self):
        self.calls.append(("random",))
        return self._next(self._random)

    def uniform(self, a, b):
        self.calls.append(("uniform", a, b))
        return self._pick(a, b)

    def randint(self, a, b):
        self.calls.append(("randint", a, b))
        return int(self._pick(a, b))

    def ranges(self, kind="uniform"):
        return [c[1:] for c in self.calls if c[0] == kind]


@pytest.fixture
def draws(monkeypatch):
    def make(**kw):
        d = Draws(**kw)
        monkeypatch.setattr(T, "random", d)
        return d
    return make


def coded(h=160, w=120, person=True):
    """Image whose red/green channels are the row/column (so a crop or warp shows where each pixel came from),
    a 'person' alpha (head disc on shoulders) and its trimap."""
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.dstack([yy, xx, np.full((h, w), 90)]).astype(np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    if person:
        cv2.circle(alpha, (w // 2, h // 3), w // 6, 255, -1)
        cv2.rectangle(alpha, (w // 5, h // 2), (4 * w // 5, h - 1), 255, -1)
    return {"image": image, "alpha": alpha, "trimap": make_trimap(alpha, kernel_size=6), "name": "c"}


def window(out):
    """(top, left, height, width) of a crop, read from the coded image."""
    img = out["image"]
    return int(img[0, 0, 0]), int(img[0, 0, 1]), img.shape[0], img.shape[1]


# ---------------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("f", [0.75, 1.25])
def test_random_scale_uses_the_drawn_factor_on_both_sides(draws, f):
    d = draws(random=0.0, picks=f)
    out = T.RandomScale(0.5, (0.75, 1.25))(coded(80, 60))
    assert d.ranges() == [(0.75, 1.25)]
    assert out["image"].shape == (round(80 * f), round(60 * f), 3) == out["alpha"].shape + (3,) == out["trimap"].shape + (3,)
    assert set(np.unique(out["trimap"])) <= {0, 128, 255}
    draws(random=0.5, picks=f)
    assert T.RandomScale(0.5)(coded(80, 60))["image"].shape == (80, 60, 3)   # not drawn: unchanged
    draws(random=0.0, picks=0.75)
    tiny = T.RandomScale(1.0)({"image": np.zeros((1, 1, 3), np.uint8), "alpha": np.zeros((1, 1), np.uint8),
                               "trimap": np.zeros((1, 1), np.uint8)})
    assert tiny["image"].shape == (1, 1, 3)                                  # never below one pixel


def test_resampling_is_smooth_for_image_and_alpha_and_nearest_for_the_trimap():
    s = coded(40, 40)
    s["alpha"] = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (40, 1))
    s["image"] = (s["image"].astype(int) * 6).astype(np.uint8)
    out = T.Resize(97)(s)
    assert out["image"].shape == (97, 97, 3) and out["alpha"].shape == out["trimap"].shape == (97, 97)
    # bicubic: new in-between values appear along the ramps (nearest would only repeat the old ones)
    assert len(set(np.unique(out["alpha"])) - set(np.unique(s["alpha"]))) > 20
    assert len(set(np.unique(out["image"][..., 1])) - set(np.unique(s["image"][..., 1]))) > 20
    assert set(np.unique(out["trimap"])) <= {0, 128, 255}
    vt = T.val_transforms(48)(coded(80, 60))
    assert vt["image"].shape == (3, 48, 48) and vt["trimap"].shape == (1, 48, 48) and vt["alpha"].shape == (1, 48, 48)


def test_random_patch_crops_from_any_position_and_squashes_when_a_side_is_not_larger(draws):
    d = draws(random=0.0, picks="low")
    out = T.RandomPatch(64, p=0.5)(coded(100, 90))
    assert d.ranges("randint") == [(0, 100 - 64), (0, 90 - 64)]
    assert window(out) == (0, 0, 64, 64)
    draws(random=0.0, picks="high")
    assert window(T.RandomPatch(64, p=0.5)(coded(100, 90))) == (36, 26, 64, 64)
    # as tall as the patch (or as wide): the whole photo resized, not a crop of it
    for h, w in ((64, 100), (100, 64)):
        draws(random=0.0, picks="low")
        out = T.RandomPatch(64, p=1.0)(coded(h, w))
        assert out["image"].shape == (64, 64, 3)
        assert out["image"][-1, -1, 0] >= h - 3 and out["image"][-1, -1, 1] >= w - 3   # the far corner is in it
    draws(random=0.6, picks="low")
    out = T.RandomPatch(64, p=0.5)(coded(100, 90))                          # not drawn: resized
    assert out["image"][-1, -1, 0] >= 96 and out["image"][-1, -1, 1] >= 86


def test_flips_follow_their_draws(draws):
    s = coded(30, 20)
    draws(random=[0.4, 0.6])          # vertical drawn (0.4 < 0.5), horizontal not
    out = T.RandomFlip(0.5, 0.5)(s)
    assert (out["image"] == s["image"][::-1]).all() and (out["alpha"] == s["alpha"][::-1]).all()
    draws(random=[0.6, 0.4])
    out = T.RandomFlip(0.5, 0.5)(s)
    assert (out["image"] == s["image"][:, ::-1]).all() and (out["trimap"] == s["trimap"][:, ::-1]).all()


def test_train_transforms_passes_every_setting_on(draws):
    names = lambda c: [type(t).__name__ for t in c.transforms]  # noqa: E731
    tf = T.train_transforms(64, vflip=False, scale_prob=0.3, scale_range=(0.5, 2.0), crop_prob=0.7, rotate_prob=0.2,
                            rotate_degrees=33.0, bg_prob=0.4, backgrounds=lambda: None)
    steps = {type(t).__name__: t for t in tf.transforms}
    assert steps["RandomScale"].p == 0.3 and steps["RandomScale"].scale_range == (0.5, 2.0)
    assert steps["RandomPatch"].size == 64 and steps["RandomPatch"].p == 0.7
    assert steps["RandomRotate"].p == 0.2 and steps["RandomRotate"].max_degrees == 33.0
    assert steps["BackgroundSwap"].p == 0.4 and steps["BackgroundSwap"].backgrounds is not None
    assert steps["RandomFlip"].p_vertical == 0.0 and steps["RandomFlip"].p_horizontal == 0.5
    default = {type(t).__name__: t for t in T.train_transforms().transforms}
    assert default["RandomFlip"].p_vertical == 0.5 and default["RandomPatch"].size == 400   # the design's defaults
    assert names(T.train_transforms(64, scale_prob=0.0)) == ["RandomPatch", "RandomFlip", "ToTensor"]


def test_rotation_turns_about_the_centre_by_the_drawn_angle_with_mirrored_borders(draws):
    s = coded(81, 61)
    d = draws(random=0.0, picks="high")
    out = T.RandomRotate(0.3, max_degrees=30)(s)
    assert d.ranges() == [(-30, 30)]
    # the centre pixel stays where it is; a point off the centre moves by the angle (counter-clockwise)
    assert tuple(out["image"][40, 30, :2]) == (40, 30)
    m = cv2.getRotationMatrix2D((30.5, 40.5), 30, 1.0)
    src = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2] @ np.array([30.5, 10.5, 1.0])   # where (x, y) = (30, 10) came from
    assert abs(int(out["image"][10, 30, 1]) - src[0]) <= 1.5 and abs(int(out["image"][10, 30, 0]) - src[1]) <= 1.5
    # all three planes turned alike; the corners are filled by mirroring, not black
    ref = cv2.warpAffine(s["alpha"], m, (61, 81), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    assert np.abs(out["alpha"].astype(int) - ref).max() <= 1
    assert set(np.unique(out["trimap"])) <= {0, 128, 255}
    assert (out["trimap"][out["alpha"] > 250] > 0).all() and (out["trimap"][out["alpha"] < 5] < 255).all()
    assert out["image"][0, 0, 2] == 90 and out["image"][-1, -1, 2] == 90
    assert len(set(np.unique(out["image"][..., 1]))) > 50          # linear interpolation of the image
    draws(random=0.3, picks="high")
    assert T.RandomRotate(0.3, 30)(s) is s


def test_portrait_crop_frames_by_its_documented_shares(draws):
    s = coded(160, 120)
    top_of_person = np.flatnonzero((s["alpha"] > 127).any(1))[0]
    d = draws(random=0.0, picks=[0.5, 0.2, 0.0])
    out = T.PortraitCrop(0.3, (0.45, 0.9))(s)
    assert d.ranges() == [(0.45, 0.9), (0.03, 0.2), (-0.1, 0.1)]
    top, left, ch, cw = window(out)
    assert ch == 80 and cw == 60                                      # half the height, the photo's aspect ratio
    assert top == top_of_person - round(0.2 * 80)                     # the window's top 20 % of its height above the person
    cols = np.flatnonzero((s["alpha"][top_of_person:top_of_person + ch] > 127).any(0))
    assert left == round((cols[0] + cols[-1]) / 2 - cw / 2)           # centred on the upper body
    assert out["alpha"].shape == out["trimap"].shape == (80, 60)
    assert (out["alpha"] == s["alpha"][top:top + 80, left:left + 60]).all()
    assert (out["trimap"] == s["trimap"][top:top + 80, left:left + 60]).all()
    draws(random=0.0, picks=[0.5, 0.03, 0.1])                         # the jitter moves the window right by 10 %
    assert window(T.PortraitCrop(1.0)(s))[1] == left + 6


@pytest.mark.parametrize("shift,edge", [(-50, "left"), (50, "right")])
def test_portrait_crop_stays_inside_the_photo(draws, shift, edge):
    s = coded(160, 120, person=False)
    cv2.circle(s["alpha"], (60 + shift, 30), 10, 255, -1)
    cv2.rectangle(s["alpha"], (60 + shift - 10, 40), (60 + shift + 10, 159), 255, -1)
    draws(random=0.0, picks=[0.8, 0.2, 0.1 if edge == "right" else -0.1])
    top, left, ch, cw = window(T.PortraitCrop(1.0)(s))
    assert ch == 128 and cw == 96 and top == 0
    assert left == (0 if edge == "left" else 120 - 96)


def test_portrait_crop_uses_the_alpha_threshold(draws):
    s = coded(160, 120, person=False)
    s["alpha"][100:, 40:80] = 127                                     # not above the threshold: no person
    draws(random=0.0, picks=[0.5, 0.1, 0.0])
    assert T.PortraitCrop(1.0)(s) is s
    s["alpha"][100:, 40:80] = 128
    assert T.PortraitCrop(1.0)(s)["image"].shape[:2] == (80, 60)


# --------------------------------------------------------------------------------------------- colours
def colourful(h=48, w=64):
    """Smooth colours of moderate saturation and brightness (no clipping in the HSV round trip), plus a
    black and a white patch."""
    hue = np.tile(np.linspace(0, 170, w), (h, 1)).astype(np.uint8)
    hsv = np.dstack([hue, np.full((h, w), 150, np.uint8), np.tile(np.linspace(90, 200, h)[:, None], (1, w)).astype(np.uint8)])
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    rgb[:6, :6] = 0
    rgb[:6, -6:] = 255
    return {"image": rgb, "alpha": np.zeros((h, w), np.uint8), "trimap": np.zeros((h, w), np.uint8)}


IDENTITY = [1.0, 1.0, 0.0, 1.0, 1.0]     # brightness, contrast, hue (degrees), saturation, gamma


def jitter(draws, **stage):
    values = IDENTITY.copy()
    for i, name in enumerate(("brightness", "contrast", "hue", "saturation", "gamma")):
        if name in stage:
            values[i] = stage[name]
    draws(random=0.0, picks=values)
    s = colourful()
    return s, T.ColorJitter(0.8)(s)


def test_color_jitter_draws_each_factor_from_its_documented_range(draws):
    d = draws(random=0.0, picks="mid")
    T.ColorJitter(1.0, brightness=0.3, contrast=0.2, saturation=0.4, hue=8.0, gamma=1.5)(colourful())
    assert d.ranges() == pytest.approx([(0.7, 1.3), (0.8, 1.2), (-8.0, 8.0), (0.6, 1.4), (1 / 1.5, 1.5)])
    draws(random=0.8)
    s = colourful()
    assert T.ColorJitter(0.8)(s) is s


def test_color_jitter_identity_draws_keep_the_photo(draws):
    s, out = jitter(draws)
    assert out["image"].dtype == np.uint8 and np.abs(out["image"].astype(int) - s["image"]).max() <= 3
    assert (out["image"][:6, :6] == 0).all() and (out["image"][:6, -6:] == 255).all()
    assert out["alpha"] is s["alpha"] and out["trimap"] is s["trimap"]


def test_color_jitter_brightness_and_contrast(draws):
    s, out = jitter(draws, brightness=1.3)
    img = s["image"].astype(float)
    assert np.abs(out["image"] - np.clip(img * 1.3, 0, 255)).max() <= 4
    assert (out["image"][:6, -6:] == 255).all()                       # saturates at white, never wraps round
    s, out = jitter(draws, contrast=1.6)
    expected = np.clip((img - img.mean()) * 1.6 + img.mean(), 0, 255)
    assert np.abs(out["image"] - expected).max() <= 4
    assert (out["image"][:6, :6] == 0).all() and (out["image"][:6, -6:] == 255).all()   # clipped at both ends


def test_color_jitter_hue_and_saturation(draws):
    s, base = jitter(draws)
    hsv0 = cv2.cvtColor(base["image"], cv2.COLOR_RGB2HSV).astype(int)
    _, out = jitter(draws, hue=20.0)                                  # +20° is +10 in OpenCV's half-degrees
    hsv = cv2.cvtColor(out["image"], cv2.COLOR_RGB2HSV).astype(int)
    coloured = hsv0[..., 1] > 100
    shift = (hsv[..., 0] - hsv0[..., 0]) % 180
    assert np.median(shift[coloured]) == 10 and (np.abs(((shift - 10 + 90) % 180) - 90)[coloured] <= 2).mean() > 0.95
    assert np.abs(hsv[..., 1] - hsv0[..., 1])[coloured].max() <= 6 and np.abs(hsv[..., 2] - hsv0[..., 2]).max() <= 3
    _, out = jitter(draws, hue=-20.0)
    shift = (cv2.cvtColor(out["image"], cv2.COLOR_RGB2HSV).astype(int)[..., 0] - hsv0[..., 0]) % 180
    assert np.median(shift[coloured]) == 170
    _, out = jitter(draws, saturation=0.5)
    hsv = cv2.cvtColor(out["image"], cv2.COLOR_RGB2HSV).astype(int)
    assert np.abs(hsv[..., 1] - hsv0[..., 1] * 0.5)[coloured].max() <= 4


def test_color_jitter_gamma_is_a_rounded_power_curve(draws):
    _, base = jitter(draws)
    _, out = jitter(draws, gamma=2.0)
    expected = np.floor(255.0 * (base["image"] / 255.0) ** 2.0 + 0.5)
    assert (out["image"] == expected).all()
    assert (out["image"][:6, :6] == 0).all() and (out["image"][:6, -6:] == 255).all()


def test_blur_noise_and_jpeg_use_their_drawn_strength(draws):
    s = colourful()
    d = draws(random=0.0, picks="high")
    out = T.RandomBlur(0.2, (0.3, 1.5))(s)
    assert d.ranges() == [(0.3, 1.5)]
    assert (out["image"] == cv2.GaussianBlur(s["image"], (0, 0), 1.5)).all()
    np.random.seed(0)
    d = draws(random=0.0, picks=8.0)
    flat = {**s, "image": np.full((64, 64, 3), 128, np.uint8)}
    noisy = T.RandomNoise(0.2, (2.0, 10.0))(flat)["image"].astype(float)
    assert d.ranges() == [(2.0, 10.0)] and noisy.shape == (64, 64, 3)
    assert abs(noisy.mean() - 127.5) < 0.3 and 7.0 < noisy.std() < 9.0   # zero-mean (less ½ for the truncation), sigma as drawn
    assert np.abs(noisy[..., 0] - noisy[..., 1]).mean() > 3                            # independent per channel
    np.random.seed(0)
    draws(random=0.0, picks=30.0)
    ends = T.RandomNoise(1.0)({**s, "image": np.dstack([np.zeros((64, 64)), np.full((64, 64), 255), np.zeros((64, 64))]).astype(np.uint8)})["image"]
    assert ends[..., 0].min() == 0 and ends[..., 1].max() == 255 and (ends[..., 0] > 0).mean() > 0.3   # clipped, no wrap
    assert (ends[..., 1] < 255).mean() > 0.3
    d = draws(random=0.0, picks="low")
    out = T.RandomJPEG(0.3, (30, 90))(s)["image"]
    assert d.ranges("randint") == [(30, 90)]
    ok, buf = cv2.imencode(".jpg", s["image"][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert (out == cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]).all()               # RGB in, RGB out
    assert np.abs(out.astype(int) - s["image"]).mean() < 6


def test_tensor_to_image_clamps_for_display():
    t = torch.stack([torch.full((2, 2), 10.0), torch.full((2, 2), -10.0), torch.zeros(2, 2)])
    img = T.tensor_to_image(t)
    assert img[0].eq(1).all() and img[1].eq(0).all() and img[2].sub(T.IMAGENET_MEAN[2]).abs().max() < 1e-6
    batch = T.tensor_to_image(t[None].repeat(2, 1, 1, 1))
    assert batch.shape == (2, 3, 2, 2) and batch.max() <= 1 and batch.min() >= 0


def test_to_tensor_classes_go_to_the_nearest_value():
    s = coded(4, 4)
    s["trimap"] = np.array([[0, 63, 65, 127], [128, 191, 192, 255], [0, 0, 0, 0], [255, 255, 255, 255]], np.uint8)
    classes = T.ToTensor()(s)["trimap"][0]
    assert classes[:2].tolist() == [[0, 0, 1, 1], [1, 1, 2, 2]]


# ------------------------------------------------------------------------------------------ backgrounds
def test_background_swap_composites_by_the_softened_alpha_and_mirrors_photo_backgrounds(draws):
    s = coded(60, 50, person=False)
    s["alpha"][20:50, 15:35] = 255
    s["image"][...] = 0                                               # a black person ...
    other = np.zeros((60, 50, 3), np.uint8)
    other[:, :25] = (200, 0, 0)
    other[:, 25:] = (0, 0, 200)                                       # ... on a background: red left, blue right
    source = lambda: (other, np.zeros((60, 50), np.uint8))          # noqa: E731
    draws(random=[0.0, 0.9, 0.9])                                     # swap; a photo background; not mirrored
    out = T.BackgroundSwap(0.5, source, p_synthetic=0.5)(s)["image"]
    assert tuple(out[5, 5]) == (200, 0, 0) and tuple(out[5, 45]) == (0, 0, 200)
    assert (out[25:45, 20:30] == 0).all()                             # the person, untouched (black stays 0)
    a = cv2.GaussianBlur(s["alpha"], (3, 3), 0).astype(np.float32) / 255.0
    expected = np.clip(other * (1 - a[..., None]) + 0.5, 0, 255).astype(np.uint8)
    assert (out == expected).all()                                    # F·a + B·(1 − a), a softened by one pixel
    draws(random=[0.0, 0.9, 0.1])                                     # mirrored this time
    out = T.BackgroundSwap(0.5, source, p_synthetic=0.5)(s)["image"]
    assert tuple(out[5, 5]) == (0, 0, 200) and tuple(out[5, 45]) == (200, 0, 0)
    draws(random=[0.0, 0.3])                                          # a synthetic background: the source is not used
    out = T.BackgroundSwap(0.5, lambda: pytest.fail("no photo background wanted"), p_synthetic=0.5)(s)
    assert out["image"].shape == (60, 50, 3)


def test_background_swap_takes_other_sizes_and_removes_their_person(draws):
    s = coded(60, 50, person=False)
    s["alpha"][20:50, 15:35] = 255
    other = np.full((120, 100, 3), 40, np.uint8)
    other_alpha = np.zeros((120, 100), np.uint8)
    other_alpha[30:90, 30:70] = 255
    other[other_alpha > 0] = (250, 250, 0)                            # their person, to be painted over
    draws(random=[0.0, 0.9, 0.9])
    out = T.BackgroundSwap(1.0, lambda: (other, other_alpha), p_synthetic=0.5)(s)["image"]
    background = s["alpha"] == 0
    assert np.abs(out[background].astype(int) - 40).max() < 45        # no yellow person left behind ours


class Rng:
    """A scripted random.Random for synthetic_background: randrange(n) answers ``n - 1`` or 0, randint/uniform
    their low or high end, random() a fixed value; every call is recorded."""

    def __init__(self, kind, high=True, coin=0.2):
        self.kind, self.high, self.coin, self.calls = kind, high, coin, []

    def randrange(self, n):
        self.calls.append(("randrange", n))
        if len(self.calls) == 1:
            return self.kind
        return n - 1 if self.high else 0

    def randint(self, a, b):
        self.calls.append(("randint", a, b))
        return b if self.high else a

    def uniform(self, a, b):
        self.calls.append(("uniform", a, b))
        return b if self.high else a

    def random(self):
        self.calls.append(("random",))
        return self.coin


def test_synthetic_backgrounds_of_each_kind():
    solid = T.synthetic_background(30, 20, Rng(0))
    assert solid.shape == (30, 20, 3) and solid.dtype == np.uint8 and (solid == 255).all()
    assert (T.synthetic_background(30, 20, Rng(0, high=False)) == 0).all()
    # a linear gradient from one colour to the other, down the rows (or across the columns)
    for coin, axis in ((0.2, 0), (0.8, 1)):
        rng = Rng(1, coin=coin)
        rng.randrange = lambda n, it=iter([1, 10, 20, 30, 250, 240, 230]): next(it)   # noqa: E731
        g = T.synthetic_background(30, 20, rng).astype(int)
        line = g[:, 0] if axis == 0 else g[0, :]
        assert tuple(line[0]) == (10, 20, 30) and np.abs(line[-1] - (250, 240, 230)).max() <= 1
        steps = np.diff(line[:, 0])
        assert (steps >= 0).all() and steps.max() - steps.min() <= 1  # evenly spaced
        assert (g == (g[:, :1] if axis == 0 else g[:1])).all()         # constant across the other axis
    # smooth noise: a grid of random colours, enlarged smoothly to the size
    noise = T.synthetic_background(60, 40, Rng(2))
    assert noise.shape == (60, 40, 3) and noise.dtype == np.uint8
    cells = [c for c in Rng(2).calls]
    rng = Rng(2)
    T.synthetic_background(60, 40, rng)
    assert ("randint", 2, 12) in rng.calls and cells == []
    varied = T.synthetic_background(60, 40, random.Random(5))
    assert varied.shape == (60, 40, 3)
    # shapes on a colour, blurred
    rng = Rng(3, high=False)
    shapes = T.synthetic_background(50, 40, rng)
    assert shapes.shape == (50, 40, 3) and ("randint", 3, 12) in rng.calls


def test_synthetic_noise_background_is_smooth_between_its_cells():
    rng = random.Random(3)
    while True:                                                       # a noise background of this seed
        state = rng.getstate()
        if rng.randrange(4) == 2:
            break
    rng.setstate(state)
    bg = T.synthetic_background(64, 64, rng).astype(int)
    assert np.abs(np.diff(bg, axis=0)).mean() < 12 and len(np.unique(bg[..., 0])) > 30   # smooth, many shades


def test_saturation_and_noise_saturate_instead_of_wrapping_round(draws):
    s = colourful()
    s["image"][20:30, 20:30] = (255, 0, 0)                            # fully saturated red
    draws(random=0.0, picks=[1.0, 1.0, 0.0, 1.4, 1.0])
    out = T.ColorJitter(1.0)(s)["image"]
    assert (np.abs(out[20:30, 20:30].astype(int) - (255, 0, 0)) <= 2).all()   # still pure red, not a pale wrap
    np.random.seed(1)
    draws(random=0.0, picks=30.0)
    img = np.dstack([np.zeros((64, 64)), np.full((64, 64), 255), np.full((64, 64), 128)]).astype(np.uint8)
    noisy = T.RandomNoise(1.0)({**s, "image": img})["image"]
    assert noisy[..., 0].max() < 160 and noisy[..., 1].min() > 95      # clipped at 0 and 255: no wrapped values


def test_rotation_interpolates_image_and_alpha_and_keeps_the_trimap_classes(draws):
    s = coded(60, 60)
    s["image"][:] = 0
    s["image"][:, ::6] = 200                                            # thin stripes: only 0 and 200
    draws(random=0.0, picks=13.0)
    out = T.RandomRotate(1.0, 20)(s)
    assert len(set(np.unique(out["image"])) - {0, 90, 200}) > 10         # bilinear in-between values
    assert len(set(np.unique(out["alpha"])) - {0, 255}) > 5
    assert set(np.unique(out["trimap"])) <= {0, 128, 255}


def test_synthetic_shapes_background_is_a_blurred_colour_with_shapes():
    rng = random.Random(11)
    while True:
        state = rng.getstate()
        if rng.randrange(4) == 3:
            break
    rng.setstate(state)
    bg = T.synthetic_background(80, 60, rng).astype(int)
    assert bg.shape == (80, 60, 3) and len(np.unique(bg.reshape(-1, 3), axis=0)) > 20    # shapes, softened
    assert np.abs(np.diff(bg, axis=1)).max() < 120                                       # no hard edge left


def test_resize_is_bicubic_for_image_and_alpha():
    """Bicubic resampling rings a little at a sharp step (values beyond the two sides); bilinear would not."""
    s = coded(20, 20)
    s["image"][:] = 50
    s["image"][:, 10:] = 200
    s["alpha"][:] = 50
    s["alpha"][:, 10:] = 200
    out = T.Resize(70)(s)
    assert out["image"].min() < 50 and out["image"].max() > 200
    assert out["alpha"].min() < 50 and out["alpha"].max() > 200


# ---------------------------------------------------------------------------------------------- defaults
# Constructed without arguments, each augmentation fires with its documented probability: a draw just under
# p applies it, a draw just over p leaves the sample as it is. (A draw of exactly p is left alone: which side
# it falls on changes nothing in the distribution, see tools/mutation_equivalents.txt.)
ABOVE, BELOW = 1e-6, -1e-6
DEFAULT_P = [(T.RandomScale, 0.5), (T.PortraitCrop, 0.3), (T.RandomRotate, 0.3), (T.BackgroundSwap, 0.5),
             (T.ColorJitter, 0.8), (T.RandomBlur, 0.2), (T.RandomNoise, 0.2), (T.RandomJPEG, 0.3)]


@pytest.mark.parametrize("cls,p", DEFAULT_P, ids=[c.__name__ for c, _ in DEFAULT_P])
def test_default_probability_of_each_augmentation(draws, cls, p):
    s = {**colourful(), "alpha": coded(48, 64)["alpha"]}
    draws(random=p + ABOVE, picks="high")
    assert cls()(s) is s                                               # just over p: not applied
    draws(random=p + BELOW, picks="high")
    out = cls()(s)
    assert out is not s and (out["image"].shape != s["image"].shape or (out["image"] != s["image"]).any())


def test_default_flips_and_patch_are_even_chances(draws):
    s = coded(30, 20)
    draws(random=[0.5 + BELOW, 0.5 + ABOVE])                           # vertical just under ½, horizontal just over
    out = T.RandomFlip()(s)
    assert (out["image"] == s["image"][::-1]).all()
    draws(random=[0.5 + ABOVE, 0.5 + BELOW])
    assert (T.RandomFlip()(s)["image"] == s["image"][:, ::-1]).all()
    # RandomPatch(): a 400×400 patch; a crop when the draw is under ½, the whole photo resized over ½
    big = coded(420, 410)
    d = draws(random=0.5 + BELOW, picks="low")
    assert window(T.RandomPatch()(big)) == (0, 0, 400, 400) and d.ranges("randint") == [(0, 20), (0, 10)]
    d = draws(random=0.5 + ABOVE, picks="low")
    out = T.RandomPatch()(big)
    assert (out["image"] == T.Resize(400)(big)["image"]).all() and d.ranges("randint") == []


def test_default_sizes_are_400():
    s = coded(80, 60)
    assert T.Resize()(s)["image"].shape == (400, 400, 3)
    out = T.val_transforms()(s)
    assert out["image"].shape == (3, 400, 400) and out["alpha"].shape == out["trimap"].shape == (1, 400, 400)


def test_default_strengths_of_jitter_and_rotation(draws):
    d = draws(random=0.0, picks="mid")
    T.ColorJitter()(colourful())
    assert d.ranges() == pytest.approx([(0.7, 1.3), (0.7, 1.3), (-8.0, 8.0), (0.6, 1.4), (1 / 1.4, 1.4)])
    d = draws(random=0.0, picks="high")
    s = coded(81, 61)
    out = T.RandomRotate()(s)
    assert d.ranges() == [(-10.0, 10.0)]
    m = cv2.getRotationMatrix2D((30.5, 40.5), 10.0, 1.0)
    ref = cv2.warpAffine(s["alpha"], m, (61, 81), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    assert (out["alpha"] == ref).all()                                 # turned by exactly 10°


def test_background_swap_default_takes_a_photo_background_half_the_time(draws):
    s = coded(60, 50)
    used = []
    source = lambda: used.append(1) or (np.zeros((60, 50, 3), np.uint8), np.zeros((60, 50), np.uint8))  # noqa: E731
    draws(random=[0.0, 0.5 + BELOW])                                   # under p_synthetic = ½: synthetic
    T.BackgroundSwap(backgrounds=source)(s)
    assert used == []
    draws(random=[0.0, 0.5 + ABOVE, 0.9])                              # over ½: the other photo's background
    T.BackgroundSwap(backgrounds=source)(s)
    assert used == [1]


def test_train_transforms_defaults(draws):
    s = coded(420, 410)
    d = draws(random=[0.5 + ABOVE, 0.5 + ABOVE, 0.9, 0.9])   # just over scale's and crop's default ½: neither happens
    out = T.train_transforms()(s)
    assert d.ranges() == [] and d.ranges("randint") == []
    assert out["image"].shape == (3, 400, 400)                         # the whole photo, resized to the 400 patch
    d = draws(random=[0.5 + BELOW, 0.5 + BELOW, 0.9, 0.9], picks=[1.0, 0, 0])   # both just under ½
    T.train_transforms()(s)
    assert d.ranges() == [(0.75, 1.25)] and d.ranges("randint") == [(0, 20), (0, 10)]
    d = draws(random=0.0, picks="mid")
    T.train_transforms(64, rotate_prob=1.0)(coded(80, 60))
    assert d.ranges()[0] == (-10.0, 10.0)                              # the default rotation range


# ------------------------------------------------------------------------------- portrait crop, exactly
def test_portrait_crop_of_a_tiny_photo_is_two_pixels(draws):
    s = coded(4, 4, person=False)
    s["alpha"][1:, 1:3] = 255
    draws(random=0.0, picks=[0.45, 0.03, 0.0])                         # 45 % of 4 rows: round(1.8) = 2
    assert window(T.PortraitCrop(1.0)(s))[2:] == (2, 2)


def person_with(extra):
    """A body in columns 50..69 from row 20 down, plus the single pixels in ``extra`` (row, column)."""
    s = coded(160, 120, person=False)
    s["alpha"][20:, 50:70] = 255
    for r, c in extra:
        s["alpha"][r, c] = 255
    return s


@pytest.mark.parametrize("extra,centre", [
    ([(19, 110)], (50 + 110) / 2),                  # the person's top row counts (a hand raised at the right)
    ([(99, 10)], (10 + 69) / 2),                    # the band's last row (top + 80 − 1) counts ...
    ([(100, 10)], (50 + 69) / 2),                   # ... the next one does not
    ([(60, 20)], (20 + 69) / 2),                    # a single leftmost column counts
    ([(60, 100)], (50 + 100) / 2),                  # a single rightmost column counts
])
def test_portrait_crop_centres_on_the_exact_columns_of_the_band(draws, extra, centre):
    s = person_with(extra)
    draws(random=0.0, picks=[0.5, 0.03, 0.0])                          # an 80-row window from the top row 19 or 20
    top, left, ch, cw = window(T.PortraitCrop(1.0)(s))
    assert (ch, cw) == (80, 60) and left == int(np.clip(round(centre - 30), 0, 60))
