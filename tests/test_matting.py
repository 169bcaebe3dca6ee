"""idphoto.matting (closed-form alpha, multi-level foreground) against pymatting, and the first-run note."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import idphoto.pipeline as P
from conftest import disk_scene
from idphoto import pipeline
from idphoto.matting import closed_form_alpha, estimate_foreground_ml

REPO = Path(__file__).resolve().parents[1]


def soft_scene(h: int = 90, w: int = 110, seed: int = 0):
    """A textured 'person' (a soft-edged blob with wisps) over a textured background; (image float RGB,
    true alpha float, trimap uint8 0/128/255 with an unknown band about the soft edge)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 4, h // 3), 15, 0, 360, 255, -1)
    for _ in range(6):  # thin strands, like hair
        x0, y0 = int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 6, h // 3))
        cv2.line(mask, (x0, y0), (x0 + int(rng.integers(-15, 15)), y0 - 12), 255, 1)
    alpha = cv2.GaussianBlur(mask, (0, 0), 2.0).astype(np.float64) / 255.0
    fg = np.clip(np.array([0.8, 0.3, 0.2]) + 0.15 * cv2.GaussianBlur(rng.random((h, w, 3)), (0, 0), 2), 0, 1)
    bg = np.clip(np.array([0.2, 0.5, 0.3]) + 0.3 * cv2.GaussianBlur(rng.random((h, w, 3)), (0, 0), 3), 0, 1)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    a8 = (alpha * 255).round().astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    trimap = np.full((h, w), 128, np.uint8)
    trimap[cv2.erode(a8, kernel) >= 250] = 255
    trimap[cv2.dilate(a8, kernel) <= 5] = 0
    return image, alpha, trimap, fg, bg


def test_closed_form_alpha_is_pymattings_solution():
    pymatting = pytest.importorskip("pymatting")
    image, true_alpha, trimap, _, _ = soft_scene()
    alpha = closed_form_alpha(image, trimap == 255, trimap == 0)
    reference = pymatting.estimate_alpha_cf(image, trimap / 255.0)
    assert alpha.shape == trimap.shape and alpha.dtype == np.float64
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    # the same system: the exact solve and pymatting's conjugate gradients (rtol 1e-7) agree closely
    assert np.abs(alpha - reference).max() < 1e-3
    band = trimap == 128
    assert np.abs(alpha - true_alpha)[band].mean() < 0.1
    assert ((alpha[band] > 0.05) & (alpha[band] < 0.95)).mean() > 0.3  # a soft matte, not a mask


def test_closed_form_alpha_refuses_unsolvable_systems():
    image = np.full((20, 20, 3), 0.5)
    with pytest.raises(ValueError, match="known pixels"):
        closed_form_alpha(image, np.zeros((20, 20), bool), np.zeros((20, 20), bool))
    with pytest.raises(ValueError, match="3×3"):
        closed_form_alpha(image[:2], np.zeros((2, 20), bool), np.eye(2, 20, dtype=bool))
    fg = np.zeros((20, 20), bool)
    fg[:, :5] = True
    assert np.all(closed_form_alpha(image, fg, ~fg) == fg)  # nothing unknown: the trimap itself


def test_dissection_order_cuts_the_fill_of_a_wide_band():
    """The nested-dissection order is a permutation that factors a wide unknown band (a ring 30 px wide, as
    a TNet band at 256² is on an 800 px photo) with clearly less fill than reverse Cuthill–McKee, and the
    ordered solve gives the unordered one's alpha."""
    import scipy.sparse.linalg
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    from idphoto.matting import _unknown_system, dissection_order

    rng = np.random.default_rng(1)
    h = w = 200
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - 100, xx - 100)
    is_fg, unknown = r < 60, (r >= 60) & (r < 90)
    image = cv2.GaussianBlur(rng.random((h, w, 3)), (0, 0), 1.5)
    order = dissection_order(*np.divmod(np.flatnonzero(unknown), w))
    assert np.array_equal(np.sort(order), np.arange(unknown.sum()))

    L, b, pixels = _unknown_system(image, is_fg, unknown, 1e-7)      # rows in dissection order
    assert np.array_equal(np.sort(pixels), np.flatnonzero(unknown))

    def factor(m):
        return scipy.sparse.linalg.splu(m.tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0,
                                        options={"SymmetricMode": True})

    nested = factor(L)
    rcm = reverse_cuthill_mckee(L.tocsr(), symmetric_mode=True)
    banded = factor(L[rcm][:, rcm])
    fill = lambda lu: lu.L.nnz + lu.U.nnz  # noqa: E731
    assert fill(nested) < 0.8 * fill(banded)
    x = np.empty_like(b)
    x[rcm] = banded.solve(b[rcm])
    assert np.abs(nested.solve(b) - x).max() < 1e-8
    alpha = closed_form_alpha(image, is_fg, ~(is_fg | unknown))
    assert np.abs(alpha.ravel()[pixels] - np.clip(x, 0, 1)).max() < 1e-8


