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
    """[photo,] alpha and foreground warped by ``m`` (the photo only when given: it is shown only when its own
    background is kept). Nothing is invented beyond the photo: the alpha is 0 there (no body is continued
    into the new corners), so framing must keep the person's cut edges off the ID photo (:class:`PhotoEdges`
    says where they are). The photo's new corners take its border colour (what shows there when its own
    background is kept); the foreground repeats its edges only so that interpolation at the border has no
    dark fringe, and is never shown where the alpha is 0."""
    *image, alpha, foreground = layers
    out = [cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0),
           cv2.warpAffine(foreground, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)]
    if image:
        fill = tuple(float(v) for v in border_colour(image[0]))
        out.insert(0, cv2.warpAffine(image[0], m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=fill))
    return out


@dataclass(frozen=True)
class PhotoEdges:
    """The photo's four edges in the coordinates the framing works in (a levelled photo's are slanted)."""
    corners: np.ndarray   # 4×2: top-left, top-right, bottom-right, bottom-left

    @classmethod
    def of(cls, shape: tuple[int, int], m: np.ndarray | None = None) -> "PhotoEdges":
        h, w = shape[:2]
        c = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        return cls(c if m is None else c @ m[:, :2].T + m[:, 2])

    @staticmethod
    def _along(p: np.ndarray, q: np.ndarray, v: np.ndarray, axis: int) -> np.ndarray:
        """The other coordinate of segment p–q at ``v`` on ``axis`` (NaN outside the segment)."""
        lo, hi = min(p[axis], q[axis]), max(p[axis], q[axis])
        if hi - lo < 1e-9:
            return np.full(v.shape, np.nan)
        t = (v - p[axis]) / (q[axis] - p[axis])
        out = p[1 - axis] + t * (q[1 - axis] - p[1 - axis])
        return np.where((v >= lo) & (v <= hi), out, np.nan)

    def top_at(self, xs: np.ndarray) -> np.ndarray:
        return self._along(self.corners[0], self.corners[1], xs, 0)

    def bottom_at(self, xs: np.ndarray) -> np.ndarray:
        return self._along(self.corners[3], self.corners[2], xs, 0)

    def left_at(self, ys: np.ndarray) -> np.ndarray:
        return self._along(self.corners[0], self.corners[3], ys, 1)

    def right_at(self, ys: np.ndarray) -> np.ndarray:
        return self._along(self.corners[1], self.corners[2], ys, 1)


def body_bottom(alpha: np.ndarray, face: FaceBox, edges: PhotoEdges | None = None,
                half_width: float | None = None) -> float:
    """The row where the person's body stops being shown below the face: the photo's bottom edge where the
    body is cut by it, else the lowest row of the person. Read over the columns the ID photo will show,
    ``half_width`` pixels either side of the face's axis (default 1.2 face widths): where the edge is
    slanted (a levelled photo), its highest point under the body counts."""
    h, w = alpha.shape[:2]
    edges = edges or PhotoEdges.of(alpha.shape)
    half = 1.2 * face.w if half_width is None else half_width
    x0 = int(max(face.center_x - half, 0))
    x1 = int(min(face.center_x + half + 1, w))
    if x1 <= x0:
        return float(h)
    person = alpha[:, x0:x1] > 0.5
    rows = np.flatnonzero(person.any(1))
    if rows.size == 0:
        return float(face.chin_y)
    edge = edges.bottom_at(np.arange(x0, x1) + 0.5)
    last = np.where(person.any(0), h - np.argmax(person[::-1], axis=0), 0)
    # the person reaches the bottom edge (within the 2 px that resampling blurs): cut there
    cut = ~np.isnan(edge) & (last > 0) & (last >= np.nan_to_num(edge) - 2)
    if cut.any():
        return float(edge[cut].min())
    return float(rows[-1] + 1)


