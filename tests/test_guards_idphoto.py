"""The ID-photo chain's behaviour the older tests let through, found by mutation testing (bench/mutation.sh,
issue 13): the trimap stage, the matting crop and its working scale, the foreground, the pipeline's settings."""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import idphoto.pipeline as P
from idphoto import IDPhotoError, MattingWarning
from idphoto.matting import estimate_foreground_ml
from conftest import class_logits, disk_scene
from utils import erode_dilate


# ------------------------------------------------------------------------------------------ trimap stage
class Spy(torch.nn.Module):
    """A 'TNet' that records its inputs and answers with ``classes`` (resized to its input)."""

    def __init__(self, classes=None):
        super().__init__()
        self.inputs = []
        self.classes = torch.zeros(4, 4, dtype=torch.long) if classes is None else classes

    def forward(self, x):
        self.inputs.append(x.clone())
        return torch.cat([class_logits(self.classes)(x[i:i + 1]) for i in range(x.shape[0])])


def test_the_network_sees_the_photo_resized_bicubically_to_its_input_size():
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (90, 70, 3), np.uint8), (0, 0), 2)
    spy = Spy()
    P.predict_trimap(spy, image)                                      # the default input size: 400
    assert spy.inputs[0].shape == (1, 3, 400, 400)
    P.predict_trimap(spy, image, input_size=48)
    from datasets.transforms import image_to_tensor
    expected = image_to_tensor(cv2.cvtColor(cv2.resize(image, (48, 48), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB))
    assert torch.allclose(spy.inputs[1][0], expected, atol=1e-6)


def test_trimap_comes_back_at_the_photo_size_with_only_three_values():
    blob = torch.zeros(12, 12, dtype=torch.long)
    blob[3:9, 4:10] = 2
    blob[2, 4:10] = 1
    image = np.zeros((101, 77, 3), np.uint8)
    raw, refined = P.predict_trimap_pair(Spy(blob), image, input_size=36, refine_kernel=4)
    assert raw.shape == refined.shape == (101, 77)
    assert set(np.unique(raw)) == set(np.unique(refined)) == {0, 128, 255}   # nearest-neighbour, no blends
    small, _ = P.predict_trimap_pair(Spy(blob), np.zeros((36, 36, 3), np.uint8), input_size=36, refine_kernel=0)
    assert (P.predict_trimap_pair(Spy(blob), np.zeros((36, 36, 3), np.uint8), input_size=36, refine_kernel=4)[1]
            == erode_dilate(small, 4)).all()                            # the refinement uses the kernel asked for
    wide = P.predict_trimap(Spy(blob), image, input_size=36, refine_kernel=12)
    assert (wide == 128).sum() > (refined == 128).sum()


def test_flip_tta_runs_the_mirror_image_and_mirrors_its_answer_back():
    """A photo whose left half is red: a 'TNet' that calls red pixels foreground. Its answer for the mirrored
    photo, mirrored back, agrees with the photo's own, so TTA keeps the person on the left."""
    class Red(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.batches = []

        def forward(self, x):
            self.batches.append(x.shape[0])
            red = (x[:, 0] > x[:, 2]).float()                          # RGB input: channel 0 red, 2 blue
            return torch.stack([(1 - red) * 4, torch.zeros_like(red), red * 4 + 0.1 * torch.arange(x.shape[-1])], 1)

    image = np.zeros((40, 40, 3), np.uint8)
    image[:, :20] = (0, 0, 255)
    image[:, 20:] = (255, 0, 0)
    image[:5, 20:] = (0, 0, 255)                                       # a red corner at the top right: not symmetric
    model = Red()
    spy = Spy()
    P.predict_trimap(spy, image, input_size=40, refine_kernel=0, flip=True)
    x = spy.inputs[0]
    assert x.shape[0] == 2 and torch.equal(x[1], x[0].flip(-1))        # the second view is the left-right mirror
    plain = P.predict_trimap(model, image, input_size=40, refine_kernel=0)
    tta = P.predict_trimap(model, image, input_size=40, refine_kernel=0, flip=True)
    assert model.batches == [1, 2]
    assert (tta == plain).all() and (tta[:, :20] == 255).all() and (tta[10:, 20:] == 0).all()
    pipe = P.Pipeline(model, input_size=40, flip=True, refine_kernel=0)
    pipe.run(image)
    assert model.batches[-1] == 2


def test_the_raw_trimap_follows_the_networks_edge_between_its_pixels():
    """A 'TNet' whose person/background edge lies at x = 3.3 of its 8 columns: on an 80-px-wide photo the
    raw trimap's edge is at column 38 (bilinear probabilities), not at the 40 of a one-pixel step
    (nearest neighbour). The refined trimap, the matting's input, keeps the network's pixel grid."""
    class Ramp(torch.nn.Module):
        def forward(self, x):
            n, _, h, w = x.shape
            col = torch.arange(w, dtype=torch.float32).expand(n, h, w)
            return torch.stack([torch.zeros_like(col), torch.full_like(col, -20.0), col - 3.3], 1)

    image = np.zeros((40, 80, 3), np.uint8)
    raw, refined = P.predict_trimap_pair(Ramp(), image, input_size=8, refine_kernel=0)
    assert set(np.unique(raw)) == {0, 255}
    assert (raw[:, :38] == 0).all() and (raw[:, 38:] == 255).all()
    assert (refined[:, :40] == 0).all() and (refined[:, 40:] == 255).all()
    assert (P.predict_trimap(Ramp(), image, input_size=8, refine_kernel=0) == refined).all()
    probs = P.class_probabilities(Ramp(), image, input_size=8)
    assert probs.shape == (8, 8, 3) and probs.dtype == np.float32 and np.allclose(probs.sum(2), 1, atol=1e-6)


def test_model_input_size_of_a_fixed_size_export():
    class Onnx:
        input_size = 320
        meta = {"input_size": 256}

    assert P.model_input_size(Onnx()) == 320


class FixedModel(torch.nn.Module):
    input_size = 320
    path = "tnet.onnx"

    def forward(self, x):
        return torch.zeros(x.shape[0], 3, *x.shape[-2:])


def test_pipeline_settings():
    with pytest.raises(IDPhotoError, match=r"tnet\.onnx takes 320×320 inputs only: pass --input-size 320"):
        P.Pipeline(FixedModel(), input_size=256)
    del FixedModel.path                                                  # a model without a file name
    try:
        with pytest.raises(IDPhotoError, match=r"^the model takes 320×320 inputs only"):
            P.Pipeline(FixedModel(), input_size=256)
    finally:
        FixedModel.path = "tnet.onnx"
    assert P.Pipeline(FixedModel()).input_size == 320 and P.Pipeline(FixedModel(), input_size=320).input_size == 320
    model = torch.nn.Conv2d(3, 3, 1)
    model.meta = {"input_size": 192}
    pipe = P.Pipeline(model)
    assert pipe.input_size == 192 and pipe.refine_kernel == 10 and pipe.flip is False and not model.training
    assert P.Pipeline(model, input_size=96).input_size == 96
    with pytest.raises(ValueError, match="unknown matting method 'nope'; choose one of cf, knn"):
        P.Pipeline(model, matting="nope")


def test_pipeline_hands_its_settings_to_every_stage(monkeypatch):
    calls = {}
    real_alpha, real_fg = P.estimate_alpha, P.estimate_foreground
    monkeypatch.setattr(P, "estimate_alpha", lambda *a, **k: calls.setdefault("alpha", (a, k)) and real_alpha(*a, **k))
    monkeypatch.setattr(P, "estimate_foreground", lambda *a, **k: calls.setdefault("fg", (a, k)) and real_fg(*a, **k))
    image, _, trimap = disk_scene(60, 50)
    classes = torch.from_numpy(np.digitize(trimap, (64, 192)))
    result = P.Pipeline(Spy(classes), input_size=60, refine_kernel=0, max_side=40).run(image)
    a_args, f_args = calls["alpha"], calls["fg"]
    assert (list(a_args[0][2:]) + list(a_args[1].values()))[:2] == ["cf", 40]
    assert (list(f_args[0][2:]) + list(f_args[1].values()))[0] == 40
    assert set(result.timings) == {"trimap", "alpha", "foreground"}
    assert all(isinstance(t, float) and 0 <= t < 600 for t in result.timings.values())


def test_cutout_is_the_foreground_and_alpha_in_bytes():
    fg = np.zeros((2, 2, 3), np.float32)
    fg[0, 0] = (1.0, 0.5, 0.0)
    alpha = np.array([[1.0, 0.5], [0.0, 0.25]], np.float32)
    cut = P.MattingResult(np.zeros((2, 2), np.uint8), alpha, fg).cutout_rgba()
    assert cut.dtype == np.uint8 and cut.shape == (2, 2, 4)
    assert tuple(cut[0, 0]) == (255, 128, 0, 255) and cut[:, :, 3].tolist() == [[255, 128], [0, 64]]


# ----------------------------------------------------------------------------------------- matting crop
def test_box_is_the_masks_bounding_box_grown_and_clipped():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:13] = True
    assert P._box(mask, 0) == (slice(5, 9), slice(10, 13))
    assert P._box(mask, 3) == (slice(2, 12), slice(7, 16))
    assert P._box(mask, 50) == (slice(0, 20), slice(0, 30))
    mask[:] = False
    mask[0, 0] = mask[19, 29] = True
    assert P._box(mask, 2) == (slice(0, 20), slice(0, 30))
    assert P._box(np.zeros((4, 4), bool), 2) is None


def test_working_scale():
    assert P._working_scale((2000, 1000), 1024) == pytest.approx(1024 / 2000)
    assert P._working_scale((1000, 2000, 3), 1024) == pytest.approx(1024 / 2000)
    assert P._working_scale((1024, 300), 1024) == 1.0 and P._working_scale((5000, 300), None) == 1.0


def test_estimate_alpha_input_checks_and_messages():
    image = np.zeros((50, 40, 3), np.uint8)
    with pytest.raises(ValueError, match=r"image \(50, 40\) and trimap \(50, 41\) differ in size"):
        P.estimate_alpha(image, np.zeros((50, 41), np.uint8))
    with pytest.raises(ValueError, match="unknown matting method 'x'; choose one of cf, knn, lkm"):
        P.estimate_alpha(image, np.zeros((50, 40), np.uint8), "x")


@pytest.mark.parametrize("known,value,missing", [(255, 1.0, "sure background"), (0, 0.0, "sure foreground")])
def test_a_band_with_one_side_known_is_set_to_that_side(known, value, missing):
    image = np.full((40, 40, 3), 100, np.uint8)
    trimap = np.full((40, 40), known, np.uint8)
    trimap[15:25] = 128
    with pytest.warns(MattingWarning) as record:
        alpha = P.estimate_alpha(image, trimap)
    assert (alpha == value).all()
    message = str(record[0].message)
    assert message == f"the trimap has no {missing} next to its unknown band; alpha there is set to {int(value)}"
    assert not record[0].filename.endswith("pipeline.py")             # reported at the caller's line, not inside


def scene_with_band(h=80, w=60):
    image, _, trimap = disk_scene(h, w)
    return image, trimap


def test_the_solver_sees_the_crop_at_the_working_size(monkeypatch):
    """Capped at max_side, the band's box is solved small: the photo area-averaged (in [0, 1]), the trimap
    nearest-neighbour; the answer is resized back bilinearly and kept only on the unknown pixels."""
    image, trimap = scene_with_band(200, 160)
    seen = {}

    def solver(img, is_fg, is_bg):
        seen.update(img=img, fg=is_fg, bg=is_bg)
        h, w = is_fg.shape
        return np.tile(np.linspace(-0.2, 1.2, w), (h, 1))               # a ramp beyond [0, 1], to be clipped

    monkeypatch.setattr(P, "closed_form_alpha", solver)
    alpha = P.estimate_alpha(image, trimap, "cf", max_side=50, margin=4)
    box = P._box((trimap > 64) & (trimap < 192), 4)
    crop_img, crop_tri = image[box], trimap[box]
    scale = 50 / max(crop_tri.shape)
    size = (max(1, round(crop_tri.shape[1] * scale)), max(1, round(crop_tri.shape[0] * scale)))
    assert max(size) == 50 and seen["fg"].shape == size[::-1]
    assert np.allclose(seen["img"], cv2.resize(crop_img, size, interpolation=cv2.INTER_AREA) / 255.0)
    small_tri = cv2.resize(crop_tri, size, interpolation=cv2.INTER_NEAREST)
    assert (seen["fg"] == (small_tri >= 192)).all() and (seen["bg"] == (small_tri <= 64)).all()
    ramp = np.clip(np.tile(np.linspace(-0.2, 1.2, size[0]), (size[1], 1)), 0, 1).astype(np.float32)
    back = cv2.resize(ramp, crop_tri.shape[::-1], interpolation=cv2.INTER_LINEAR)
    unknown = (crop_tri > 64) & (crop_tri < 192)
    assert np.allclose(alpha[box][unknown], back[unknown], atol=1e-6)
    assert (alpha[trimap == 255] == 1).all() and (alpha[trimap == 0] == 0).all()
    assert alpha.min() == 0 and alpha.max() == 1


def test_a_failed_or_broken_solve_falls_back_safely(monkeypatch):
    image, trimap = scene_with_band()
    unknown = trimap == 128

    def fails(*a):
        raise ValueError("singular system")

    monkeypatch.setattr(P, "closed_form_alpha", fails)
    with pytest.warns(MattingWarning, match=r"cf matting failed \(singular system\); using a blurred trimap as alpha") as record:
        alpha = P.estimate_alpha(image, trimap, max_side=None, margin=5)
    assert not record[0].filename.endswith("pipeline.py")                 # reported at the caller's line
    box = P._box(unknown, 5)
    blurred = cv2.GaussianBlur(trimap[box].astype(np.float32) / 255.0, (0, 0), 2.0)
    assert np.allclose(alpha[box][unknown[box]], blurred[unknown[box]], atol=1e-6)

    def nan_in_the_middle(img, is_fg, is_bg):
        a = np.full(is_fg.shape, 0.25)
        a[::2] = np.nan
        return a

    monkeypatch.setattr(P, "closed_form_alpha", nan_in_the_middle)
    alpha = P.estimate_alpha(image, trimap, max_side=None)
    assert set(np.unique(alpha[unknown])) == {0.25, 0.5}                # NaN becomes ½


def test_pymatting_methods_run_quietly_and_find_the_edge(capsys):
    image, true_alpha, trimap = disk_scene(50, 44)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        alpha = P.estimate_alpha(image, trimap, "lkm")
    assert capsys.readouterr().out == ""
    assert alpha.shape == trimap.shape and alpha.dtype == np.float32 and 0 <= alpha.min() and alpha.max() <= 1
    assert np.abs(alpha - true_alpha)[trimap == 128].mean() < 0.15


# -------------------------------------------------------------------------------------------- foreground
def test_foreground_at_a_working_scale_is_the_small_solve_resized():
    """Capped at max_side, the foreground is solved on the area-averaged box (exactly on the soft pixels and
    their neighbours) and resized back; opaque and clear pixels keep the photo's own colours."""
    image, alpha, _ = disk_scene(150, 120)
    fg = P.estimate_foreground(image, alpha, max_side=48, margin=3)
    box = P._box((alpha > 0) & (alpha < 1), 3)
    img, a = image[box], alpha[box]
    scale = 48 / max(a.shape)
    size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
    a_w = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    every = estimate_foreground_ml(cv2.resize(img, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0,
                                   a_w, needed=np.ones(a_w.shape, bool))
    back = cv2.resize(every, a.shape[::-1], interpolation=cv2.INTER_LINEAR)
    soft = (a > 0) & (a < 1)
    assert np.abs(fg[box][soft] - back[soft]).max() < 1e-4
    hard = ~((alpha > 0) & (alpha < 1))
    assert (fg[hard] == image[hard] / np.float32(255)).all()
    assert fg.shape == image.shape and fg.dtype == np.float32
    red = np.array([40, 40, 220]) / 255
    assert np.abs(fg[(alpha > 0.2) & (alpha < 0.8)] - red).mean() < 0.1    # no green fringe at the small scale either


def test_foreground_full_size_solves_only_the_soft_box():
    image, alpha, _ = disk_scene(70, 60)
    fg = P.estimate_foreground(image, alpha, max_side=None, margin=2)
    box = P._box((alpha > 0) & (alpha < 1), 2)
    assert box[0].start > 0 and box[1].start > 0                         # the box is smaller than the photo
    crop = estimate_foreground_ml(image[box].astype(np.float32) / 255.0, alpha[box], needed=np.ones(alpha[box].shape, bool))
    soft = (alpha > 0) & (alpha < 1)
    assert np.abs(fg[box][soft[box]] - crop[soft[box]]).max() < 1e-4
    assert (fg[~soft] == image[~soft] / np.float32(255)).all()


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


# ------------------------------------------------------------------------------------------- spec catalogue
import json  # noqa: E402

from idphoto.specs import SpecError, custom_spec, load_catalogue, parse_entry  # noqa: E402

GOOD = {"id": "b", "unit": "mm", "size": [30, 40], "dpi": 300, "head_height": [25, 30],
        "background": ["#ffffff"], "source": "club rules"}


@pytest.mark.parametrize("change,message", [
    ({"dpi": 0}, "field 'dpi': expected a whole number from 1 to 2400, got 0"),
    ({"dpi": 2401}, "field 'dpi': expected a whole number from 1 to 2400, got 2401"),
    ({"unit": "cm"}, "field 'unit': \"cm\" is not one of mm, in, px"),
    ({"size": [30, -1]}, "field 'size': expected [width, height], two positive numbers, got [30, -1]"),
    ({"unit": "px", "size": [300.5, 400]}, "field 'size': pixel sizes are whole numbers up to 10000, got [300.5, 400]"),
    ({"unit": "px", "size": [300, 10001]}, "field 'size': pixel sizes are whole numbers up to 10000, got [300, 10001]"),
    ({"unit": "in", "size": [2, 40], "dpi": 300}, "field 'size': [2, 40] in at 300 DPI is more than 10000 px"),
    ({"head_height": [25]}, "field 'head_height': expected [min, max] (numbers, either may be null) or null, got [25]"),
    ({"head_height": [-1, 30]}, "field 'head_height': negative value in [-1, 30]"),
    ({"head_height": [30, 25]}, "field 'head_height': min 30 is above max 25"),
    ({"head_height": [25, 41]}, "field 'head_height': [25, 41] is larger than the photo (40)"),
    ({"face_width": [20, 31]}, "field 'face_width': [20, 31] is larger than the photo (30)"),
    ({"background": ["白"]}, "field 'background': expected a list of \"#RRGGBB\" colours, got [\"白\"]"),
    ({"format": "png"}, "field 'format': \"png\": only jpeg is supported"),
    ({"source": " "}, "field 'source': say where the rule comes from (a non-empty text)"),
    ({"note": 3}, "field 'note': expected a text"),
    ({"title": 3}, "field 'title': expected a text"),
    ({"region": 3}, "field 'region': expected a text"),
    ({"document": 3}, "field 'document': expected a text"),
    ({"aliases": ["x", ""]}, "field 'aliases': expected a list of names"),
    ({"aliases": "x"}, "field 'aliases': expected a list of names"),
    ({"id": "B c"}, "field 'id': \"B c\" is not a name of lower-case letters, digits, '-', '_' or '.'"),
])
def test_a_bad_entry_is_named_by_file_entry_and_field(tmp_path, change, message):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"specs": [{**GOOD, "id": "a"}, {**GOOD, **change}]}), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_catalogue(path)
    sid = change.get("id", "b")
    prefix = "my.json: spec #2: " if "id" in change else f"my.json: spec #2 ('{sid}'): "
    assert str(info.value) == prefix + message


