"""Behaviour the older tests let through, found by mutation testing (bench/mutation.sh, issue 13): the
trimap utilities, the loss, the metrics, the training transforms and the data preparation."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from utils import erode_dilate, make_trimap, trimap_to_classes, trimap_to_image


# ------------------------------------------------------------------------------------------------ trimaps
def test_erode_dilate_thresholds_the_mask_at_5_and_250():
    """Dilation: a pixel above 5 may be person (unknown); erosion: only a block that stays at 250 or more
    is sure foreground. Regions of 5, 6, 249 and 250 far apart show each threshold."""
    mask = np.zeros((60, 240), np.uint8)
    for i, value in enumerate((5, 6, 249, 250)):
        mask[15:45, 10 + 60 * i: 50 + 60 * i] = value
    trimap = erode_dilate(mask, 6)
    centre = [trimap[30, 30 + 60 * i] for i in range(4)]
    assert centre == [0, 128, 128, 255]
    assert set(np.unique(trimap)) == {0, 128, 255}


def test_erode_dilate_uses_a_round_kernel_and_10_px_by_default():
    """A single sure-foreground pixel grows into a disc-shaped unknown region (an elliptical kernel), not a
    square; the default kernel is the design's 10 px."""
    mask = np.zeros((41, 41), np.uint8)
    mask[20, 20] = 255
    trimap = erode_dilate(mask, 9)
    unknown = trimap == 128
    assert unknown[20, 16] and unknown[16, 20] and unknown[20, 24]      # the kernel's axes are reached
    assert not unknown[16, 16] and not unknown[24, 24]                  # its corners are not: round, not square
    disc = np.zeros((101, 101), np.uint8)
    cv2.circle(disc, (50, 50), 30, 255, -1)
    assert (erode_dilate(disc) == erode_dilate(disc, 10)).all()
    assert not (erode_dilate(disc) == erode_dilate(disc, 12)).all()
    with pytest.raises(ValueError, match="2-D uint8"):
        erode_dilate(np.zeros((4, 4), np.float32))


def test_make_trimap_passes_its_kernel_on():
    alpha = np.zeros((101, 101), np.uint8)
    cv2.circle(alpha, (50, 50), 30, 200, -1)
    for k in (6, 14):
        mask = np.where(alpha > 50, 255, 0).astype(np.uint8)
        assert (make_trimap(alpha, kernel_size=k) == erode_dilate(mask, k)).all()
    assert (make_trimap(alpha) == make_trimap(alpha, 50, 10)).all()
    assert (make_trimap(alpha, kernel_size=6) == 128).sum() < (make_trimap(alpha, kernel_size=14) == 128).sum()


def test_trimap_to_classes_goes_to_the_nearest_class():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    classes = trimap_to_classes(values)
    assert classes.dtype == np.uint8 and classes.shape == values.shape
    nearest = np.abs(values[..., None].astype(int) - np.array([0, 128, 255])).argmin(-1)
    tie = values == 64      # exactly halfway between 0 and 128
    assert (classes[~tie] == nearest[~tie]).all()


def test_trimap_to_image_takes_float_classes_and_tensors_that_need_grad():
    """Class maps come as numpy ints, floats (an interpolated map) or tensors still attached to a graph."""
    classes = np.array([[0, 1, 2], [2, 1, 0]])
    expected = [[0, 128, 255], [255, 128, 0]]
    assert trimap_to_image(classes.astype(np.float32)).tolist() == expected
    t = torch.tensor(classes, dtype=torch.float32, requires_grad=True)
    image = trimap_to_image(t * 1)
    assert image.dtype == np.uint8 and image.tolist() == expected


# --------------------------------------------------------------------------------------------------- loss
from loss import ClassificationLoss, soft_dice_loss  # noqa: E402


def dice_by_hand(logits: torch.Tensor, target: torch.Tensor) -> float:
    """1 − mean over classes of (2·Σ p·y + 1) / (Σ p + Σ y + 1), pooled over the batch (numpy, no torch ops)."""
    p = torch.softmax(logits.double(), 1).numpy()
    y = np.eye(p.shape[1])[target.numpy()].transpose(0, 3, 1, 2)
    dice = [(2 * (p[:, c] * y[:, c]).sum() + 1) / (p[:, c].sum() + y[:, c].sum() + 1) for c in range(p.shape[1])]
    return 1 - float(np.mean(dice))


def test_soft_dice_is_the_smoothed_dice_formula_and_stays_in_0_1():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    assert float(soft_dice_loss(logits, target)) == pytest.approx(dice_by_hand(logits, target), abs=1e-5)
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 30
    assert 0 <= float(soft_dice_loss(perfect, target)) < 1e-3


def test_dice_of_a_patch_without_foreground():
    """A training patch with no person at all (only background and band) still gets a Dice loss over the
    three classes: the absent class counts as predicted absent."""
    torch.manual_seed(1)
    target = torch.randint(0, 2, (2, 8, 8))        # classes 0 and 1 only
    logits = torch.randn(2, 3, 8, 8)
    loss = soft_dice_loss(logits, target)
    assert loss.shape == () and 0 < float(loss) < 1
    assert float(loss) == pytest.approx(dice_by_hand(logits, target), abs=1e-5)
    both = ClassificationLoss(dice_weight=1.0)(logits, target)
    assert float(both) > float(ClassificationLoss()(logits, target))


@pytest.mark.parametrize("weights", [[1, 3, 1], np.array([1.0, 3.0, 1.0])])
def test_class_weights_given_as_ints_or_numpy(weights):
    torch.manual_seed(2)
    logits, target = torch.randn(2, 3, 6, 6), torch.randint(0, 3, (2, 6, 6))
    expected = ClassificationLoss([1.0, 3.0, 1.0])(logits, target)
    assert float(ClassificationLoss(weights)(logits, target)) == pytest.approx(float(expected), rel=1e-6)
    assert float(expected) != pytest.approx(float(ClassificationLoss()(logits, target)), rel=1e-3)


# ------------------------------------------------------------------------------------------------ metrics
import scipy.ndimage  # noqa: E402

import core.metrics as mm  # noqa: E402
from utils import AverageMeter, ConfusionMatrix  # noqa: E402


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
