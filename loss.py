"""Training loss of the trimap network."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ClassificationLoss(nn.Module):
    """Per-pixel cross-entropy over the 3 trimap classes (background, unknown, foreground).

    ``weights`` optionally re-weights the classes (e.g. to favour the thin unknown band).
    ``target`` may be N×H×W or N×1×H×W class indices.
    """

    def __init__(self, weights=None):
        super().__init__()
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32) if weights is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == logits.dim():
            target = target.squeeze(1)
        return F.cross_entropy(logits.float(), target.long(), weight=self.weights)