def test_catalogue_file_problems_are_one_line_each(tmp_path):
    def error(text):
        p = tmp_path / "c.json"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(SpecError) as info:
            load_catalogue(p)
        return str(info.value).replace(str(p), "PATH")

    assert error('{"specs": {}}') == "PATH: field 'specs': expected a list of entries"
    assert error("3") == 'PATH: expected a spec object, a list of them, or {"specs": [...]}'
    assert error("[]") == "PATH: no specs in the file"
    assert error("[5]") == "c.json: spec #1: an entry must be a JSON object, got int"
    assert error(json.dumps([GOOD, GOOD])) == "c.json: spec #2: field 'id': 'b' appears twice"
    assert error(json.dumps([{k: v for k, v in GOOD.items() if k != "source"}])) == "c.json: spec #1: field 'source': missing"
    assert error(json.dumps([{**GOOD, "head_hieght": [1, 2]}])).startswith("c.json: spec #1: field 'head_hieght': unknown field (known: aliases, background, ")
    with pytest.raises(SpecError, match="file not found"):
        load_catalogue(tmp_path / "missing.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match=r"bin\.json: cannot read it \(UnicodeDecodeError\)"):
        load_catalogue(tmp_path / "bin.json")
    (tmp_path / "u.json").write_text(json.dumps({**GOOD, "title": "二寸 photo", "aliases": ["Club", "MY-Card"]}, ensure_ascii=False),
                                     encoding="utf-8")
    specs, aliases = load_catalogue(tmp_path / "u.json")
    assert specs["b"].description == "二寸 photo" and aliases == {"club": "b", "my-card": "b"}


def test_a_parsed_entry_keeps_every_field():
    spec, aliases = parse_entry({**GOOD, "unit": "px", "size": [600, 800], "dpi": 200, "eyes_from_bottom": [400, None],
                                 "crown_from_top": [20, 60], "face_width": [200, 300], "file_kb": [10, 240],
                                 "region": "Nowhere", "format": "jpg", "aliases": ["Bee"], "head_height": [400, 500]}, "x")
    assert spec.px == (600, 800) and spec.size_px == (600, 800) and spec.dpi == 200
    assert spec.width_mm == pytest.approx(600 * 25.4 / 200) and spec.height_mm == pytest.approx(800 * 25.4 / 200)
    assert spec.rule_px("eyes") == pytest.approx((400, None)) and spec.rule_px("top") == pytest.approx((20, 60))
    assert spec.rule_px("face_width") == pytest.approx((200, 300)) and spec.kb == (10, 240)
    assert spec.background == ("#FFFFFF",) and spec.format == "jpeg" and spec.region == "Nowhere" and aliases == ["bee"]
    plain, none = parse_entry({k: v for k, v in GOOD.items() if k not in ("dpi", "background")}, "x")
    assert plain.dpi == 300 and plain.background == () and plain.region == "" and plain.px is None and none == []
    assert plain.description == "b"                                    # the id when there is no title


def test_custom_sizes_keep_the_rules_and_drop_the_file_size_limit():
    base, _ = parse_entry({**GOOD, "file_kb": [10, 50]}, "x")
    px = custom_spec(size_px=(500, 700), base=base)
    assert px.size_px == (500, 700) and px.dpi == 300 and px.kb is None and px.head == base.head
    assert px.width_mm == pytest.approx(500 * 25.4 / 300) and px.height_mm == pytest.approx(700 * 25.4 / 300)
    assert custom_spec(size_px=(500, 700), dpi=600, base=base).dpi == 600
    assert base.with_size_px(500, 700).dpi == 300 and base.with_size_px(500, 700, dpi=150).dpi == 150
    mm = custom_spec(size_mm=(40, 50), dpi=200, base=base)
    assert mm.size_px == (round(40 / 25.4 * 200), round(50 / 25.4 * 200)) and mm.kb is None and mm.px is None
    assert (mm.width_mm, mm.height_mm, mm.dpi) == (40, 50, 200)
    plain = custom_spec(size_px=(300, 400))   # without a base: the documented "head 60 % of the height"
    assert plain.size_px == (300, 400) and plain.head_ratio == pytest.approx(0.6, abs=0.02)
    with pytest.raises(ValueError, match="custom_spec needs size_px or size_mm"):
        custom_spec()


def test_get_spec_by_id_or_alias_in_any_case():
    from idphoto.specs import SPECS, get_spec

    assert get_spec("ICAO") is SPECS["icao"] and get_spec("cn-1inch") is SPECS["1inch"]
    with pytest.raises(KeyError) as info:
        get_spec("Nope")
    assert info.value.args == ("Nope",)


def test_limits_of_a_valid_entry():
    assert parse_entry({**GOOD, "dpi": 1}, "x")[0].dpi == 1 and parse_entry({**GOOD, "dpi": 2400}, "x")[0].dpi == 2400
    assert parse_entry({**GOOD, "size": [0.5, 40], "face_width": None}, "x")[0].width_mm == 0.5
    assert parse_entry({**GOOD, "unit": "px", "size": [10000, 10000], "head_height": None, "face_width": [10, 20]}, "x")[0].px == (10000, 10000)
    for bad in ([0, 40], [float("inf"), 40], [True, 40]):
        with pytest.raises(SpecError, match="field 'size'"):
            parse_entry({**GOOD, "size": bad}, "x")
    assert parse_entry({**GOOD, "head_height": [0, 30]}, "x")[0].head[0] == 0       # zero is not negative
    assert parse_entry({**GOOD, "head_height": [40, 40]}, "x")[0].head == (1.0, 1.0)   # as tall as the photo, one value


def test_text_table_has_aligned_columns_and_one_row_per_spec():
    from idphoto.specs import spec_row, text_table

    one, _ = parse_entry({**GOOD, "file_kb": [10, 240], "head_height": [30, 30], "background": []}, "x")
    two, _ = parse_entry({**GOOD, "id": "a-much-longer-id", "unit": "px", "size": [300, 400], "head_height": [200, None]}, "x")
    row = spec_row(one)
    assert row["kb"] == "10–240 KB" and row["head"] == "30 mm" and row["background"] == "any plain" and row["eyes"] == "–"
    assert spec_row(two)["head"] == "≥ 200 px" and spec_row(two)["kb"] == "–" and spec_row(two)["size"] == "300×400 px @ 300 DPI"
    lines = text_table([one, two]).split("\n")
    assert len(lines) == 3
    heads = ["spec", "size", "head (chin-crown)", "eyes from bottom", "crown from top", "file", "what"]
    starts = [lines[0].index(h) for h in heads]
    assert starts == sorted(starts) and starts[0] == 0
    assert lines[1].startswith("b ") and lines[2].startswith("a-much-longer-id ")
    assert lines[1].index("30 mm") == starts[2] and lines[2].index("≥ 200 px") == starts[2]     # columns line up
    assert lines[1].index("10–240 KB") == starts[5] and lines[0][starts[1] - 2:starts[1]] == "  "
    assert all(line == line.rstrip() for line in lines[1:])


# ------------------------------------------------------------------------------------------------ output
import io  # noqa: E402
import os  # noqa: E402

from PIL import Image  # noqa: E402

from idphoto import output as O  # noqa: E402


def jpeg_info(data):
    with Image.open(io.BytesIO(data)) as im:
        return im.format, im.info.get("dpi"), np.asarray(im.convert("RGB"))


def noisy_photo(h=120, w=90):
    rng = np.random.default_rng(1)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), np.uint8), (0, 0), 1.5)


