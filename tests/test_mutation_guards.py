"""Tests that guard behaviour a user would notice, each written against a behaviour change that the older
tests let through (issue 13): the best checkpoint, and the head placement of every spec in the catalogue."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tnet.training as training
import train
from utils import load_checkpoint


# ------------------------------------------------------------------------------------ best_tnet.pth
def test_best_checkpoint_holds_the_weights_and_epoch_of_the_best_validation(prepared, tmp_path, monkeypatch):
    """Validation mIoU 0.3, 0.9, 0.5 over three epochs (validation replaced, the training is real):
    best_tnet.pth is epoch 2's model — its epoch, its metric and its weights — not the last or the first."""
    from conftest import args_for

    metrics = [0.3, 0.9, 0.5]
    weights = []

    def controlled_validation(model, loaders, device, args, *rest, **kw):
        weights.append({k: v.detach().clone() for k, v in training.unwrap(model).state_dict().items()})
        return {"mIoU": metrics[len(weights) - 1], "person_IoU": 0.5}, None

    monkeypatch.setattr(training, "validate_all", controlled_validation)
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


# ---------------------------------------------------------------------------- every spec's head placement
import json  # noqa: E402

import cv2  # noqa: E402

from conftest import REPO  # noqa: E402
from idphoto.specs import CATALOGUE, CUSTOM, SPECS, custom_spec  # noqa: E402

ENTRIES = {e["id"]: e for e in json.loads(CATALOGUE.read_text(encoding="utf-8"))["specs"]}
STATED = {"head": "head_height", "eyes": "eyes_from_bottom", "top": "crown_from_top", "face_width": "face_width"}


def stated_px(name: str, rule: str):
    """A rule as the catalogue file states it (in the entry's own unit), turned into pixels of the photo's
    height — read from specs.json, not through the parsed spec."""
    if name == "custom":
        lo, hi = CUSTOM.head if rule == "head" else (None, None)
        h = 531
        return None if rule != "head" else (lo * h, hi * h)
    entry = ENTRIES[name]
    r = entry.get(STATED[rule])
    if r is None:
        return None
    px_per_unit = SPECS[name].size_px[1] / entry["size"][1]
    return tuple(None if v is None else v * px_per_unit for v in r)


def spec_of(name: str):
    return custom_spec(size_px=(413, 531)) if name == "custom" else SPECS[name]


@pytest.mark.parametrize("name", [*ENTRIES, "custom"])
def test_every_specs_head_target_lies_in_its_stated_range(name):
    """The head height a spec aims for (``head_ratio``, and the head the framing plans for a face) is inside
    the range the catalogue states for it; so is the crown's target below the top edge (``top_ratio``)."""
    from conftest import synthetic_face

    from idphoto.framing import plan_by_rules

    spec = spec_of(name)
    w, h = spec.size_px
    head = stated_px(name, "head")
    if head is not None:
        lo, hi = head
        assert lo - 0.5 <= spec.head_ratio * h <= hi + 0.5, (spec.head_ratio * h, head)
    top = stated_px(name, "top")
    if top is not None:
        lo, hi = top
        assert (lo is None or spec.top_ratio * h >= lo - 0.5) and (hi is None or spec.top_ratio * h <= hi + 0.5)
    else:
        assert 0 < spec.top_ratio * h < h - spec.head_ratio * h
    plan = plan_by_rules(synthetic_face(), 100.0, (w, h), spec)
    if head is not None:
        assert head[0] - 0.5 <= plan.head_px <= head[1] + 0.5, (plan.head_px, head)
    assert 0 <= plan.top_px and plan.top_px + plan.head_px <= h
    # a custom size (--size-px) keeps the spec's rules as fractions of the height
    bigger = custom_spec(size_px=(2 * w, 2 * h), base=spec)
    assert bigger.size_px == (2 * w, 2 * h) and bigger.head_ratio == pytest.approx(spec.head_ratio)
    for rule in STATED:
        r, r2 = spec.rule_px(rule), bigger.rule_px(rule)
        assert (r is None) == (r2 is None)
        if r is not None:
            assert all((a is None and b is None) or b == pytest.approx(2 * a) for a, b in zip(r, r2))


def test_the_custom_specs_head_range_holds_the_share_it_promises():
    import re

    share = int(re.search(r"head (\d+) %", CUSTOM.description).group(1)) / 100   # "head 60 % of the height"
    lo, hi = CUSTOM.head_range
    assert lo < share < hi and lo <= CUSTOM.head_ratio <= hi


def astronaut_portrait():
    from idphoto import load_image

    img = load_image(REPO / "examples" / "astronaut.jpg")
    alpha = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(alpha, (224, 125), (78, 95), 0, 0, 360, 1.0, -1)       # head with hair
    cv2.ellipse(alpha, (230, 512), (210, 330), 0, 180, 360, 1.0, -1)   # suit
    return img, alpha


@pytest.fixture(scope="module")
def portrait():
    from idphoto.face import detect_faces

    img, alpha = astronaut_portrait()
    return img, alpha, detect_faces(img)


@pytest.mark.parametrize("name", [*ENTRIES, "custom"])
def test_a_real_portrait_framed_for_every_spec_measures_inside_its_ranges(name, portrait):
    """The astronaut (a real photo) framed for each spec: on the finished JPEG, measured as the report measures
    it (landmarks found again on the output), the head height — and the eye line, top margin and face width
    where the spec has them — lie inside the ranges the catalogue states, within 2 px."""
    from idphoto import compose_id_photo
    from idphoto.compliance import check_photo
    from idphoto.output import encode_jpeg

    img, alpha, faces = portrait
    spec = spec_of(name)
    photo = compose_id_photo(img, alpha, img / 255.0, spec, faces=faces)
    assert photo.image.shape[:2] == spec.size_px[::-1] and photo.gave_way == []
    report = check_photo(photo.image, spec, encode_jpeg(photo.image, spec.dpi), photo.alpha)
    measured = {c.rule.split()[0]: c.value for c in report.checks}
    rules = {"head": "head", "eyes": "eye", "top": "top", "face_width": "face"}
    checked = 0
    for rule, word in rules.items():
        r = stated_px(name, rule)
        if r is None:
            continue
        value = measured[word]
        assert value is not None, (rule, report.lines())
        assert (r[0] is None or value >= r[0] - 2) and (r[1] is None or value <= r[1] + 2), (rule, value, r)
        checked += 1
    assert checked >= 1
