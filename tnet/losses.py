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


def lovasz_person_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The Lovász-softmax loss of the person mask (unknown + foreground against background), per image.

    A convex surrogate of 1 − IoU (Berman et al., CVPR 2018): the pixels' errors, sorted, weighted by how
    much each one moves the Jaccard index. For a hard prediction it is exactly 1 − IoU, so it is the person
    IoU that evaluate.py scores, not the pixel count that cross-entropy scores: a missed hand counts by
    its share of the person, however small it is in the photo. Averaged over both classes (person and
    background) of every image; a class absent from an image is left out.
    """
    probs = logits.float().softmax(1)
    person = probs[:, 1:].sum(1).flatten(1)          # P(unknown) + P(foreground)
    truth = (target.reshape(person.shape[0], -1) >= 1).to(person.dtype)
    losses = []
    for p, t in zip(person, truth):
        for fg, pr in ((t, p), (1 - t, 1 - p)):
            n_fg = fg.sum()
            if n_fg == 0:
                continue
            errors, order = (fg - pr).abs().sort(descending=True)
            fg_sorted = fg[order]
            # the Jaccard loss after each sorted pixel, and its increments: the Lovász extension's weights
            jaccard = 1 - (n_fg - fg_sorted.cumsum(0)) / (n_fg + (1 - fg_sorted).cumsum(0))
            weights = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
            losses.append(errors @ weights)
    return torch.stack(losses).mean() if losses else probs.sum() * 0


class ClassificationLoss(nn.Module):
    """Per-pixel cross-entropy over the 3 trimap classes (background, unknown, foreground), plus
    ``dice_weight`` × the soft Dice loss (0, the default, is plain cross-entropy).

    ``weights`` optionally re-weights the classes of the cross-entropy (e.g. to favour the thin unknown band).
    ``lovasz_weight`` adds that weight × :func:`lovasz_person_loss`, a surrogate of the person mask's IoU.
    ``target`` may be N×H×W or N×1×H×W class indices.
    """

    def __init__(self, weights=None, dice_weight: float = 0.0, lovasz_weight: float = 0.0):
        super().__init__()
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32) if weights is not None else None)
        self.dice_weight = dice_weight
        self.lovasz_weight = lovasz_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == logits.dim():
            target = target.squeeze(1)
        loss = F.cross_entropy(logits.float(), target.long(), weight=self.weights)
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(logits, target)
        if self.lovasz_weight:
            loss = loss + self.lovasz_weight * lovasz_person_loss(logits, target)
        return loss
