"""Whose ID photo is it? One real, frontal human face, and the person it belongs to, alone.

An ID photo framed on the wrong thing is worse than a refusal, so every doubt here is a refusal with its
reason (:class:`~idphoto.errors.IDPhotoError`):

* no face, or a face the landmark model could not fit (an animal, a statue, a face turned away or
  covered): BlazeFace fires on many face-like things, Face Mesh's own "a face is here" score does not;
* a head tilted by more than ``MAX_ROLL_DEGREES`` (levelling it would turn the body diagonal) or turned by
  more than ``MAX_YAW_DEGREES`` (not frontal);
* a second face touching the subject's, or one that the frame would take in (:func:`check_other_faces`);
* a hand on the face (:func:`check_hands`, with MediaPipe's palm detector and hand model), or eyes that
  can't be seen (sunglasses, closed eyes: ``Landmarks.eye_contrast``), or a mouth under a mask
  (``Landmarks.mouth_contrast``).

Other people beside the subject, and matte islands (objects, wall patches, a second person's shoulder),
are removed from the matte by :func:`isolate_person`: the ID photo shows the subject's person only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import IDPhotoError
from .face import FaceBox
from .headcheck import implausible_face

MAX_ROLL_DEGREES = 15.0   # official rules ask for a level head; levelling more turns the shoulders diagonal
MAX_YAW_DEGREES = 30.0    # beyond this the face is in part profile (the nose tip past the eye's inner corner)
MIN_EYE_CONTRAST = 0.15   # below this an eye can't be seen: sunglasses, tinted lenses, closed eyes, hair
MIN_MOUTH_CONTRAST = 0.08  # below this the lips are one flat colour: a mask or an object over the mouth
TOUCH_GAP = 0.5           # another face nearer than this many face widths touches the subject's
HAIR_SIDE, HAIR_ABOVE = 0.4, 0.5   # a head, hair included, reaches this far beyond its face box (sideways, above)
OTHER_FACE_MIN = 0.5      # an off-matte face in the frame counts from this share of the subject's face width
ISLAND_REACH = 0.06       # matte pieces within this many face widths of the subject's body stay (hair strands)
WORK_SIDE = 800           # the matte's pieces are found on a copy at most this large


@dataclass
class Subject:
    face: FaceBox | None                              # the subject's face (None: no face, --no-face-ok)
    others: list[FaceBox] = field(default_factory=list)  # other real faces in the photo
    rejected: list[str] = field(default_factory=list)    # detections that are not the person's face, and why


def _on_mask(face: FaceBox, alpha: np.ndarray) -> bool:
    """Whether the centre of ``face`` lies on the person's alpha."""
    y = int(min(max(face.y + face.h / 2, 0), alpha.shape[0] - 1))
    x = int(min(max(face.center_x, 0), alpha.shape[1] - 1))
    return bool(alpha[y, x] > 0.5)


def _fitted(face: FaceBox) -> bool:
    """A face whose landmarks Face Mesh placed (or a Haar box, when that detector was asked for)."""
    return face.landmarks is None or face.landmarks.source == "mesh"


def _gap(a: FaceBox, b: FaceBox) -> float:
    """Distance between two face boxes' edges (0 when they overlap), in pixels."""
    dx = max(b.x - (a.x + a.w), a.x - (b.x + b.w), 0.0)
    dy = max(b.y - (a.y + a.h), a.y - (b.y + b.h), 0.0)
    return math.hypot(dx, dy)


