"""idphoto.framing and compose_id_photo: no pixel is invented. A photo ending at the chest or with hair at its
top edge is framed with what it holds, or refused with the reason; levelled photos leave nothing stretched."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from idphoto.errors import IDPhotoError
from idphoto.face import FaceBox
from idphoto.framing import (MAX_TOP_CUT, PhotoEdges, body_bottom, level, level_rotation, plan_by_rules,
                             side_room, top_cut)
from idphoto.maker import compose_id_photo
from idphoto.specs import get_spec
from conftest import synthetic_face


def textured_person(h=800, w=600, crown=120, chin=380):
    """A photo whose body has horizontal stripes (a repeated row would show as a band of one colour), and its
    alpha: head, neck and shoulders reaching the bottom edge."""
    yy = np.arange(h)[:, None]
    stripes = (128 + 100 * np.sin(yy / 3.0)).astype(np.uint8) * np.ones((1, w), np.uint8)
    img = np.full((h, w, 3), 200, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    cx = w // 2
    cv2.ellipse(alpha, (cx, (crown + chin) // 2), (100, (chin - crown) // 2), 0, 0, 360, 1.0, -1)
    cv2.rectangle(alpha, (cx - 45, chin - 30), (cx + 45, chin + 120), 1.0, -1)
    cv2.ellipse(alpha, (cx, h + 200), (280, h + 200 - chin - 90), 0, 180, 360, 1.0, -1)
    body = alpha > 0.5
    img[body] = np.dstack([stripes, stripes // 2, 255 - stripes])[body]
    return img, alpha


def test_a_photo_ending_at_the_chest_is_framed_with_the_body_meeting_the_bottom_edge():
    img, alpha = textured_person()
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    spec = get_spec("1inch")
    end = 560                                        # 0.69 head heights below the chin: enough for 1inch
    photo = compose_id_photo(img[:end], alpha[:end], img[:end] / 255.0, spec, faces=[face])
    w, h = spec.size_px
    p = photo.placement
    assert p.apply(0, end)[1] >= h - 0.5             # the photo reaches the canvas's bottom edge
    bottom = photo.image[-12:, w // 2 - 20:w // 2 + 20].astype(int)
    assert np.ptp(bottom[:, :, 0], axis=0).min() > 20  # the stripes go on to the last row: nothing repeated
    assert photo.alpha[-1, w // 2] > 0.99            # the body meets the edge


def test_the_rules_give_way_before_pixels_are_invented():
    img, alpha = textured_person()
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    spec = get_spec("1inch")
    end = 380 + int(0.30 * 260)                      # 0.30 head heights: the tightest 1inch framing
    photo = compose_id_photo(img[:end], alpha[:end], img[:end] / 255.0, spec, faces=[face])
    assert photo.placement.apply(0, end)[1] >= spec.size_px[1] - 0.5
    free = plan_by_rules(face, 120, spec.size_px, spec)
    assert photo.placement.scale > free.placement.scale   # the head grew (its rule gave way) to reach the edge


@pytest.mark.parametrize("heads,refused", [(0.05, True), (0.20, True), (0.5, False)])
def test_a_photo_ending_under_the_chin_is_refused_with_the_figure(heads, refused):
    img, alpha = textured_person()
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    end = 380 + int(heads * 260)
    run = lambda: compose_id_photo(img[:end], alpha[:end], img[:end] / 255.0, get_spec("1inch"), faces=[face])  # noqa: E731
    if refused:
        with pytest.raises(IDPhotoError, match=rf"ends {heads:.2f} head heights below the chin: .* shoulders"):
            run()
    else:
        assert run().image.shape == (413, 295, 3)


def test_hair_cut_a_little_by_the_top_edge_is_filled_and_a_cut_head_is_refused():
    img, alpha = textured_person(crown=120)
    face = synthetic_face(crown=120, eye=253, chin=380, cx=300)   # the crown where the landmarks put it
    assert face.crown_y(None) == pytest.approx(120, abs=1)
    spec = get_spec("1inch")
    bg = (219, 142, 67)
    small = 120 + int(0.5 * MAX_TOP_CUT * 260)       # half the allowed cut
    shifted = [FaceBox(face.x, face.y - small, face.w, face.h,
                       face.landmarks.transformed(np.array([[1, 0, 0], [0, 1, -small]], float)), 1.0, "landmarks")]
    photo = compose_id_photo(img[small:], alpha[small:], img[small:] / 255.0, spec, bg, faces=shifted)
    top_row = int(np.ceil(photo.placement.ty))       # the photo's top edge on the canvas
    assert top_row > 0 and (photo.image[:top_row - 1] == bg).all()   # above it: the background, no repeated hair
    assert any("cuts about" in w for w in photo.warnings)
    big = 120 + int(2.5 * MAX_TOP_CUT * 260)
    shifted = [FaceBox(face.x, face.y - big, face.w, face.h,
                       face.landmarks.transformed(np.array([[1, 0, 0], [0, 1, -big]], float)), 1.0, "landmarks")]
    with pytest.raises(IDPhotoError, match=r"the top of the head is cut off .* % of the head is missing"):
        compose_id_photo(img[big:], alpha[big:], img[big:] / 255.0, spec, bg, faces=shifted)


def test_top_cut_reads_the_alpha_under_the_edge():
    alpha = np.zeros((200, 200), np.float32)
    face = synthetic_face(crown=10, eye=60, chin=120, cx=100)
    assert top_cut(alpha, face) is None
    alpha[0:150, 60:140] = 1.0
    assert top_cut(alpha, face) == 0.0


def test_body_bottom_and_side_room_on_a_straight_and_a_levelled_photo():
    alpha = np.zeros((400, 300), np.float32)
    alpha[50:, 100:200] = 1.0                        # the body cut by the bottom edge, not by the sides
    face = synthetic_face(crown=50, eye=100, chin=160, cx=150)
    assert body_bottom(alpha, face) == 400.0
    assert side_room(alpha, face, 50, 400) is None
    alpha[300:, :] = 1.0                             # shoulders from edge to edge
    assert side_room(alpha, face, 50, 400) == pytest.approx(150.0)
    m, size = level_rotation(alpha.shape, (150, 100), 10.0)
    photo = np.zeros((400, 300, 3), np.uint8)
    _, turned, fg = level(m, size, photo, alpha, photo / 255.0)
    alone = level(m, size, alpha, photo / 255.0)      # without the photo (not shown): the same two layers
    assert len(alone) == 2 and np.array_equal(alone[0], turned) and np.array_equal(alone[1], fg)
    edges = PhotoEdges.of(alpha.shape, m)
    f2 = face.transformed(m)
    bottom = body_bottom(turned, f2, edges, 100)
    xs = np.arange(int(f2.center_x - 100), int(f2.center_x + 100))
    assert bottom == pytest.approx(np.nanmin(edges.bottom_at(xs + 0.5)), abs=1.0)   # the slanted edge's highest point
    assert bottom < size[1] - 20                     # well above the turned canvas's bottom row


def test_warp_down_places_exactly_and_keeps_detail_when_it_turns():
    from idphoto.framing import warp_down

    src = np.zeros((800, 600), np.uint8)
    src[398:402, 298:302] = 255                                  # a bright dot centred at (299.5, 399.5)
    half = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25]])          # halving, pixel centres kept
    out = warp_down(src, half, (300, 400))
    assert np.array_equal(out, cv2.resize(src, (300, 400), interpolation=cv2.INTER_AREA))
    # turned by 8° and shrunk to a quarter: the dot lands where the affine sends it
    th = np.radians(8.0)
    m = np.array([[0.25 * np.cos(th), -0.25 * np.sin(th), 40.0], [0.25 * np.sin(th), 0.25 * np.cos(th), 10.0]])
    out = warp_down(src, m, (200, 250)).astype(float)
    want = m[:, :2] @ np.array([299.5, 399.5]) + m[:, 2]
    ys, xs = np.mgrid[:250, :200]
    got = np.array([(out * xs).sum(), (out * ys).sum()]) / out.sum()
    assert np.abs(got - want).max() < 0.3


def test_warp_down_keeps_the_detail_of_a_photo_placed_between_pixels():
    """The placement on the canvas falls between pixels: a bilinear shift of the area-averaged crop would blur
    fine detail by up to half a pixel each way (a face's skin texture at ID-photo size); a bicubic one keeps it."""
    from idphoto.framing import warp_down

    rng = np.random.default_rng(0)
    src = cv2.GaussianBlur(rng.integers(0, 256, (800, 600)).astype(np.uint8), (0, 0), 1.5)
    shrunk = cv2.resize(src, (300, 400), interpolation=cv2.INTER_AREA).astype(float)
    for dx, dy in ((0.5, 0.5), (0.3, 0.0), (0.0, 0.4)):
        m = np.array([[0.5, 0, -0.25 + dx], [0, 0.5, -0.25 + dy]])   # halved, then moved by (dx, dy) canvas px
        out = warp_down(src, m, (300, 400)).astype(float)
        inner = (slice(4, -4), slice(4, -4))
        lap = lambda a: cv2.Laplacian(a, cv2.CV_64F)[inner].var()
        assert lap(out) > 0.75 * lap(shrunk), (dx, dy)


@pytest.mark.parametrize("name", ["1inch", "us-passport", "icao", "cn-passport"])
def test_head_size_and_top_margin_move_within_the_specs_ranges(name):
    """The page's sliders: 0 the least the spec allows, 100 the most; every rule still met."""
    spec = get_spec(name)
    face = synthetic_face(crown=100.0, eye=220.0, chin=330.0)
    w, h = spec.size_px

    def measure(prefer):
        plan = plan_by_rules(face, 100.0, spec.size_px, spec, prefer=prefer)
        assert plan.gave_way == []
        p = plan.placement
        top = p.apply(0, 100.0)[1]
        return p.apply(0, face.chin_y)[1] - top, top

    lo, hi = spec.rule_px("head")
    small, _ = measure({"head": 0.0})
    middle, _ = measure({})
    large, _ = measure({"head": 1.0})
    assert lo - 0.5 <= small < middle < large <= hi + 0.5
    assert large - small > 0.5 * (hi - lo)            # most of the range is reachable (the eye line may limit it)
    _, near = measure({"top": 0.0})
    _, far = measure({"top": 1.0})
    assert near < far - 0.01 * h
    rule = spec.rule_px("top")
    if rule is not None:
        assert rule[0] - 0.5 <= near and far <= rule[1] + 0.5
    else:
        assert near >= 0.03 * h - 0.5                 # never on the edge


def test_head_size_options_are_checked_against_the_spec():
    from idphoto.options import IDPhotoOptions, OptionsError

    assert IDPhotoOptions(head_size=25, top_margin=100).prefer() == {"head": 0.25, "top": 1.0}
    for bad, words in ((dict(head_size=101), "between 0 and 100"), (dict(top_margin=-1), "between 0 and 100"),
                       (dict(head_size=50, spec="cn-id-card"), "no range for the head height"),
                       (dict(head_size=50, spec="none"), "choose a spec")):
        with pytest.raises(OptionsError, match=words):
            IDPhotoOptions(**bad).validate()
