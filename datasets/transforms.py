"""Joint augmentations for (image, trimap, alpha) samples.

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

from tnet.config import DEFAULTS as _D, PATCH

# The backbones are ImageNet models, so they get what ImageNet training fed them: RGB input normalised by
# ImageNet's mean and std (BGR, or a mean subtracted alone, would shift every pretrained filter's response).
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

    def __init__(self, size: int = PATCH, p: float = 0.5):
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

    def __init__(self, size: int = PATCH):
        self.size = size

    def __call__(self, sample: dict) -> dict:
        return _resize(sample, (self.size, self.size))


class RandomFlip:
    """Vertical flip with probability ``p_vertical`` (0.5 by default: upside-down people are rare in photos, but the
    flip doubles the poses seen; recipes for upright ID photos set 0), horizontal with ``p_horizontal``."""

    def __init__(self, p_vertical: float = 0.5, p_horizontal: float = 0.5):
        self.p_vertical, self.p_horizontal = p_vertical, p_horizontal

    def __call__(self, sample: dict) -> dict:
        for axis, p in ((0, self.p_vertical), (1, self.p_horizontal)):
            if random.random() < p:
                sample = {**sample, **{k: np.flip(sample[k], axis) for k in ("image", "trimap", "alpha")}}
        return sample


class PortraitCrop:
    """With probability ``p``, crop a head-and-shoulders window the way ID-photo inputs are framed: its top
    a little above the top of the person, its height a random share ``height_range`` of the photo, the
    photo's aspect ratio kept, centred on the person's upper body (with some jitter)."""

    def __init__(self, p: float = 0.3, height_range=(0.45, 0.9), threshold: int = 127):
        self.p, self.height_range, self.threshold = p, height_range, threshold

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        person = sample["alpha"] > self.threshold
        rows = np.flatnonzero(person.any(1))
        if rows.size == 0:
            return sample
        h, w = person.shape
        ch = max(2, round(h * random.uniform(*self.height_range)))
        cw = min(w, max(2, round(ch * w / h)))
        top = int(np.clip(rows[0] - round(ch * random.uniform(0.03, 0.2)), 0, h - ch))
        band = person[rows[0]:min(h, rows[0] + ch)]        # the person's columns in the window's height
        cols = np.flatnonzero(band.any(0))
        centre = (cols[0] + cols[-1]) / 2 + random.uniform(-0.1, 0.1) * cw
        left = int(np.clip(round(centre - cw / 2), 0, w - cw))
        return {**sample, **{k: sample[k][top:top + ch, left:left + cw] for k in ("image", "trimap", "alpha")}}


class RandomRotate:
    """With probability ``p``, rotate by a uniform angle in ±``max_degrees`` about the centre; borders are
    mirrored so no black wedge teaches the network a false edge."""

    def __init__(self, p: float = 0.3, max_degrees: float = 10.0):
        self.p, self.max_degrees = p, max_degrees

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        h, w = sample["image"].shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), random.uniform(-self.max_degrees, self.max_degrees), 1.0)
        warp = lambda a, interp: cv2.warpAffine(a, m, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT_101)  # noqa: E731
        return {**sample, "image": warp(sample["image"], cv2.INTER_LINEAR), "alpha": warp(sample["alpha"], cv2.INTER_LINEAR),
                "trimap": warp(sample["trimap"], cv2.INTER_NEAREST)}


def synthetic_background(h: int, w: int, rng: random.Random = random) -> np.ndarray:
    """A random H×W×3 uint8 background: a solid colour, a linear gradient, smooth noise or blurred shapes."""
    kind = rng.randrange(4)
    c1 = np.array([rng.randrange(256) for _ in range(3)], np.float32)
    if kind == 0:
        return np.broadcast_to(c1.astype(np.uint8), (h, w, 3)).copy()
    if kind == 1:
        c2 = np.array([rng.randrange(256) for _ in range(3)], np.float32)
        t = np.linspace(0, 1, h if rng.random() < 0.5 else w, dtype=np.float32)
        t = t[:, None, None] if t.size == h else t[None, :, None]
        return np.broadcast_to(c1 * (1 - t) + c2 * t, (h, w, 3)).astype(np.uint8)
    if kind == 2:
        cells = rng.randint(2, 12)
        noise = np.array([[[rng.randrange(256) for _ in range(3)] for _ in range(cells)] for _ in range(cells)], np.uint8)
        return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.broadcast_to(c1.astype(np.uint8), (h, w, 3)).copy()
    for _ in range(rng.randint(3, 12)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (rng.randrange(w), rng.randrange(h)), (rng.randrange(w), rng.randrange(h)), colour, -1)
        else:
            cv2.circle(img, (rng.randrange(w), rng.randrange(h)), rng.randint(4, max(5, min(h, w) // 3)), colour, -1)
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 4))


def remove_person(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``image`` with its person painted over by the surrounding background (inpainted at ⅛ scale, which
    is fast and leaves a plausible smooth region), for use as another photo's background."""
    h, w = alpha.shape
    mask = cv2.dilate((alpha > 20).astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    sw, sh = max(8, w // 8), max(8, h // 8)
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_NEAREST)
    small_mask = cv2.dilate(small_mask, np.ones((3, 3), np.uint8))
    filled = cv2.resize(cv2.inpaint(small, small_mask, 3, cv2.INPAINT_TELEA), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.where(mask[..., None] > 0, filled, image)


class BackgroundSwap:
    """With probability ``p``, composite the person (by its alpha) onto a new background: another photo's
    background with its own person removed (``backgrounds`` = a callable returning (RGB image, alpha) of
    a random sample of the data set), or, with probability ``p_synthetic`` or when there is no such
    source, a synthetic one. Labels are unchanged: only what is behind the person changes, so the network
    has to find people by their shape, not by the backgrounds of a small data set."""

    def __init__(self, p: float = 0.5, backgrounds=None, p_synthetic: float = 0.5):
        self.p, self.backgrounds, self.p_synthetic = p, backgrounds, p_synthetic

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        h, w = sample["alpha"].shape
        if self.backgrounds is not None and random.random() >= self.p_synthetic:
            other, other_alpha = self.backgrounds()
            bg = remove_person(cv2.resize(other, (w, h), interpolation=cv2.INTER_AREA),
                               cv2.resize(other_alpha, (w, h), interpolation=cv2.INTER_NEAREST))
            if random.random() < 0.5:
                bg = bg[:, ::-1]
        else:
            bg = synthetic_background(h, w)
        # soften a hard (binary) mask by a pixel so the paste leaves no cut-out edge to learn from
        a = cv2.GaussianBlur(sample["alpha"], (3, 3), 0).astype(np.float32)[..., None] / 255.0
        image = sample["image"].astype(np.float32) * a + bg.astype(np.float32) * (1 - a)
        return {**sample, "image": np.clip(image + 0.5, 0, 255).astype(np.uint8)}


class ColorJitter:
    """With probability ``p``: brightness ×[1±b], contrast ×[1±c], saturation ×[1±s], hue ±h degrees and a
    gamma in [1/g, g] — lighting and white balance of other cameras."""

    def __init__(self, p: float = 0.8, brightness=0.3, contrast=0.3, saturation=0.4, hue=8.0, gamma=1.4):
        self.p, self.brightness, self.contrast, self.saturation, self.hue, self.gamma = p, brightness, contrast, saturation, hue, gamma

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        img = sample["image"].astype(np.float32)
        img = img * random.uniform(1 - self.brightness, 1 + self.brightness)
        mean = img.mean()
        img = (img - mean) * random.uniform(1 - self.contrast, 1 + self.contrast) + mean
        img = np.clip(img, 0, 255).astype(np.uint8)
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + random.uniform(-self.hue, self.hue) / 2) % 180  # OpenCV hue is degrees / 2
        hsv[..., 1] = np.clip(hsv[..., 1] * random.uniform(1 - self.saturation, 1 + self.saturation), 0, 255)
        img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
        g = random.uniform(1 / self.gamma, self.gamma)
        lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)
        return {**sample, "image": cv2.LUT(img, lut)}


