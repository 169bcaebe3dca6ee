"""core/metrics.py's matting errors on hand-computable cases, and evaluate.py end to end (synthetic data, random compact TNet)."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

import evaluate
import core.metrics as mm
from conftest import REPO, reference_gradient_error, shared_path, synthetic_portrait
from tnet import evaluation
from utils import erode_dilate, make_trimap, read_image

FAST = ["--input-size", "64", "--threads", "1", "--quiet"]


# ------------------------------------------------------------------------------------------ the metrics
def step_edge(h=10, w=20, col=5) -> np.ndarray:
    a = np.zeros((h, w))
    a[:, col:] = 1.0
    return a


def test_identical_alphas_have_zero_error():
    gt = cv2.GaussianBlur(step_edge(40, 40, 20), (0, 0), 3)
    errors = mm.matting_errors(gt.copy(), gt)
    assert errors == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_sad_and_mse_of_a_one_pixel_shift():
    gt, pred = step_edge(col=5), step_edge(col=6)  # one column of 10 pixels differs by 1
    assert mm.sad(pred, gt) == pytest.approx(10 / 1000)
    assert mm.mse(pred, gt) == pytest.approx(10 / 200)
    region = np.zeros_like(gt, bool)
    region[:, 4:8] = True  # 40 pixels, the 10 wrong ones among them
    assert mm.mse(pred, gt, region) == pytest.approx(10 / 40)
    assert mm.sad(pred, gt, region) == pytest.approx(10 / 1000)
    region[:, 5] = False  # the wrong column left out
    assert mm.sad(pred, gt, region) == 0.0


def test_uint8_inputs_are_scaled_to_unit_range():
    gt = np.zeros((4, 5), np.uint8)
    pred = np.full((4, 5), 255, np.uint8)
    assert mm.sad(pred, gt) == pytest.approx(20 / 1000)
    assert mm.mse(np.full((4, 5), 0.5), gt) == pytest.approx(0.25)


def test_empty_region_gives_nan_mse_and_zero_sums():
    a, b = np.zeros((3, 3)), np.ones((3, 3))
    empty = np.zeros((3, 3), bool)
    assert math.isnan(mm.mse(a, b, empty))
    assert mm.sad(a, b, empty) == 0.0 and mm.gradient_error(a, b, empty) == 0.0


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        mm.sad(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError):
        mm.sad(np.zeros((3, 3)), np.zeros((3, 3)), np.ones((2, 2), bool))


def test_gradient_kernel_matches_the_reference_construction():
    # The benchmark's gaussgradient: half-size 4 for sigma 1.4, 2-D kernel G(y)·G'(x) of unit L2 norm.
    g, dg = mm.gaussian_gradient_kernels(1.4)
    assert len(g) == len(dg) == 9
    hx = np.outer(g, dg)
    assert np.sqrt((hx**2).sum()) == pytest.approx(1.0)
    assert dg[4] == 0.0 and dg[0] == pytest.approx(-dg[-1])


def test_gradient_error_matches_the_reference_port():
    rng = np.random.default_rng(0)
    gt = cv2.GaussianBlur(rng.random((30, 40)), (0, 0), 2)
    pred = np.clip(gt + 0.2 * rng.standard_normal(gt.shape), 0, 1)
    assert mm.gradient_error(pred, gt) == pytest.approx(reference_gradient_error(pred, gt), rel=1e-9)


def test_gradient_error_ignores_constant_offsets_but_sees_shifted_edges():
    assert mm.gradient_error(np.full((20, 20), 0.3), np.full((20, 20), 0.8)) == pytest.approx(0.0, abs=1e-15)
    gt = step_edge(20, 30, 10)
    assert mm.gradient_error(step_edge(20, 30, 14), gt) > 0
    # a shift by one column moves the gradient ridge: the error is symmetric in its arguments
    assert mm.gradient_error(step_edge(20, 30, 11), gt) == pytest.approx(mm.gradient_error(gt, step_edge(20, 30, 11)))


def test_connectivity_counts_a_disconnected_island():
    gt = np.zeros((20, 20))
    gt[2:10, 2:10] = 1.0
    pred = gt.copy()
    pred[15:17, 15:17] = 1.0  # a 4-pixel island where the truth is background
    # island pixels: level 0 → φ(pred) = 1 − 1 = 0, φ(gt) = 1 − 0 = 1 → |Δ| = 1 each
    assert mm.connectivity_error(pred, gt) == pytest.approx(4 / 1000)
    region = np.ones_like(gt, bool)
    region[15:17, 15:17] = False
    assert mm.connectivity_error(pred, gt, region) == 0.0


def test_connectivity_ignores_small_dips_that_sad_sees():
    gt = np.zeros((20, 20))
    gt[2:12, 2:12] = 1.0
    pred = gt.copy()
    pred[6, 6] = 0.95  # drops out of the source only at t = 1.0 → level 0.9; d = 0.05 and 0.1, both < 0.15
    assert mm.connectivity_error(pred, gt) == 0.0
    assert mm.sad(pred, gt) == pytest.approx(0.05 / 1000)


def test_mask_iou_and_soft_share():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[:, :2], b[:, 1:3] = True, True  # 4 pixels in common, 12 in the union
    assert mm.mask_iou(a, b) == pytest.approx(4 / 12)
    assert mm.mask_iou(a, a) == 1.0
    assert mm.mask_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0  # nothing to disagree on
    assert mm.soft_share(np.array([[0, 255], [255, 0]], np.uint8)) == 0.0
    assert mm.soft_share(np.array([[0, 128], [1, 255]], np.uint8)) == 0.5
    _, alpha = synthetic_portrait(0)
    assert mm.soft_share(alpha) > evaluate.SOFT_MIN_SHARE


# ------------------------------------------------------------------------------------------- evaluate.py
def make_folders(root, n=3, binary=False, mask_ext=".png"):
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i in range(n):
        photo, alpha = synthetic_portrait(i)
        if binary:
            alpha = np.where(alpha >= 128, 255, 0).astype(np.uint8)
        cv2.imwrite(str(images / f"p{i}.jpg"), photo)
        cv2.imwrite(str(masks / f"p{i}{mask_ext}"), alpha)
    return images, masks


def read_outputs(out):
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((out / "summary.json").read_text())


def in_unit(v) -> bool:
    return 0.0 <= float(v) <= 1.0


def test_folders_with_soft_mattes(tmp_path, checkpoint, capsys):
    images, masks = make_folders(tmp_path)
    out = tmp_path / "out"
    rc = evaluate.main(["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
                        "--out-dir", str(out), *FAST])
    assert rc == 0
    rows, summary = read_outputs(out)
    assert [r["name"] for r in rows] == ["p0", "p1", "p2"]
    assert list(rows[0]) == [f.name for f in dataclasses.fields(evaluation.ImageScores)]
    for r in rows:
        assert r["soft_gt"] == "1" and (r["width"], r["height"]) == ("96", "128")
        for k in ("trimap_mIoU", "trimap_acc", "trimap_refined_mIoU", "iou_tnet", "iou_alpha"):
            assert in_unit(r[k]), (k, r[k])
        for k in ("sad", "mse", "grad", "conn"):
            assert float(r[k]) >= 0.0
        assert float(r["t_trimap"]) > 0 and float(r["t_alpha"]) >= 0
    assert summary["images"] == 3 and summary["backbone"] == "mobilenetv3"
    assert set(summary) >= {"trimap", "person_iou", "matting", "seconds_per_image", "settings", "failed"}
    assert set(summary["trimap"]["pooled"]) == {"mIoU", "pixel_acc", "IoU_bg", "IoU_unknown", "IoU_fg"}
    assert in_unit(summary["trimap"]["refined_mIoU"]["pooled"]) and summary["trimap"]["refined_mIoU"]["refine_kernel"] == 10
    assert summary["matting"]["images"] == 3 and summary["matting"]["sad"] is not None
    assert summary["matting"]["sad"] == pytest.approx(np.mean([float(r["sad"]) for r in rows]), abs=1e-5)
    table = capsys.readouterr().out
    assert "trimap, pooled over pixels" in table and "refined trimap" in table and "SAD" in table


def oracle(monkeypatch, pairs):
    """Make TNet and the matting perfect: TNet's argmax trimap is the ground-truth trimap (refined like the real
    one: erode/dilate), and the matting — which must be given the refined trimap — returns the ground truth."""
    import idphoto

    truth = {hashlib.sha1(read_image(p).tobytes()).hexdigest(): a for p, a in pairs}
    gt = lambda img: truth[hashlib.sha1(img.tobytes()).hexdigest()]  # noqa: E731

    def trimaps(model, img, input_size, device, refine_kernel, flip=False):
        raw = make_trimap(gt(img))
        return raw, erode_dilate(raw, refine_kernel)

    def alpha(img, trimap, *a, **k):
        assert np.array_equal(trimap, erode_dilate(make_trimap(gt(img)), 10)), "the matting must get the refined trimap"
        return gt(img) / 255.0

    monkeypatch.setattr(idphoto, "predict_trimap_pair", trimaps)
    monkeypatch.setattr(idphoto, "estimate_alpha", alpha)


def test_a_perfect_prediction_scores_perfectly(tmp_path, checkpoint, monkeypatch):
    images, masks = make_folders(tmp_path)
    oracle(monkeypatch, [(images / f"p{i}.jpg", synthetic_portrait(i)[1]) for i in range(3)])
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
                          "--out-dir", str(out), *FAST]) == 0
    rows, s = read_outputs(out)
    # TNet's own trimap is scored: a perfect one scores 1, though the refinement widens the band it hands on
    assert s["trimap"]["pooled"]["mIoU"] == 1.0 and s["trimap"]["pooled"]["pixel_acc"] == 1.0
    assert all(float(r["trimap_mIoU"]) == 1.0 and float(r["trimap_IoU_unknown"]) == 1.0 for r in rows)
    assert 0.5 < s["trimap"]["refined_mIoU"]["pooled"] < 1.0
    assert all(0.5 < float(r["trimap_refined_mIoU"]) < 1.0 for r in rows)
    assert s["person_iou"]["alpha_ge_0.5"] == 1.0
    # TNet's fg+unknown mask is wider than the person by the unknown band: IoU < 1, but not by much
    assert 0.6 < s["person_iou"]["tnet_fg_unknown"] < 1.0
    assert all(s["matting"][k] == 0.0 for k in ("sad", "mse", "grad", "conn"))


def test_binary_masks_skip_the_matting_errors(tmp_path, checkpoint, capsys):
    images, masks = make_folders(tmp_path, n=2, binary=True)
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
                          "--out-dir", str(out), *FAST]) == 0
    rows, s = read_outputs(out)
    assert all(r["soft_gt"] == "0" and r["sad"] == "" and r["conn"] == "" for r in rows)
    assert all(in_unit(r["iou_alpha"]) for r in rows)
    assert s["matting"]["images"] == 0 and "binary" in s["matting"]["skipped"]
    assert "skipped" in capsys.readouterr().out


def test_zero_one_masks_of_another_size_are_scaled_and_resized(tmp_path, checkpoint):
    images, masks = tmp_path / "i", tmp_path / "m"
    images.mkdir()
    masks.mkdir()
    photo, alpha = synthetic_portrait(3)
    cv2.imwrite(str(images / "a.jpg"), photo)
    small = cv2.resize((alpha >= 128).astype(np.uint8), (48, 64), interpolation=cv2.INTER_NEAREST)  # values 0/1
    cv2.imwrite(str(masks / "a.png"), small)
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
                          "--out-dir", str(out), "--no-matting", *FAST]) == 0
    rows, s = read_outputs(out)
    assert s["gt_resized"] == 1 and rows[0]["soft_gt"] == "0"
    gt, resized = evaluation.read_ground_truth(masks / "a.png", photo.shape[:2])
    assert resized and gt.shape == photo.shape[:2] and set(np.unique(gt)) == {0, 255}


def test_prepared_lists_without_matting(prepared, tmp_path, checkpoint):
    out = tmp_path / "out"
    rc = evaluate.main(["--checkpoint", str(checkpoint), "--dataname", "synth_val", "--data-dir", str(prepared),
                        "--out-dir", str(out), "--no-matting", "--limit", "3", *FAST])
    assert rc == 0
    rows, s = read_outputs(out)
    assert len(rows) == 3 and s["images"] == 3
    assert all(r["iou_alpha"] == "" and r["t_alpha"] == "" and in_unit(r["trimap_mIoU"]) for r in rows)
    assert s["matting"]["skipped"] == "--no-matting" and s["person_iou"]["alpha_ge_0.5"] is None
    assert s["settings"]["gt_trimap"] == "the lists' trimaps" and s["settings"]["matting"] is None


# ------------------------------------------------------------------------------------------- bad inputs
def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("evaluate.py: error:"), err
    return err


@pytest.mark.parametrize("argv, words", [
    (["--dataname", "x", "--images", "i", "--masks", "m"], "not both"),
    ([], "no data"),
    (["--images", "i"], "go together"),
    (["--dataname", "x", "--input-size", "100"], "multiple of 8"),
    (["--dataname", "x", "--limit", "-1"], "--limit"),
])
def test_usage_mistakes_exit_2_in_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate.main(argv)
    assert exc.value.code == 2
    assert words in one_line_error(capsys)


def test_corrupt_list_is_named(prepared, tmp_path, checkpoint, capsys):
    data = tmp_path / "lists"
    data.mkdir()
    for kind in ("img", "alpha", "trimap"):
        (data / f"synth_val_{kind}.json").write_text((prepared / f"synth_val_{kind}.json").read_text())
    (data / "synth_val_alpha.json").write_text('["a.png", ')  # truncated JSON
    assert evaluate.main(["--checkpoint", str(checkpoint), "--dataname", "synth_val", "--data-dir", str(data),
                          "--out-dir", str(tmp_path / "out"), *FAST]) == 1
    err = one_line_error(capsys)
    assert str(data / "synth_val_alpha.json") in err and "not a valid JSON list" in err
    assert not (tmp_path / "out").exists()


def test_empty_or_odd_checkpoint_is_one_line(tmp_path, capsys):
    import torch

    from models import TNet
    from utils import save_checkpoint

    images, masks = make_folders(tmp_path, n=1)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    arch_str = tmp_path / "arch.pth"
    save_checkpoint({"arch": "mobilenetv3", "model": TNet("mobilenetv3").state_dict()}, arch_str)
    for ckpt, words in ((empty, "is empty (0 bytes)"), (arch_str, "its 'arch' entry is a str")):
        assert evaluate.main(["--checkpoint", str(ckpt), "--images", str(images), "--masks", str(masks),
                              "--out-dir", str(tmp_path / "out"), *FAST]) == 1
        err = one_line_error(capsys)
        assert words in err and str(ckpt) in err and "unexpected" not in err
    if not torch.cuda.is_available():  # a missing CUDA device: exit 1, as in infer.py and train.py
        assert evaluate.main(["--checkpoint", str(arch_str), "--images", str(images), "--masks", str(masks),
                              "--device", "cuda", *FAST]) == 1
        assert "no CUDA device" in one_line_error(capsys)


def test_out_dir_that_is_a_file_fails_before_evaluating(tmp_path, checkpoint, capsys, monkeypatch):
    images, masks = make_folders(tmp_path, n=1)
    (tmp_path / "out").write_text("a file")
    monkeypatch.setattr(evaluation, "evaluate_one", lambda *a: pytest.fail("evaluated before checking --out-dir"))
    assert evaluate.main(["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
                          "--out-dir", str(tmp_path / "out"), *FAST]) == 1
    assert "--out-dir is a file, not a folder" in one_line_error(capsys)


def test_missing_checkpoint(tmp_path, capsys):
    images, masks = make_folders(tmp_path, n=1)
    assert evaluate.main(["--checkpoint", str(tmp_path / "nope.pth"), "--images", str(images),
                          "--masks", str(masks), "--out-dir", str(tmp_path / "out")]) == 1
    assert "not found" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_empty_folder_and_missing_lists(tmp_path, checkpoint, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    images, masks = make_folders(tmp_path, n=1)
    assert evaluate.main(["--checkpoint", str(checkpoint), "--images", str(empty), "--masks", str(masks)]) == 1
    assert "no images" in one_line_error(capsys)
    assert evaluate.main(["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(empty)]) == 1
    assert "no masks" in one_line_error(capsys)
    assert evaluate.main(["--checkpoint", str(checkpoint), "--dataname", "nothing", "--data-dir", str(tmp_path)]) == 1
    assert "prepare_aifenge.py" in one_line_error(capsys)


def test_unmatched_files_are_listed_and_counted(tmp_path, checkpoint, capsys):
    images, masks = make_folders(tmp_path, n=3)
    (masks / "p1.png").rename(masks / "other.png")
    cv2.imwrite(str(images / "p9.jpg"), synthetic_portrait(9)[0])
    argv = ["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
            "--out-dir", str(tmp_path / "out"), "--no-matting", *FAST]
    assert evaluate.main(argv) == 1
    err = one_line_error(capsys)
    assert "2 photo(s)" in err and "p1.jpg" in err and "p9.jpg" in err
    assert "1 mask(s)" in err and "other.png" in err and "--skip-unmatched" in err
    assert not (tmp_path / "out").exists()
    assert evaluate.main(argv + ["--skip-unmatched"]) == 0
    rows, s = read_outputs(tmp_path / "out")
    assert [r["name"] for r in rows] == ["p0", "p2"] and len(s["unmatched"]) == 2


def test_unreadable_photo_is_skipped_and_the_exit_is_non_zero(tmp_path, checkpoint, capsys):
    images, masks = make_folders(tmp_path, n=2)
    (images / "p1.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert evaluate.main(["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
                          "--out-dir", str(out), "--no-matting", *FAST]) == 1
    rows, s = read_outputs(out)
    assert [r["name"] for r in rows] == ["p0"] and s["failed"][0]["name"] == "p1"
    assert "cannot read the photo" in capsys.readouterr().err


def test_cli_help_and_error_without_traceback(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0
    for flag in ("--checkpoint", "--dataname", "--data-dir", "--images", "--masks", "--input-size", "--matting",
                 "--no-matting", "--limit", "--device", "--out-dir", "--threads", "--skip-unmatched"):
        assert flag in run.stdout
    run = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "--checkpoint", str(tmp_path / "x.pth"),
                          "--dataname", "x", "--data-dir", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr and run.stderr.count("\n") == 1


# ----------------------------------------------------------------------------------------- shared data
def test_three_pfcn_portraits(tmp_path, checkpoint):
    root = shared_path("data", "pfcn_portrait_seg")
    out = tmp_path / "out"
    rc = evaluate.main(["--checkpoint", str(checkpoint), "--images", str(root / "images"), "--masks", str(root / "masks"),
                        "--limit", "3", "--out-dir", str(out), "--threads", "1", "--quiet", "--input-size", "128"])
    assert rc == 0
    rows, s = read_outputs(out)
    assert len(rows) == 3 and all((r["width"], r["height"]) == ("600", "800") for r in rows)
    assert all(r["soft_gt"] == "0" and in_unit(r["iou_tnet"]) and in_unit(r["iou_alpha"]) for r in rows)
    assert "binary" in s["matting"]["skipped"]


# ------------------------------------------------------------------------------------- the evaluation module
def test_accumulator_update_and_summary_on_known_arrays():
    """Two 2×4 images scored from hand-made arrays: the per-image rows, the pooled confusion matrices and
    the means are what the arithmetic says."""
    gt_trimap = np.array([[0, 0, 128, 255], [0, 128, 255, 255]], np.uint8)
    gt_alpha = np.array([[0, 0, 100, 255], [0, 200, 255, 255]], np.uint8)   # 2 of 8 pixels soft: a soft matte
    perfect = evaluation.score_image("a", gt_trimap, gt_trimap, gt_trimap, gt_alpha, gt_alpha / 255.0)
    wrong = gt_trimap.copy()
    wrong[0, 3] = 0                                                            # one person pixel called background
    half = evaluation.score_image("b", wrong, gt_trimap, gt_trimap, gt_alpha, None)  # no matting for b

    a, b = perfect.scores, half.scores
    assert (a.width, a.height, a.soft_gt) == (4, 2, 1)
    assert a.trimap_mIoU == a.trimap_acc == a.iou_alpha == 1.0 and a.sad == a.mse == 0.0
    assert a.iou_tnet == pytest.approx(4 / 5)  # TNet's person mask is fg + unknown: the band at [0, 2] is extra
    assert b.iou_tnet == pytest.approx(3 / 5)
    assert b.trimap_acc == pytest.approx(7 / 8) and b.trimap_IoU_fg == pytest.approx(2 / 3)
    assert b.trimap_IoU_bg == pytest.approx(3 / 4) and b.trimap_IoU_unknown == 1.0
    assert b.iou_alpha is None and b.sad is None
    assert list(a.csv_row()) == evaluation.CSV_FIELDS and b.csv_row()["sad"] == ""

    acc = evaluation.EvalAccumulator(matting=True, soft_min_share=0.01, refine_kernel=10)
    acc.update(perfect)
    acc.update(half)
    s = acc.summary({"data": "two arrays"})
    assert s["data"] == "two arrays" and s["images"] == 2 and s["gt_resized"] == 0
    assert acc.trimap_cm.matrix.tolist() == [[6, 0, 0], [0, 4, 0], [1, 0, 5]]  # rows: truth, summed over both
    pooled = s["trimap"]["pooled"]
    assert pooled["pixel_acc"] == pytest.approx(15 / 16) and pooled["IoU_bg"] == pytest.approx(6 / 7)
    assert pooled["IoU_fg"] == pytest.approx(5 / 6) and pooled["mIoU"] == pytest.approx((6 / 7 + 1 + 5 / 6) / 3)
    assert s["trimap"]["mean_per_image"]["acc"] == pytest.approx((1 + 7 / 8) / 2)
    assert s["trimap"]["refined_mIoU"] == {"pooled": 1.0, "mean_per_image": 1.0, "refine_kernel": 10}
    assert s["person_iou"]["alpha_ge_0.5"] == 1.0            # the mean over the images that were matted
    assert s["matting"]["images"] == 1 and s["matting"]["sad"] == 0.0
    assert "1 image(s) with a binary ground truth" in s["matting"]["note"]  # b has no errors: counted apart
    assert s["seconds_per_image"] == {"read": None, "trimap": None, "alpha": None, "metrics": None}

    acc.fail("c", "c.jpg: cannot read the photo")
    assert acc.failed == [{"name": "c", "error": "c.jpg: cannot read the photo"}] and acc.summary()["images"] == 2
    assert evaluation.EvalAccumulator(matting=False).summary()["matting"]["skipped"] == "--no-matting"