def test_jpeg_keeps_colours_in_order_and_writes_dpi_only_when_asked():
    red = np.zeros((16, 16, 3), np.uint8)
    red[...] = (0, 0, 255)                                                # BGR red
    fmt, dpi, rgb = jpeg_info(O.encode_jpeg(red, 300))
    assert fmt == "JPEG" and tuple(round(v) for v in dpi) == (300, 300) and rgb[8, 8, 0] > 240 and rgb[8, 8, 2] < 15
    assert jpeg_info(O.encode_jpeg(red))[1] in (None, (72, 72), (1, 1))   # no DPI asked: none written (JFIF default)
    photo = noisy_photo()
    plain = io.BytesIO()
    Image.fromarray(photo[:, :, ::-1]).save(plain, "JPEG", quality=95, icc_profile=O.srgb_icc(), comment=O.OUTPUT_MARK)
    assert len(O.encode_jpeg(photo)) < len(plain.getvalue())              # optimised Huffman tables: smaller


def test_the_size_cap_finds_the_highest_quality_that_fits_exactly():
    photo = noisy_photo()
    sizes = {q: len(O.encode_jpeg(photo, 300, q)) for q in range(1, 96)}
    for q in (1, 2, 37, 94, 95):
        data, quality = O.encode_jpeg_max_kb(photo, sizes[q] / 1024, 300)  # a limit of exactly that file's size
        best = max(k for k, n in sizes.items() if n <= sizes[q])
        assert quality == best and len(data) == sizes[best] and jpeg_info(data)[1] is not None
    with pytest.raises(IDPhotoError, match=rf"--max-kb 0\.1: even JPEG quality 1 gives {sizes[1] / 1024:.1f} KB; raise the limit"):
        O.encode_jpeg_max_kb(photo, 0.1, 300)


