"""Is a detected face the person's face? A face box far narrower than the person's head in the matte is
not: on a close-up, the Haar cascade can fire on a patch of cheek or hair and frame the whole photo on
it (a magnified, unusable ID photo with exit 0).

The head's width is read from the matte across the middle rows of the face box: the run of person
pixels (alpha ≥ 0.5) that holds the box's centre. A real face box spans cheek to cheek, most of the head's
width (hair adds some); ``bench/bench_face_head.py`` measures the ratio on real portraits.
"""
from __future__ import annotations

import numpy as np

from .face import FaceBox

MIN_FACE_TO_HEAD = 0.35  # a face box narrower than this share of the head's width is not that head's face
MAX_PERSON_SHARE = 0.97  # a matte (almost) all person has no outline to measure a head by


def head_width_at(face: FaceBox, alpha: np.ndarray) -> float | None:
    """Median width (px) of the person's matte across the face box's middle rows (40–60 % of its height),
    taking on each row the run of alpha ≥ 0.5 that holds the box's centre; None when the centre is off the
    person, or the matte is (almost) all person (nothing to compare with)."""
    h, w = alpha.shape[:2]
    if float((alpha >= 0.5).mean()) > MAX_PERSON_SHARE:
        return None
    cx = int(round(min(max(face.center_x, 0), w - 1)))
    y0 = int(max(face.y + 0.4 * face.h, 0))
    y1 = int(min(face.y + 0.6 * face.h, h - 1))
    widths = []
    for y in range(y0, max(y1, y0) + 1):
        row = alpha[y] >= 0.5
        if not row[cx]:
            continue
        off = np.flatnonzero(~row)
        left = off[off < cx]
        right = off[off > cx]
        if not left.size and not right.size:
            continue  # person from edge to edge (a close crop, or no real matte): no head width to read here
        widths.append((right[0] if right.size else w) - (left[-1] + 1 if left.size else 0))
    if len(widths) < max(1, (y1 - y0 + 1) // 2):  # the centre is off the person on most rows
        return None
    return float(np.median(widths))


def implausible_face(face: FaceBox, alpha: np.ndarray, min_ratio: float = MIN_FACE_TO_HEAD) -> str | None:
    """Why ``face`` can't be the person's face (one line), or None when it may be."""
    head = head_width_at(face, alpha)
    if head is None or face.w >= min_ratio * head:
        return None
    p = face.px  # in the photo's own pixels
    return (f"rejected a {face.w * p:.0f}×{face.h * p:.0f} px detection at {face.x * p:.0f},{face.y * p:.0f}: far "
            f"narrower than the person's head in the matte (about {head * p:.0f} px wide)")