class RandomBlur:
    """With probability ``p``, Gaussian blur with sigma in ``sigma_range`` (focus and motion softness)."""

    def __init__(self, p: float = 0.2, sigma_range=(0.3, 1.5)):
        self.p, self.sigma_range = p, sigma_range

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        return {**sample, "image": cv2.GaussianBlur(sample["image"], (0, 0), random.uniform(*self.sigma_range))}


class RandomNoise:
    """With probability ``p``, additive Gaussian sensor noise with sigma in ``sigma_range`` (of 255)."""

    def __init__(self, p: float = 0.2, sigma_range=(2.0, 10.0)):
        self.p, self.sigma_range = p, sigma_range

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        noise = np.random.normal(0.0, random.uniform(*self.sigma_range), sample["image"].shape)
        return {**sample, "image": np.clip(sample["image"] + noise, 0, 255).astype(np.uint8)}


class RandomJPEG:
    """With probability ``p``, re-encode as JPEG at a quality in ``quality_range`` (compression artefacts)."""

    def __init__(self, p: float = 0.3, quality_range=(30, 90)):
        self.p, self.quality_range = p, quality_range

    def __call__(self, sample: dict) -> dict:
        if random.random() >= self.p:
            return sample
        ok, buf = cv2.imencode(".jpg", sample["image"][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, random.randint(*self.quality_range)])
        return {**sample, "image": cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]} if ok else sample


