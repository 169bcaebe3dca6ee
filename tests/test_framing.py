"""idphoto.framing and compose_id_photo: no pixel is invented. A photo ending at the chest or with hair at its
top edge is framed with what it holds, or refused with the reason; levelled photos leave nothing stretched."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from idphoto.errors import IDPhotoError
from idphoto.face import FaceBox
from idphoto.framing import (MAX_TOP_CUT, ROOM_SLACK, RULE_SLACK, FramingPlan, PhotoEdges, Placement, body_bottom,
                             check_shoulder_room, check_top_cut, composite, level, level_rotation, make_background,
                             place_by_face, place_by_mask, place_centre, plan_by_rules, render, side_room, top_cut,
                             warp_down)
from idphoto.maker import compose_id_photo
from idphoto.output import parse_color
from idphoto.specs import PhotoSpec, get_spec
from conftest import disk_scene, synthetic_face


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


# ---------------------------------------------------------------------------------------------- framing


def test_composite_is_foreground_times_alpha_over_the_background():
    fg = np.array([[[1.0, 0.5, 0.0], [0.2, 0.4, 0.6]]], np.float32)
    alpha = np.array([[0.5, 1.0]], np.float32)
    out = composite(fg, alpha, (0, 0, 255))
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    expected = np.round((fg * alpha[..., None] + np.array([0, 0, 1.0]) * (1 - alpha[..., None])) * 255)
    assert (out == expected).all()
    assert tuple(composite(fg, np.zeros((1, 2), np.float32), (10, 20, 30))[0, 0]) == (10, 20, 30)
    assert (composite(np.zeros((2, 2, 3), np.float32), np.ones((2, 2), np.float32), (9, 9, 9)) == 0).all()   # black stays 0


def test_placement_matrix_is_its_mapping():
    p = Placement(1.5, -20.0, 7.0)
    m = p.matrix()
    assert m.shape == (2, 3) and np.allclose(m @ [10, 4, 1], p.apply(10, 4))


def test_place_centre_covers_the_canvas_and_centres_the_photo():
    for shape, size in (((300, 200), (100, 150)), ((100, 400), (120, 120)), ((400, 100), (120, 120))):
        p = place_centre(shape, size)
        h, w = shape
        assert p.apply(w / 2, h / 2) == pytest.approx((size[0] / 2, size[1] / 2))
        x0, y0 = p.apply(0, 0)
        x1, y1 = p.apply(w, h)
        assert x0 <= 1e-9 and y0 <= 1e-9 and x1 >= size[0] - 1e-9 and y1 >= size[1] - 1e-9
        assert min(abs(x0), abs(y0)) < 1e-9                            # as small as covering allows


def test_place_by_mask_centres_the_persons_box_below_the_top_margin():
    spec = get_spec("1inch")
    size = (295, 413)
    alpha = np.zeros((200, 300), np.float32)
    alpha[40:190, 100:160] = 1.0                                        # a tall thin person, off-centre
    alpha[60, 90] = 0.5                                                 # not above 0.5: not the person
    p = place_by_mask(alpha, size, spec)
    left, top = p.apply(100, 40)
    right, bottom = p.apply(160, 190)
    assert (left + right) / 2 == pytest.approx(size[0] / 2)
    assert top == pytest.approx(spec.top_ratio * size[1])
    assert bottom == pytest.approx(size[1]) and right - left < 0.9 * size[0]   # the height decides
    wide = np.zeros((200, 300), np.float32)
    wide[150:190, 20:280] = 1.0
    p = place_by_mask(wide, size, spec)
    assert p.apply(280, 0)[0] - p.apply(20, 0)[0] == pytest.approx(0.9 * size[0])  # the width decides
    one = np.zeros((50, 50), np.float32)
    one[10, 20] = 1.0
    assert place_by_mask(one, size, spec) is not None and place_by_mask(np.zeros((5, 5)), size, spec) is None


def test_level_rotation_keeps_the_whole_photo_on_a_tight_canvas():
    shape = (120, 80)
    for degrees, centre in ((12.0, (30.0, 50.0)), (-25.0, (60.0, 20.0))):
        m, (cw, ch) = level_rotation(shape, centre, degrees)
        corners = np.array([[0, 0, 1], [80, 0, 1], [0, 120, 1], [80, 120, 1]], float) @ m.T
        assert corners[:, 0].min() >= -1e-6 and corners[:, 1].min() >= -1e-6
        assert corners[:, 0].max() <= cw + 1e-6 and corners[:, 1].max() <= ch + 1e-6
        assert corners[:, 0].min() < 1 and corners[:, 1].min() < 1 and corners[:, 0].max() > cw - 1 and corners[:, 1].max() > ch - 1
        # a turn about the given centre: distances from it are kept, the angle is the one asked for
        c = m @ [*centre, 1]
        p = m @ [centre[0] + 10, centre[1], 1]
        assert np.hypot(*(p - c)) == pytest.approx(10)
        assert np.degrees(np.arctan2(-(p - c)[1], (p - c)[0])) == pytest.approx(degrees)
        photo = np.full((120, 80, 3), 200, np.uint8)
        photo[:, :40] = 50
        photo[0] = photo[-1] = 90                                      # the border's median colour: 90
        turned, a, fg = level(m, (cw, ch), photo, np.ones((120, 80), np.float32), photo / 255.0)
        assert turned.shape == (ch, cw, 3) and a.shape == (ch, cw) and fg.shape == (ch, cw, 3)
        assert a[0, 0] == 0 and a[-1, -1] == 0 and a.max() == 1        # nothing invented in the new corners
        assert (turned[a == 0] == 90).all()                            # which take the photo's border colour
        assert len(np.unique(turned[..., 0][a == 1])) > 2              # bilinear along the turned edge


def coded_photo(h=300, w=240):
    """A foreground whose channels are the row and column (so a canvas pixel tells where it came from)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([yy / h, xx / w, np.full((h, w), 0.5, np.float32)])


@pytest.mark.parametrize("placement", [Placement(0.5, -50.0, -30.0), Placement(1.7, -120.0, -200.0),
                                       Placement(0.8, 60.0, 40.0), Placement(1.0, -10.0, -10.0)])
def test_render_puts_each_photo_pixel_where_the_placement_says(placement):
    fg = coded_photo()
    alpha = np.ones((300, 240), np.float32)
    size = (160, 200)
    out, a = render(fg, alpha, placement, size, (0, 0, 0), return_alpha=True)
    assert out.shape == (200, 160, 3) and a.shape == (200, 160)
    s, tx, ty = placement.scale, placement.tx, placement.ty
    vv, uu = np.mgrid[0:200, 0:160]
    x, y = (uu - tx) / s, (vv - ty) / s                                  # the photo point under each canvas pixel centre
    inside = (x > 3) & (x < 237) & (y > 3) & (y < 297)
    assert inside.sum() > 1000
    got_y, got_x = out[..., 0] / 255.0 * 300, out[..., 1] / 255.0 * 240
    # canvas pixel centre (u, v) shows the photo at ((u + ½ − tx)/s − ½, …), within a pixel of the photo
    assert np.abs(got_y - ((vv + 0.5 - ty) / s - 0.5))[inside].max() < 2.5
    assert np.abs(got_x - ((uu + 0.5 - tx) / s - 0.5))[inside].max() < 2.5
    assert (a[inside] > 0.99).all()
    outside = (x < -3) | (x > 243) | (y < -3) | (y > 303)
    if outside.any():
        assert (a[outside] == 0).all() and (out[outside] == 0).all()   # nothing but the background there


