"""From a matting result to the ID photo: find the face, level the eyes, frame by the spec's rules,
composite on the background."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from core.fileio import Pyramid

from .errors import IDPhotoError
from .face import FaceBox, detect_faces
from .framing import (MIN_LEVEL_DEGREES, PhotoEdges, Placement, body_bottom, check_shoulder_room, check_top_cut,
                      compose, level, level_rotation, make_background, place_by_mask, place_centre, plan_by_rules,
                      render, side_room, top_cut)
from .specs import PhotoSpec
from . import landmarks
from .subject import check_hands, check_other_faces, choose_subject, isolate_person

# An ID photo is a few hundred pixels: a phone photo is worked at the size it needs, not its own. Faces,
# framing and matte cleaning work on a copy with RENDER_DETAIL canvas pixels' worth of photo (at 1.5 the
# matte's edge error at the ID photo's size grew by 3 %); the matte is solved at MATTE_DETAIL of the canvas
# size, where its edge error is no worse than solving the full photo (bench/bench_phone.py measures both).
# The opaque person's colours still come from the full photo (render's ``photo``).
RENDER_DETAIL = 2.0
MATTE_DETAIL = 0.75
PREVIEW_SIDE = 1024      # the faces that set the working scale are found on a copy this size at most
FRAME_MARGIN = 0.15      # the matte is solved this far (share of the frame) beyond where the frame should fall

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
    levelling: np.ndarray | None = None  # the 2×3 rotation from the photo to the levelled photo (None: not turned)
    head: tuple[float, float] | None = None  # (crown, chin) rows on the canvas, as the framing read them
    uncovered: bool | None = None        # no hand found on the face in the photo (None: not looked for)
    photo_scale: float | None = None     # canvas pixels per pixel of the photo itself (not of a smaller copy)

    def shown_corners(self) -> np.ndarray | None:
        """The canvas corners in the pixels of the photo it was made from (4×2), or None with spec none."""
        if self.placement is None:
            return None
        p, (h, w) = self.placement, self.image.shape[:2]
        pts = np.array([[0, 0], [w, 0], [0, h], [w, h]], float)
        pts = (pts - (p.tx, p.ty)) / p.scale
        if self.levelling is not None:
            back = cv2.invertAffineTransform(self.levelling)
            pts = pts @ back[:, :2].T + back[:, 2]
        return pts


@dataclass
class WorkScale:
    image: np.ndarray                     # the photo to work: the photo itself or a smaller copy
    photo: float                          # its share of the photo's size (1: the photo itself)
    matte: float | None                   # the matte is solved at this share of it (None: all of it)
    faces: list[FaceBox] | None           # the faces in its pixels (None: not looked for at this size)
    region: tuple[int, int, int, int] | None = None   # (x0, y0, x1, y1) of it that the ID photo can show
    canvas: float | None = None           # ID-photo pixels per photo pixel at the spec's largest head (None: no face)
    source: np.ndarray | None = None      # the largest copy of the photo at hand: the person's colours come from it


def frame_region(face: FaceBox, spec: PhotoSpec, shape: tuple[int, int], margin: float = FRAME_MARGIN
                 ) -> tuple[int, int, int, int]:
    """The part of a photo (``shape``) that ``spec``'s ID photo of ``face`` should show: the frame at the
    spec's middle head height, the head at its top margin, grown by ``margin`` of its size on every side;
    clipped to the photo. The crown is the landmarks' guess, so the caller checks the frame it gets."""
    h, w = shape
    crown = face.crown_y(None)
    per_px = spec.head_ratio * spec.size_px[1] / max(face.chin_y - crown, 1.0)  # canvas pixels per photo pixel
    fw, fh = spec.size_px[0] / per_px, spec.size_px[1] / per_px
    top = crown - spec.top_ratio * fh
    x0, x1 = face.center_x - fw / 2 - margin * fw, face.center_x + fw / 2 + margin * fw
    y0, y1 = top - margin * fh, top + fh + margin * fh
    return (max(int(x0), 0), max(int(y0), 0), min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h))