def image_to_tensor(image_rgb: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 RGB → 3×H×W float, ImageNet-normalised (used by training and inference alike)."""
    # plain tensor arithmetic: torchvision (a second of imports) is not needed just to normalise
    t = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(-1, 1, 1)
    return t.sub_(mean).div_(std)


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


def train_transforms(patch: int = _D.patch, vflip: bool = not _D.no_vflip, scale_prob: float = _D.scale_prob,
                     scale_range=_D.scale_range, crop_prob: float = _D.crop_prob,
                     portrait_crop_prob: float = _D.portrait_crop_prob, rotate_prob: float = _D.rotate_prob,
                     rotate_degrees: float = _D.rotate_degrees, bg_prob: float = _D.bg_prob, backgrounds=None,
                     color_prob: float = _D.color_prob, blur_prob: float = _D.blur_prob,
                     noise_prob: float = _D.noise_prob, jpeg_prob: float = _D.jpeg_prob) -> Compose:
    """The augmentation pipeline. Its defaults are :class:`tnet.config.TrainConfig`'s, which are the design's
    (rescale, patch, flips); the other augmentations are off unless their probability is set (the compact
    model's recipe sets them all).

    Order: framing crop and rotation on the full photo, then rescale and patch, then the background swap
    (at patch size, where it is cheap), then photometric changes of the whole composite, then flips."""
    steps = [PortraitCrop(portrait_crop_prob), RandomRotate(rotate_prob, rotate_degrees),
             RandomScale(scale_prob, scale_range), RandomPatch(patch, crop_prob),
             BackgroundSwap(bg_prob, backgrounds), ColorJitter(color_prob), RandomBlur(blur_prob),
             RandomNoise(noise_prob), RandomJPEG(jpeg_prob), RandomFlip(0.5 if vflip else 0.0, 0.5), ToTensor()]
    # an optional step whose probability is 0 does nothing; leave it out so the pipeline reads as what it does
    optional = (PortraitCrop, RandomRotate, RandomScale, BackgroundSwap, ColorJitter, RandomBlur, RandomNoise, RandomJPEG)
    return Compose([t for t in steps if not (isinstance(t, optional) and t.p <= 0)])


def val_transforms(size: int = PATCH) -> Compose:
    return Compose([Resize(size), ToTensor()])