def test_render_upscales_smoothly():
    fg = np.full((60, 60, 3), 0.5, np.float32)
    alpha = np.zeros((60, 60), np.float32)
    alpha[15:45, 15:45] = 1.0                                             # a hard-edged grey square
    out, a = render(fg, alpha, Placement(3.0, 0.0, 0.0), (180, 180), (255, 255, 255), return_alpha=True)
    assert len(np.unique(np.round(a[90], 3))) > 2                         # interpolated edges, not nearest-neighbour steps
    assert (np.abs(out[60:120, 60:120].astype(int) - 128) <= 1).all() and (out[:30, :30] == 255).all()


def test_render_composites_soft_edges_from_the_premultiplied_colour():
    fg = np.zeros((40, 40, 3), np.float32)
    fg[...] = (0.8, 0.2, 0.4)
    alpha = np.full((40, 40), 0.5, np.float32)
    out = render(fg, alpha, Placement(1.0, 0.0, 0.0), (40, 40), (0, 0, 255))
    expected = np.round(np.array([0.8, 0.2, 0.4]) * 0.5 * 255 + np.array([0, 0, 255]) * 0.5)
    assert (np.abs(out[5:35, 5:35].astype(int) - expected) <= 1).all()


def test_render_keep_places_the_photo_itself_and_fills_beyond_it_with_its_border_colour():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (50, 40, 3), np.uint8)
    alpha = np.ones((50, 40), np.float32)
    same = render(photo / 255.0, alpha, Placement(1.0, 0.0, 0.0), (40, 50), (0, 0, 0), keep=photo)
    assert (same == photo).all()                                          # scale 1: the photo, byte for byte
    moved = render(photo / 255.0, alpha, Placement(1.0, 10.0, 0.0), (40, 50), (0, 0, 255), keep=photo)
    edge = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    assert (moved[:, :9] == np.round(np.median(edge, axis=0))).all()      # one flat colour, no edge rows repeated
    assert (moved[:, 10:] == photo[:, :30]).all()
    edge = np.zeros((20, 20, 3), np.uint8)
    edge[:, 10:] = 255
    big = render(edge / 255.0, np.ones((20, 20), np.float32), Placement(4.0, 0.0, 0.0), (80, 80), (0, 0, 0), keep=edge)
    assert (big[:, 40:] >= 250).all() and (big[:, :37] <= 5).all()       # the bicubic overshoot clipped, never wrapped round


def test_render_with_nothing_of_the_photo_on_the_canvas():
    fg = np.ones((30, 30, 3), np.float32)
    alpha = np.ones((30, 30), np.float32)
    out = render(fg, alpha, Placement(1.0, 500.0, 500.0), (20, 20), (1, 2, 3))
    assert (out == (1, 2, 3)).all()
    for off in (Placement(1.0, 500.0, 0.0), Placement(1.0, -500.0, 0.0), Placement(1.0, 0.0, 500.0)):   # off on one side only
        assert (render(fg, alpha, off, (20, 20), (1, 2, 3)) == (1, 2, 3)).all()
    photo = np.zeros((30, 30, 3), np.uint8)
    photo[0, 0] = (9, 9, 9)
    photo[-1, -1] = (7, 7, 7)
    kept = render(fg, alpha, Placement(1.0, 500.0, 500.0), (20, 20), (1, 2, 3), keep=photo)
    assert (kept == 0).all()                                              # the border's median colour
    photo[0] = 9
    kept = render(fg, alpha, Placement(1.0, -500.0, -500.0), (20, 20), (1, 2, 3), keep=photo)
    assert (kept == 0).all()


def test_render_never_continues_a_body_cut_by_the_bottom_edge():
    fg = np.zeros((100, 80, 3), np.float32)
    fg[...] = (0.1, 0.3, 0.9)
    alpha = np.zeros((100, 80), np.float32)
    alpha[30:, 20:60] = 1.0                                               # a body cut by the photo's bottom edge
    out, a = render(fg, alpha, Placement(1.0, 0.0, 0.0), (80, 160), (255, 255, 255), return_alpha=True)
    assert (np.abs(out[40:98, 25:55].astype(int) - np.round(np.array([0.1, 0.3, 0.9]) * 255)) <= 1).all()
    assert (a[101:] == 0).all() and (out[101:] == 255).all()              # below the photo: background only


def test_render_shrinks_like_compositing_at_full_size_and_area_averaging():
    """The docstring's promise: resampling only the crop, premultiplied, is the full-size composite shrunk by
    area averaging. At scale ¼ with t = −0.375 each 4×4 block of photo pixels (centre index 4r + 1.5) lands
    exactly on canvas pixel r, so the canvas is the block average, pixel for pixel."""
    rng = np.random.default_rng(1)
    fg = rng.random((80, 80, 3), dtype=np.float32)
    alpha = rng.random((80, 80), dtype=np.float32)
    bg = np.array((40.0, 120.0, 200.0), np.float32)
    out, a = render(fg, alpha, Placement(0.25, -0.375, -0.375), (20, 20), tuple(bg), return_alpha=True)
    full = fg * alpha[..., None] * 255.0 + bg * (1.0 - alpha[..., None])
    expected = cv2.resize(full, (20, 20), interpolation=cv2.INTER_AREA)
    assert out.shape == (20, 20, 3) and np.abs(out - expected).max() <= 0.51
    assert np.abs(a - alpha.reshape(20, 4, 20, 4).mean(axis=(1, 3))).max() < 1e-5


@pytest.mark.parametrize("placement", [Placement(1.5, 0.0, 0.0), Placement(1.0, 0.5, 0.25), Placement(2.5, -3.0, -1.0)])
def test_render_enlarges_bicubically(placement):
    """At scale 1 or more the photo (colour and alpha) is resampled bicubically at the placement: the canvas
    is cv2's bicubic warp of the photo by the placement's matrix (away from the photo's edges)."""
    rng = np.random.default_rng(2)
    fg = cv2.GaussianBlur(rng.random((40, 40, 3), dtype=np.float32), (0, 0), 1.0) * 0.8 + 0.1
    soft = cv2.GaussianBlur(rng.random((40, 40), dtype=np.float32), (0, 0), 1.0)
    size = (60, 60)
    m = placement.matrix()
    vv, uu = np.mgrid[0:60, 0:60]
    x, y = (uu - placement.tx) / placement.scale, (vv - placement.ty) / placement.scale
    inside = (x > 3) & (x < 36) & (y > 3) & (y < 36)
    out = render(fg, np.ones((40, 40), np.float32), placement, size, (0, 0, 0))
    ref = np.round(np.clip(cv2.warpAffine(fg, m, size, flags=cv2.INTER_CUBIC), 0, 1) * 255)
    assert np.abs(out - ref)[inside].max() <= 1
    _, a = render(fg, soft, placement, size, (0, 0, 0), return_alpha=True)
    ref_a = np.clip(cv2.warpAffine(soft, m, size, flags=cv2.INTER_CUBIC), 0, 1)
    assert np.abs(a - ref_a)[inside].max() < 1e-4


