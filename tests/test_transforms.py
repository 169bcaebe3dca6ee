"""Joint augmentations: paired geometry, value sets, tensor formats."""
import random

import numpy as np
import pytest
import torch

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
