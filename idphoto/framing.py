"""Placing the person on the ID-photo canvas: scale and offset from the face (or the mask), then render.

A :class:`Placement` maps photo pixel coordinates to canvas coordinates: ``canvas = scale · photo + t``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .face import FaceBox
from .specs import PhotoSpec


@dataclass(frozen=True)
class Placement:
    scale: float
    tx: float
    ty: float

    def apply(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale + self.tx, y * self.scale + self.ty

    def matrix(self) -> np.ndarray:
        return np.array([[self.scale, 0, self.tx], [0, self.scale, self.ty]], dtype=np.float64)


def place_by_face(face: FaceBox, crown_y: float, size: tuple[int, int], spec: PhotoSpec) -> Placement:
    """Scale so that chin-to-crown is ``spec.head_ratio`` of the height, crown ``spec.top_ratio`` below
    the top edge, face centred horizontally."""
    width, height = size
    head = max(face.chin_y - crown_y, 1.0)
    scale = spec.head_ratio * height / head
    return Placement(scale, width / 2 - face.center_x * scale, spec.top_ratio * height - crown_y * scale)


def place_by_mask(alpha: np.ndarray, size: tuple[int, int], spec: PhotoSpec) -> Placement | None:
    """Fallback without a face: the person's bounding box centred, its top ``spec.top_ratio`` below the
    edge, scaled to fill 90 % of the width (or the height below the margin, whichever is smaller).
    None when the mask is empty."""
    mask = alpha > 0.5
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    width, height = size
    box_w, box_h = cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]
    scale = min(0.9 * width / box_w, (1 - spec.top_ratio) * height / box_h)
    cx = (cols[0] + cols[-1] + 1) / 2
    return Placement(scale, width / 2 - cx * scale, spec.top_ratio * height - rows[0] * scale)


def place_centre(shape: tuple[int, int], size: tuple[int, int]) -> Placement:
    """The photo scaled to cover the canvas and centred (a plain centre crop)."""
    h, w = shape[:2]
    width, height = size
    scale = max(width / w, height / h)
    return Placement(scale, (width - w * scale) / 2, (height - h * scale) / 2)


def composite(foreground: np.ndarray, alpha: np.ndarray, background_bgr: tuple[int, int, int]) -> np.ndarray:
    """``F·α + B·(1−α)`` with the estimated foreground F (no fringe of the old background): uint8 BGR."""
    a = alpha[..., None].astype(np.float32)
    bg = np.asarray(background_bgr, dtype=np.float32) / 255.0
    out = foreground.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def render(foreground: np.ndarray, alpha: np.ndarray, placement: Placement, size: tuple[int, int],
           background_bgr: tuple[int, int, int], extend_body: bool = True) -> np.ndarray:
    """The ID photo (``size`` = (W, H), uint8 BGR): the person composited on ``background_bgr`` and placed.

    Only the part of the photo that lands on the canvas is composited and resampled (area-averaged when
    shrinking). With ``extend_body``, a person cut off by the photo's bottom edge is continued downwards
    (the last row repeated) instead of ending in mid-air when the canvas reaches below the photo.
    """
    width, height = size
    s, h, w = placement.scale, alpha.shape[0], alpha.shape[1]
    canvas_bg = tuple(float(c) for c in background_bgr)
    # photo region that lands on the canvas (2 px of slack for the interpolation)
    x0 = max(math.floor(-placement.tx / s) - 2, 0)
    x1 = min(math.ceil((width - placement.tx) / s) + 2, w)
    y0 = max(math.floor(-placement.ty / s) - 2, 0)
    y_end = math.ceil((height - placement.ty) / s) + 2
    y1 = min(y_end, h)
    if x1 <= x0 or y1 <= y0:
        return np.full((height, width, 3), background_bgr, dtype=np.uint8)
    fg, a = foreground[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    if extend_body and y_end > h and y1 == h and (alpha[-1, x0:x1] > 0.5).mean() > 0.05:
        fg = cv2.copyMakeBorder(fg, 0, y_end - h, 0, 0, cv2.BORDER_REPLICATE)
        a = cv2.copyMakeBorder(a, 0, y_end - h, 0, 0, cv2.BORDER_REPLICATE)
    ch, cw = a.shape[:2]
    fx = fy = 1.0
    if s < 1.0:
        # Shrink first with area averaging, of the premultiplied colour F·α and of α: the same result as
        # compositing at full size and then shrinking, for a fraction of the work on a large photo.
        nw, nh = max(1, round(cw * s)), max(1, round(ch * s))
        premult = cv2.resize(fg * a[..., None], (nw, nh), interpolation=cv2.INTER_AREA)
        a = cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA)
        fg = premult / np.maximum(a[..., None], 1e-6)
        fx, fy = nw / cw, nh / ch
    comp = composite(fg, a, background_bgr)
    # canvas = s·(x0 + src) + t, where src (pixel centres) = (r + 0.5)/f − 0.5 for a resized pixel r
    m = np.array([[s / fx, 0, placement.tx + s * (x0 + 0.5 / fx - 0.5)],
                  [0, s / fy, placement.ty + s * (y0 + 0.5 / fy - 0.5)]], dtype=np.float64)
    interp = cv2.INTER_LINEAR if s < 1.0 else cv2.INTER_CUBIC
    return cv2.warpAffine(comp, m, (width, height), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=canvas_bg)