def test_render_clips_the_bicubic_overshoot_of_alpha_and_colour():
    """Bicubic enlargement overshoots at a hard edge (below 0 outside, above 1 inside); the canvas alpha is
    clipped back to [0, 1] and the premultiplied colour to [0, α], so the composite never goes past the
    person's or the background's colour."""
    alpha = np.zeros((30, 30), np.float32)
    alpha[8:22, 8:22] = 1.0
    placement = Placement(2.5, 0.0, 0.0)
    raw = cv2.warpAffine(alpha, placement.matrix(), (75, 75), flags=cv2.INTER_CUBIC)
    assert raw.min() < -0.01 and raw.max() > 1.01                        # the overshoot is there to clip
    out, a = render(np.full((30, 30, 3), 0.4, np.float32), alpha, placement, (75, 75), (200, 200, 200), return_alpha=True)
    assert a.min() == 0.0 and a.max() == 1.0
    assert out.min() >= 101 and out.max() <= 200                          # between 0.4·255 and the background
    assert (out[a == 0] == 200).all()                                     # no dark fringe outside the person
    # a black-to-white step under a half-transparent matte: F·α rings past 0 and past α; clipped, the canvas
    # stays between black and white at α = ½ over the background: 100·½ = 50 … 255·½ + 50 = 177.5
    fg = np.zeros((30, 30, 3), np.float32)
    fg[:, 15:] = 1.0
    raw = cv2.warpAffine(fg * 0.5, placement.matrix(), (75, 75), flags=cv2.INTER_CUBIC)
    assert raw[20:55, 20:55].min() < -0.01 and raw[20:55, 20:55].max() > 0.51
    out = render(fg, np.full((30, 30), 0.5, np.float32), placement, (75, 75), (100, 100, 100))
    assert out[20:55, 20:55].min() == 50 and out[20:55, 20:55].max() == 178

def test_render_with_the_photo_just_off_the_canvas():
    """Photo columns 0–29 land on canvas columns −32…−3 (and the same for rows): nothing of it is on the
    canvas, by exactly the 2 px of slack."""
    fg = np.ones((30, 30, 3), np.float32)
    alpha = np.ones((30, 30), np.float32)
    photo = np.zeros((30, 30, 3), np.uint8)
    photo[:, -1] = (9, 9, 9)
    photo[-1, :] = (7, 7, 7)
    assert (render(fg, alpha, Placement(1.0, -32.0, 0.0), (20, 20), (1, 2, 3)) == (1, 2, 3)).all()
    assert (render(fg, alpha, Placement(1.0, 0.0, -32.0), (20, 20), (1, 2, 3)) == (1, 2, 3)).all()
    kept = render(fg, alpha, Placement(1.0, -32.0, 0.0), (20, 20), (1, 2, 3), keep=photo)
    edge = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    assert (kept == np.median(edge, axis=0)).all() and len(np.unique(kept)) == 1   # the border's median colour


def test_backgrounds_gradient_and_radial_values():
    c = (200, 100, 50)
    grad = make_background((30, 41), c, "gradient")
    assert grad.dtype == np.float32 and grad.shape == (41, 30, 3)
    assert np.allclose(grad[0, 0], c) and np.allclose(grad[-1, 0], np.array(c) * 0.4 + 255 * 0.6)
    assert np.allclose(grad[20, 0], np.array(c) * 0.7 + 255 * 0.3, atol=1e-3)   # linear in between
    rad = make_background((31, 41), c, "radial")
    assert np.allclose(rad[20, 15], np.array(c) * 0.4 + 255 * 0.6)       # the middle: 60 % white
    assert np.abs(rad[0, 0] - c).max() < 4 and np.abs(rad[-1, -1] - c).max() < 4   # the corners: (almost) the colour
    assert np.allclose(rad, rad[::-1]) and np.allclose(rad, rad[:, ::-1])  # symmetric about the middle
    f = 0.6 * (1 - (15 / 15.5) / np.sqrt(2))                             # the middle of the left edge
    assert np.allclose(rad[20, 0], np.array(c) * (1 - f) + 255 * f, atol=0.01)
    f = 0.6 * (1 - (20 / 20.5) / np.sqrt(2))                             # the middle of the top edge
    assert np.allclose(rad[0, 15], np.array(c) * (1 - f) + 255 * f, atol=0.01)
    solid = make_background((4, 3), c)
    assert solid.dtype == np.float32 and (solid == c).all()
    with pytest.raises(ValueError, match="unknown background style 'dots'; choose one of solid, gradient, radial"):
        make_background((4, 3), c, "dots")


# --------------------------------------------------------------------------------------- framing by rules


def plan_for(spec, face=None, crown=100.0):
    face = face or synthetic_face()
    plan = plan_by_rules(face, crown, spec.size_px, spec)
    p = plan.placement
    h = spec.size_px[1]
    measured = {"head": p.apply(0, face.chin_y)[1] - p.apply(0, crown)[1], "top": p.apply(0, crown)[1],
                "eyes": h - p.apply(0, face.eye_y)[1]}
    return plan, measured


def test_the_plan_reports_what_it_placed():
    for name in ("1inch", "us-passport", "cn-id-card"):
        plan, m = plan_for(get_spec(name))
        assert plan.head_px == pytest.approx(m["head"], abs=1e-6) and plan.top_px == pytest.approx(m["top"], abs=1e-6)
        assert plan.eyes_px == pytest.approx(m["eyes"], abs=1e-6)


def test_without_conflicts_each_rule_is_met_at_the_middle_of_its_range():
    spec = get_spec("1inch")                                              # head and top margin, both two-sided
    plan, m = plan_for(spec)
    (hlo, hhi), (tlo, thi) = spec.rule_px("head"), spec.rule_px("top")
    assert m["head"] == pytest.approx((hlo + hhi) / 2, abs=1.0) and m["top"] == pytest.approx((tlo + thi) / 2, abs=1.0)
    spec = get_spec("icao")                                               # head only: the crown 30 % down the free height
    plan, m = plan_for(spec)
    lo, hi = spec.rule_px("head")
    h = spec.size_px[1]
    assert m["head"] == pytest.approx((lo + hi) / 2, abs=1.0)
    assert m["top"] == pytest.approx(0.3 * (h - m["head"]), abs=1.0)


def test_a_spec_with_nothing_that_sets_the_size_takes_the_head_at_its_share():
    spec = PhotoSpec("bare", 35, 45, head=None, top=(0.05, 0.1))
    plan, m = plan_for(spec)
    h = spec.size_px[1]
    assert m["head"] == pytest.approx(spec.head_ratio * h, abs=0.01 * h)
    assert 0.05 * h - 0.5 <= m["top"] <= 0.1 * h + 0.5 and plan.gave_way == []


def test_a_one_sided_rule_is_met_close_to_its_bound():
    spec = PhotoSpec("eyes-low", 35, 45, head=(0.5, 0.6), eyes=(None, 0.5), top=None)
    plan, m = plan_for(spec)
    h = spec.size_px[1]
    assert m["eyes"] <= 0.5 * h + 0.5 and m["eyes"] > 0.5 * h - 0.05 * h     # inside, near the bound
    assert plan.gave_way == []


def test_a_rule_that_gives_way_is_reported_with_the_value_it_got():
    spec = PhotoSpec("eyes-impossible", 35, 45, head=(0.7, 0.8), eyes=(None, 0.1), top=None)
    plan, m = plan_for(spec)
    h = spec.size_px[1]
    assert f"eye line {m['eyes']:.0f} px, above {0.1 * h:.0f}" in plan.gave_way
    lo, hi = spec.rule_px("head")
    assert lo - 2 <= m["head"] <= hi + 0.5                                  # the head size holds (nearly)
    spec = PhotoSpec("top-impossible", 35, 45, head=(0.9, 0.95), top=(0.2, 0.3))
    plan, m = plan_for(spec)
    assert f"top margin {m['top']:.0f} px, below {0.2 * h:.0f}" in plan.gave_way
    assert m["top"] + m["head"] <= 0.97 * h + 1                             # the chin stays on the canvas


