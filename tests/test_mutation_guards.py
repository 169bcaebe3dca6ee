"""Tests that guard behaviour a user would notice, each written against a behaviour change that the older
tests let through (issue 13): the best checkpoint, and the head placement of every spec in the catalogue."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import train
from utils import load_checkpoint


# ------------------------------------------------------------------------------------ best_tnet.pth
def test_best_checkpoint_holds_the_weights_and_epoch_of_the_best_validation(prepared, tmp_path, monkeypatch):
    """Validation mIoU 0.3, 0.9, 0.5 over three epochs (validation replaced, the training is real):
    best_tnet.pth is epoch 2's model — its epoch, its metric and its weights — not the last or the first."""
    from test_train import args_for

    metrics = [0.3, 0.9, 0.5]
    weights = []

    def controlled_validation(model, loaders, device, args, *rest, **kw):
        weights.append({k: v.detach().clone() for k, v in train.unwrap(model).state_dict().items()})
        return {"mIoU": metrics[len(weights) - 1], "person_IoU": 0.5}, None

    monkeypatch.setattr(train, "validate_all", controlled_validation)
    assert train.main(args_for(prepared, tmp_path, "--epochs", "3", "--log-images", "0")) == 0
    assert len(weights) == 3
    out = tmp_path / "results"
    best = load_checkpoint(out / "best_tnet.pth")
    last = load_checkpoint(out / "checkpoint_tnet.pth")
    assert best["epoch"] == 2 and best["best_metric"] == pytest.approx(0.9)
    assert last["epoch"] == 3 and last["best_metric"] == pytest.approx(0.9)   # the running best, not the last metric
    assert best["model"].keys() == weights[1].keys()
    assert all(torch.equal(best["model"][k], weights[1][k]) for k in weights[1])
    # the weights did move after epoch 2, so the comparison above tells the epochs apart
    changed = [k for k in weights[1] if weights[1][k].is_floating_point() and not torch.equal(weights[1][k], weights[2][k])]
    assert changed
    assert all(torch.equal(last["model"][k], weights[2][k]) for k in weights[2])