def composite_scene():
    image, alpha, _, fg, bg = soft_scene(120, 100, seed=3)
    return image.astype(np.float32), alpha.astype(np.float32), fg.astype(np.float32)


def composite_error(F_hat, F, alpha):
    """Error of compositing the estimate on a new background: α·|F̂ − F| over 0 < α < 1."""
    soft = (alpha > 0) & (alpha < 1)
    return float((alpha[..., None] * np.abs(F_hat - F))[soft].mean())


def test_foreground_ml_recovers_the_foreground_as_well_as_pymatting():
    pymatting = pytest.importorskip("pymatting")
    image, alpha, F = composite_scene()
    ours = estimate_foreground_ml(image, alpha)
    theirs = pymatting.estimate_foreground_ml(image.astype(np.float64), alpha.astype(np.float64))
    assert ours.shape == image.shape and ours.dtype == np.float32
    none = composite_error(image, F, alpha)
    assert composite_error(ours, F, alpha) < 0.6 * none            # the old background's colour is removed
    assert composite_error(ours, F, alpha) <= 1.05 * composite_error(theirs, F, alpha)


def test_foreground_ml_restricted_update_is_exact():
    image, alpha, _ = composite_scene()
    full = estimate_foreground_ml(image, alpha, needed=np.ones(alpha.shape, bool))
    fast = estimate_foreground_ml(image, alpha)
    soft = (alpha > 0) & (alpha < 1)
    assert np.abs(fast[soft] - full[soft]).max() < 1e-6
    some = np.zeros(alpha.shape, bool)
    some[40:60, 30:50] = True
    assert np.abs(estimate_foreground_ml(image, alpha, needed=some)[some] - full[some]).max() < 1e-6


def test_default_matting_imports_neither_pymatting_nor_numba():
    code = ("import sys, numpy as np\n"
            "from idphoto.pipeline import estimate_alpha, estimate_foreground\n"
            "img = np.zeros((60, 60, 3), np.uint8); img[:, 30:] = 200\n"
            "tri = np.zeros((60, 60), np.uint8); tri[:, 26:34] = 128; tri[:, 34:] = 255\n"
            "a = estimate_alpha(img, tri); f = estimate_foreground(img, a)\n"
            "assert 0 < a[:, 26:34].mean() < 1\n"
            "print(sorted(m for m in ('pymatting', 'numba', 'torch') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_cache_dirs_are_where_numba_looks(monkeypatch, tmp_path):
    pytest.importorskip("pymatting")
    import importlib

    from numba.core import caching, config

    cf_laplacian = importlib.import_module("pymatting.laplacian.cf_laplacian")  # the package hides it by a function
    kernel = cf_laplacian._cf_laplacian.py_func
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    user = caching.UserProvidedCacheLocator(kernel, cf_laplacian.__file__).get_cache_path()
    in_tree = caching.InTreeCacheLocator(kernel, cf_laplacian.__file__).get_cache_path()
    assert pipeline.pymatting_cache_dirs()[:2] == [user, in_tree]


def test_first_run_note_only_when_the_kernels_are_not_cached(monkeypatch, tmp_path, capsys):
    pytest.importorskip("pymatting")
    cache = tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    assert pipeline.pymatting_cache_is_cold()
    # pymatting is already loaded in this process: forget it, so that import_pymatting looks again
    monkeypatch.delitem(sys.modules, "pymatting")
    pipeline.import_pymatting()
    err = capsys.readouterr().err
    assert err.count("first run: compiling") == 1 and len(err.strip().splitlines()) == 1
    assert "pymatting" in sys.modules
    pipeline.import_pymatting()  # imported now: nothing more to say
    assert capsys.readouterr().err == ""

    monkeypatch.delitem(sys.modules, "pymatting")
    index = Path(pipeline.pymatting_cache_dirs()[0]) / "cf_laplacian._cf_laplacian-5.py311.nbi"
    index.parent.mkdir(parents=True)
    index.write_bytes(b"")
    assert not pipeline.pymatting_cache_is_cold()
    pipeline.import_pymatting()
    assert capsys.readouterr().err == ""


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