def choose_subject(faces: list[FaceBox], alpha: np.ndarray, detector: str = "auto", no_face_ok: bool = False) -> Subject:
    """The subject's face among ``faces`` (the largest on the person's matte), checked: raises
    :class:`IDPhotoError` for a face that isn't a frontal, level, human one or that touches another face.
    Returns ``Subject(None, …)`` when there is no face (the caller decides whether that is allowed); with
    ``no_face_ok`` a face that landmarks could not fit counts as none, with the reason in ``rejected``."""
    on_person = [f for f in faces if _on_mask(f, alpha)]
    candidates = on_person or faces  # a "face" in the background (a poster, a false detection) is not the subject
    verdict = {id(f): implausible_face(f, alpha) for f in faces}  # a patch of cheek is not a face
    rejected = [verdict[id(f)] for f in candidates if verdict[id(f)]]
    plausible = [f for f in candidates if verdict[id(f)] is None]
    if not plausible:
        return Subject(None, [], rejected)
    face = plausible[0]
    # other faces: those Face Mesh fitted (a real face, however the matte merges its head with the subject's),
    # and Haar boxes that pass the head check
    others = [f for f in faces if f is not face and _fitted(f) and (f.landmarks is not None or verdict[id(f)] is None)]
    unfit = None
    if face.source == "haar" and detector == "auto":
        unfit = ("only OpenCV's Haar cascade saw a face here, the landmark model saw none: not a clear frontal face "
                 "(use a sharper, frontal photo, or --face-detector haar to accept it)")
    elif face.landmarks is not None and face.landmarks.source != "mesh":
        unfit = ("the face found could not be fitted with facial landmarks: not a clear, frontal, uncovered human "
                 "face (an animal, a statue, or a face turned away or covered)")
    if unfit and no_face_ok:
        return Subject(None, [], [*rejected, unfit])
    if unfit:
        raise IDPhotoError(unfit)
    marks = face.landmarks
    if marks is not None:
        roll, yaw = marks.roll_degrees, marks.yaw_degrees
        if abs(roll) > MAX_ROLL_DEGREES:
            raise IDPhotoError(f"the head is tilted by {abs(roll):.0f}° (eyes not level; up to {MAX_ROLL_DEGREES:.0f}° "
                               f"is levelled, {abs(roll) - MAX_ROLL_DEGREES:.0f}° too many): use a photo with the "
                               "head upright")
        if marks.eye_contrast is not None and marks.eye_contrast < MIN_EYE_CONTRAST:
            raise IDPhotoError(f"the eyes can't be seen (sunglasses, tinted glasses, closed eyes or hair over them: "
                               f"eye contrast {marks.eye_contrast:.2f}, an open eye gives {MIN_EYE_CONTRAST:.2f} or "
                               "more): use a photo with both eyes open and uncovered")
        if marks.mouth_contrast is not None and marks.mouth_contrast < MIN_MOUTH_CONTRAST:
            raise IDPhotoError(f"the mouth can't be seen (a mask or an object over it: lip contrast "
                               f"{marks.mouth_contrast:.2f}, uncovered lips give {MIN_MOUTH_CONTRAST:.2f} or more): "
                               "use a photo with the face uncovered")
        if abs(yaw) > MAX_YAW_DEGREES:
            raise IDPhotoError(f"the head is turned {abs(yaw):.0f}° to the side (up to {MAX_YAW_DEGREES:.0f}° is "
                               f"accepted, {abs(yaw) - MAX_YAW_DEGREES:.0f}° too many): use a photo facing the camera")
    for other in others:
        if _gap(face, other) < TOUCH_GAP * face.w:
            raise IDPhotoError(f"another face ({other.describe()}) "
                               "touches the subject's: an ID photo shows one person; use a photo of one person")
    return Subject(face, others, rejected)


HAND_ON_FACE = 0.25       # a palm with this share of its box on the face's eyes-to-chin region covers the face


def face_region(face: FaceBox) -> tuple[float, float, float, float]:
    """The part of the face an ID photo must show uncovered, (x0, y0, x1, y1): half an eye distance beyond
    each eye, from a little above the eyes (the brows) to the chin."""
    m = face.landmarks
    d = m.eye_distance
    return (m.left_eye[0] - 0.5 * d, m.eye_mid[1] - 0.4 * d, m.right_eye[0] + 0.5 * d, face.chin_y)


def hand_on_face(face: FaceBox, palms: list[tuple[float, float, float, float, float]]):
    """The first hand found (``landmarks.detect_hands``: x, y, w, h, score) with ``HAND_ON_FACE`` of its box on
    :func:`face_region`, or None (also for a face without landmarks)."""
    if face.landmarks is None:
        return None
    fx0, fy0, fx1, fy1 = face_region(face)
    for x, y, w, h, score in palms:
        if w <= 0 or h <= 0:
            continue
        ix = max(0.0, min(x + w, fx1) - max(x, fx0))
        iy = max(0.0, min(y + h, fy1) - max(y, fy0))
        if ix * iy >= HAND_ON_FACE * w * h:
            return x, y, w, h, score
    return None


def check_hands(face: FaceBox, palms: list[tuple[float, float, float, float, float]]) -> None:
    """Refuse a face that a hand covers (:func:`hand_on_face`). A hand holding a phone, a microphone or a cup
    to the face is caught with it; official rules ask for the face uncovered."""
    hand = hand_on_face(face, palms)
    if hand is not None:
        x, y, w, h = (v * face.px for v in hand[:4])  # in the photo's own pixels
        raise IDPhotoError(f"a hand covers the face (found at {x:.0f},{y:.0f}, {w:.0f}×{h:.0f} px): an ID photo "
                           "shows the face uncovered; use a photo without a hand, phone or microphone before it")