def side_room(alpha: np.ndarray, face: FaceBox, crown_y: float, bottom_y: float,
              edges: PhotoEdges | None = None) -> float | None:
    """Pixels either side of the face's axis before a side edge of the photo that cuts the person (alpha
    above ¼ just inside it), over the rows from the crown to ``bottom_y``; None when neither side cuts the
    person."""
    h, w = alpha.shape[:2]
    edges = edges or PhotoEdges.of(alpha.shape)
    r0, r1 = int(min(max(crown_y, 0), h - 1)), int(min(max(bottom_y, crown_y + 1), h))
    ys = np.arange(r0, r1)
    soft = alpha[r0:r1] > 0.25  # a half-transparent shoulder cut straight shows as much as an opaque one
    cx = face.center_x
    room = np.inf
    for xs, step in ((edges.left_at(ys + 0.5), 2), (edges.right_at(ys + 0.5), -3)):
        ok = ~np.isnan(xs)
        if not ok.any():
            continue
        cols = np.clip(np.round(np.nan_to_num(xs)).astype(int) + step, 0, w - 1)
        cut = ok & soft[np.arange(len(ys)), cols]  # the person 2 px inside the edge: cut by it
        if cut.any():
            room = min(room, float(np.abs(xs[cut] - cx).min()))
    return None if room == np.inf else room


def top_cut(alpha: np.ndarray, face: FaceBox, edges: PhotoEdges | None = None) -> float | None:
    """Where the photo's top edge cuts the head: its row at the face's axis when the alpha just under the edge
    is mostly person over the middle of the face (half an eye distance either side of its axis, or a
    quarter of the box), else None."""
    edges = edges or PhotoEdges.of(alpha.shape)
    half = face.landmarks.eye_distance * 0.5 if face.landmarks is not None else face.w / 4
    xs = np.arange(int(max(face.center_x - half, 0)), int(min(face.center_x + half + 1, alpha.shape[1])))
    top = edges.top_at(xs + 0.5)
    ok = ~np.isnan(top)
    if not ok.any():
        return None
    rows = np.clip(np.ceil(np.nan_to_num(top[ok])).astype(int) + 1, 0, alpha.shape[0] - 1)  # just inside
    if float((alpha[rows, xs[ok]] > 0.5).mean()) <= 0.3:
        return None
    at = edges.top_at(np.array([face.center_x]))[0]
    return float(np.nanmax(top) if np.isnan(at) else at)


# ------------------------------------------------------------------------------------------ framing by rules
@dataclass
class FramingPlan:
    placement: Placement
    head_px: float            # planned head height on the canvas
    top_px: float             # planned crown position (top margin)
    eyes_px: float | None     # planned eye line above the bottom
    gave_way: list[str]       # rules that could not be met together, with by how much
    room_needed: float = 0.0  # canvas below the chin, in head heights, of the spec's tightest framing
    worst_break: float = 0.0  # the largest distance of a rule's value outside its range, px


MIN_TOP_MARGIN = 0.03   # without a rule on it, the crown is at least this share of the height below the top


RULE_NAMES = {"head": "head height", "eyes": "eye line", "top": "top margin", "face_width": "face width"}
# when the rules conflict, the top margin gives way first, then the eye line; head size last
RULE_WEIGHT = {"head": 1e4, "face_width": 1e4, "eyes": 1e2, "top": 1.0}
PREFER_WEIGHT = 10.0    # a value asked for (prefer) pulls this much harder than the middle of the other ranges
# prefer's 0 and 1 stay this share of the range inside its ends: the report measures the crown again on the
# finished photo's matte, which can read a few pixels off the framing's reading (2 px of 413 on the astronaut)
PREFER_INSET = 0.1


def _preferred(lo, hi, place: float):
    """The value at ``place`` (0–1) of the range ``lo``–``hi``, ``PREFER_INSET`` of it inside either end."""
    return lo + (PREFER_INSET + (1 - 2 * PREFER_INSET) * place) * (hi - lo)


