"""From a matting result to the ID photo: find the face, level the eyes, frame by the spec's rules,
composite on the background."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import IDPhotoError
from .face import FaceBox, detect_faces
from .framing import (MIN_LEVEL_DEGREES, PhotoEdges, Placement, body_bottom, check_shoulder_room, check_top_cut, level,
                      level_rotation, make_background, place_by_mask, place_centre, plan_by_rules, render,
                      side_room, top_cut)
from .specs import PhotoSpec
from . import landmarks
from .subject import check_hands, check_other_faces, choose_subject, isolate_person

MIN_PERSON_SHARE = 0.01  # below this share of alpha ≥ 0.5 pixels the segmentation found no person
CUT_CROWN_NEAR = 0.15    # a crown guessed within this share of the head below a cut top edge is at the edge


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

    The subject's face (:func:`idphoto.subject.choose_subject`: the largest on the person, refused when it is
    not a frontal, level, human face or touches another face) sets the scale and position. With landmarks, a
    photo whose eye line tilts by ``MIN_LEVEL_DEGREES`` or more is first turned level (photo, alpha and
    foreground together); other people and matte islands are removed from the alpha; then scale and offset
    are chosen to meet the spec's head height, eye line, top margin and face width with the body reaching
    the bottom edge (:func:`plan_by_rules`; rules that had to give way are reported). A photo that ends too
    close under the chin, whose top edge cuts off much of the head, or whose frame would hold a second
    face is refused. No pixel beyond the photo is invented.
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
    subject = choose_subject(faces, alpha, detector, no_face_ok)
    face, others = subject.face, subject.others
    if face is not None and face.landmarks is not None and landmarks.hand_models_available():
        check_hands(face, landmarks.detect_hands(image_bgr))
    angle = 0.0
    edges = PhotoEdges.of(alpha.shape)
    if face is not None and face.landmarks is not None and level_eyes and abs(face.landmarks.roll_degrees) >= MIN_LEVEL_DEGREES:
        angle = face.landmarks.roll_degrees
        m, lsize = level_rotation(alpha.shape, face.landmarks.eye_mid, angle)
        edges = PhotoEdges.of(alpha.shape, m)
        image_bgr, alpha, foreground = level(m, lsize, image_bgr, alpha, foreground)
        face = face.transformed(m)
        others = [f.transformed(m) for f in others]
        notes.append(f"levelled the eyes: turned the photo {abs(angle):.1f}° "
                     f"{'counter-clockwise' if angle > 0 else 'clockwise'}")
    gave_way: list[str] = []
    if face is not None:
        if face.landmarks is None:
            notes.append("no landmarks found (Haar face box): the eye line is not known, framing by the box")
        alpha, removed = isolate_person(alpha, face, others)
        if removed >= 0.002:
            notes.append(f"removed {100 * removed:.1f} % of the matte: pieces apart from the person "
                         "(objects, other people, islands)")
        crown = face.crown_y(alpha)
        edge_y = top_cut(alpha, face, edges)
        if edge_y is not None:
            # the matte goes on above the photo: the crown from the landmarks alone, at least at the edge (a
            # crown guessed well below the edge, under a matte that goes on up, is something else: a hat)
            guess = face.crown_y(None)
            if guess < edge_y + CUT_CROWN_NEAR * (face.chin_y - guess):
                crown = min(guess, edge_y)
            else:
                edge_y = None
        cut = check_top_cut(face, crown, edge_y)
        if cut > 0:
            notes.append(f"the photo's top edge cuts about {100 * cut:.0f} % of the head; filled with the background")
        # the columns the ID photo shows, from a first plan: the body must reach the bottom edge across them
        free = plan_by_rules(face, crown, size, spec)
        bottom = body_bottom(alpha, face, edges, size[0] / 2 / free.placement.scale)
        room = side_room(alpha, face, crown, bottom, edges)
        plan = plan_by_rules(face, crown, size, spec, bottom, room)
        check_shoulder_room(face, crown, bottom, plan, spec, free)
        placement, gave_way = plan.placement, plan.gave_way
        if gave_way:
            notes.append(f"{spec.name}: the rules can't all be met with this photo; gave way: " + "; ".join(gave_way))
        check_other_faces(others, face, placement, size, alpha)
    elif not no_face_ok:
        false = subject.rejected
        raise IDPhotoError(f"no face found{f'; {false[0]}' if false else ''} (a frontal face is needed for framing; "
                           "pass --no-face-ok to centre on the person instead, or --spec none)")
    else:
        false = subject.rejected
        placement = place_by_mask(alpha, size, spec)
        notes.append(f"no face found{f' ({false[0]})' if false else ''}; framing on the person's mask"
                     if placement is not None else "no face and no person found; the photo is centred")
        if placement is None:
            placement = place_centre(alpha.shape, size)
    background = None if keep_background else make_background(size, background_bgr, bg_style)
    out, canvas_alpha = render(foreground, alpha, placement, size, background,
                               keep=image_bgr if keep_background else None, return_alpha=True)
    return IDPhoto(out, spec.dpi, face, placement, notes, canvas_alpha, angle, gave_way)
