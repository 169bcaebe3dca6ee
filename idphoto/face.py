"""Face detection for framing: landmarks (MediaPipe BlazeFace + Face Mesh, see ``landmarks.py``) with
OpenCV's Haar cascade as the fallback, and head geometry.

With landmarks the eyes, chin and face centre are known. A Haar frontal-face box has none: it spans
about the eyebrows to the chin; measured on 195 PFCN portraits with person masks, the crown (top of the
hair) lies a median 0.31 box heights above the box, and the chin about 0.05 below it. When the person's
alpha is available the crown is read from it instead.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from . import landmarks
from .landmarks import Landmarks

CASCADE = "haarcascade_frontalface_default.xml"
DETECT_MAX_SIDE = 800      # faces are found on a copy at most this large (fast on a 12-MP photo)
CROWN_ABOVE = 0.31         # crown = box top − CROWN_ABOVE × box height (when no mask tells better)
CHIN_BELOW = 0.05          # chin = box bottom + CHIN_BELOW × box height


def crown_from_alpha(alpha: np.ndarray, x0: float, x1: float, below: float) -> float | None:
    """The top of the head in the person's alpha: the first row above ``below`` where the columns ``x0``–``x1``
    (over the middle of the face) are mostly person (over 30 % of them at alpha > 0.5); None when none is.
    The one rule for the crown, for framing and for the report alike."""
    h, w = alpha.shape[:2]
    x0, x1, y1 = int(max(x0, 0)), int(min(x1, w)), int(min(max(below, 0), h))
    column = alpha[:y1, x0:x1] > 0.5
    rows = np.flatnonzero(column.mean(1) > 0.3) if column.size else []
    return float(rows[0]) if len(rows) else None


@dataclass(frozen=True)
class FaceBox:
    x: float
    y: float
    w: float
    h: float
    landmarks: Landmarks | None = None   # eyes, nose, mouth, chin (None from the Haar cascade)
    score: float = 1.0
    source: str = "haar"                 # "haar" or "landmarks"
    px: float = 1.0                      # photo pixels per pixel of these coordinates (a photo worked smaller)

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def center_x(self) -> float:
        if self.landmarks is not None:  # between the eyes: the face's own axis, not the box's
            return self.landmarks.eye_mid[0]
        return self.x + self.w / 2

    @property
    def eye_y(self) -> float | None:
        return None if self.landmarks is None else self.landmarks.eye_mid[1]

    @property
    def chin_y(self) -> float:
        if self.landmarks is not None and self.landmarks.chin is not None:
            return self.landmarks.chin[1]
        return self.y + self.h * (1 + CHIN_BELOW)

    def describe(self) -> str:
        """``W×H px at X,Y`` in the photo's own pixels, for messages."""
        p = self.px
        return f"{self.w * p:.0f}×{self.h * p:.0f} px at {self.x * p:.0f},{self.y * p:.0f}"

    def scaled(self, f: float) -> "FaceBox":
        """The face in the photo resized by ``f``."""
        marks = None if self.landmarks is None else self.landmarks.transformed(np.array([[f, 0, 0], [0, f, 0]], float))
        return FaceBox(self.x * f, self.y * f, self.w * f, self.h * f, marks, self.score, self.source, self.px / f)

    def transformed(self, m: np.ndarray) -> "FaceBox":
        """The face after the photo is mapped by the 2×3 affine ``m`` (a rotation): box about the same
        centre, landmarks mapped exactly."""
        cx, cy = self.x + self.w / 2, self.y + self.h / 2
        ncx, ncy = m[0, 0] * cx + m[0, 1] * cy + m[0, 2], m[1, 0] * cx + m[1, 1] * cy + m[1, 2]
        marks = None if self.landmarks is None else self.landmarks.transformed(m)
        return FaceBox(float(ncx - self.w / 2), float(ncy - self.h / 2), self.w, self.h, marks, self.score, self.source,
                       self.px)

    def crown_y(self, alpha: np.ndarray | None = None) -> float:
        """The top of the head: from the person's alpha when it gives a plausible answer, else the box rule."""
        if self.landmarks is not None and self.landmarks.chin is not None:
            return self._crown_from_landmarks(alpha)
        guess = self.y - CROWN_ABOVE * self.h
        if alpha is not None:
            top = crown_from_alpha(alpha, self.x + self.w / 4, self.x + 3 * self.w / 4, self.y + self.h / 2)
            # hair above the face; a mask reaching the photo's top edge (or far above) tells nothing
            if top is not None and top > 0 and self.y - 0.8 * self.h <= top <= self.y - 0.05 * self.h:
                return top
        return guess

    def _crown_from_landmarks(self, alpha: np.ndarray | None) -> float:
        """Crown above the eyes: the first row of the alpha, over the middle of the face, that is mostly
        person. Between the eyes and the crown lie about 0.8–1.3 eye-to-chin distances on adults (hair
        included); an alpha answer outside 0.5–2.2 (the matte runs off the top, or a hat) is not trusted."""
        eye_x, eye_y = self.landmarks.eye_mid
        lower = self.chin_y - eye_y
        guess = eye_y - 1.05 * lower
        if alpha is None or lower <= 0:
            return guess
        half = max(self.landmarks.eye_distance * 0.5, 2.0)
        top = crown_from_alpha(alpha, eye_x - half, eye_x + half + 1, eye_y)
        if top is not None and top > 0 and 0.5 * lower <= eye_y - top <= 2.2 * lower:
            return top
        return guess


_per_thread = threading.local()


def _cascade() -> cv2.CascadeClassifier:
    """This thread's cascade: OpenCV does not promise that one classifier may run in several threads at
    once (the web app's workers), so each thread loads its own (a few ms, once)."""
    cascade = getattr(_per_thread, "cascade", None)
    if cascade is None:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} could not be loaded from {cv2.data.haarcascades}")
        _per_thread.cascade = cascade
    return cascade


DETECTORS = ("auto", "landmarks", "haar")


def detect_faces(image_bgr: np.ndarray, method: str = "auto") -> list[FaceBox]:
    """Faces in ``image_bgr``, largest first, in the photo's pixel coordinates.

    ``landmarks``: BlazeFace + Face Mesh (eyes, nose, mouth, chin); ``haar``: OpenCV's frontal-face cascade
    (boxes only); ``auto``: landmarks, and the cascade when they find no face or can't run."""
    if method not in DETECTORS:
        raise ValueError(f"unknown face detector {method!r}; choose one of {', '.join(DETECTORS)}")
    if method in ("auto", "landmarks"):
        try:
            found = landmarks.detect(image_bgr)
        except landmarks.LandmarkModelError:
            if method == "landmarks":
                raise
            found = []
        if found or method == "landmarks":
            return [FaceBox(d.x, d.y, d.w, d.h, d.landmarks, d.score, "landmarks") for d in found]
    return detect_faces_haar(image_bgr)


def detect_faces_haar(image_bgr: np.ndarray) -> list[FaceBox]:
    """Frontal faces (boxes only) by OpenCV's Haar cascade, largest first."""
    h, w = image_bgr.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image_bgr
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    min_side = max(24, min(gray.shape) // 12)
    boxes = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    faces = [FaceBox(float(x) / scale, float(y) / scale, float(bw) / scale, float(bh) / scale) for x, y, bw, bh in (boxes if len(boxes) else [])]
    return sorted(faces, key=lambda f: f.area, reverse=True)
