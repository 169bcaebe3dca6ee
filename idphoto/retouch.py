"""Retouching of the person on a finished ID photo: brightness, contrast, saturation, sharpness and a gentle
skin smoothing. All off by default; each is applied to the person only (blended by the alpha on the
canvas), so the background keeps the exact colour its spec asks for.

Values are percentages: ``brightness=10`` makes the person 10 % brighter, ``saturation=-100`` grey.
Official rules forbid retouching that changes how a person looks; these are for exposure and colour
corrections, and the compliance report is measured after them.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RANGE = (-50.0, 50.0)        # brightness, contrast, sharpness: more than ±50 % changes a face, not the photo
SATURATION_RANGE = (-100.0, 50.0)
SMOOTH_RANGE = (0.0, 100.0)


@dataclass(frozen=True)
class Retouch:
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    sharpness: float = 0.0
    smooth_skin: float = 0.0

    @property
    def is_off(self) -> bool:
        return not any((self.brightness, self.contrast, self.saturation, self.sharpness, self.smooth_skin))


def skin_mask(image_bgr: np.ndarray) -> np.ndarray:
    """Where skin tones are (float32, 0–1, softened): the usual YCrCb box of skin chroma (Cr 133–173,
    Cb 77–127), which holds light and dark skin alike and leaves out hair, eyes, lips' dark line and clothes
    of other colours."""
    ycc = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2YCrCb)
    mask = cv2.inRange(ycc, (0, 133, 77), (255, 173, 127)).astype(np.float32) / 255.0
    return cv2.GaussianBlur(mask, (0, 0), 2.0)


def apply_retouch(image_bgr: np.ndarray, alpha: np.ndarray | None, r: Retouch) -> np.ndarray:
    """``image_bgr`` (uint8) with ``r`` applied where ``alpha`` (the person on the canvas, 0–1; None: the
    whole picture) is; the same array when every setting is 0."""
    if r.is_off:
        return image_bgr
    a = np.ones(image_bgr.shape[:2], np.float32) if alpha is None else np.clip(alpha, 0, 1).astype(np.float32)
    x = image_bgr.astype(np.float32)
    if r.smooth_skin:
        # edge-preserving smoothing of skin only: wrinkles and pores soften, eyes, brows and lips stay
        smooth = cv2.bilateralFilter(image_bgr, d=0, sigmaColor=25, sigmaSpace=max(2.0, min(image_bgr.shape[:2]) / 150))
        w = (r.smooth_skin / 100.0) * skin_mask(image_bgr)[..., None]
        x = x * (1 - w) + smooth.astype(np.float32) * w
    if r.brightness:
        x = x * (1 + r.brightness / 100.0)
    if r.contrast:
        weight = a.sum()
        mean = (x * a[..., None]).sum((0, 1)) / weight if weight > 0 else x.mean((0, 1))
        x = (x - mean) * (1 + r.contrast / 100.0) + mean
    if r.saturation:
        grey = cv2.cvtColor(np.clip(x, 0, 255).astype(np.float32), cv2.COLOR_BGR2GRAY)[..., None]
        x = grey + (x - grey) * (1 + r.saturation / 100.0)
    if r.sharpness:
        blurred = cv2.GaussianBlur(x, (0, 0), 1.0)
        x = x + (x - blurred) * (r.sharpness / 50.0)   # unsharp mask: +50 % adds the detail once more
    out = x * a[..., None] + image_bgr.astype(np.float32) * (1 - a[..., None])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
