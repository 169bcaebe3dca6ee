"""idphoto.pipeline: the trimap stage (what the network sees, the classes it gives) and the matting crop
and its working scale, with the choices the code documents (found by mutation testing)."""
from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
import pytest
import torch

import pymatting

import idphoto.pipeline as P
from idphoto import IDPhotoError, MattingWarning
from idphoto.pipeline import (Pipeline, estimate_alpha, estimate_foreground, predict_trimap,
                              predict_trimap_pair)
from idphoto.runner import model_input_size
from models import TNet
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
    assert record[0].filename != P.__file__                           # reported at the caller's line, not inside


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
    assert record[0].filename != P.__file__                               # reported at the caller's line
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


class LogitsRuntime:
    """A runtime of the torch-free protocol (``logits``): fixed logits, the second photo's mirrored back."""

    def __init__(self, logits):
        self.value = np.asarray(logits, np.float32)
        self.seen = []

    def logits(self, rgb):
        self.seen.append(np.asarray(rgb).copy())
        return np.stack([self.value, self.value[:, :, ::-1] + 1.0][: len(rgb)])


def test_class_probabilities_are_the_softmax_of_the_runtimes_logits_and_flip_averages_them():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (3, 8, 8)).astype(np.float32) + 500.0     # large: a naive exp would overflow
    photo = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    runtime = LogitsRuntime(logits)
    probs = P.class_probabilities(runtime, photo, input_size=8)
    want = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    assert probs.shape == (8, 8, 3) and probs.dtype == np.float32
    assert np.allclose(probs, want.transpose(1, 2, 0), atol=1e-6) and np.allclose(probs.sum(2), 1, atol=1e-6)
    assert runtime.seen[0].shape == (1, 8, 8, 3)                          # RGB at the input size
    small = cv2.cvtColor(cv2.resize(photo, (8, 8), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
    assert np.array_equal(runtime.seen[0][0], small)
    flipped = P.class_probabilities(LogitsRuntime(logits), photo, input_size=8, flip=True)
    assert np.allclose(flipped, want.transpose(1, 2, 0), atol=1e-6)       # the mirror's logits differ by a constant


def test_the_matting_region_keeps_the_band_outside_it_at_the_guess():
    image, alpha, trimap = disk_scene(h=120, w=100)
    guess = np.full(trimap.shape, 0.25, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = P.estimate_alpha(image, trimap)
        left = P.estimate_alpha(image, trimap, region=(0, 0, 50, 120), guess=guess)
        plain = P.estimate_alpha(image, trimap, region=(0, 0, 50, 120))
    band = (trimap == 128)
    inside, outside = band & (np.arange(100)[None, :] < 50), band & (np.arange(100)[None, :] >= 50)
    assert outside.any() and inside.any()
    assert np.all(left[outside] == 0.25) and np.all(plain[outside] == 0.5)   # the guess, or ½ without one
    assert np.abs(left[inside] - whole[inside]).mean() < 0.05              # solved as before inside
    assert np.array_equal(P._region_mask((4, 6), (-2, 1, 3, 9)),
                          np.array([[0] * 6] + [[1, 1, 1, 0, 0, 0]] * 3, bool))   # clipped at 0, rows 1-3, cols 0-2


def test_softmax_stays_finite_when_pixels_differ_by_thousands():
    """The softmax subtracts each pixel's own largest logit: a pixel whose logits are all far below another
    pixel's still gets probabilities summing to 1 (subtracting one global maximum would give it 0/0)."""
    logits = np.zeros((3, 4, 4), np.float32)
    logits[:, :2] = [[[0.0]], [[1.0]], [[2.0]]]                          # top half: ordinary logits
    logits[:, 2:] = [[[-3000.0]], [[-2999.0]], [[-3002.0]]]              # bottom half: thousands lower
    probs = P.class_probabilities(LogitsRuntime(logits), np.zeros((8, 8, 3), np.uint8), input_size=4)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(2), 1, atol=1e-6)
    assert probs[3, 0].argmax() == 1 and probs[0, 0].argmax() == 2


def test_pipeline_from_options_takes_every_segmentation_and_matting_option():
    from idphoto.options import IDPhotoOptions

    model = torch.nn.Conv2d(3, 3, 1)
    pipe = P.Pipeline.from_options(model, IDPhotoOptions(input_size=96, matting="knn", refine_kernel=7,
                                                         max_side=900, tta="flip"))
    assert pipe.model is model and pipe.device == "cpu"
    assert (pipe.input_size, pipe.matting, pipe.refine_kernel, pipe.max_side, pipe.flip) == (96, "knn", 7, 900, True)
    plain = P.Pipeline.from_options(model, IDPhotoOptions(max_side=0))   # 0: no cap
    assert (plain.input_size, plain.matting, plain.refine_kernel, plain.max_side, plain.flip) == (400, "cf", 10, None, False)


def band_runtime(trimap: np.ndarray, size: int = 40) -> LogitsRuntime:
    """A runtime whose classes are ``trimap``'s (at its input size), with soft probabilities: the unknown
    class's pixels say person 0.24, unknown 0.53 (so p_person + ½ p_unknown is 0.5 only by accident)."""
    classes = np.digitize(cv2.resize(trimap, (size, size), interpolation=cv2.INTER_NEAREST), (64, 192))
    table = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 0.2], [0.0, 0.0, 3.0]], np.float32)
    return LogitsRuntime(table[classes].transpose(2, 0, 1))


