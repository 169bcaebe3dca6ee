"""Joint augmentations: paired geometry, value sets, tensor formats (SPEC §3)."""
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
