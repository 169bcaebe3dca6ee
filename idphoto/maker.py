"""From a matting result to the ID photo: find the face, frame by the spec, composite on the colour."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import IDPhotoError
from .face import FaceBox, detect_faces
from .framing import Placement, composite, place_by_face, place_by_mask, place_centre, render
from .headcheck import implausible_face
from .specs import PhotoSpec

MIN_PERSON_SHARE = 0.01  # below this share of alpha ≥ 0.5 pixels the segmentation found no person


@dataclass
class IDPhoto:
    image: np.ndarray                    # H×W×3 uint8 BGR, the spec's exact pixel size
    dpi: int
    face: FaceBox | None = None          # the face used for framing (photo coordinates)
    placement: Placement | None = None   # photo → canvas mapping (None with spec none)
    warnings: list[str] = field(default_factory=list)


def make_id_photo(image_bgr: np.ndarray, alpha: np.ndarray, foreground: np.ndarray, spec: PhotoSpec | None,
                  background_bgr: tuple[int, int, int] = (255, 255, 255), no_face_ok: bool = False,
                  dpi: int = 300, faces: list[FaceBox] | None = None) -> IDPhoto:
    """The ID photo for ``spec`` (``None``: keep the photo's framing and size).

    The face (largest one, with a warning when there are several) sets the scale and position; without a
    face this is an :class:`IDPhotoError` unless ``no_face_ok``, which centres on the person's mask.
    ``faces`` may be passed when already detected. An (almost) empty alpha — TNet saw no person — is an
    :class:`IDPhotoError` with any spec, ``None`` included: the result would be a plain-colour picture.
    """
    if float((alpha >= 0.5).mean()) < MIN_PERSON_SHARE:
        raise IDPhotoError("no person found in the photo (the segmentation is empty)")
    if spec is None:
        return IDPhoto(composite(foreground, alpha, background_bgr), dpi)
    size = spec.size_px
    notes = []
    faces = detect_faces(image_bgr) if faces is None else faces
    on_person = [f for f in faces if _on_mask(f, alpha)]
    faces = on_person or faces  # a "face" in the background (a poster, a false detection) is not the subject
    verdicts = [(f, implausible_face(f, alpha)) for f in faces]  # a patch of cheek is not a face
    false = [why for _, why in verdicts if why]
    faces = [f for f, why in verdicts if why is None]
    face = faces[0] if faces else None
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found; framing on the largest "
                     f"({face.w:.0f}×{face.h:.0f} px at {face.x:.0f},{face.y:.0f})")
    if face is not None:
        placement = place_by_face(face, face.crown_y(alpha), size, spec)
    elif not no_face_ok:
        raise IDPhotoError(f"no face found{f'; {false[0]}' if false else ''} (a frontal face is needed for framing; "
                           "pass --no-face-ok to centre on the person instead, or --spec none)")
    else:
        placement = place_by_mask(alpha, size, spec)
        notes.append(f"no face found{f' ({false[0]})' if false else ''}; framing on the person's mask"
                     if placement is not None else "no face and no person found; the photo is centred")
        if placement is None:
            placement = place_centre(alpha.shape, size)
    out = render(foreground, alpha, placement, size, background_bgr)
    return IDPhoto(out, spec.dpi, face, placement, notes)


def _on_mask(face: FaceBox, alpha: np.ndarray) -> bool:
    """Whether the centre of ``face`` lies on the person's alpha."""
    y = int(min(max(face.y + face.h / 2, 0), alpha.shape[0] - 1))
    x = int(min(max(face.center_x, 0), alpha.shape[1] - 1))
    return bool(alpha[y, x] > 0.5)