def test_run_matting_region_takes_the_networks_own_edge_outside_it_and_solves_inside():
    """Pipeline.run(region=…): beyond the region the unknown band is the network's p_person + ½ p_unknown
    (bilinearly resized to the photo), and the foreground there is the photo itself; inside the band is
    solved; the trimap is predict_trimap's."""
    image, _, trimap = disk_scene(120, 100)
    runtime = band_runtime(trimap)
    pipe = P.Pipeline(runtime, input_size=40, refine_kernel=3)
    region = (0, 0, 50, 120)
    result = pipe.run(image, region=region)
    assert np.array_equal(result.trimap, P.predict_trimap(runtime, image, 40, refine_kernel=3))
    probs = P.class_probabilities(runtime, image, 40)
    guess = cv2.resize(probs[..., 2] + 0.5 * probs[..., 1], (100, 120), interpolation=cv2.INTER_LINEAR)
    band = result.trimap == 128
    right = np.arange(100)[None, :] >= 50
    outside, inside = band & right, band & ~right
    assert outside.sum() > 50 and inside.sum() > 50
    assert np.allclose(result.alpha[outside], guess[outside], atol=1e-6)
    assert not np.allclose(result.alpha[inside], guess[inside], atol=0.05)     # solved from the photo
    soft = (result.alpha > 0) & (result.alpha < 1)
    assert np.array_equal(result.foreground[soft & right], image[soft & right] / np.float32(255))
    assert not np.allclose(result.foreground[soft & ~right], image[soft & ~right] / np.float32(255), atol=1e-3)


