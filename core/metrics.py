"""Metrics, in one place: training and validation (a running average, a confusion matrix with IoU and
accuracy) and the matting errors.

The matting errors follow the conventions of the alphamatting.com benchmark (Rhemann et al., CVPR 2009) as
implemented in the Deep Image Matting evaluation code (Xu et al. 2017). Their functions take alpha mattes as float arrays in [0, 1] (uint8 0–255 inputs are scaled) and an
optional boolean ``region`` (the unknown band of the ground-truth trimap in the benchmark); without it
the whole image counts.

=============  ==========================================================================  ==========
error          definition                                                                   reported
=============  ==========================================================================  ==========
SAD            Σ |α − α_gt|                                                                  / 1000
MSE            mean of (α − α_gt)² over the region (sum / number of region pixels)           as is
Gradient       Σ (‖∇α‖ − ‖∇α_gt‖)², ∇ by Gaussian-derivative filters of σ = 1.4             / 1000
Connectivity   Σ |φ(α) − φ(α_gt)|, thresholds 0, 0.1, …, 1, 4-connectivity                  / 1000
=============  ==========================================================================  ==========

SAD, gradient and connectivity are sums, so they grow with the region's size; papers report them in
thousands, as here. A region with no pixel gives NaN for MSE (a mean of nothing), 0 for the sums.
"""
from __future__ import annotations

import cv2
import numpy as np


class AverageMeter:
    """Running average weighted by sample count (so an epoch loss is the true mean, not the last batch)."""

    def __init__(self):
        self.sum, self.count = 0.0, 0

    def update(self, value: float, n: int = 1) -> None:
        self.sum += float(value) * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.sum / max(self.count, 1)


class ConfusionMatrix:
    """Accumulates a num_classes² confusion matrix (rows = truth, columns = prediction)."""

    def __init__(self, num_classes: int = 3):
        import torch

        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred, target) -> None:
        import torch

        pred, target = pred.reshape(-1).to("cpu", torch.int64), target.reshape(-1).to("cpu", torch.int64)
        valid = (target >= 0) & (target < self.num_classes)
        index = target[valid] * self.num_classes + pred[valid]
        self.matrix += torch.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

    def iou(self):
        """Per-class IoU (a tensor); NaN for a class absent from both truth and prediction."""
        import torch

        m = self.matrix.double()
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))

    def mean_iou(self) -> float:
        iou = self.iou()
        return float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(self.matrix.diag().sum() / total) if total else float("nan")

    def summary(self) -> dict:
        iou = self.iou().tolist()
        return {"mIoU": self.mean_iou(), "pixel_acc": self.pixel_accuracy(),
                **{f"IoU_{name}": v for name, v in zip(("bg", "unknown", "fg"), iou)}}


def logit_agreement(reference, candidate) -> dict:
    """How closely a model's export reproduces its logits (two N×C×H×W arrays): the largest absolute
    difference, and the pixels whose argmax class differs (their count, and the share that agree)."""
    ref, got = np.asarray(reference, np.float32), np.asarray(candidate, np.float32)
    same = ref.argmax(1) == got.argmax(1)
    return {"images": int(ref.shape[0]), "max_abs_logit_diff": float(np.abs(got - ref).max()),
            "argmax_mismatch_pixels": int((~same).sum()), "class_agreement": float(same.mean()), "pixels": int(same.size)}


# ---------------------------------------------------------------------------------------------- matting errors
GRADIENT_SIGMA = 1.4
CONNECTIVITY_STEP = 0.1
CONNECTIVITY_MIN_DIFF = 0.15  # φ ignores a distance to the connected level below this (Rhemann et al.)


# ---------------------------------------------------------------------------------------------- inputs
def as_alpha(alpha: np.ndarray) -> np.ndarray:
    """float64 alpha in [0, 1]: uint8 is divided by 255, float is taken as already in [0, 1]."""
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float64) / 255.0
    if alpha.dtype == bool:
        return alpha.astype(np.float64)
    return alpha.astype(np.float64, copy=False)


def _prepare(pred, gt, region) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred, gt = as_alpha(pred), as_alpha(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"alpha mattes must be 2-D and of one shape, got {pred.shape} and {gt.shape}")
    region = np.ones(gt.shape, bool) if region is None else np.asarray(region, bool)
    if region.shape != gt.shape:
        raise ValueError(f"region {region.shape} and alpha {gt.shape} differ in shape")
    return pred, gt, region


# --------------------------------------------------------------------------------------------- matting
def sad(pred, gt, region=None) -> float:
    """Sum of absolute differences over ``region``, in thousands."""
    pred, gt, region = _prepare(pred, gt, region)
    return float(np.abs(pred - gt)[region].sum() / 1000.0)


