"""Does a finished ID photo meet its spec? Every rule is measured on the final image itself.

Rules are hard or soft. A photo that breaks a hard rule is never written (no face, a second face, the head
cut by the photo's edge): nobody could hand it in. A soft rule missed by a little (a margin, the centring,
the background) is a warning, and ``--strict`` refuses those too.

The face and its landmarks are found again in the final picture (decoded from the JPEG bytes when given),
so the report checks what was made, not what was planned. The crown (top of the hair) comes from the
person's alpha on the canvas when the maker passes it, else from the pixels that differ from the
background seen along the photo's top corners.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from .face import crown_from_alpha, detect_faces
from .specs import MM_PER_INCH, PhotoSpec

TOLERANCE_PX = 1.0          # rounding: a rule is met within 1 px of its range
MAX_TILT_DEGREES = 2.0      # eye line steeper than this fails (what ID-photo tools correct)
CENTRE_TOLERANCE = 0.03     # the face's axis within 3 % of the width from the middle
BG_MAX_SPREAD = 12.0        # 95th percentile of the background's distance from its median colour (0–255 RGB)
BG_MAX_COLOUR_DISTANCE = 40.0  # the background's median colour this close to an allowed colour


@dataclass
class Check:
    rule: str
    passed: bool | None          # None: not measurable here (say why in ``note``)
    value: float | str | None = None
    allowed: str = ""
    unit: str = ""
    note: str = ""
    hard: bool = False           # breaking it means the photo can't be used: it is not written

    def __post_init__(self):
        if self.passed is not None:
            self.passed = bool(self.passed)


@dataclass
class Report:
    spec: str
    checks: list[Check] = field(default_factory=list)
    levelled_degrees: float = 0.0
    gave_way: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    @property
    def hard_failed(self) -> list[Check]:
        """Failed rules that make the photo unusable: it must not be written."""
        return [c for c in self.failed if c.hard]

    @property
    def soft_failed(self) -> list[Check]:
        return [c for c in self.failed if not c.hard]

    def summary(self, checks: list[Check] | None = None) -> str:
        """The failed rules (or ``checks``) in one line: ``rule value (allowed …)``, joined by ``; ``."""
        return "; ".join(f"{c.rule} {c.value if c.value is not None else '–'}"
                         + (f" (allowed {c.allowed})" if c.allowed else "") + (f": {c.note}" if c.hard and c.note else "")
                         for c in (self.failed if checks is None else checks))

    def as_dict(self) -> dict:
        return {"spec": self.spec, "passed": self.passed, "hard_failed": [c.rule for c in self.hard_failed],
                "soft_failed": [c.rule for c in self.soft_failed], "levelled_degrees": round(self.levelled_degrees, 2),
                "framing_gave_way": self.gave_way, "checks": [asdict(c) for c in self.checks]}

    def to_json(self) -> bytes:
        # numpy scalars (np.bool_, np.float64) from the measurements become plain JSON values
        return (json.dumps(self.as_dict(), ensure_ascii=False, indent=1,
                           default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n").encode("utf-8")

    def lines(self) -> list[str]:
        out = []
        for c in self.checks:
            mark = {True: "pass", False: "FAIL" if c.hard else "miss", None: "n/a "}[c.passed]
            value = c.value if isinstance(c.value, str) or c.value is None else f"{c.value:g}"
            text = f"{mark}  {c.rule}: {value if value is not None else '–'}{(' ' + c.unit) if c.unit and value is not None else ''}"
            if c.allowed:
                text += f" (allowed {c.allowed})"
            if c.note:
                text += f" — {c.note}"
            out.append(text)
        return out


def _fmt_range(lo, hi, unit: str) -> str:
    if lo is not None and hi is not None:
        return f"{lo:.0f}–{hi:.0f} {unit}"
    return f"≥ {lo:.0f} {unit}" if lo is not None else f"≤ {hi:.0f} {unit}"


def _range_check(rule: str, value: float | None, r, unit: str = "px", mm_per_px: float | None = None,
                 why_missing: str = "") -> Check | None:
    if r is None:
        return None
    lo, hi = r
    allowed = _fmt_range(lo, hi, unit)
    if value is None:
        return Check(rule, False, None, allowed, unit, why_missing or "could not be measured")
    ok = (lo is None or value >= lo - TOLERANCE_PX) and (hi is None or value <= hi + TOLERANCE_PX)
    note = f"{value * mm_per_px:.1f} mm" if mm_per_px else ""
    return Check(rule, ok, round(float(value), 1), allowed, unit, note)


def crown_from_pixels(image_bgr: np.ndarray, x0: int, x1: int, y_max: int) -> float | None:
    """Top of the hair over columns x0–x1 above ``y_max``: the first row, counting down, where most pixels
    differ from the background colour (the median of the top rows' outer fifths)."""
    h, w = image_bgr.shape[:2]
    strip = max(2, h // 40)
    ref = np.concatenate([image_bgr[:strip, : w // 5].reshape(-1, 3), image_bgr[:strip, -(w // 5):].reshape(-1, 3)])
    bg = np.median(ref, axis=0)
    diff = np.abs(image_bgr[:y_max, x0:x1].astype(np.float32) - bg).max(axis=2) > 40
    rows = np.flatnonzero(diff.mean(1) > 0.3)
    return float(rows[0]) if rows.size else None


def check_photo(image_bgr: np.ndarray, spec: PhotoSpec, jpeg: bytes | None = None, alpha: np.ndarray | None = None,
                detector: str = "auto", levelled_degrees: float = 0.0, gave_way=(), face_required: bool = True,
                uncovered: bool | None = None) -> Report:
    """Measure ``image_bgr`` (the final photo; ``jpeg``, its file, is decoded and measured instead when given)
    against ``spec``: pixel size and DPI, exactly one face, head height, eye line, top margin, face width,
    horizontal centring, eye-level tilt, background uniformity and colour, file size. ``face_required=False``
    (a photo made with ``--no-face-ok``): a missing face is a soft miss, not a hard one. ``uncovered``: whether
    the photo it was made from showed the face uncovered (:func:`idphoto.subject.check_hands` found no hand on
    it), which the wider photo tells better than the ID photo; None: look for hands on ``image_bgr``."""
    report = Report(spec.name, levelled_degrees=levelled_degrees, gave_way=list(gave_way))
    add = report.checks.append
    dpi = None
    if jpeg is not None:
        from PIL import Image

        with Image.open(io.BytesIO(jpeg)) as im:
            dpi = im.info.get("dpi")
            fmt = im.format
            image_bgr = np.asarray(im.convert("RGB"))[:, :, ::-1].copy()
        add(Check("format", fmt == "JPEG" if spec.format == "jpeg" else True, fmt, spec.format.upper()))
    h, w = image_bgr.shape[:2]
    want_w, want_h = spec.size_px
    add(Check("pixel size", (w, h) == (want_w, want_h), f"{w}×{h}", f"{want_w}×{want_h}", "px"))
    if jpeg is not None:
        got = None if dpi is None else round(float(dpi[0]))
        add(Check("DPI", got == spec.dpi, got, f"{spec.dpi}", "", "" if got is not None else "no DPI in the file"))
    mm_per_px = MM_PER_INCH / spec.dpi

    # faces the landmark model fitted: a BlazeFace box it could not fit (a pattern, a fold) is not a face
    faces = [f for f in detect_faces(image_bgr, detector) if f.landmarks is None or f.landmarks.source == "mesh"]
    fitted = sum(f.landmarks is not None for f in faces)   # Haar boxes alone fire on patterns: soft
    add(Check("exactly one face", len(faces) == 1, len(faces), "1", "faces",
              "" if len(faces) == 1 else "no face" if not faces else "a second face in the photo",
              hard=fitted > 1 or (face_required and not faces)))
    face = faces[0] if faces else None
    marks = face.landmarks if face is not None else None
    why = "no face found in the photo" if face is None else "no landmarks (Haar fallback)"

    crown = None
    if face is not None:
        cx = face.center_x
        half = (marks.eye_distance * 0.5) if marks is not None else face.w / 4
        x0, x1 = int(max(cx - half, 0)), int(min(cx + half + 1, w))
        y_max = int(min(max(face.eye_y if face.eye_y is not None else face.y, 1), h))
        if alpha is not None:
            crown = crown_from_alpha(alpha, x0, x1, y_max)
        else:
            crown = crown_from_pixels(image_bgr, x0, x1, y_max)
    chin = marks.chin[1] if marks is not None and marks.chin is not None else None
    head = None if crown is None or chin is None else chin - crown
    eyes = None if marks is None else h - marks.eye_mid[1]
    for check in (
        _range_check("head height (chin to crown)", head, spec.rule_px("head"), "px", mm_per_px,
                     why if chin is None else "crown not found"),
        _range_check("eye line from the bottom", eyes, spec.rule_px("eyes"), "px", mm_per_px, why),
        _range_check("top margin (crown to top edge)", crown, spec.rule_px("top"), "px", mm_per_px,
                     why if face is None else "crown not found"),
        _range_check("face width", None if marks is None else marks.face_width, spec.rule_px("face_width"), "px",
                     mm_per_px, why),
    ):
        if check is not None:
            add(check)
    if face is not None:
        off = face.center_x - w / 2
        add(Check("horizontal centring", abs(off) <= CENTRE_TOLERANCE * w, round(off, 1),
                  f"±{CENTRE_TOLERANCE * w:.0f}", "px", "face axis from the middle"))
    if marks is not None:
        tilt = marks.roll_degrees
        add(Check("eye-level tilt", abs(tilt) <= MAX_TILT_DEGREES, round(tilt, 2), f"±{MAX_TILT_DEGREES:g}", "°"))
    else:
        add(Check("eye-level tilt", False if face is None else None, None, f"±{MAX_TILT_DEGREES:g}", "°", why))

    if marks is not None and marks.source == "mesh":
        add_covered_check(report, image_bgr, face, uncovered)
        if marks.eye_contrast is not None:
            from .subject import MIN_EYE_CONTRAST

            add(Check("eyes visible", marks.eye_contrast >= MIN_EYE_CONTRAST, round(marks.eye_contrast, 2),
                      f"≥ {MIN_EYE_CONTRAST:g}", "", "contrast inside the less visible eye (sunglasses, closed eyes: "
                      "lower)", hard=True))
        if marks.mouth_contrast is not None:
            from .subject import MIN_MOUTH_CONTRAST

            add(Check("mouth visible", marks.mouth_contrast >= MIN_MOUTH_CONTRAST, round(marks.mouth_contrast, 2),
                      f"≥ {MIN_MOUTH_CONTRAST:g}", "", "contrast inside the lips (a mask over them: lower)", hard=True))
    if alpha is not None:
        add_person_checks(report, alpha, face)
    add_background_checks(report, image_bgr, spec, alpha, face)
    if spec.kb is not None:
        kb = None if jpeg is None else len(jpeg) / 1024
        lo, hi = spec.kb
        ok = None if kb is None else (lo is None or kb >= lo) and (hi is None or kb <= hi)
        add(Check("file size", ok, None if kb is None else round(kb, 1), _fmt_range(lo, hi, "KB"), "KB",
                  "" if kb is not None else "no file to measure"))
    return report


def add_covered_check(report: Report, image_bgr: np.ndarray, face, uncovered: bool | None = None) -> None:
    """An uncovered face (hard): no hand found on it (:func:`idphoto.subject.hand_on_face`), on ``image_bgr``
    unless ``uncovered`` already tells."""
    from . import landmarks
    from .subject import hand_on_face

    if uncovered is not None:
        report.checks.append(Check("uncovered face", uncovered, "no hand" if uncovered else "hand", "no hand on the face",
                                   "", "looked for on the photo" if uncovered else "a hand covers the face", hard=True))
        return
    if not landmarks.hand_models_available():
        return
    hand = hand_on_face(face, landmarks.detect_hands(image_bgr))
    report.checks.append(Check("uncovered face", hand is None, "no hand" if hand is None else "hand",
                               "no hand on the face", "", "" if hand is None else "a hand covers the face", hard=True))


ISLAND_MAX_SHARE = 0.002   # matte pieces apart from the person, as a share of the photo
BOTTOM_MIN_SHARE = 0.5     # the body covers at least this much of the bottom row under the face


def add_person_checks(report: Report, alpha: np.ndarray, face) -> None:
    """On the person's alpha on the canvas: the head inside the frame (hard), the body reaching the bottom edge
    (a bust ending in mid-air, or one whose cut edge shows), and no matte pieces apart from the person
    (objects, islands)."""
    h, w = alpha.shape[:2]
    add = report.checks.append
    person = alpha > 0.5
    if face is not None:
        quarter = max(face.w / 4, 1.0)
        x0, x1 = int(max(face.center_x - quarter, 0)), int(min(face.center_x + quarter + 1, w))
        top = float(person[0, x0:x1].mean()) if x1 > x0 else 0.0
        add(Check("whole head in the frame", top < 0.3, round(100 * top, 1), "< 30", "% of the top row over the head",
                  "" if top < 0.3 else "the top of the head is cut off by the photo's edge", hard=True))
        x0, x1 = int(max(face.center_x - face.w, 0)), int(min(face.center_x + face.w + 1, w))
        bottom = float(person[-1, x0:x1].mean()) if x1 > x0 else 0.0
        add(Check("body reaches the bottom edge", bottom >= BOTTOM_MIN_SHARE, round(100 * bottom, 1),
                  f"≥ {100 * BOTTOM_MIN_SHARE:.0f}", "% of the bottom row under the face"))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(person.astype(np.uint8), connectivity=8)
    areas = sorted(stats[1:, cv2.CC_STAT_AREA].tolist(), reverse=True)
    apart = sum(areas[1:]) / float(h * w)
    add(Check("nothing beside the person", apart <= ISLAND_MAX_SHARE, round(100 * apart, 2),
              f"≤ {100 * ISLAND_MAX_SHARE:g}", "% of the photo", "matte pieces apart from the person (objects, islands)"))


def add_background_checks(report: Report, image_bgr: np.ndarray, spec: PhotoSpec, alpha: np.ndarray | None, face) -> None:
    """Uniformity (the spread of the background pixels) and colour (its median against the allowed ones)."""
    h, w = image_bgr.shape[:2]
    if alpha is not None:
        person = cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        bg_mask = ~person
    else:  # no matte: the strips along the top and the upper sides, away from the head
        bg_mask = np.zeros((h, w), bool)
        bg_mask[: max(2, h // 40)] = True
        if face is not None:
            y1 = int(min(max(face.y + face.h, 0), h))
            left, right = int(max(face.center_x - 1.2 * face.w, 0)), int(min(face.center_x + 1.2 * face.w, w))
            bg_mask[:y1, :max(left - 2, 0)] = True
            bg_mask[:y1, right + 2:] = True
    pixels = image_bgr[bg_mask].astype(np.float32)
    add = report.checks.append
    if len(pixels) < 50:
        add(Check("background uniformity", None, None, f"≤ {BG_MAX_SPREAD:g}", "", "too little background to measure"))
        return
    med = np.median(pixels, axis=0)
    spread = float(np.percentile(np.linalg.norm(pixels - med, axis=1), 95))
    add(Check("background uniformity", spread <= BG_MAX_SPREAD, round(spread, 1), f"≤ {BG_MAX_SPREAD:g}",
              "", "95th percentile of the distance from the median colour (RGB, 0–255)"))
    hex_med = "#{:02X}{:02X}{:02X}".format(*(int(round(v)) for v in med[::-1]))
    if spec.background:
        dists = [np.linalg.norm(med[::-1] - np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])) for c in spec.background]
        add(Check("background colour", min(dists) <= BG_MAX_COLOUR_DISTANCE, hex_med, " ".join(spec.background)))