def test_encode_for_spec_caps_by_the_users_limit_then_the_specs():
    photo = noisy_photo()
    full = O.encode_jpeg(photo, 300)
    data, q = O.encode_for_spec(photo, 300)
    assert q == 95 and data == full
    data, q = O.encode_for_spec(photo, 200, quality=80)
    assert q == 80 and data == O.encode_jpeg(photo, 200, 80)
    small = len(full) / 1024 * 0.5
    data, q = O.encode_for_spec(photo, 300, kb=(1, small))
    assert len(data) <= small * 1024 and q < 95 and round(jpeg_info(data)[1][0]) == 300
    user = len(full) / 1024 * 0.3
    data, q2 = O.encode_for_spec(photo, 300, kb=(1, small), max_kb=user)
    assert len(data) <= user * 1024 and q2 < q
    assert O.encode_for_spec(photo, 300, kb=(1, small), max_kb=len(full) / 1024)[1] == 95   # the user's looser limit wins


def test_png_and_output_names():
    img = noisy_photo(20, 10)
    data = O.encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) == img).all()
    paths = O.output_paths("out", "me", None)
    assert paths == {"trimap": Path("out/me_trimap.png"), "alpha": Path("out/me_alpha.png"),
                     "cutout": Path("out/me_cutout.png"), "idphoto": Path("out/me_idphoto.jpg"),
                     "idphoto_hd": Path("out/me_idphoto_hd.jpg")}
    more = O.output_paths(Path("o"), "x", "a4", report=True)
    assert more["sheet"] == Path("o/x_sheet_a4.jpg") and more["report"] == Path("o/x_report.json")


