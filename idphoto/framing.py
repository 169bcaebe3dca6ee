"""Placing the person on the ID-photo canvas: levelling, scale and offset by the spec's rules, backgrounds,
rendering.

A :class:`Placement` maps photo pixel coordinates to canvas coordinates: ``canvas = scale · photo + t``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import IDPhotoError
from .face import FaceBox
from .specs import PhotoSpec

MIN_LEVEL_DEGREES = 1.0   # tilts smaller than this are left alone (resampling costs more than it gains)
BG_STYLES = ("solid", "gradient", "radial")


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



# ------------------------------------------------------------------------------------------------ levelling
def level_rotation(shape: tuple[int, int], centre: tuple[float, float], degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The 2×3 matrix turning a photo of ``shape`` by ``degrees`` (counter-clockwise on screen) about
    ``centre``, on a canvas grown to hold all of it; and that canvas's (width, height)."""
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
    lo, hi = np.floor(corners.min(0)), np.ceil(corners.max(0))
    m[:, 2] -= lo
    return m, (int(hi[0] - lo[0]), int(hi[1] - lo[1]))


def level(m: np.ndarray, size: tuple[int, int], *layers: np.ndarray) -> list[np.ndarray]:
    """Each layer (photo, alpha, foreground) warped by ``m``. The edges are repeated outwards, so a body cut by
    the photo's edge stays cut straight and the background continues into the new corners."""
    return [cv2.warpAffine(a, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for a in layers]


# ------------------------------------------------------------------------------------------ framing by rules
@dataclass
class FramingPlan:
    placement: Placement
    head_px: float            # planned head height on the canvas
    top_px: float             # planned crown position (top margin)
    eyes_px: float | None     # planned eye line above the bottom
    gave_way: list[str]       # rules that could not be met together, with by how much


RULE_NAMES = {"head": "head height", "eyes": "eye line", "top": "top margin", "face_width": "face width"}
# when the rules conflict, the top margin gives way first, then the eye line; head size last
RULE_WEIGHT = {"head": 1e4, "face_width": 1e4, "eyes": 1e2, "top": 1.0}


def plan_by_rules(face: FaceBox, crown_y: float, size: tuple[int, int], spec: PhotoSpec) -> FramingPlan:
    """Scale and offset meeting the spec's head height, eye line, top margin and face width together.

    On the canvas the head is ``h = s·(chin − crown)`` pixels and the crown ``T`` pixels below the top; the
    eye line and face width follow from them. Every rule is a linear range in (h, T), so the best pair is
    found on a fine grid: first no rule broken (or, when they conflict, the top margin gives way first, then
    the eye line, and head height and face width last), then each value as near the middle of its range as
    the others allow. Without a rule on the top margin, the crown sits 30 % of the free height down.
    """
    width, height = size
    chin = face.chin_y
    head_p = max(chin - crown_y, 1.0)
    eye_frac = None if face.eye_y is None else (face.eye_y - crown_y) / head_p     # eye line, as a fraction of the head
    fw_frac = None
    if face.landmarks is not None and face.landmarks.face_width:
        fw_frac = face.landmarks.face_width / head_p
    rules = {k: spec.rule_px(k) for k in ("head", "eyes", "top", "face_width")}
    if eye_frac is None:
        rules["eyes"] = None
    if fw_frac is None:
        rules["face_width"] = None
    h = np.linspace(0.15 * height, 0.98 * height, 600)[:, None]
    t = np.linspace(0.0, 0.5 * height, 400)[None, :]
    values = {"head": h + 0 * t, "top": t + 0 * h}
    if eye_frac is not None:
        values["eyes"] = height - t - eye_frac * h
    if fw_frac is not None:
        values["face_width"] = fw_frac * h + 0 * t
    breach = np.zeros(np.broadcast_shapes(h.shape, t.shape))
    pull = np.zeros_like(breach)
    unit = 0.01 * height
    for key, r in rules.items():
        if r is None:
            continue
        lo, hi = r
        v = values[key]
        over = np.maximum((lo if lo is not None else -np.inf) - v, 0) + np.maximum(v - (hi if hi is not None else np.inf), 0)
        breach += RULE_WEIGHT[key] * (over / unit) ** 2
        if lo is not None and hi is not None and hi > lo:
            pull += ((v - (lo + hi) / 2) / ((hi - lo) / 2)) ** 2
        elif lo is not None or hi is not None:  # one-sided: as close to the bound as the others allow, inside it
            bound = lo if lo is not None else hi
            pull += 0.1 * ((v - bound) / (0.1 * height)) ** 2
    if rules["head"] is None and rules["face_width"] is None:  # nothing sets the size: the head 60 % of the height
        pull += ((values["head"] - spec.head_ratio * height) / (0.05 * height)) ** 2
    if rules["top"] is None:
        pull += 0.5 * ((values["top"] - 0.3 * (height - values["head"])) / (0.05 * height)) ** 2
    # the whole head stays on the canvas, the chin at least 3 % above the bottom
    outside = np.maximum(values["top"] + values["head"] - 0.97 * height, 0)
    breach += 100 * (outside / unit) ** 2
    i, j = np.unravel_index(np.argmin(breach * 1e3 + pull), breach.shape)
    head_c, top_c = float(h[i, 0]), float(t[0, j])
    gave = []
    for key, r in rules.items():
        if r is None:
            continue
        v = float(values[key][i, j])
        lo, hi = r
        if lo is not None and v < lo - 0.5:
            gave.append(f"{RULE_NAMES[key]} {v:.0f} px, below {lo:.0f}")
        elif hi is not None and v > hi + 0.5:
            gave.append(f"{RULE_NAMES[key]} {v:.0f} px, above {hi:.0f}")
    s = head_c / head_p
    placement = Placement(s, width / 2 - face.center_x * s, top_c - crown_y * s)
    eyes_c = None if eye_frac is None else height - top_c - eye_frac * head_c
    return FramingPlan(placement, head_c, top_c, eyes_c, gave)


def check_room(placement: Placement, photo_shape: tuple[int, int], face: FaceBox, crown_y: float,
               size: tuple[int, int], alpha: np.ndarray | None) -> None:
    """A canvas reaching beyond the photo is filled (background colour around, the body continued
    downwards), but not when the photo stops right under the chin: then the shoulders would be missing.
    Raises :class:`IDPhotoError` saying so."""
    width, height = size
    chin_c = placement.apply(0, face.chin_y)[1]
    head_c = chin_c - placement.apply(0, crown_y)[1]
    bottom_c = placement.apply(0, photo_shape[0])[1]
    need = min(height - chin_c, 0.35 * head_c)
    if bottom_c < height - 0.5 and bottom_c < chin_c + need - 1:
        below = (photo_shape[0] - face.chin_y)
        raise IDPhotoError(
            f"the photo ends {max(below, 0):.0f} px below the chin: too little to show the neck and shoulders "
            f"this spec needs ({need / placement.scale:.0f} px at this scale); use a photo that shows the shoulders")
    if alpha is not None and bottom_c < height - 0.5:
        # a person who does not reach the photo's bottom edge (a cut-out) can't be continued downwards
        row = alpha[-1]
        x0 = int(max(face.center_x - face.w, 0))
        x1 = int(min(face.center_x + face.w, alpha.shape[1]))
        if x1 > x0 and (row[x0:x1] > 0.5).mean() < 0.05:
            below_person = np.flatnonzero((alpha[:, x0:x1] > 0.5).any(1))
            end_c = placement.apply(0, below_person[-1] + 1)[1] if below_person.size else chin_c
            if end_c < chin_c + need - 1:
                raise IDPhotoError("the person ends just under the chin (no shoulders in the photo) — "
                                   "this spec's framing needs them; use a photo that shows the shoulders")


# ---------------------------------------------------------------------------------------------- backgrounds
def make_background(size: tuple[int, int], colour_bgr: tuple[int, int, int], style: str = "solid") -> np.ndarray:
    """The canvas behind the person (H×W×3 float32, 0–255): ``solid``; ``gradient``, the colour at the top
    fading to 60 % white at the bottom; ``radial``, 60 % white in the middle to the colour at the corners."""
    width, height = size
    c = np.asarray(colour_bgr, np.float32)
    white = np.float32(255.0)
    if style == "solid":
        return np.broadcast_to(c, (height, width, 3)).astype(np.float32)
    if style == "gradient":
        f = np.linspace(0.0, 0.6, height, dtype=np.float32)[:, None, None]
    elif style == "radial":
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        d = np.hypot((xx - (width - 1) / 2) / (width / 2), (yy - (height - 1) / 2) / (height / 2)) / np.sqrt(2)
        f = (0.6 * (1 - np.clip(d, 0, 1)))[..., None]
    else:
        raise ValueError(f"unknown background style {style!r}; choose one of {', '.join(BG_STYLES)}")
    return np.broadcast_to(c * (1 - f) + white * f, (height, width, 3)).astype(np.float32)


def composite(foreground: np.ndarray, alpha: np.ndarray, background_bgr: tuple[int, int, int]) -> np.ndarray:
    """``F·α + B·(1−α)`` with the estimated foreground F (no fringe of the old background): uint8 BGR."""
    a = alpha[..., None].astype(np.float32)
    bg = np.asarray(background_bgr, dtype=np.float32) / 255.0
    out = foreground.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def render(foreground: np.ndarray, alpha: np.ndarray, placement: Placement, size: tuple[int, int],
           background_bgr, extend_body: bool = True, keep: np.ndarray | None = None,
           return_alpha: bool = False):
    """The ID photo (``size`` = (W, H), uint8 BGR): the person placed and composited on ``background_bgr``
    (a BGR colour, or an H×W×3 canvas from :func:`make_background`).

    Only the part of the photo that lands on the canvas is resampled (area-averaged when shrinking, of the
    premultiplied colour F·α and of α: the same as compositing at full size and then shrinking, for a
    fraction of the work). With ``extend_body``, a person cut off by the photo's bottom edge is continued
    downwards (the last row repeated) instead of ending in mid-air when the canvas reaches below the photo.
    ``keep`` (the original photo) keeps its own background: the photo itself is placed, its edges repeated
    where the canvas reaches beyond it. ``return_alpha`` also returns the person's alpha on the canvas.
    """
    width, height = size
    s, h, w = placement.scale, alpha.shape[0], alpha.shape[1]
    if isinstance(background_bgr, np.ndarray):
        bg = background_bgr.astype(np.float32)
    else:
        bg = np.broadcast_to(np.asarray(background_bgr, np.float32), (height, width, 3))
    # photo region that lands on the canvas (2 px of slack for the interpolation)
    x0 = max(math.floor(-placement.tx / s) - 2, 0)
    x1 = min(math.ceil((width - placement.tx) / s) + 2, w)
    y0 = max(math.floor(-placement.ty / s) - 2, 0)
    y_end = math.ceil((height - placement.ty) / s) + 2
    y1 = min(y_end, h)
    if x1 <= x0 or y1 <= y0:
        x0, x1, y0, y1 = 0, w, 0, h  # nothing of the photo lands on the canvas: edges repeated (keep) or empty
    a = alpha[y0:y1, x0:x1].astype(np.float32)
    src = keep[y0:y1, x0:x1].astype(np.float32) / 255.0 if keep is not None else foreground[y0:y1, x0:x1].astype(np.float32)
    if extend_body and keep is None and y_end > h and y1 == h and (alpha[-1, x0:x1] > 0.5).mean() > 0.05:
        src = cv2.copyMakeBorder(src, 0, y_end - h, 0, 0, cv2.BORDER_REPLICATE)
        a = cv2.copyMakeBorder(a, 0, y_end - h, 0, 0, cv2.BORDER_REPLICATE)
    ch, cw = a.shape[:2]
    premult = src if keep is not None else src * a[..., None]
    fx = fy = 1.0
    if s < 1.0:
        nw, nh = max(1, round(cw * s)), max(1, round(ch * s))
        premult = cv2.resize(premult, (nw, nh), interpolation=cv2.INTER_AREA)
        a = cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / cw, nh / ch
    # canvas = s·(x0 + src) + t, where src (pixel centres) = (r + 0.5)/f − 0.5 for a resized pixel r
    m = np.array([[s / fx, 0, placement.tx + s * (x0 + 0.5 / fx - 0.5)],
                  [0, s / fy, placement.ty + s * (y0 + 0.5 / fy - 0.5)]], dtype=np.float64)
    interp = cv2.INTER_LINEAR if s < 1.0 else cv2.INTER_CUBIC
    border = cv2.BORDER_REPLICATE if keep is not None else cv2.BORDER_CONSTANT
    a_c = np.clip(cv2.warpAffine(a, m, (width, height), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0), 0, 1)
    p_c = cv2.warpAffine(premult, m, (width, height), flags=interp, borderMode=border, borderValue=(0, 0, 0))
    if keep is not None:
        out = p_c * 255.0
    else:
        out = np.clip(p_c, 0, a_c[..., None]) * 255.0 + bg * (1.0 - a_c[..., None])
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return (out, a_c) if return_alpha else out