def test_a_face_without_landmarks_is_framed_by_its_box():
    from idphoto.face import FaceBox

    spec = get_spec("us-passport")                                        # it has an eye-line rule
    face = FaceBox(210.0, 120.0, 180.0, 210.0, None, 1.0, "haar")
    assert face.eye_y is None
    plan = plan_by_rules(face, 100.0, spec.size_px, spec)
    lo, hi = spec.rule_px("head")
    assert plan.eyes_px is None and lo - 0.5 <= plan.head_px <= hi + 0.5 and plan.gave_way == []


def test_render_takes_the_opaque_colours_from_the_photo_and_blends_them_in_above_opaque_from():
    """render's ``photo``: where the person is opaque its colours come from the (larger) photo, resampled once;
    below OPAQUE_FROM the foreground's; in between a linear blend — the matte's edge keeps its own colours."""
    from idphoto.framing import OPAQUE_FROM, Placement, render

    h, w = 40, 100
    alpha = np.tile(np.clip(np.linspace(-0.2, 1.2, w), 0, 1).astype(np.float32), (h, 1))   # 0 left, 1 right
    fg = np.zeros((h, w, 3), np.float32)
    fg[..., 0] = 1.0                                                              # the foreground: blue
    photo = np.zeros((2 * h, 2 * w, 3), np.uint8)
    photo[..., 2] = 200                                                           # the photo (twice as large): red
    to_canvas = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25]])                      # its pixel centres onto the canvas's
    out = render(fg, alpha, Placement(1.0, 0.0, 0.0), (w, h), (0, 0, 0), photo=(photo, to_canvas)).astype(float)
    a = alpha[h // 2]
    row = out[h // 2]
    t = np.clip((a - OPAQUE_FROM) / (1 - OPAQUE_FROM), 0, 1)
    want_b, want_r = 255 * a * (1 - t), 200 * a * t                               # premultiplied over black
    inner = slice(2, w - 2)                                                       # away from the canvas's edges
    assert np.abs(row[inner, 0] - want_b[inner]).max() <= 1.5
    assert np.abs(row[inner, 2] - want_r[inner]).max() <= 1.5
    assert row[-5, 2] > 195 and row[-5, 0] < 2                                    # opaque: the photo's red
    assert row[w // 2, 0] > 100 and row[w // 2, 2] < 1                            # half alpha: the foreground's blue


def test_warp_down_of_a_photo_that_lands_nowhere_is_an_empty_canvas():
    from idphoto.framing import warp_down

    src = np.full((50, 40, 3), 200, np.uint8)
    off = np.array([[0.5, 0, 500.0], [0, 0.5, 500.0]])                  # far right and below the canvas
    out = warp_down(src, off, (30, 20))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8 and not out.any()
    grey = warp_down(src[..., 0], off, (30, 20))
    assert grey.shape == (20, 30) and grey.dtype == np.uint8


def test_top_cut_looks_over_the_middle_of_the_face_only():
    """Half an eye distance either side of the axis with landmarks, a quarter of the box without; the row just
    under the edge must be mostly (over 30 %) person there."""
    from idphoto.face import FaceBox

    face = synthetic_face(crown=10, eye=60, chin=120, cx=100)             # eyes 90 px apart: columns 55–145
    alpha = np.zeros((200, 200), np.float32)
    alpha[:, 150:] = 1.0                                                  # person beside the face, not over it
    assert top_cut(alpha, face) is None
    alpha[:, 100:] = 1.0                                                  # half the face's middle: over 30 %
    assert top_cut(alpha, face) == 0.0
    alpha[:] = 0.0
    alpha[1:, 100:127] = 1.0                                              # 27 of 91 columns: not over 30 %
    assert top_cut(alpha, face) is None
    box = FaceBox(60.0, 40.0, 80.0, 80.0)                                 # no landmarks: columns 80–120
    alpha[:] = 0.0
    alpha[1:2, 80:121] = 1.0                                              # only the row just under the edge
    assert top_cut(alpha, box) == 0.0
    alpha[1:2, 80:121] = 0.0
    alpha[0:1, 80:121] = 1.0                                              # the edge row itself is not "just under"
    assert top_cut(alpha, box) is None


# ------------------------------------------------------------------------- the photo's edges and what they cut


def test_photo_edges_follow_the_sides_of_a_turned_photo():
    """PhotoEdges.of maps the photo's corners by the affine; each edge is read along its segment (both corners
    included) and is NaN beyond it, also where the coordinates are negative."""
    m = np.array([[1.0, 0.5, -40.0], [-0.5, 1.0, 30.0]])                 # turned (and grown), moved left
    edges = PhotoEdges.of((40, 40), m)
    assert np.array_equal(edges.corners, [[-40, 30], [0, 10], [20, 50], [-20, 70]])
    nan = np.nan
    # top: (-40, 30) to (0, 10); right: (0, 10) to (20, 50); bottom: (-20, 70) to (20, 50); left: (-40, 30) to (-20, 70)
    np.testing.assert_array_equal(edges.top_at(np.array([-40.0, -20.0, 0.0, -41.0, 1.0])), [30, 20, 10, nan, nan])
    np.testing.assert_array_equal(edges.right_at(np.array([10.0, 30.0, 50.0, 9.0, 51.0])), [0, 10, 20, nan, nan])
    np.testing.assert_array_equal(edges.bottom_at(np.array([-20.0, 0.0, 20.0, 21.0])), [70, 60, 50, nan])
    np.testing.assert_array_equal(edges.left_at(np.array([30.0, 50.0, 70.0, 29.0])), [-40, -30, -20, nan])
    assert np.array_equal(PhotoEdges.of((40, 30)).corners, [[0, 0], [30, 0], [30, 40], [0, 40]])   # no affine: as is


def test_photo_edges_of_a_one_pixel_photo_and_of_an_edge_along_the_reading_direction():
    """A photo one pixel wide still has a top and a bottom edge at its column's centre; an edge with no extent
    along the coordinate it is read by (a photo turned by 90°: its top edge is vertical, read by x) has no value:
    NaN for every point asked."""
    narrow = PhotoEdges.of((10, 1))
    assert narrow.top_at(np.array([0.5]))[0] == 0.0 and narrow.bottom_at(np.array([0.5]))[0] == 10.0
    turned = PhotoEdges.of((4, 6), np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 6.0]]))   # (x, y) → (y, 6 − x)
    assert np.array_equal(turned.corners, [[0, 6], [0, 0], [4, 0], [4, 6]])
    vs = np.array([0.0, 0.5, 2.0])
    for read in (turned.top_at(vs), turned.bottom_at(vs), turned.right_at(vs), turned.left_at(vs)):
        assert read.shape == (3,) and np.isnan(read).all()


def test_body_bottom_is_the_lowest_row_of_a_person_who_does_not_reach_the_bottom_edge():
    """Not cut by the bottom edge: one past the person's lowest row over the columns read (1.2 face widths
    either side of the axis by default); alpha of exactly ½ is not the person, columns without the person
    are never 'cut'."""
    face = synthetic_face(crown=100, eye=150, chin=240, cx=300)          # face.w = 180: columns 84 … 516 are read
    alpha = np.zeros((400, 600), np.float32)
    alpha[100:250, 250:350] = 1.0                                        # head and neck, ending at row 249
    alpha[150:300, 90:100] = 1.0                                         # an arm 200–210 px from the axis, to row 299
    alpha[200:, 530:540] = 1.0                                           # 230 px from the axis (not read), cut by the edge
    alpha[350, 250:350] = 0.5                                            # not over ½: not the person
    assert body_bottom(alpha, face) == 300.0
    assert body_bottom(alpha, face, half_width=60) == 250.0              # the arm is not read either
    one = np.zeros((400, 600), np.float32)
    one[120, 280:320] = 1.0                                              # a person one row high
    assert body_bottom(one, face) == 121.0
    assert body_bottom(np.zeros((400, 600), np.float32), face) == 240.0  # nobody under the face: the chin


