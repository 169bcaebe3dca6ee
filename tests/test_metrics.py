"""core.metrics: the matting errors against their definitions written out, the confusion matrix and the running
average (found by mutation testing: each error uses the region, the thresholds and the neighbourhood it
documents)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.ndimage
import torch

import core.metrics as mm
from core.metrics import AverageMeter, ConfusionMatrix


def reference_connectivity(pred, gt, step=0.1):
    """Rhemann et al.'s connectivity error, written out plainly (scipy's 4-connected labels), in thousands."""
    level = np.ones(gt.shape)
    settled = np.zeros(gt.shape, bool)
    for i in range(1, int(round(1 / step)) + 1):
        t = round(i * step, 10)
        labels, n = scipy.ndimage.label((pred >= t) & (gt >= t))          # 4-connectivity by default
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            omega = labels == 1 + int(np.argmax(sizes))
        else:
            omega = np.zeros(gt.shape, bool)
        newly = ~settled & ~omega
        level[newly] = round((i - 1) * step, 10)
        settled |= newly
    phi = lambda a: 1 - (a - level) * ((a - level) >= 0.15)  # noqa: E731
    return np.abs(phi(pred) - phi(gt)).sum() / 1000


def blobs(seed, h=40, w=50, top=1.0):
    """A matte of several soft blobs (quantised to 0.05, so values sit exactly on the thresholds)."""
    rng = np.random.default_rng(seed)
    a = np.zeros((h, w))
    for _ in range(5):
        y, x, r = rng.integers(5, h - 5), rng.integers(5, w - 5), rng.integers(2, 7)
        cv2.circle(a, (int(x), int(y)), int(r), float(rng.uniform(0.3, top)), -1)
    a = cv2.GaussianBlur(a, (0, 0), 1.5)
    return np.round(np.clip(a / max(a.max(), 1e-9) * top, 0, 1) * 20) / 20


@pytest.mark.parametrize("seed,top", [(0, 1.0), (1, 1.0), (2, 0.85), (3, 1.0), (4, 0.6), (5, 0.55)])
def test_connectivity_matches_the_definition_written_out(seed, top):
    gt = blobs(seed, top=top)
    if seed == 5:                                          # a matte touching the top and bottom rows
        gt[:2] = 0.5
        gt[-2:] = 0.4
    pred = np.clip(gt + np.round(np.random.default_rng(seed + 10).normal(0, 0.15, gt.shape) * 20) / 20, 0, 1)
    pred[np.random.default_rng(seed).random(gt.shape) < 0.02] = 1.0            # scattered islands
    assert mm.connectivity_error(pred, gt) == pytest.approx(reference_connectivity(pred, gt), abs=1e-12)
    assert mm.connectivity_error(gt, pred) == pytest.approx(reference_connectivity(gt, pred), abs=1e-12)


def test_connectivity_uses_4_neighbours_and_the_largest_component():
    gt = np.zeros((12, 12))
    gt[1:5, 1:5] = 1.0                      # a 16-pixel square ...
    gt[5, 5] = 1.0                          # ... touching a single pixel only at a corner
    gt[8:11, 8:11] = 1.0                    # and a 9-pixel square: not the largest
    # with 4-neighbours the corner pixel is its own component: it leaves the source at every threshold
    assert mm.connectivity_error(gt, gt) == 0
    pred = gt.copy()
    pred[5, 5] = 0.5
    # pred's pixel at 0.5 joined the source only through its corner: level 0 in both, φ = 1 − 0.5 vs 1 − 1
    assert mm.connectivity_error(pred, gt) == pytest.approx(reference_connectivity(pred, gt))
    assert mm._largest_component(np.zeros((4, 4), bool)).dtype == bool and not mm._largest_component(np.zeros((4, 4))).any()
    big = mm._largest_component(gt > 0)
    assert big.sum() == 16 and big[1:5, 1:5].all()


def test_gradient_error_follows_sigma():
    rng = np.random.default_rng(1)
    gt = cv2.GaussianBlur(rng.random((30, 40)), (0, 0), 2)
    pred = np.clip(gt + 0.2 * rng.standard_normal(gt.shape), 0, 1)
    from conftest import reference_gradient_error

    for sigma in (0.8, 1.6, 2.0, 3.0):
        assert mm.gradient_error(pred, gt, sigma=sigma) == pytest.approx(reference_gradient_error(pred, gt, sigma), rel=1e-9)
    g, dg = mm.gaussian_gradient_kernels(2.0)
    x = np.arange(-(len(g) // 2), len(g) // 2 + 1)
    assert (dg[x > 0] < 0).all() and (dg[x < 0] > 0).all()          # the derivative of a Gaussian: −x·G(x)


def test_matting_errors_use_the_region_for_every_error():
    gt = blobs(5)
    pred = np.clip(gt + 0.3 * (np.random.default_rng(5).random(gt.shape) - 0.5), 0, 1)
    region = np.zeros(gt.shape, bool)
    region[5:25, 10:40] = True
    errors = mm.matting_errors(pred, gt, region)
    assert errors == {"sad": mm.sad(pred, gt, region), "mse": mm.mse(pred, gt, region),
                      "grad": mm.gradient_error(pred, gt, region), "conn": mm.connectivity_error(pred, gt, region)}
    whole = mm.matting_errors(pred, gt)
    assert all(errors[k] != whole[k] for k in ("sad", "mse", "grad", "conn"))
    as_numbers = mm.matting_errors(pred, gt, region.astype(np.uint8))        # a 0/1 region works like a mask
    assert as_numbers == errors


def test_metric_input_checks_name_the_problem():
    with pytest.raises(ValueError, match="2-D"):
        mm.sad(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="region"):
        mm.sad(np.zeros((3, 3)), np.zeros((3, 3)), np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="shape"):
        mm.mask_iou(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="uint8"):
        mm.soft_share(np.zeros((2, 2)))
    assert mm.soft_share(np.zeros((0, 4), np.uint8)) == 0.0


def test_confusion_matrix_accumulates_and_ignores_out_of_range_labels():
    cm = ConfusionMatrix()
    assert cm.matrix.shape == (3, 3) and list(cm.summary()) == ["mIoU", "pixel_acc", "IoU_bg", "IoU_unknown", "IoU_fg"]
    assert np.isnan(cm.mean_iou()) and np.isnan(cm.pixel_accuracy())      # nothing seen yet
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    cm.update(torch.tensor([2.0, 0.0, 1.0]), torch.tensor([2.0, 3.0, 255.0]))   # float classes; 3 and 255 are no class
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert cm.mean_iou() == 1.0 and cm.pixel_accuracy() == 1.0           # one pixel each, all right
    two = ConfusionMatrix(2)
    two.update(torch.tensor([True, True]), torch.tensor([True, False]))
    iou = two.iou().tolist()
    assert iou == [0.0, 0.5]
    absent = ConfusionMatrix(3)
    absent.update(torch.tensor([0, 0]), torch.tensor([0, 0]))
    assert absent.iou()[1:].isnan().all() and absent.mean_iou() == 1.0   # classes never seen are left out


def test_average_meter_counts_one_sample_by_default():
    m = AverageMeter()
    m.update(1.0)
    m.update(4.0, 2)
    assert m.count == 3 and m.avg == pytest.approx(3.0)


def test_logit_agreement_reports_the_largest_difference_and_the_class_changes():
    ref = np.zeros((2, 3, 4, 5), np.float32)
    ref[:, 2] = 1.0                                            # class 2 everywhere
    same = mm.logit_agreement(ref, ref + 1e-6)
    assert same == {"images": 2, "max_abs_logit_diff": pytest.approx(1e-6, abs=1e-7), "argmax_mismatch_pixels": 0,
                    "class_agreement": 1.0, "pixels": 40}
    moved = ref.copy()
    moved[1, 0, 0, :2] = 3.0                                   # two pixels of the second image go to class 0
    got = mm.logit_agreement(ref, moved)
    assert got["max_abs_logit_diff"] == pytest.approx(3.0) and got["argmax_mismatch_pixels"] == 2
    assert got["class_agreement"] == pytest.approx(38 / 40) and got["images"] == 2
    assert mm.logit_agreement(moved, ref)["argmax_mismatch_pixels"] == 2   # symmetric
