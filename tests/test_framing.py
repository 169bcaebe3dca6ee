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


# ---------------------------------------------------------------------------------------------- framing
from idphoto.framing import (Placement, composite, level, level_rotation, make_background,  # noqa: E402
                             place_by_mask, place_centre, plan_by_rules, render)
from idphoto.specs import get_spec  # noqa: E402
from conftest import synthetic_face  # noqa: E402


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
from idphoto.specs import PhotoSpec  # noqa: E402


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
