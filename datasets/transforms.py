"""Joint augmentations for (image, trimap, alpha) samples — SPEC §3.

A sample is a dict ``{"image": H×W×3 uint8 RGB, "trimap": H×W uint8 0/128/255, "alpha": H×W uint8}``.
Geometry is applied to all three together; the image and alpha are resampled bicubically, the trimap
with nearest neighbour so it keeps exactly 0/128/255. OpenCV does the pixel work (fast on uint8).
Randomness comes from :mod:`random`, which PyTorch seeds per DataLoader worker.
"""
from __future__ import annotations

import random

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as TF

# The backbones are ImageNet models: RGB input, ImageNet mean/std (SPEC §7 — the original fed BGR minus a mean).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _resize(sample: dict, size: tuple[int, int]) -> dict:
    """Resize every plane to ``size`` = (width, height)."""
    return {
        **sample,
        "image": cv2.resize(sample["image"], size, interpolation=cv2.INTER_CUBIC),
        "alpha": cv2.resize(sample["alpha"], size, interpolation=cv2.INTER_CUBIC),
        "trimap": cv2.resize(sample["trimap"], size, interpolation=cv2.INTER_NEAREST),
    }


class RandomScale:
    """With probability ``p``, scale by a factor drawn uniformly from ``scale_range``."""

    def __init__(self, p: float = 0.5, scale_range=(0.75, 1.25)):
        self.p, self.scale_range = p, scale_range

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        f = random.uniform(*self.scale_range)
        h, w = sample["image"].shape[:2]
        return _resize(sample, (max(1, round(w * f)), max(1, round(h * f))))


class RandomPatch:
    """A ``size``×``size`` patch: with probability ``p`` a random crop (or a resize when the image is not
    larger than ``size`` on both sides); otherwise the whole image resized to ``size``×``size``."""

    def __init__(self, size: int = 400, p: float = 0.5):
        self.size, self.p = size, p

    def __call__(self, sample: dict) -> dict:
        h, w = sample["image"].shape[:2]
        s = self.size
        if random.random() < self.p and h > s and w > s:
            y, x = random.randint(0, h - s), random.randint(0, w - s)
            return {**sample, **{k: sample[k][y:y + s, x:x + s] for k in ("image", "trimap", "alpha")}}
        return _resize(sample, (s, s))


class Resize:
    """Deterministic resize to ``size``×``size`` (validation)."""

    def __init__(self, size: int = 400):
        self.size = size

    def __call__(self, sample: dict) -> dict:
        return _resize(sample, (self.size, self.size))


class RandomFlip:
    """Vertical flip with probability ``p_vertical`` (the original's default 0.5), horizontal with ``p_horizontal``."""

    def __init__(self, p_vertical: float = 0.5, p_horizontal: float = 0.5):
        self.p_vertical, self.p_horizontal = p_vertical, p_horizontal

    def __call__(self, sample: dict) -> dict:
        for axis, p in ((0, self.p_vertical), (1, self.p_horizontal)):
            if random.random() < p:
                sample = {**sample, **{k: np.flip(sample[k], axis) for k in ("image", "trimap", "alpha")}}
        return sample


def image_to_tensor(image_rgb: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 RGB → 3×H×W float, ImageNet-normalised (used by training and inference alike)."""
    t = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).float().div_(255)
    return TF.normalize(t, IMAGENET_MEAN, IMAGENET_STD)


def tensor_to_image(t: torch.Tensor) -> torch.Tensor:
    """Undo :func:`image_to_tensor` for display: 3×H×W (or N×3×H×W) float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=t.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=t.device).view(-1, 1, 1)
    return (t * std + mean).clamp(0, 1)


class ToTensor:
    """Normalise and convert: image 3×H×W float, trimap 1×H×W long classes 0/1/2, alpha 1×H×W float in [0, 1]."""

    def __call__(self, sample: dict) -> dict:
        trimap = np.digitize(sample["trimap"], (64, 192))  # 0/128/255 → 0/1/2
        return {
            **sample,
            "image": image_to_tensor(sample["image"]),
            "trimap": torch.from_numpy(np.ascontiguousarray(trimap)).long().unsqueeze(0),
            "alpha": torch.from_numpy(np.ascontiguousarray(sample["alpha"])).float().div_(255).unsqueeze(0),
        }


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, sample: dict) -> dict:
        for t in self.transforms:
            sample = t(sample)
        return sample


def train_transforms(patch: int = 400, vflip: bool = True, scale_prob: float = 0.5, scale_range=(0.75, 1.25),
                     crop_prob: float = 0.5) -> Compose:
    """The augmentation pipeline of SPEC §3 (its values are the defaults)."""
    return Compose([RandomScale(scale_prob, scale_range), RandomPatch(patch, crop_prob),
                    RandomFlip(0.5 if vflip else 0.0, 0.5), ToTensor()])


def val_transforms(size: int = 400) -> Compose:
    return Compose([Resize(size), ToTensor()])
