"""Training loss of the trimap network."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 − mean soft Dice over the classes, each class pooled over the batch.

    Cross-entropy counts pixels, so the thin unknown band (a few % of a portrait) hardly matters to it;
    Dice scores each class by its overlap, so the band weighs as much as the background.
    """
    probs = logits.float().softmax(1)
    onehot = F.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


class ClassificationLoss(nn.Module):
    """Per-pixel cross-entropy over the 3 trimap classes (background, unknown, foreground), plus
    ``dice_weight`` × the soft Dice loss (0, the default, is plain cross-entropy).

    ``weights`` optionally re-weights the classes of the cross-entropy (e.g. to favour the thin unknown band).
    ``target`` may be N×H×W or N×1×H×W class indices.
    """

    def __init__(self, weights=None, dice_weight: float = 0.0):
        super().__init__()
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32) if weights is not None else None)
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == logits.dim():
            target = target.squeeze(1)
        loss = F.cross_entropy(logits.float(), target.long(), weight=self.weights)
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(logits, target)
        return loss
