"""Face detection with OpenCV's Haar cascade (ships with opencv-python, works offline) and head geometry.

A Haar frontal-face box spans about the eyebrows to the chin; measured on 195 PFCN portraits with
person masks, the crown (top of the hair) lies a median 0.31 box heights above the box, and the chin
about 0.05 below it. When the person's alpha is available the crown is read from it instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
DETECT_MAX_SIDE = 800      # faces are found on a copy at most this large (fast on a 12-MP photo)
CROWN_ABOVE = 0.31         # crown = box top − CROWN_ABOVE × box height (when no mask tells better)
CHIN_BELOW = 0.05          # chin = box bottom + CHIN_BELOW × box height


@dataclass(frozen=True)
class FaceBox:
    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def center_x(self) -> float:
        return self.x + self.w / 2

    @property
    def chin_y(self) -> float:
        return self.y + self.h * (1 + CHIN_BELOW)

    def crown_y(self, alpha: np.ndarray | None = None) -> float:
        """The top of the head: from the person's alpha when it gives a plausible answer, else the box rule."""
        guess = self.y - CROWN_ABOVE * self.h
        if alpha is not None:
            x0, x1 = int(max(self.x + self.w / 4, 0)), int(min(self.x + 3 * self.w / 4, alpha.shape[1]))
            y1 = int(min(max(self.y + self.h / 2, 0), alpha.shape[0]))
            column = alpha[:y1, x0:x1] > 0.5
            rows = np.flatnonzero(column.mean(1) > 0.3) if column.size else []
            if len(rows):
                top = float(rows[0])
                # hair above the face; a mask reaching the photo's top edge (or far above) tells nothing
                if top > 0 and self.y - 0.8 * self.h <= top <= self.y - 0.05 * self.h:
                    return top
        return guess


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's {CASCADE} could not be loaded from {cv2.data.haarcascades}")
    return cascade


def detect_faces(image_bgr: np.ndarray) -> list[FaceBox]:
    """Frontal faces in ``image_bgr``, largest first, in the photo's pixel coordinates."""
    h, w = image_bgr.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image_bgr
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    min_side = max(24, min(gray.shape) // 12)
    boxes = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    faces = [FaceBox(float(x) / scale, float(y) / scale, float(bw) / scale, float(bh) / scale) for x, y, bw, bh in (boxes if len(boxes) else [])]
    return sorted(faces, key=lambda f: f.area, reverse=True)