def copies_on(sheet, colour):
    mask = (sheet == colour).all(-1).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    return [tuple(s[:4]) for s in stats[1:]]


def sheet_layouts(photo_shape, size, gap, margin):
    """Copies per layout: portrait and landscape sheet, with gaps and margins or edge to edge."""
    ph, pw = photo_shape
    out = {}
    for W, H in (size, size[::-1]):
        for g, m in ((gap, margin), (0, 0)):
            out[(W, H, g)] = ((W - 2 * m + g) // (pw + g)) * ((H - 2 * m + g) // (ph + g))
    return out


def test_print_sheet_keeps_gaps_and_cut_lines_when_they_cost_no_copy():
    """85×135 px photos on a 4×6 in sheet at 100 DPI: 16 fit edge to edge and 16 with 2 mm gaps and a 3 mm
    margin, so the sheet has the gaps, centred, with cut lines along every photo edge."""
    photo = np.full((135, 85, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(photo, 100, "6inch", line_bgr=(1, 2, 3))
    layouts = sheet_layouts((135, 85), (400, 600), 8, 12)
    assert n == max(layouts.values()) == 16
    boxes = copies_on(sheet, (10, 20, 30))
    assert len(boxes) == 16 and all(b[2:] == (85, 135) for b in boxes)   # separate copies, none overlapping
    h, w = sheet.shape[:2]
    xs, ys = sorted({b[0] for b in boxes}), sorted({b[1] for b in boxes})
    assert all(b - a == 85 + 8 for a, b in zip(xs, xs[1:])) and all(b - a == 135 + 8 for a, b in zip(ys, ys[1:]))
    assert xs[0] >= 12 and ys[0] >= 12                                    # inside the margin
    assert abs(xs[0] - (w - xs[-1] - 85)) <= 1 and abs(ys[0] - (h - ys[-1] - 135)) <= 1   # centred
    for x in xs:                                                           # cut lines along every edge, across the sheet
        assert (sheet[:, x - 1] == (1, 2, 3)).all() and (sheet[:, x + 85] == (1, 2, 3)).all()
    for y in ys:
        assert (sheet[y - 1] == (1, 2, 3)).all() and (sheet[y + 135] == (1, 2, 3)).all()
    wide, n = O.print_sheet(photo, 100, "6inch", gap_mm=5.08, margin_mm=2.54)
    assert n == max(sheet_layouts((135, 85), (400, 600), 20, 10).values())


def test_print_sheet_goes_edge_to_edge_when_that_fits_more():
    photo = np.full((100, 80, 3), 50, np.uint8)
    sheet, n = O.print_sheet(photo, 100)
    assert n == 30 > max(v for (W, H, g), v in sheet_layouts((100, 80), (400, 600), 8, 12).items() if g)
    assert (sheet == 50).all(-1).sum() == 30 * 100 * 80 and sorted(sheet.shape[:2]) == [400, 600]
    edge = np.full((600, 400, 3), 7, np.uint8)                             # exactly the sheet: one copy
    sheet, n = O.print_sheet(edge, 100, "6inch")
    assert n == 1 and sheet.shape[:2] == (600, 400)
    with pytest.raises(IDPhotoError, match=r"a 700×130 px photo does not fit on a 6inch sheet at 100 DPI"):
        O.print_sheet(np.zeros((130, 700, 3), np.uint8), 100, "6inch")
    with pytest.raises(IDPhotoError, match="unknown layout 'a5'; choose one of 6inch, 5inch, a4"):
        O.print_sheet(photo, 100, "a5")


def test_the_size_cap_is_in_kib_and_the_search_tries_every_quality():
    """max_kb counts 1024 bytes a KB: a file of exactly max_kb·1024 bytes fits, one byte more does not; and
    with each quality's own size as the cap, the search lands on that quality (or one no larger)."""
    photo = noisy_photo()
    sizes = {q: len(O.encode_jpeg(photo, 300, q)) for q in range(1, 96)}
    for q in range(1, 96):
        best = max(k for k, n in sizes.items() if n <= sizes[q])
        assert O.encode_jpeg_max_kb(photo, sizes[q] / 1024, 300)[1] == best
    for q in (3, 37, 95):
        data, quality = O.encode_jpeg_max_kb(photo, (sizes[q] - 1) / 1024, 300)   # one byte under the file
        assert quality < q and len(data) <= sizes[q] - 1
    with pytest.raises(IDPhotoError, match="even JPEG quality 1"):
        O.encode_jpeg_max_kb(photo, (sizes[1] - 1) / 1024, 300)


def test_print_sheet_keeps_the_default_3_mm_margin():
    """At 300 DPI the 3 mm margin is 35 px and the 2 mm gap 24 px: two 553 px columns fill 1200 − 2·35 px
    exactly (2·553 + 24) and two 853 px rows 1800 − 2·35 px, so the spaced 2×2 layout fits, touching the
    margins (as many copies as edge to edge, so the gaps are kept)."""
    photo = np.full((853, 553, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(photo, 300, line_bgr=(1, 2, 3))
    assert n == 4 and sheet.shape[:2] == (1800, 1200)
    boxes = sorted(copies_on(sheet, (10, 20, 30)))
    assert boxes == [(35, 35, 553, 853), (35, 35 + 853 + 24, 553, 853), (35 + 553 + 24, 35, 553, 853),
                     (35 + 553 + 24, 35 + 853 + 24, 553, 853)]
    assert (sheet[:, 34] == (1, 2, 3)).all() and (sheet[34] == (1, 2, 3)).all()   # the cut lines before them
    assert (sheet[:33, :33] == 255).all()                                  # and a blank corner of margin outside
    # one pixel wider (2·554 + 24 = 1200 − 2·34): the spaced columns would need 34 px margins, so the sheet
    # goes edge to edge instead (the same 4 copies, touching)
    wider = np.full((853, 554, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(wider, 300)
    assert n == 4 and copies_on(sheet, (10, 20, 30)) == [((1200 - 1108) // 2, (1800 - 1706) // 2, 1108, 1706)]


def test_print_sheet_cut_lines_on_a_one_pixel_border():
    """Edge to edge with a pixel to spare on every side (2×599 = 1200 − 2, 2×899 = 1800 − 2): the cut lines
    before the first and after the last photo are the sheet's outermost rows and columns."""
    photo = np.full((899, 599, 3), (10, 20, 30), np.uint8)
    sheet, n = O.print_sheet(photo, 300, line_bgr=(1, 2, 3))
    assert n == 4 and sheet.shape[:2] == (1800, 1200)
    assert sorted(copies_on(sheet, (10, 20, 30))) == [(1, 1, 1198, 1798)]  # the four copies side by side
    for edge in (sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1]):
        assert (edge == (1, 2, 3)).all()

def test_written_files_have_the_usual_permissions_and_failures_name_the_file(tmp_path):
    umask = os.umask(0o022)
    try:
        O.write_all({tmp_path / "a" / "b" / "c.png": b"x"})
    finally:
        os.umask(umask)
    assert (tmp_path / "a" / "b" / "c.png").stat().st_mode & 0o777 == 0o644
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as info:
        O.write_all({blocker / "d.png": b"d"})
    assert info.value.filename == str(blocker / "d.png") and info.value.errno is not None and info.value.strerror


def test_backups_fall_back_to_a_copy_where_links_fail(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError("no links here")))
    (tmp_path / "b.png").mkdir()                                          # a folder in the way: its rename fails
    (tmp_path / "b.png" / "keep").write_bytes(b"k")
    with pytest.raises(OSError):
        O.write_all({target: b"new", tmp_path / "b.png": b"b"})
    monkeypatch.undo()
    assert target.read_bytes() == b"old"                                  # put back from the copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"] and (tmp_path / "b.png").is_dir()


def test_where_the_matting_kernels_are_looked_for(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dirs = P.pymatting_cache_dirs()
    assert len(dirs) == 2 and dirs[0].endswith("__pycache__") and dirs[1].startswith(str(tmp_path / "xdg" / "numba" / "laplacian_"))
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert P.pymatting_cache_dirs()[1].startswith(str(tmp_path / "home" / ".cache" / "numba" / "laplacian_"))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nc"))
    empty = P.pymatting_cache_dirs()[0]
    assert empty.startswith(str(tmp_path / "nc" / "laplacian_"))
    os.makedirs(empty)
    assert P.pymatting_cache_is_cold()                                    # the folder exists, but holds no kernel
    open(os.path.join(empty, "cf_laplacian._cf_laplacian-1.py311.nbi"), "w").close()
    assert not P.pymatting_cache_is_cold()
    monkeypatch.setattr(P, "pymatting_cache_dirs", lambda: [])
    assert not P.pymatting_cache_is_cold()                                # not installed: nothing to announce


def test_a_face_without_landmarks_is_framed_by_its_box():
    from idphoto.face import FaceBox

    spec = get_spec("us-passport")                                        # it has an eye-line rule
    face = FaceBox(210.0, 120.0, 180.0, 210.0, None, 1.0, "haar")
    assert face.eye_y is None
    plan = plan_by_rules(face, 100.0, spec.size_px, spec)
    lo, hi = spec.rule_px("head")
    assert plan.eyes_px is None and lo - 0.5 <= plan.head_px <= hi + 0.5 and plan.gave_way == []


def test_output_details_a_user_meets():
    photo = noisy_photo()
    sheet, _ = O.print_sheet(np.zeros((100, 80, 3), np.uint8), 100)
    assert sheet.dtype == np.uint8                                        # ready for encode_jpeg
    with pytest.raises(IDPhotoError, match=r"a 80×700 px photo does not fit on a 6inch sheet at 100 DPI"):
        O.print_sheet(np.zeros((700, 80, 3), np.uint8), 100, "6inch")      # too tall either way round
    big = len(O.encode_jpeg(photo, 300)) / 1024 * 4
    assert O.encode_for_spec(photo, 300, kb=(1, big), quality=70)[1] == 70  # never above the quality asked for
    with pytest.raises(ValueError, match=r"^not a colour: '#12345' \(use white, blue, red, gray or #RRGGBB\)$"):
        O.parse_color("#12345")