def test_run_solves_alpha_and_foreground_at_the_matte_scale(monkeypatch):
    """Pipeline.run(matte_scale=…) hands the scale to both solvers: they see the band's box at that share."""
    seen = {"alpha": [], "fg": []}
    real_cf, real_ml = P.closed_form_alpha, P.estimate_foreground_ml
    monkeypatch.setattr(P, "closed_form_alpha", lambda img, *a: seen["alpha"].append(img.shape[:2]) or real_cf(img, *a))
    monkeypatch.setattr(P, "estimate_foreground_ml", lambda img, *a, **k: seen["fg"].append(img.shape[:2]) or real_ml(img, *a, **k))
    image, _, trimap = disk_scene(160, 120)
    pipe = P.Pipeline(band_runtime(trimap), input_size=40, refine_kernel=3, max_side=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.run(image)
        pipe.run(image, matte_scale=0.5)
    (full_a, half_a), (full_f, half_f) = seen["alpha"], seen["fg"]
    assert half_a == (round(full_a[0] * 0.5), round(full_a[1] * 0.5))
    assert half_f[0] <= 0.6 * full_f[0] and half_f[1] <= 0.6 * full_f[1]   # its box follows the (other) matte


def test_estimate_alpha_clips_the_guess_and_keeps_known_pixels_outside_the_region():
    image, _, trimap = disk_scene(120, 100)
    guess = np.where(np.arange(120)[:, None] < 60, -0.5, 1.7).astype(np.float32) * np.ones((1, 100), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alpha = P.estimate_alpha(image, trimap, region=(0, 0, 50, 120), guess=guess)
    right = np.arange(100)[None, :] >= 50
    band = trimap == 128
    top = np.arange(120)[:, None] < 60
    assert (alpha[band & right & top] == 0).all() and (alpha[band & right & ~top] == 1).all()   # clipped to [0, 1]
    assert (alpha[trimap == 255] == 1).all() and (alpha[trimap == 0] == 0).all()   # known pixels everywhere keep 0/1
    assert ((alpha[band & ~right] > 0) & (alpha[band & ~right] < 1)).mean() > 0.3   # inside: solved, soft


def test_estimate_alpha_clips_the_solvers_answer_at_full_size(monkeypatch):
    """At the photo's size (no snapping of near-0/1 values) the solver's answer is still clipped to [0, 1]."""
    image, trimap = scene_with_band(80, 60)
    monkeypatch.setattr(P, "closed_form_alpha",
                        lambda img, fg, bg: np.tile(np.linspace(-0.6, 1.6, fg.shape[1]), (fg.shape[0], 1)))
    alpha = P.estimate_alpha(image, trimap, max_side=None)
    band = alpha[trimap == 128]
    assert band.min() == 0.0 and band.max() == 1.0 and ((band > 0) & (band < 1)).any()


def test_an_upsampled_alpha_within_half_a_level_of_one_is_one(monkeypatch):
    """Solved smaller and resized back, values within half an 8-bit level of 0 or 1 become exactly 0 or 1;
    a value a level away stays."""
    image, trimap = scene_with_band(200, 160)
    for value, want in ((1 - P.SNAP / 2, 1.0), (P.SNAP / 2, 0.0), (1 - 3 * P.SNAP, None)):
        monkeypatch.setattr(P, "closed_form_alpha", lambda img, fg, bg, v=value: np.full(fg.shape, v))
        band = P.estimate_alpha(image, trimap, max_side=50)[trimap == 128]
        if want is None:
            assert np.allclose(band, value, atol=1e-6) and (band < 1).all()
        else:
            assert (band == want).all()


def test_estimate_alpha_solves_at_the_scale_asked(monkeypatch):
    seen = []
    monkeypatch.setattr(P, "closed_form_alpha", lambda img, fg, bg: seen.append(fg.shape) or np.full(fg.shape, 0.5))
    image, trimap = scene_with_band(200, 160)
    P.estimate_alpha(image, trimap, max_side=None)
    P.estimate_alpha(image, trimap, max_side=None, scale=0.25)
    P.estimate_alpha(image, trimap, max_side=40, scale=0.5)               # the cap is lower: it wins
    full, quarter, capped = seen
    assert quarter == (round(full[0] / 4), round(full[1] / 4))
    assert max(capped) == 40


def test_estimate_foreground_in_a_region_at_a_scale():
    """Only the soft pixels inside the region are solved (at the working scale); beyond it, and on every
    opaque or clear pixel, the foreground is the photo's own colour."""
    image, alpha, _ = disk_scene(160, 120)
    photo = image / np.float32(255)
    region = (0, 0, 60, 160)
    fg = P.estimate_foreground(image, alpha, max_side=None, scale=0.5, region=region)
    whole = P.estimate_foreground(image, alpha, max_side=None, scale=0.5)
    soft = (alpha > 0) & (alpha < 1)
    left = np.arange(120)[None, :] < 60
    assert np.array_equal(fg[~soft], photo[~soft]) and np.array_equal(fg[soft & ~left], photo[soft & ~left])
    assert np.abs(fg[soft & left] - whole[soft & left]).max() < 0.02   # as solved without a region
    assert np.abs(fg[soft & left] - photo[soft & left]).max() > 0.1    # and solved: the green fringe removed


def test_working_scale_takes_the_smaller_of_the_scale_asked_and_the_cap():
    assert P._working_scale((1000, 500), 400, 0.8) == pytest.approx(0.4)
    assert P._working_scale((1000, 500), 400, 0.2) == pytest.approx(0.2)
    assert P._working_scale((300, 200), 400, 0.5) == 0.5 and P._working_scale((300, 200), None, 0.5) == 0.5


def test_region_mask_edges():
    assert P._region_mask((4, 6), (0, 0, 6, 4)).all()                     # from the first row and column
    assert not P._region_mask((4, 6), (0, 0, 6, 0)).any() and not P._region_mask((4, 6), (0, 0, 0, 4)).any()
    assert not P._region_mask((4, 6), (-5, -5, -1, -1)).any()             # wholly before the photo


# ------------------------------------------------------------------- the trimap, alpha and foreground stages
def test_predict_trimap_shape_values_and_rgb_normalisation(monkeypatch):
    torch.manual_seed(0)
    model = TNet("mobilenetv3").eval()
    image = np.random.default_rng(0).integers(0, 255, (130, 100, 3), np.uint8)
    trimap = predict_trimap(model, image, input_size=96)
    assert trimap.shape == (130, 100) and trimap.dtype == np.uint8
    assert set(np.unique(trimap)) <= {0, 128, 255}

    seen = {}

    def spy(x):
        seen["x"] = x
        return torch.zeros(1, 3, *x.shape[-2:])

    image[:] = (0, 0, 255)  # pure red in BGR
    predict_trimap(spy, image, input_size=64)
    x = seen["x"]
    assert x.shape == (1, 3, 64, 64)
    # channel 0 must be R (ImageNet normalised: (1 - 0.485) / 0.229), channel 2 B ((0 - 0.406) / 0.225)
    assert x[0, 0].mean().item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-3)
    assert x[0, 2].mean().item() == pytest.approx(-0.406 / 0.225, abs=1e-3)


def test_predict_trimap_maps_unknown_to_128():
    # the argmax classes 0/1/2 must become 0/128/255: unscaled they look black, and "unknown" must not merge
    # into the foreground
    image = np.zeros((90, 60, 3), np.uint8)
    trimap = predict_trimap(class_logits(torch.ones(8, 8, dtype=torch.long)), image, input_size=64)
    assert trimap.shape == (90, 60) and np.all(trimap == 128)
    bands = torch.tensor([[0, 0, 1, 1, 2, 2]]).repeat(6, 1)  # background | unknown | foreground, left to right
    trimap = predict_trimap(class_logits(bands), image, input_size=48, refine_kernel=0)
    assert np.all(trimap[:, :15] == 0) and np.all(trimap[:, 25:35] == 128) and np.all(trimap[:, 45:] == 255)
    raw, refined = predict_trimap_pair(class_logits(bands), image, input_size=48)
    assert np.array_equal(raw, trimap)
    assert (refined == 128).sum() > (raw == 128).sum()  # the refinement widens the unknown band
    assert np.array_equal(refined, predict_trimap(class_logits(bands), image, input_size=48))


def test_estimate_alpha_crop_matches_full_resolution_solve():
    image, true_alpha, trimap = disk_scene()
    # pad with plain background so the crop around the unknown band is much smaller than the photo
    image = cv2.copyMakeBorder(image, 40, 40, 40, 40, cv2.BORDER_REPLICATE)
    trimap = cv2.copyMakeBorder(trimap, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=0)
    true_alpha = cv2.copyMakeBorder(true_alpha, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=0)
    alpha = estimate_alpha(image, trimap, "cf")
    assert alpha.shape == trimap.shape and alpha.dtype == np.float32
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    full = pymatting.estimate_alpha_cf(image[:, :, ::-1] / 255.0, trimap / 255.0)
    assert np.abs(alpha - full).max() < 0.02
    assert np.abs(alpha - true_alpha)[trimap == 128].mean() < 0.1
    soft = alpha[trimap == 128]
    assert ((soft > 0.05) & (soft < 0.95)).any()  # a real matte, not a hard mask


def test_estimate_alpha_caps_resolution_and_keeps_known_pixels_exact():
    image, _, trimap = disk_scene(240, 200)
    alpha = estimate_alpha(image, trimap, "cf", max_side=64)
    assert alpha.shape == (240, 200)
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    assert np.abs(alpha - estimate_alpha(image, trimap, "cf", max_side=None))[trimap == 128].mean() < 0.1


def test_estimate_alpha_degenerate_trimaps():
    image = np.full((50, 40, 3), 128, np.uint8)
    assert np.all(estimate_alpha(image, np.full((50, 40), 255, np.uint8)) == 1)
    assert np.all(estimate_alpha(image, np.zeros((50, 40), np.uint8)) == 0)
    with pytest.warns(UserWarning, match="no sure"):
        a = estimate_alpha(image, np.full((50, 40), 128, np.uint8))
    assert a.shape == (50, 40) and np.all(a == 0)
    with pytest.raises(ValueError, match="unknown matting method"):
        estimate_alpha(image, np.zeros((50, 40), np.uint8), "nope")


def test_estimate_foreground_removes_old_background_colour():
    image, alpha, _ = disk_scene(fg=(40, 40, 220), bg=(60, 200, 60))  # red person on green
    fg = estimate_foreground(image, alpha)
    assert fg.shape == image.shape and fg.dtype == np.float32
    soft = (alpha > 0.2) & (alpha < 0.8)
    red = np.array([40, 40, 220]) / 255
    raw_error = np.abs(image[soft] / 255 - red).mean()
    assert np.abs(fg[soft] - red).mean() < raw_error / 3  # the green fringe is gone
    opaque = alpha == 1
    assert np.allclose(fg[opaque], image[opaque] / 255, atol=1e-6)


@pytest.mark.filterwarnings("ignore::idphoto.MattingWarning")  # a random-init TNet finds no person
def test_pipeline_run_returns_everything_with_timings():
    torch.manual_seed(0)
    pipe = Pipeline(TNet("mobilenetv3"), input_size=96)
    image = np.random.default_rng(1).integers(0, 255, (90, 70, 3), np.uint8)
    result = pipe.run(image)
    assert result.trimap.shape == result.alpha.shape == (90, 70)
    assert result.foreground.shape == (90, 70, 3)
    assert set(result.timings) == {"trimap", "alpha", "foreground"}
    assert result.cutout_rgba().shape == (90, 70, 4)


def test_flip_tta_averages_the_photo_and_its_mirror():
    """With flip TTA the trimap of a photo is the mirror of the trimap of the mirrored photo (the averaged
    probabilities are symmetric), and a model that only sees one half of the photo becomes symmetric."""

    class LeftOnly(torch.nn.Module):      # 'person' wherever x < half the width: foreground logits there
        def forward(self, x):
            n, _, h, w = x.shape
            logits = torch.zeros(n, 3, h, w)
            logits[:, 2, :, : w // 2] = 5.0
            logits[:, 0, :, w // 2:] = 1.0
            return logits

    photo = np.zeros((64, 64, 3), np.uint8)
    raw, _ = predict_trimap_pair(LeftOnly(), photo, 64, refine_kernel=0)
    assert (raw[:, :32] == 255).all() and (raw[:, 32:] == 0).all()
    raw_tta, _ = predict_trimap_pair(LeftOnly(), photo, 64, refine_kernel=0, flip=True)
    # averaged: each side has p(fg) ≈ 0.5 from one view and p(bg) from the other → both sides agree
    assert np.array_equal(raw_tta, raw_tta[:, ::-1]) and (raw_tta == 255).all()
    model = LeftOnly()
    assert model_input_size(model) == 400
    model.meta = {"input_size": 256}
    assert model_input_size(model) == 256


def test_pipeline_cutout_carries_no_fringe_of_the_old_background():
    """A red 'person' with soft edges on a green screen, with TNet replaced by the true trimap: the
    foreground the pipeline hands on (cut-out colours, composite) has the green removed at the soft edge."""
    image, alpha, trimap = disk_scene(160, 140, fg=(40, 40, 220), bg=(60, 200, 60))
    classes = torch.from_numpy(np.digitize(trimap, (64, 192)))
    class Oracle(torch.nn.Module):
        def forward(self, x):
            return class_logits(classes)(x)

    result = Pipeline(Oracle(), input_size=160, refine_kernel=0).run(image)
    soft = (alpha > 0.2) & (alpha < 0.8) & (result.alpha > 0.1)
    assert soft.sum() > 50
    green_in_photo = image[soft][:, 1].mean() / 255
    green_in_cutout = result.foreground[soft][:, 1].mean()
    assert green_in_photo > 0.3 and green_in_cutout < 0.25      # BGR: channel 1 is green
    cut = result.cutout_rgba()
    assert np.abs(cut[soft][:, :3].astype(int) - (40, 40, 220)).mean() < 40


def test_matting_keeps_known_pixels_around_the_band_in_its_crop():
    """A band that spans the photo's width between foreground (top) and background (bottom): only the
    known rows kept around the band's box let the solver see both sides; without them it would give up
    and return a constant."""
    h, w = 80, 60
    ramp = np.clip((np.arange(h, dtype=np.float32) - 35) / 10, 0, 1)[:, None].repeat(w, 1)  # 1 → 0 downwards
    true_alpha = 1 - ramp
    image = (true_alpha[..., None] * np.array([30, 30, 200]) + ramp[..., None] * np.array([200, 200, 30])).astype(np.uint8)
    trimap = np.zeros((h, w), np.uint8)
    trimap[:34] = 255
    trimap[34:47] = 128
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # "no sure foreground/background" would be raised here
        alpha = estimate_alpha(image, trimap, "cf")
    band = alpha[36:45]
    assert band.std() > 0.1 and np.abs(band - true_alpha[36:45]).mean() < 0.15
