"""Training and validation metrics: a running average and a confusion matrix (IoU, accuracy).

The matting errors (SAD, MSE, gradient, connectivity) are in :mod:`matting_metrics`.
"""
from __future__ import annotations


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