def test_body_bottom_reads_half_width_pixels_either_side_of_the_axis():
    """Columns int(axis − half) … int(axis + half) are read; none beyond; from column 0 near the left edge; a
    face whose columns all lie beyond the photo reads nothing: the photo's bottom row."""
    face = synthetic_face(crown=100, eye=150, chin=240, cx=300)
    alpha = np.zeros((400, 600), np.float32)
    alpha[100:200, 280:320] = 1.0                                        # the person, to row 199
    alpha[100:260, 350] = 1.0                                            # column 350 = axis + 50: read
    alpha[100:320, 351] = 1.0                                            # column 351: not read
    alpha[100:330, 249] = 1.0                                            # column 249: not read
    assert body_bottom(alpha, face, half_width=50) == 260.0
    near = synthetic_face(crown=100, eye=150, chin=240, cx=30)           # columns 0 … 80
    alpha = np.zeros((400, 600), np.float32)
    alpha[100:200, 10:50] = 1.0
    alpha[100:280, 0] = 1.0                                              # the photo's first column
    assert body_bottom(alpha, near, half_width=50) == 280.0
    for cx in (650.0, 700.0):                                            # columns from 600 (= the width) on
        beyond = synthetic_face(crown=100, eye=150, chin=240, cx=cx)
        assert body_bottom(alpha, beyond, half_width=50) == 400.0


def test_body_bottom_counts_a_person_within_2_px_of_the_bottom_edge_as_cut_by_it():
    face = synthetic_face(crown=100, eye=150, chin=240, cx=300)
    alpha = np.zeros((400, 600), np.float32)
    alpha[100:398, 250:350] = 1.0                                        # rows 398 and 399 empty: within 2 px
    assert body_bottom(alpha, face) == 400.0
    alpha[397] = 0.0                                                     # 3 px short of the edge: not cut
    assert body_bottom(alpha, face) == 397.0


def test_body_bottom_on_a_steep_edge_is_the_edges_row_under_the_cut_column():
    """The bottom edge climbs from (0, 1) to (39, 40): at column c it is at row c + 1.5 (read at the column's
    centre). The person's pixel at row 0 of column 1 is within 2 px of it (2.5): cut there. Column 0, where
    the edge is higher still (1.5), has no person, so it is not cut; the block lower down ends well above
    the edge."""
    edges = PhotoEdges(np.array([[0.0, 0.0], [39.0, 0.0], [39.0, 40.0], [0.0, 1.0]]))
    face = synthetic_face(crown=2, eye=5, chin=8, cx=20)
    alpha = np.zeros((40, 40), np.float32)
    alpha[0, 1] = 1.0
    alpha[5:10, 20:25] = 1.0
    assert body_bottom(alpha, face, edges, half_width=20) == 2.5
    alpha[0, 1] = 0.0
    assert body_bottom(alpha, face, edges, half_width=20) == 10.0


def test_side_room_reads_every_row_from_the_crown_to_the_bottom_and_no_other():
    """Rows crown … bottom − 1 (the first and last of the photo included; at least the crown's row, and the
    last row when the crown is at or past it); the room is the distance from the axis to the edge that cuts."""
    face = synthetic_face(crown=0, eye=40, chin=70, cx=80)               # the axis: 80 px from the left, 120 from the right

    def room(left=(), right=(), crown=0.0, bottom=100.0):
        alpha = np.zeros((100, 200), np.float32)
        for r in left:
            alpha[r, :10] = 1.0                                          # cut by the left edge in row r
        for r in right:
            alpha[r, -10:] = 1.0
        return side_room(alpha, face, crown, bottom)

    assert room([0]) == 80.0 and room([99]) == 80.0
    assert room(right=[0]) == 120.0 and room(right=[99]) == 120.0
    assert room([20], crown=21, bottom=80) is None and room([80], crown=21, bottom=80) is None
    assert room([21], crown=21, bottom=80) == 80.0 and room([79], crown=21, bottom=80) == 80.0
    assert room([21], [20], crown=20, bottom=10) == 120.0                 # bottom above the crown: the crown's row only
    assert room([98], [99], crown=99, bottom=100) == 120.0                # the last row only
    assert room([99], crown=100, bottom=100) == 80.0                      # a crown past the photo: its last row


def test_side_room_counts_a_person_2_px_inside_an_edge_with_alpha_over_a_quarter():
    face = synthetic_face(crown=0, eye=40, chin=70, cx=80)
    alpha = np.zeros((100, 200), np.float32)
    alpha[50:, :2] = alpha[50:, -2:] = 1.0                               # only the outer 2 columns (resampling's blur)
    assert side_room(alpha, face, 0, 100) is None
    alpha[50:, 2] = 1.0                                                  # the third column from the left: cut
    assert side_room(alpha, face, 0, 100) == 80.0
    alpha[:, :3] = 0.0
    alpha[50:, -3] = 1.0                                                 # the third from the right
    assert side_room(alpha, face, 0, 100) == 120.0
    alpha[50:, -3] = 0.25                                                # a quarter is not above a quarter
    assert side_room(alpha, face, 0, 100) is None
    alpha[50:, -3] = 0.3
    assert side_room(alpha, face, 0, 100) == 120.0


def test_side_room_of_a_photo_narrower_than_its_probes():
    """The probes 2 px inside each edge stay on the photo: on one 2 px wide the left probe reads its last
    column and the right probe its first (never wrapping round, never past the edge)."""
    alpha = np.zeros((10, 2), np.float32)
    alpha[:, 1] = 1.0
    face = FaceBox(0.8, 0.0, 2.0, 2.0)                                   # axis at x = 1.8
    assert side_room(alpha, face, 0, 10) == pytest.approx(1.8)           # the left edge cuts; the right one does not


def test_side_room_of_rows_beside_only_one_edge():
    """A turned square photo: its left edge runs from (0, 10) down to (10, 60), its right edge from (50, 0) to
    (60, 50), at x = 50 + y/5. Rows 0–9 have no left edge beside them; the right one still cuts there."""
    edges = PhotoEdges(np.array([[0.0, 10.0], [50.0, 0.0], [60.0, 50.0], [10.0, 60.0]]))
    alpha = np.zeros((60, 60), np.float32)
    alpha[2:10, 40:50] = 1.0                                             # the person against the right edge
    face = synthetic_face(crown=2, eye=20, chin=40, cx=30)
    assert side_room(alpha, face, 0, 10, edges) == pytest.approx(50 + 2.5 / 5 - 30)   # row 2's centre


def test_check_shoulder_room_measures_in_head_heights_and_passes_the_exact_need():
    spec = get_spec("1inch")
    face = synthetic_face(crown=230, eye=280, chin=330)                  # a head of 100 px
    plan = FramingPlan(Placement(1.0, 0.0, 0.0), 0.0, 0.0, None, [], room_needed=0.5 + ROOM_SLACK)
    check_shoulder_room(face, 230, 380, plan, spec)                      # 0.50 heads below the chin: just enough
    with pytest.raises(IDPhotoError, match=r"ends 0\.49 head heights below the chin: .* 1inch needs \(at least 0\.50\)"):
        check_shoulder_room(face, 230, 379, plan, spec)
    tall = FramingPlan(Placement(1.0, 0.0, 0.0), 0.0, 0.0, None, [], room_needed=1.0 + ROOM_SLACK)
    check_shoulder_room(face, 329, 331.5, tall, spec)                    # a head of 1 px: 1.5 px below is 1.5 heads
    with pytest.raises(IDPhotoError, match=r"ends 0\.50 head heights"):
        check_shoulder_room(face, 329, 330.5, tall, spec)