def plan_by_rules(face: FaceBox, crown_y: float, size: tuple[int, int], spec: PhotoSpec,
                  bottom_y: float | None = None, half_room: float | None = None,
                  prefer: dict[str, float] | None = None) -> FramingPlan:
    """Scale and offset meeting the spec's head height, eye line, top margin and face width together.

    ``bottom_y``, the photo row where the person's body stops (:func:`body_bottom`), comes before every rule:
    the body must reach the ID photo's bottom edge, since the canvas below it could only be filled by
    inventing pixels. When the rules leave too little room below the chin for that, they give way (the
    top margin first) and the person meets the bottom edge; :func:`check_shoulder_room` refuses what is
    too far from the rules. ``half_room`` (:func:`side_room`), the photo pixels either side of the face's
    axis before an edge that cuts the person, likewise: the ID photo is no wider than that, so no cut edge
    of the body shows on it (the head grows instead).

    On the canvas the head is ``h = s·(chin − crown)`` pixels and the crown ``T`` pixels below the top; the
    eye line and face width follow from them. Every rule is a linear range in (h, T), so the best pair is
    found on a fine grid: first no rule broken (or, when they conflict, the top margin gives way first, then
    the eye line, and head height and face width last), then each value as near the middle of its range as
    the others allow. Without a rule on the top margin, the crown sits 30 % of the free height down.
    ``prefer`` moves the head height (``"head"``) or the top margin (``"top"``) from the middle to another
    place in its range: 0 near its least, 1 near its most (``PREFER_INSET`` inside; without a top rule: from
    ``MIN_TOP_MARGIN`` to the usual place). A preference, never a breach: the value stays inside every rule.
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
    prefer = prefer or {}
    for key, r in rules.items():
        if r is None:
            continue
        lo, hi = r
        v = values[key]
        over = np.maximum((lo if lo is not None else -np.inf) - v, 0) + np.maximum(v - (hi if hi is not None else np.inf), 0)
        breach += RULE_WEIGHT[key] * (over / unit) ** 2
        if lo is not None and hi is not None and hi > lo and key in prefer:  # asked for: it outweighs the others
            pull += PREFER_WEIGHT * ((v - _preferred(lo, hi, prefer[key])) / ((hi - lo) / 2)) ** 2
        elif lo is not None and hi is not None and hi > lo:
            pull += ((v - (lo + hi) / 2) / ((hi - lo) / 2)) ** 2
        elif lo is not None or hi is not None:  # one-sided: as close to the bound as the others allow, inside it
            bound = lo if lo is not None else hi
            pull += 0.1 * ((v - bound) / (0.1 * height)) ** 2
    if rules["head"] is None and rules["face_width"] is None:  # nothing sets the size: the head 60 % of the height
        pull += ((values["head"] - spec.head_ratio * height) / (0.05 * height)) ** 2
    if rules["top"] is None:
        usual = 0.3 * (height - values["head"])
        if "top" in prefer:
            want = _preferred(MIN_TOP_MARGIN * height, usual, prefer["top"])
            pull += PREFER_WEIGHT * ((values["top"] - want) / (0.05 * height)) ** 2
        else:
            pull += 0.5 * ((values["top"] - usual) / (0.05 * height)) ** 2
    # the whole head stays on the canvas, the chin at least 3 % above the bottom
    outside = np.maximum(values["top"] + values["head"] - 0.97 * height, 0)
    breach += 100 * (outside / unit) ** 2
    room = (height - values["top"] - values["head"]) / values["head"]   # canvas below the chin, in heads
    met = breach == 0
    if rules["top"] is None:  # no rule on it: the crown between just below the edge and its usual place
        met = met & (values["top"] >= MIN_TOP_MARGIN * height) & (values["top"] <= 0.3 * (height - values["head"]))
    room_needed = float(room[met].min()) if met.any() else float(room[np.unravel_index(np.argmin(breach), breach.shape)])
    if bottom_y is not None:  # the body reaches the bottom edge, before any rule
        short = np.maximum(room - (bottom_y - chin) / head_p, 0)
        breach += 1e6 * short ** 2
    if half_room is not None and half_room > 0:  # the canvas's half width, in photo pixels, within the room
        narrow = np.maximum(width / 2 * head_p / values["head"] - half_room, 0) / head_p
        breach += 1e6 * narrow ** 2
    i, j = np.unravel_index(np.argmin(breach * 1e3 + pull), breach.shape)
    head_c, top_c = float(h[i, 0]), float(t[0, j])
    gave = []
    worst = 0.0
    for key, r in rules.items():
        if r is None:
            continue
        v = float(values[key][i, j])
        lo, hi = r
        worst = max(worst, (lo - v) if lo is not None else 0.0, (v - hi) if hi is not None else 0.0)
        if lo is not None and v < lo - 0.5:
            gave.append(f"{RULE_NAMES[key]} {v:.0f} px, below {lo:.0f}")
        elif hi is not None and v > hi + 0.5:
            gave.append(f"{RULE_NAMES[key]} {v:.0f} px, above {hi:.0f}")
    s = head_c / head_p
    placement = Placement(s, width / 2 - face.center_x * s, top_c - crown_y * s)
    eyes_c = None if eye_frac is None else height - top_c - eye_frac * head_c
    return FramingPlan(placement, head_c, top_c, eyes_c, gave, room_needed, worst)


ROOM_SLACK = 0.03   # head heights below the chin a photo may lack against the spec's tightest framing
RULE_SLACK = 0.05   # share of the height by which keeping the body's cut edges off the photo may break a rule
MAX_TOP_CUT = 0.10  # share of the head the photo's top edge may cut off (filled with the background)


def check_shoulder_room(face: FaceBox, crown_y: float, bottom_y: float, plan: FramingPlan, spec: PhotoSpec,
                        free_plan: FramingPlan | None = None) -> None:
    """Refuse (:class:`IDPhotoError`) a photo that ends too close under the chin for ``spec``: the room it has
    below the chin, in head heights, against the room the spec's own tightest framing leaves there (largest
    head and smallest margins its rules allow), less ``ROOM_SLACK``. Also refuse a photo cropped so tightly
    (``plan``, which keeps the body's cut edges off the ID photo) that a rule breaks by more than
    ``RULE_SLACK`` of the height beyond what ``free_plan`` (the same rules without that) breaks it by."""
    head = max(face.chin_y - crown_y, 1.0)
    have = (bottom_y - face.chin_y) / head
    need = plan.room_needed - ROOM_SLACK
    if have < need:
        raise IDPhotoError(
            f"the photo ends {max(have, 0):.2f} head heights below the chin: too little to show the neck and "
            f"shoulders that {spec.name} needs (at least {need:.2f}); use a photo that shows the shoulders")
    height = spec.size_px[1]
    if free_plan is not None and plan.worst_break > free_plan.worst_break + RULE_SLACK * height:
        raise IDPhotoError(
            f"the photo is cropped too tightly around the person for {spec.name}: keeping the body's cut edges "
            f"out of the ID photo would break its rules ({'; '.join(plan.gave_way)}); use a photo with more room "
            "around the head and shoulders")


def check_top_cut(face: FaceBox, crown_y: float, edge_y: float | None) -> float:
    """How much of the head (a share of its height) the photo's top edge (at row ``edge_y``, None: it cuts
    nothing) cuts off; refuses (:class:`IDPhotoError`) more than ``MAX_TOP_CUT``: the head would not read
    whole."""
    if edge_y is None or crown_y >= edge_y:
        return 0.0
    share = (edge_y - crown_y) / max(face.chin_y - crown_y, 1.0)
    if share > MAX_TOP_CUT:
        raise IDPhotoError(f"the top of the head is cut off by the photo's top edge (about {100 * share:.0f} % of "
                           f"the head is missing; at most {100 * MAX_TOP_CUT:.0f} % can be filled with the "
                           "background); use a photo that shows the whole head")
    return share


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


def border_colour(image_bgr: np.ndarray) -> np.ndarray:
    """The median colour (BGR, float32) of a photo's one-pixel border: what fills the canvas beyond a photo
    whose own background is kept."""
    edge = np.concatenate([image_bgr[0], image_bgr[-1], image_bgr[:, 0], image_bgr[:, -1]]).reshape(-1, 3)
    return np.median(edge, axis=0).astype(np.float32)


def composite(foreground: np.ndarray, alpha: np.ndarray, background_bgr: tuple[int, int, int]) -> np.ndarray:
    """``F·α + B·(1−α)`` with the estimated foreground F (no fringe of the old background): uint8 BGR."""
    a = alpha[..., None].astype(np.float32)
    bg = np.asarray(background_bgr, dtype=np.float32) / 255.0
    out = foreground.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


OPAQUE_FROM = 0.9   # canvas alpha from which the person's colours come from the full photo (when given)


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2×3 affine ``a ∘ b`` (``b`` first)."""
    return np.hstack([a[:, :2] @ b[:, :2], (a[:, :2] @ b[:, 2] + a[:, 2])[:, None]])