def mse(pred, gt, region=None) -> float:
    """Mean squared error over the pixels of ``region`` (NaN when it is empty)."""
    pred, gt, region = _prepare(pred, gt, region)
    n = int(region.sum())
    return float(((pred - gt) ** 2)[region].sum() / n) if n else float("nan")


def gaussian_gradient_kernels(sigma: float = GRADIENT_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D factors (smoothing, derivative) of the benchmark's ``gaussgradient`` filter.

    The 2-D kernel is G(y)·G'(x) on a support of half-size ⌈σ·√(−2 ln(√(2π)·σ·0.01))⌉ (4 px for σ = 1.4),
    scaled to unit L2 norm — so the values match the reference code, not a plain Gaussian derivative.
    """
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * 1e-2))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-x**2 / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dg = -x * g / sigma**2
    norm = np.sqrt((g**2).sum() * (dg**2).sum())  # ‖outer(g, dg)‖₂ = ‖g‖·‖dg‖
    return g, dg / norm


def gradient_magnitude(alpha, sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """‖∇α‖ with the benchmark's Gaussian-derivative filters (replicated borders)."""
    a = as_alpha(alpha)
    g, dg = gaussian_gradient_kernels(sigma)
    gx = cv2.sepFilter2D(a, cv2.CV_64F, dg, g, borderType=cv2.BORDER_REPLICATE)  # d/dx: derivative along rows
    gy = cv2.sepFilter2D(a, cv2.CV_64F, g, dg, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def gradient_error(pred, gt, region=None, sigma: float = GRADIENT_SIGMA) -> float:
    """Σ over ``region`` of (‖∇α‖ − ‖∇α_gt‖)², in thousands (filters over the whole image, then masked)."""
    pred, gt, region = _prepare(pred, gt, region)
    diff = gradient_magnitude(pred, sigma) - gradient_magnitude(gt, sigma)
    return float((diff**2)[region].sum() / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of ``mask`` (all False when the mask is empty)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def connectivity_error(pred, gt, region=None, step: float = CONNECTIVITY_STEP) -> float:
    """Rhemann et al.'s connectivity error over ``region``, in thousands.

    For each threshold t = step, 2·step, …, 1, the largest 4-connected component of
    (α ≥ t) ∧ (α_gt ≥ t) is the "source"; a pixel's level l is the last threshold at which it was still
    in it (1 when it always was). φ(α) = 1 − (α − l)·[α − l ≥ 0.15]; the error is Σ |φ(α) − φ(α_gt)|.
    """
    pred, gt, region = _prepare(pred, gt, region)
    thresholds = np.round(np.linspace(0.0, 1.0, int(round(1.0 / step)) + 1), 10)  # 0.3, not 0.30000000000000004
    level = np.full(gt.shape, -1.0)
    for prev, t in zip(thresholds[:-1], thresholds[1:]):
        omega = _largest_component((pred >= t) & (gt >= t))
        level[(level == -1.0) & ~omega] = prev
    level[level == -1.0] = 1.0
    d_pred, d_gt = pred - level, gt - level
    phi_pred = 1.0 - d_pred * (d_pred >= CONNECTIVITY_MIN_DIFF)
    phi_gt = 1.0 - d_gt * (d_gt >= CONNECTIVITY_MIN_DIFF)
    return float(np.abs(phi_pred - phi_gt)[region].sum() / 1000.0)


def matting_errors(pred, gt, region=None) -> dict[str, float]:
    """All four errors as ``{"sad", "mse", "grad", "conn"}``."""
    return {"sad": sad(pred, gt, region), "mse": mse(pred, gt, region),
            "grad": gradient_error(pred, gt, region), "conn": connectivity_error(pred, gt, region)}


# ------------------------------------------------------------------------------------------ soft alpha
def soft_share(alpha: np.ndarray) -> float:
    """Share of the pixels of a uint8 alpha strictly between 0 and 255 (0 for a binary mask)."""
    alpha = np.asarray(alpha)
    if alpha.dtype != np.uint8:
        raise ValueError(f"soft_share needs a uint8 alpha, got {alpha.dtype}")
    return float(((alpha > 0) & (alpha < 255)).mean()) if alpha.size else 0.0


# ------------------------------------------------------------------------------------------- masks
def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """|pred ∧ gt| / |pred ∨ gt| of two boolean masks; 1.0 when both are empty (they agree)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} and {gt.shape}")
    union = np.count_nonzero(pred | gt)
    return float(np.count_nonzero(pred & gt) / union) if union else 1.0