def check_other_faces(others: list[FaceBox], face: FaceBox, placement, size: tuple[int, int],
                      alpha: np.ndarray) -> None:
    """Refuse when another head would appear on the ID photo: its face box, grown to take in the hair, reaches
    the canvas (``placement`` maps photo to canvas), and it lies on the matte (it would be kept) or is large
    (a nearby person the matte missed). Small faces off the matte are distant background people: the
    background is replaced."""
    width, height = size
    for other in others:
        # the other head, hair included: the face box grown by 0.4 of its width either side and half
        # its height above
        x0, y0 = placement.apply(other.x - HAIR_SIDE * other.w, other.y - HAIR_ABOVE * other.h)
        x1, y1 = placement.apply(other.x + (1 + HAIR_SIDE) * other.w, other.y + other.h)
        inside_w = max(0.0, min(x1, width) - max(x0, 0.0))
        inside_h = max(0.0, min(y1, height) - max(y0, 0.0))
        if inside_w < 0.02 * width or inside_h < 0.02 * height:
            continue
        if _on_mask(other, alpha) or other.w >= OTHER_FACE_MIN * face.w:
            raise IDPhotoError(f"a second face ({other.describe()}) would "
                               "be in the ID photo: use a photo of one person")


def _ownership(shape: tuple[int, int], face: FaceBox, others: list[FaceBox], scale: float) -> np.ndarray:
    """Pixels (of a copy at ``scale``) nearer to the subject's face than to any other, distances in each face's
    widths: below a face's eyes only the horizontal distance counts (a body hangs under its head), above
    them the distance from the face's centre."""
    h, w = shape
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / scale
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / scale

    def cost(f: FaceBox) -> np.ndarray:
        cy = f.eye_y if f.eye_y is not None else f.y + f.h / 2
        dx = np.abs(xs - f.center_x)
        dy = np.maximum(cy - ys, 0)
        return np.sqrt(dx * dx + dy * dy) / max(f.w, 1.0)

    mine = cost(face)
    best_other = np.full((h, w), np.inf, np.float32)
    for other in others:
        best_other = np.minimum(best_other, cost(other))
    return mine <= best_other


def isolate_person(alpha: np.ndarray, face: FaceBox, others: list[FaceBox]) -> tuple[np.ndarray, float]:
    """The subject's person alone: the matte's parts that belong to other faces (:func:`_ownership`) and
    the pieces not connected to the subject's body (objects, wall patches, islands; pieces within
    ``ISLAND_REACH`` face widths, such as hair strands, stay) set to 0. Returns (alpha, the share of the
    matte removed). An alpha on which the face lands on no piece is returned as it is."""
    h, w = alpha.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = cv2.resize(alpha, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) \
        if scale < 1 else alpha
    own = _ownership(small.shape[:2], face, others, scale) if others else np.ones(small.shape[:2], bool)
    person = ((small > 0.5) & own).astype(np.uint8)
    _, labels = cv2.connectedComponents(person, connectivity=8)
    fx = int(min(max(face.center_x * scale, 0), small.shape[1] - 1))
    fy0 = int(min(max(face.y * scale, 0), small.shape[0] - 1))
    fy1 = int(min(max((face.y + face.h) * scale, fy0 + 1), small.shape[0]))
    column = labels[fy0:fy1, fx]
    column = column[column > 0]
    if column.size == 0:
        return alpha, 0.0
    main = labels == np.bincount(column).argmax()
    reach = max(2, int(round(ISLAND_REACH * face.w * scale)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    near = cv2.dilate(main.astype(np.uint8), kernel) > 0
    keep_ids = np.unique(labels[near & (labels > 0)])
    kept = np.isin(labels, keep_ids)
    # the soft edge of what is kept stays; everything else (other pieces, faint matte far away) goes
    soft = cv2.dilate(kept.astype(np.uint8), kernel) > 0
    drop = ~(soft & own)
    if not drop.any():
        return alpha, 0.0
    if scale < 1:
        drop = cv2.resize(drop.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    out = alpha.copy()
    out[drop] = 0
    total = float(alpha.sum())
    return out, (float(alpha.sum() - out.sum()) / total if total > 0 else 0.0)