def _landing_box(m: np.ndarray, size: tuple[int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the part of a photo of ``shape`` that the 2×3 affine ``m`` lands on a ``size`` (W, H)
    canvas, with 2 px of slack for the interpolation; None when no part does."""
    width, height = size
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], float) @ inv[:, :2].T + inv[:, 2]
    h, w = shape[:2]
    x0, x1 = max(math.floor(corners[:, 0].min()) - 2, 0), min(math.ceil(corners[:, 0].max()) + 2, w)
    y0, y1 = max(math.floor(corners[:, 1].min()) - 2, 0), min(math.ceil(corners[:, 1].max()) + 2, h)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _place(crops: list[np.ndarray], x0: int, y0: int, m: np.ndarray, size: tuple[int, int],
           borders: list[tuple[int, float | tuple]], shrunk_interp: int = cv2.INTER_LINEAR) -> list[np.ndarray]:
    """``crops`` (equal in size, cut from a photo at ``x0``, ``y0``) mapped by the photo's 2×3 affine ``m``
    (scale and shift) onto a ``size`` canvas: area-averaged first where ``m`` shrinks them, so nothing aliases,
    then placed by one warp (``shrunk_interp`` after shrinking, bicubic when enlarging); each with its
    (border mode, border value)."""
    ch, cw = crops[0].shape[:2]
    s = math.sqrt(abs(np.linalg.det(m[:, :2])))
    fx = fy = 1.0
    if s < 1.0:
        nw, nh = max(1, round(cw * s)), max(1, round(ch * s))
        crops = [cv2.resize(c, (nw, nh), interpolation=cv2.INTER_AREA) for c in crops]
        fx, fy = nw / cw, nh / ch
    # a pixel r of a resized crop is the photo's x0 + (r + 0.5)/f − 0.5
    back = np.array([[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5]])
    placed, interp = compose(m, back), shrunk_interp if s < 1.0 else cv2.INTER_CUBIC
    return [cv2.warpAffine(c, placed, size, flags=interp, borderMode=mode, borderValue=value)
            for c, (mode, value) in zip(crops, borders)]


def warp_down(src: np.ndarray, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``src`` mapped by the 2×3 affine ``m`` onto a ``size`` (W, H) canvas: only the part that lands on it is
    read, area-averaged first where ``m`` shrinks it (so nothing aliases), then placed by one bicubic warp."""
    box = _landing_box(m, size, src.shape)
    if box is None:
        return np.zeros((size[1], size[0]) + src.shape[2:], src.dtype)
    x0, y0, x1, y1 = box
    crop = src[y0:y1, x0:x1]
    ch, cw = crop.shape[:2]
    s = math.sqrt(abs(np.linalg.det(m[:, :2])))
    turn = m[:, :2] / s
    if s < 1.0 and abs(turn[0, 1]) > 1e-6:
        # turned as well as shrunk: turn the crop first at its own resolution, where a bicubic turn costs almost
        # no sharpness, then shrink it like any other (the turn at the canvas's resolution would soften it)
        corners = np.array([[0, 0], [cw, 0], [0, ch], [cw, ch]], float) @ turn.T
        lo, hi = corners.min(0), corners.max(0)
        turned = cv2.warpAffine(crop, np.hstack([turn, -lo[:, None]]), (math.ceil(hi[0] - lo[0]), math.ceil(hi[1] - lo[1])),
                                flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        # a pixel q of the turned crop is the crop's turnᵀ(q + lo), the photo's (x0, y0) + that
        shift = m[:, 2] + s * (turn @ np.array([x0, y0], float) + lo)
        return warp_down(turned, np.array([[s, 0, shift[0]], [0, s, shift[1]]]), size)
    # bicubic: the crop is already at the canvas's scale, and the canvas's pixels fall between its own; a
    # bilinear shift by half a pixel halves fine detail's contrast (a face's skin texture at ID-photo size).
    # (render's alpha keeps bilinear: at a photo's cut edge, bicubic's wider reach would fade two pixels)
    return _place([crop], x0, y0, m, size, [(cv2.BORDER_REPLICATE, 0)], cv2.INTER_CUBIC)[0]


def render(foreground: np.ndarray, alpha: np.ndarray, placement: Placement, size: tuple[int, int],
           background_bgr, keep: np.ndarray | None = None, return_alpha: bool = False,
           photo: tuple[np.ndarray, np.ndarray] | None = None):
    """The ID photo (``size`` = (W, H), uint8 BGR): the person placed and composited on ``background_bgr``
    (a BGR colour, or an H×W×3 canvas from :func:`make_background`).

    Only the part of the photo that lands on the canvas is resampled (area-averaged when shrinking, of the
    premultiplied colour F·α and of α: the same as compositing at full size and then shrinking, for a
    fraction of the work). No pixel is invented: beyond the photo the canvas is the background (framing
    keeps the person's cut edges off the canvas). ``keep`` (the original photo) keeps its own background:
    the photo itself is placed, and where the canvas reaches beyond it, it is filled with the median colour
    of the photo's border (never its edge rows repeated). ``return_alpha`` also returns the person's alpha
    on the canvas. ``photo`` (the full-size photo, the 2×3 affine from it to the canvas): where the person is
    opaque, its colours come from there, area-averaged once, instead of from ``foreground`` (a smaller copy,
    which a second resampling would soften).
    """
    width, height = size
    s, h, w = placement.scale, alpha.shape[0], alpha.shape[1]
    if isinstance(background_bgr, np.ndarray):
        bg = background_bgr.astype(np.float32)
    else:
        bg = np.broadcast_to(np.asarray(background_bgr, np.float32), (height, width, 3))
    # nothing of the photo lands on the canvas: its border colour (keep) or empty
    x0, y0, x1, y1 = _landing_box(placement.matrix(), size, alpha.shape) or (0, 0, w, h)
    a = alpha[y0:y1, x0:x1].astype(np.float32)
    src = keep[y0:y1, x0:x1].astype(np.float32) / 255.0 if keep is not None else foreground[y0:y1, x0:x1].astype(np.float32)
    premult = src if keep is not None else src * a[..., None]
    border = (cv2.BORDER_REFLECT, 0) if keep is not None else (cv2.BORDER_CONSTANT, (0, 0, 0))
    a_c, p_c = _place([a, premult], x0, y0, placement.matrix(), size, [(cv2.BORDER_CONSTANT, 0), border])
    a_c = np.clip(a_c, 0, 1)
    if keep is not None:
        fill = border_colour(keep) / 255.0
        # canvas pixels whose centre falls on the photo (between its outer pixel edges) show it
        u = (np.arange(width) + 0.5 - placement.tx) / s
        v = (np.arange(height) + 0.5 - placement.ty) / s
        cover = (((v >= 0) & (v <= h))[:, None] & ((u >= 0) & (u <= w))[None, :])[..., None]
        out = (p_c * cover + fill * (1.0 - cover)) * 255.0
    else:
        if photo is not None:
            colour = warp_down(photo[0], photo[1], size).astype(np.float32) / 255.0
            t = np.clip((a_c - OPAQUE_FROM) / (1.0 - OPAQUE_FROM), 0.0, 1.0)[..., None]
            p_c = p_c * (1.0 - t) + colour * (a_c[..., None] * t)
        out = np.clip(p_c, 0, a_c[..., None]) * 255.0 + bg * (1.0 - a_c[..., None])
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return (out, a_c) if return_alpha else out
