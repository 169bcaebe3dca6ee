"""From a matting result to the ID photo: find the face, level the eyes, frame by the spec's rules,
composite on the background."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import IDPhotoError
from .face import FaceBox, detect_faces
from .framing import (MIN_LEVEL_DEGREES, Placement, check_room, level, level_rotation, make_background,
                      place_by_mask, place_centre, plan_by_rules, render)
from .headcheck import implausible_face
from .specs import PhotoSpec

MIN_PERSON_SHARE = 0.01  # below this share of alpha ≥ 0.5 pixels the segmentation found no person


@dataclass
class IDPhoto:
    image: np.ndarray                    # H×W×3 uint8 BGR, the spec's exact pixel size
    dpi: int
    face: FaceBox | None = None          # the face used for framing (coordinates of the levelled photo)
    placement: Placement | None = None   # levelled photo → canvas mapping (None with spec none)
    warnings: list[str] = field(default_factory=list)
    alpha: np.ndarray | None = None      # the person's alpha on the canvas (float32, 0–1)
    levelled_degrees: float = 0.0        # the photo was turned by this much (counter-clockwise) to level the eyes
    gave_way: list[str] = field(default_factory=list)   # spec rules the framing could not meet together


def make_id_photo(image_bgr: np.ndarray, alpha: np.ndarray, foreground: np.ndarray, spec: PhotoSpec | None,
                  background_bgr: tuple[int, int, int] = (255, 255, 255), no_face_ok: bool = False,
                  dpi: int = 300, faces: list[FaceBox] | None = None, *, level_eyes: bool = True,
                  bg_style: str = "solid", keep_background: bool = False, detector: str = "auto") -> IDPhoto:
    """The ID photo for ``spec`` (``None``: keep the photo's framing and size).

    The face (largest one on the person, with a warning when there are several) sets the scale and position.
    With landmarks, a photo whose eye line tilts by ``MIN_LEVEL_DEGREES`` or more is first turned level
    (photo, alpha and foreground together); then scale and offset are chosen to meet the spec's head height,
    eye line, top margin and face width (:func:`plan_by_rules`; rules that had to give way are reported).
    Without a face this is an :class:`IDPhotoError` unless ``no_face_ok``, which centres on the person's mask.
    ``faces`` may be passed when already detected. An (almost) empty alpha — TNet saw no person — is an
    :class:`IDPhotoError` with any spec, ``None`` included: the result would be a plain-colour picture.
    ``bg_style``: solid, gradient or radial; ``keep_background`` places the original photo instead.
    """
    if float((alpha >= 0.5).mean()) < MIN_PERSON_SHARE:
        raise IDPhotoError("no person found in the photo (the segmentation is empty)")
    if spec is None:
        h, w = alpha.shape[:2]
        if keep_background:
            return IDPhoto(image_bgr.copy(), dpi, alpha=alpha)
        out = render(foreground, alpha, Placement(1.0, 0.0, 0.0), (w, h), make_background((w, h), background_bgr, bg_style))
        return IDPhoto(out, dpi, alpha=alpha)
    size = spec.size_px
    notes: list[str] = []
    faces = detect_faces(image_bgr, detector) if faces is None else faces
    on_person = [f for f in faces if _on_mask(f, alpha)]
    faces = on_person or faces  # a "face" in the background (a poster, a false detection) is not the subject
    verdicts = [(f, implausible_face(f, alpha)) for f in faces]  # a patch of cheek is not a face
    false = [why for _, why in verdicts if why]
    faces = [f for f, why in verdicts if why is None]
    face = faces[0] if faces else None
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found; framing on the largest "
                     f"({face.w:.0f}×{face.h:.0f} px at {face.x:.0f},{face.y:.0f})")
    angle = 0.0
    if face is not None and face.landmarks is not None and level_eyes and abs(face.landmarks.roll_degrees) >= MIN_LEVEL_DEGREES:
        angle = face.landmarks.roll_degrees
        m, lsize = level_rotation(alpha.shape, face.landmarks.eye_mid, angle)
        image_bgr, alpha, foreground = level(m, lsize, image_bgr, alpha, foreground)
        face = face.transformed(m)
        notes.append(f"levelled the eyes: turned the photo {abs(angle):.1f}° "
                     f"{'counter-clockwise' if angle > 0 else 'clockwise'}")
    gave_way: list[str] = []
    if face is not None:
        if face.landmarks is None:
            notes.append("no landmarks found (Haar face box): the eye line is not known, framing by the box")
        crown = face.crown_y(alpha)
        plan = plan_by_rules(face, crown, size, spec)
        placement, gave_way = plan.placement, plan.gave_way
        if gave_way:
            notes.append(f"{spec.name}: the rules can't all be met with this face's proportions; gave way: "
                         + "; ".join(gave_way))
        check_room(placement, alpha.shape, face, crown, size, alpha)
    elif not no_face_ok:
        raise IDPhotoError(f"no face found{f'; {false[0]}' if false else ''} (a frontal face is needed for framing; "
                           "pass --no-face-ok to centre on the person instead, or --spec none)")
    else:
        placement = place_by_mask(alpha, size, spec)
        notes.append(f"no face found{f' ({false[0]})' if false else ''}; framing on the person's mask"
                     if placement is not None else "no face and no person found; the photo is centred")
        if placement is None:
            placement = place_centre(alpha.shape, size)
    background = None if keep_background else make_background(size, background_bgr, bg_style)
    out, canvas_alpha = render(foreground, alpha, placement, size, background,
                               keep=image_bgr if keep_background else None, return_alpha=True)
    return IDPhoto(out, spec.dpi, face, placement, notes, canvas_alpha, angle, gave_way)


def _on_mask(face: FaceBox, alpha: np.ndarray) -> bool:
    """Whether the centre of ``face`` lies on the person's alpha."""
    y = int(min(max(face.y + face.h / 2, 0), alpha.shape[0] - 1))
    x = int(min(max(face.center_x, 0), alpha.shape[1] - 1))
    return bool(alpha[y, x] > 0.5)