def test_check_shoulder_room_refuses_a_crop_that_breaks_a_rule_by_more_than_the_slack():
    """Beyond what the free plan breaks, keeping the cut edges off the photo may break a rule by at most
    RULE_SLACK of the height (413 px for 1inch: 20.65 px); the message lists the rules that gave way."""
    spec = get_spec("1inch")
    face = synthetic_face(crown=230, eye=280, chin=330)
    free = FramingPlan(Placement(1.0, 0.0, 0.0), 0.0, 0.0, None, [], worst_break=2.0)
    gave = ["head height 300 px, above 290", "top margin 5 px, below 10"]

    def tight(worst):
        return FramingPlan(Placement(1.0, 0.0, 0.0), 0.0, 0.0, None, gave, worst_break=worst)

    check_shoulder_room(face, 230, 600, tight(2.0 + RULE_SLACK * 413), spec, free)      # exactly the slack
    check_shoulder_room(face, 230, 600, tight(20.0), spec, free)
    check_shoulder_room(face, 230, 600, tight(100.0), spec)                              # no free plan: not checked
    want = ("the photo is cropped too tightly around the person for 1inch: keeping the body's cut edges out of the ID "
            "photo would break its rules (head height 300 px, above 290; top margin 5 px, below 10); use a photo "
            "with more room around the head and shoulders")
    with pytest.raises(IDPhotoError, match=re.escape(want) + "$"):
        check_shoulder_room(face, 230, 600, tight(23.0), spec, free)


def test_check_top_cut_is_the_share_of_the_head_above_the_edge():
    face = synthetic_face(crown=100, eye=200, chin=300)                  # a head of 200 px
    assert check_top_cut(face, 100, None) == 0.0
    assert check_top_cut(face, 100, 90) == 0.0                           # the edge above the crown cuts nothing
    assert check_top_cut(face, 100, 110) == pytest.approx(0.05)
    assert check_top_cut(face, 100, 120) == pytest.approx(MAX_TOP_CUT)   # the most allowed is allowed
    assert check_top_cut(face, 299, 299.05) == pytest.approx(0.05)       # a head of 1 px
    want = ("the top of the head is cut off by the photo's top edge (about 60 % of the head is missing; at most 10 % "
            "can be filled with the background); use a photo that shows the whole head")
    with pytest.raises(IDPhotoError, match=re.escape(want) + "$"):
        check_top_cut(face, 100, 220)


def test_top_cut_reads_half_the_eye_distance_with_landmarks_and_a_quarter_of_the_box_without():
    face = synthetic_face(crown=10, eye=60, chin=120, cx=100)
    narrow_box = FaceBox(face.x, face.y, 100.0, face.h, face.landmarks, 1.0, "landmarks")   # box quarter: 25 px
    alpha = np.zeros((200, 200), np.float32)
    alpha[:, 55:75] = alpha[:, 126:146] = 1.0                            # 40 of columns 55–145, none of 75–125
    assert top_cut(alpha, narrow_box) == 0.0                             # by the eyes: 44 %, cut
    box = FaceBox(91.0, 40.0, 18.0, 18.0)                                # no landmarks: 4.5 px either side of x = 100
    alpha = np.zeros((200, 200), np.float32)
    alpha[1, 99:102] = 1.0                                               # 3 of columns 95–104: 30 %, not over it
    assert top_cut(alpha, box) is None
    alpha[1, 98:102] = 1.0                                               # 4 of 10
    assert top_cut(alpha, box) == 0.0
    alpha[1, 95:105] = 0.5                                               # half transparent is not the person
    assert top_cut(alpha, box) is None


def test_top_cut_on_a_slanted_edge_is_its_row_at_the_axis_else_its_lowest_over_the_face():
    """A slanted top edge cuts at its row at the face's axis; where it is not above the axis (a photo turned far),
    its lowest point over the middle of the face counts, read at the columns' centres."""
    face = synthetic_face(crown=10, eye=60, chin=120, cx=100)           # columns 55–145
    slanted = PhotoEdges(np.array([[0.0, 20.0], [200.0, 0.0], [200.0, 200.0], [0.0, 200.0]]))   # top: 20 − x/10
    alpha = np.zeros((200, 200), np.float32)
    alpha[:, 40:160] = 1.0
    assert top_cut(alpha, face, slanted) == pytest.approx(10.0)         # at x = 100 (14.45 over column 55)
    edges = PhotoEdges(np.array([[120.0, 6.0], [300.0, 24.0], [280.0, 224.0], [100.0, 206.0]]))   # top: 6 + (x − 120)/10
    alpha = np.zeros((200, 300), np.float32)
    alpha[:, 110:200] = 1.0
    assert top_cut(alpha, face, edges) == pytest.approx(6 + (145.5 - 120) / 10)
    left = PhotoEdges(np.array([[0.0, 12.0], [20.0, 10.0], [30.0, 110.0], [10.0, 112.0]]))       # top: 12 − x/10
    near = synthetic_face(crown=10, eye=60, chin=120, cx=30)            # columns 0–75
    alpha = np.zeros((200, 300), np.float32)
    alpha[:, :40] = 1.0
    assert top_cut(alpha, near, left) == pytest.approx(12 - 0.5 / 10)    # column 0's centre


def test_top_cut_reads_the_row_just_under_the_edge_within_the_alpha():
    """The row just inside the edge is clamped to the alpha: an edge above it reads row 0, one at its last
    row reads that row."""
    face = synthetic_face(crown=10, eye=60, chin=120, cx=20)            # columns 0–39
    alpha = np.zeros((60, 40), np.float32)
    alpha[0] = 1.0
    above = PhotoEdges(np.array([[0.0, -5.0], [40.0, -5.0], [40.0, 60.0], [0.0, 60.0]]))
    assert top_cut(alpha, face, above) == -5.0
    alpha[:] = 0.0
    alpha[59] = 1.0
    low = PhotoEdges(np.array([[0.0, 58.5], [40.0, 58.5], [40.0, 60.0], [0.0, 60.0]]))
    assert top_cut(alpha, face, low) == 58.5


def test_level_repeats_the_foregrounds_edges_beyond_the_photo():
    """The levelled foreground repeats its edges into the new corners, so interpolation at the turned edges
    has no dark fringe: a foreground of one colour stays that colour everywhere."""
    m, size = level_rotation((40, 30), (15.0, 20.0), 20.0)
    fg = np.empty((40, 30, 3), np.float32)
    fg[:] = (0.2, 0.5, 0.8)
    alpha, turned = level(m, size, np.ones((40, 30), np.float32), fg)
    assert alpha[0, 0] == 0.0 and turned.shape == (size[1], size[0], 3)
    assert np.abs(turned - np.array([0.2, 0.5, 0.8], np.float32)).max() < 1e-6


def test_render_fades_the_persons_colour_at_the_photos_edge_with_the_alpha():
    """Where the photo's edge lies on the canvas (the person opaque up to it), the canvas alpha falls off and
    the colour there is F·α over the background: nothing from beyond the photo (no border colour, no
    repeated edge) is mixed into the premultiplied colour."""
    colour = np.array([0.2, 0.4, 0.6])
    fg = np.empty((30, 30, 3), np.float32)
    fg[:] = colour
    bg = np.array([255.0, 255.0, 255.0])
    out, a = render(fg, np.ones((30, 30), np.float32), Placement(1.0, 10.5, 10.5), (60, 60), tuple(bg),
                    return_alpha=True)
    soft = (a > 0) & (a < 1)                                             # the canvas pixels the photo's edges cross
    assert soft.sum() > 100
    want = colour * a[..., None] * 255 + bg * (1 - a[..., None])
    assert np.abs(out - want)[soft].max() <= 1.0
    assert (out[a == 0] == 255).all()