def work_scale(photo: np.ndarray | Pyramid, spec: PhotoSpec, detector: str = "auto") -> WorkScale:
    """``photo`` (an array, or a :class:`core.fileio.Pyramid` such as a file decoded on demand) at the size
    ``spec``'s ID photo needs, with nothing lost on the ID photo.

    The faces are found on a copy of at most ``PREVIEW_SIDE`` pixels; the largest with landmarks gives the head
    (chin to the crown its landmarks suggest), which the ID photo shows at most at the spec's largest head
    height. The photo is worked at ``RENDER_DETAIL`` and the matte solved at ``MATTE_DETAIL`` times that
    size. Without such a face nothing is scaled: the framing then needs the whole photo's matte. The copies
    are the pyramid's halvings (a JPEG's straight from its DCT: never decoded whole when not needed whole),
    then one area-averaging resize to the size wanted."""
    pyramid = photo if isinstance(photo, Pyramid) else Pyramid(photo)
    w, h = pyramid.size
    n = 0
    while max(w, h) >> n > PREVIEW_SIDE:
        n += 1
    # the level above the preview first, the preview halved from it: a JPEG decodes at ½ scale in ~5 ms more
    # than at ¼ (the entropy decoding dominates), and a phone photo's work copy is usually made from it
    pyramid.level(max(n - 1, 0))
    preview = pyramid.level(n)
    p = preview.shape[1] / w
    faces = detect_faces(preview, detector)
    fitted = [f for f in faces if f.landmarks is not None and f.landmarks.chin is not None]
    largest = max(fitted, key=lambda f: f.area, default=None)
    head = 0.0 if largest is None else (largest.chin_y - largest.crown_y(None)) / p
    # ID-photo pixels per photo pixel at the spec's largest head
    canvas = spec.head_range[1] * spec.size_px[1] / head if head > 0 else None
    share = 1.0 if canvas is None else min(1.0, RENDER_DETAIL * canvas)
    size = (max(1, round(w * share)), max(1, round(h * share)))
    if size[0] <= preview.shape[1] * 1.05:          # the preview is (about) as large: work on it
        work = preview
    else:                                            # from the smallest level that is still larger
        source = pyramid.level(max(i for i in range(n + 1) if w >> i >= size[0]))
        # area-averaged: a bilinear copy (3× faster) aliases the hair, and the matte's edge error grows by 2 %
        work = source if source.shape[1] == size[0] else cv2.resize(source, size, interpolation=cv2.INTER_AREA)
    scale = work.shape[1] / w
    # faces found on the preview serve the work photo only when it is the preview: framing needs the landmarks
    # at the working size (read on the preview and scaled, a face's eye and mouth checks can change verdict)
    faces = faces if work is preview else None
    finest = pyramid.finest()
    if canvas is None:
        return WorkScale(work, scale, None, faces, source=finest)
    matte = MATTE_DETAIL * canvas / scale
    region = frame_region(largest.scaled(scale / p), spec, work.shape[:2])
    return WorkScale(work, scale, matte if matte < 1.0 else None, faces, region, canvas, finest)


def compose_id_photo(image_bgr: np.ndarray, alpha: np.ndarray, foreground: np.ndarray, spec: PhotoSpec | None,
                     background_bgr: tuple[int, int, int] = (255, 255, 255), no_face_ok: bool = False,
                     dpi: int = 300, faces: list[FaceBox] | None = None, *, level_eyes: bool = True,
                     bg_style: str = "solid", keep_background: bool = False, detector: str = "auto",
                     original: np.ndarray | None = None, prefer: dict[str, float] | None = None) -> IDPhoto:
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
    ``original``: the photo, or a larger copy of it when ``image_bgr`` is a smaller one (:func:`work_scale`'s
    ``source``); the person's opaque colours are then taken from it, resampled once and placed bicubically.
    ``prefer``: where in the spec's ranges the head height and top margin should fall (:func:`plan_by_rules`).
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
    uncovered = None
    if face is not None and face.landmarks is not None and landmarks.hand_models_available():
        check_hands(face, landmarks.detect_hands(image_bgr))
        uncovered = True
    angle = 0.0
    edges = PhotoEdges.of(alpha.shape)
    if face is not None and face.landmarks is not None and level_eyes and abs(face.landmarks.roll_degrees) >= MIN_LEVEL_DEGREES:
        angle = face.landmarks.roll_degrees
        m, lsize = level_rotation(alpha.shape, face.landmarks.eye_mid, angle)
        edges = PhotoEdges.of(alpha.shape, m)
        if keep_background:  # the photo itself is shown
            image_bgr, alpha, foreground = level(m, lsize, image_bgr, alpha, foreground)
        else:
            alpha, foreground = level(m, lsize, alpha, foreground)
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
        free = plan_by_rules(face, crown, size, spec, prefer=prefer)
        bottom = body_bottom(alpha, face, edges, size[0] / 2 / free.placement.scale)
        room = side_room(alpha, face, crown, bottom, edges)
        plan = plan_by_rules(face, crown, size, spec, bottom, room, prefer)
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
    sharp = None
    # from the original where it is shrunk onto the canvas (resampled once, and bicubically placed); a canvas
    # that enlarges the photo has nothing to gain from it, and takes the foreground's colours as always
    if original is not None and not keep_background and placement.scale * image_bgr.shape[1] < original.shape[1]:
        oh, ow = original.shape[:2]
        kx, ky = image_bgr.shape[1] / ow, image_bgr.shape[0] / oh   # before levelling: the copy's own size
        to_copy = np.array([[kx, 0, 0.5 * kx - 0.5], [0, ky, 0.5 * ky - 0.5]])  # pixel centres kept
        to_canvas = compose(placement.matrix(), m if angle else np.eye(2, 3))
        sharp = (original, compose(to_canvas, to_copy))
    out, canvas_alpha = render(foreground, alpha, placement, size, background,
                               keep=image_bgr if keep_background else None, return_alpha=True, photo=sharp)
    head = None if face is None else (placement.apply(0.0, crown)[1], placement.apply(0.0, face.chin_y)[1])
    return IDPhoto(out, spec.dpi, face, placement, notes, canvas_alpha, angle, gave_way, m if angle else None, head,
                   uncovered)