def test_render_keep_shows_the_photo_on_every_canvas_pixel_whose_centre_falls_on_it():
    """keep: canvas pixels whose centre lies on the photo, its outer edges included, show the photo; the others
    its border's median colour. Top rows A, bottom rows C, the rest B (the border's median)."""
    a_, b_, c_ = (200, 100, 100), (100, 100, 100), (100, 100, 200)
    photo = np.empty((40, 20, 3), np.uint8)
    photo[:] = b_
    photo[:5] = a_
    photo[-5:] = c_                                                      # the border: 30 px of A, 60 of B, 30 of C
    for img, p, size, lines in ((photo, Placement(1.0, 0.0, 0.5), (20, 42), lambda o, i: o[i]),
                                (photo.transpose(1, 0, 2).copy(), Placement(1.0, 0.5, 0.0), (42, 20), lambda o, i: o[:, i])):
        h, w = img.shape[:2]
        out = render(img / 255.0, np.ones((h, w), np.float32), p, size, (0, 0, 0), keep=img)
        # the photo's first and last edges run through the centres of canvas lines 0 and 40
        assert (lines(out, 0) == a_).all() and (lines(out, 40) == c_).all()
        assert (lines(out, 41) == b_).all() and (lines(out, 20) == b_).all()


def test_render_with_the_photo_takes_its_opaque_colours_unchanged_and_none_below_opaque_from():
    """Opaque, placed at its own scale: the canvas is the photo, byte for byte. Alpha ½ (below OPAQUE_FROM):
    the foreground's colour alone, F·α = 0.5 · 0.5 · 255 over black."""
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (20, 30, 3), np.uint8)
    same = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    out = render(np.zeros((20, 30, 3), np.float32), np.ones((20, 30), np.float32), Placement(1.0, 0.0, 0.0), (30, 20),
                 (0, 0, 0), photo=(photo, same))
    assert (out == photo).all()
    grey = np.full((20, 30, 3), 100, np.uint8)
    out = render(np.full((20, 30, 3), 0.5, np.float32), np.full((20, 30), 0.5, np.float32), Placement(1.0, 0.0, 0.0),
                 (30, 20), (0, 0, 0), photo=(grey, same))
    assert (out == 64).all()                                             # 63.75, rounded


def test_render_of_a_one_pixel_photo_off_the_canvas():
    """Nothing of the photo lands on the canvas: the background alone, even when the photo is one pixel."""
    out = render(np.ones((1, 1, 3), np.float32), np.ones((1, 1), np.float32), Placement(1.0, 50.0, 50.0), (4, 4),
                 (1, 2, 3))
    assert (out == (1, 2, 3)).all()


def test_warp_down_turned_at_scale_1_or_more_is_one_bicubic_warp():
    """Nothing shrinks: the photo is turned and placed by one bicubic warp (the part that lands on the canvas,
    edges repeated), the same as cv2's over the whole photo."""
    rng = np.random.default_rng(4)
    src = cv2.GaussianBlur(rng.integers(0, 256, (60, 50)).astype(np.uint8), (0, 0), 1.0)
    for scale in (1.0, 1.5):
        m = np.array([[0.8 * scale, -0.6 * scale, 40.0], [0.6 * scale, 0.8 * scale, -10.0]])   # det = scale² exactly
        out = warp_down(src, m, (70, 80))
        ref = cv2.warpAffine(src, m, (70, 80), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        assert np.abs(out.astype(int) - ref).max() <= 1, scale


def test_warp_down_repeats_the_photos_edges_beyond_it():
    """Beyond the photo the canvas repeats its edges (never black), turned or not: a photo of one colour, shrunk
    into the middle of the canvas, leaves the whole canvas that colour."""
    src = np.full((80, 60, 3), (30, 140, 220), np.uint8)
    th = np.radians(10.0)
    for m in (np.array([[0.5, 0, 20.0], [0, 0.5, 15.0]]),
              np.array([[0.5 * np.cos(th), -0.5 * np.sin(th), 25.0], [0.5 * np.sin(th), 0.5 * np.cos(th), 15.0]])):
        out = warp_down(src, m, (80, 70))
        assert (out == (30, 140, 220)).all()


@pytest.mark.parametrize("degrees,shape", [(8.0, (400, 300)), (-8.0, (400, 300)), (25.0, (400, 300)), (8.0, (300, 400)),
                                           (-25.0, (300, 400))])
def test_warp_down_turned_and_shrunk_lands_a_smooth_photo_where_the_affine_says(degrees, shape):
    """On a smooth photo any fair resampling agrees: turned and shrunk (to a quarter, to a half), the canvas is
    cv2's plain bilinear warp of it within 2 levels wherever the photo lands, whether all of it lands on the
    canvas or the canvas lies within it; portrait or landscape."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    src = np.clip(128 + 60 * np.sin(xx / 37.0) + 50 * np.cos(yy / 43.0), 0, 255).astype(np.uint8)
    th = np.radians(degrees)
    for scale, t, size in ((0.25, (60.0, 50.0), (200, 220)), (0.5, (-40.0, -50.0), (90, 100))):
        m = np.array([[scale * np.cos(th), -scale * np.sin(th), t[0]], [scale * np.sin(th), scale * np.cos(th), t[1]]])
        out = warp_down(src, m, size)
        ref = cv2.warpAffine(src, m, size, flags=cv2.INTER_LINEAR)
        inv = cv2.invertAffineTransform(m)
        vv, uu = np.mgrid[0:size[1], 0:size[0]]
        x, y = inv[0, 0] * uu + inv[0, 1] * vv + inv[0, 2], inv[1, 0] * uu + inv[1, 1] * vv + inv[1, 2]
        on = (x > 4) & (x < w - 5) & (y > 4) & (y < h - 5)               # canvas pixels well on the photo
        assert on.sum() > 5000 and np.abs(out.astype(int) - ref)[on].max() <= 2, (degrees, scale)


def test_landing_box_is_the_part_of_the_photo_under_the_canvas_with_2_px_of_slack():
    """The canvas's four corners mapped back onto the photo, their box widened by 2 px each way (floor and
    ceiling), clamped to the photo; None when none of it is under the canvas."""
    from idphoto.framing import _landing_box

    # halved, moved up-left by (10, 20): canvas x 0–50 is photo x 20–120, canvas y 0–40 is photo y 40–120
    assert _landing_box(Placement(0.5, -10.0, -20.0).matrix(), (50, 40), (300, 300)) == (18, 38, 122, 122)
    # moved down-right instead: canvas x 0–50 is photo x −20–80, y −40–40; clamped to a 60×60 photo
    assert _landing_box(Placement(0.5, 10.0, 20.0).matrix(), (50, 40), (60, 60)) == (0, 0, 60, 42)
    assert _landing_box(Placement(0.5, 200.0, 0.0).matrix(), (50, 40), (60, 60)) is None
    # turned (cos 0.8, sin 0.6) and halved, canvas (0, 0) on photo (100.5, 100.25): the canvas's corners
    # (50, 0), (0, 40) and (50, 40) fall on (180.5, 40.25), (148.5, 164.25) and (228.5, 104.25)
    a = 0.5 * np.array([[0.8, -0.6], [0.6, 0.8]])
    m = np.hstack([a, -(a @ [100.5, 100.25])[:, None]])
    assert _landing_box(m, (50, 40), (300, 300)) == (98, 38, 231, 167)


def test_preferred_places_0_and_1_prefer_inset_inside_the_ranges_ends():
    """prefer's 0–1 spans the range less PREFER_INSET (a tenth) of it at either end, linearly."""
    from idphoto.framing import PREFER_INSET, _preferred

    assert PREFER_INSET == 0.1
    assert _preferred(100.0, 200.0, 0.0) == pytest.approx(110.0)
    assert _preferred(100.0, 200.0, 0.5) == pytest.approx(150.0)
    assert _preferred(100.0, 200.0, 1.0) == pytest.approx(190.0)


# ------------------------------------------------------------------------- placing by the face, rendering
def test_place_by_face_follows_the_rule():
    spec = get_spec("icao")
    w, h = spec.size_px
    face = FaceBox(200, 300, 100, 100)
    crown = face.crown_y()
    p = place_by_face(face, crown, (w, h), spec)
    cx, crown_c = p.apply(face.center_x, crown)
    _, chin_c = p.apply(face.center_x, face.chin_y)
    assert cx == pytest.approx(w / 2)
    assert crown_c == pytest.approx(spec.top_ratio * h)
    assert (chin_c - crown_c) / h == pytest.approx(spec.head_ratio)


def test_render_background_size_and_colour():
    image, alpha, _ = disk_scene(200, 160)
    fg = image.astype(np.float32) / 255
    spec = get_spec("1inch")
    p = place_by_mask(alpha, spec.size_px, spec)
    blue = parse_color("blue")
    out = render(fg, alpha, p, spec.size_px, blue)
    assert out.shape == (413, 295, 3) and out.dtype == np.uint8
    for y, x in ((0, 0), (0, 294), (412, 0), (412, 294), (5, 147)):
        assert tuple(out[y, x]) == blue
    # the person is there: the disk colour in the middle of its placed box
    cy = int(p.apply(80, 200 * 0.55)[1])
    assert np.abs(out[cy, 147].astype(int) - (40, 40, 220)).max() <= 2


def test_render_never_continues_a_body_cut_by_the_photo_bottom():
    alpha = np.zeros((100, 80), np.float32)
    alpha[40:, 20:60] = 1  # a "torso" touching the bottom edge
    fg = np.zeros((100, 80, 3), np.float32)
    out = render(fg, alpha, Placement(1.0, 0, 0), (80, 160), (255, 255, 255))
    assert tuple(out[90, 40]) == (0, 0, 0)
    assert (out[101:] == 255).all()  # below the photo: the background, never the last row repeated


# ------------------------------------------------------------------------------ every rule of the specs
@pytest.mark.parametrize("name", ["icao", "us-passport", "cn-passport", "cn-id-card", "1inch", "us-visa", "nz-passport"])
def test_plan_meets_every_rule_of_the_spec(name):
    spec = get_spec(name)
    face = synthetic_face()
    crown = 100.0
    plan = plan_by_rules(face, crown, spec.size_px, spec)
    assert plan.gave_way == []
    p = plan.placement
    w, h = spec.size_px
    top = p.apply(0, crown)[1]
    head = p.apply(0, face.chin_y)[1] - top
    eyes = h - p.apply(0, face.eye_y)[1]
    assert p.apply(face.center_x, 0)[0] == pytest.approx(w / 2)
    for value, rule in ((head, "head"), (eyes, "eyes"), (top, "top"), (face.landmarks.face_width * p.scale, "face_width")):
        r = spec.rule_px(rule)
        if r is not None:
            assert (r[0] is None or value >= r[0] - 0.5) and (r[1] is None or value <= r[1] + 0.5), (rule, value, r)


def test_conflicting_rules_say_which_gave_way():
    spec = get_spec("us-passport")
    # eyes very low in the head (long forehead): head height and eye line can't both hold; the eye line gives way
    face = synthetic_face(crown=0.0, eye=300.0, chin=330.0)
    plan = plan_by_rules(face, 0.0, spec.size_px, spec)
    assert plan.gave_way and plan.gave_way[0].startswith("eye line")
    head = plan.head_px
    lo, hi = spec.rule_px("head")
    assert lo - 0.5 <= head <= hi + 0.5


def person_photo(h=800, w=600, chin_gap=400):
    """A plain 'portrait': grey background, a skin ellipse head on a dark body reaching the bottom edge."""
    img = np.full((h, w, 3), 200, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, 250), (100, 130), 0, 0, 360, 1.0, -1)
    cv2.rectangle(alpha, (w // 2 - 45, 350), (w // 2 + 45, 520), 1.0, -1)  # the neck
    cv2.ellipse(alpha, (w // 2, h + 100), (250, 400 - (400 - chin_gap)), 0, 180, 360, 1.0, -1)
    img[alpha > 0.5] = (60, 90, 160)
    return img, alpha


def test_too_little_below_the_chin_is_refused():
    img, alpha = person_photo()
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    cut = slice(0, 390)  # the photo stops 10 px under the chin
    with pytest.raises(IDPhotoError, match="shoulders"):
        compose_id_photo(img[cut], alpha[cut], img[cut] / 255.0, get_spec("icao"), faces=[face])
    photo = compose_id_photo(img, alpha, img / 255.0, get_spec("icao"), faces=[face])  # whole photo: fine
    assert photo.image.shape == (531, 413, 3)


def test_no_room_above_is_filled_with_the_background():
    img, alpha = person_photo()
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    top = slice(100, 800)  # hair 20 px from the photo's top: the canvas reaches above the photo
    shifted = FaceBox(face.x, face.y - 100, face.w, face.h, face.landmarks.transformed(np.array([[1, 0, 0], [0, 1, -100.0]])),
                      1.0, "landmarks")
    photo = compose_id_photo(img[top], alpha[top], img[top] / 255.0, get_spec("cn-passport"), (219, 142, 67), faces=[shifted])
    assert tuple(photo.image[2, 2]) == (219, 142, 67) and tuple(photo.image[2, 200]) == (219, 142, 67)


def test_background_styles_and_keep():
    size = (100, 140)
    solid = make_background(size, (219, 142, 67), "solid")
    grad = make_background(size, (219, 142, 67), "gradient")
    radial = make_background(size, (219, 142, 67), "radial")
    assert np.ptp(solid) == 0 or (solid == solid[0, 0]).all()
    assert tuple(grad[0, 50].round()) == (219, 142, 67) and grad[-1, 50, 2] > grad[0, 50, 2] + 50  # lighter downwards
    assert (grad[:, 0] == grad[:, -1]).all()
    assert radial[70, 50, 2] > radial[0, 0, 2] + 50 and np.abs(radial[0, 0] - (219, 142, 67)).max() < 3
    img, alpha = person_photo()
    rng = np.random.default_rng(0)
    img[alpha < 0.5] = rng.integers(0, 255, (int((alpha < 0.5).sum()), 3))  # a busy background, kept as it is
    face = synthetic_face(crown=120, eye=240, chin=380, cx=300)
    kept = compose_id_photo(img, alpha, img / 255.0, get_spec("1inch"), faces=[face], keep_background=True)
    p = kept.placement
    x, y = 5, 5  # a canvas pixel on the background maps back to the original photo's pixel
    sx, sy = (x - p.tx) / p.scale, (y - p.ty) / p.scale
    ref = cv2.getRectSubPix(img, (1, 1), (sx, sy))[0, 0] if p.scale >= 1 else None
    assert np.std(kept.image[:20, :20]) > 20  # noise kept, not a plain colour
    if ref is not None:
        assert np.abs(kept.image[y, x].astype(int) - ref.astype(int)).max() <= 40
    plain = compose_id_photo(img, alpha, img / 255.0, get_spec("1inch"), faces=[face])
    assert (plain.image[:20, :20] == 255).all()
