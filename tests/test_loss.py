"""The trimap loss: cross-entropy, class weights and the soft-Dice term."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from loss import ClassificationLoss, lovasz_person_loss, soft_dice_loss


def logits_for(target, confidence=8.0, num_classes=3):
    return F.one_hot(target, num_classes).permute(0, 3, 1, 2).float() * confidence


def test_plain_loss_is_cross_entropy_and_accepts_n1hw_targets():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    expected = F.cross_entropy(logits, target)
    assert torch.allclose(ClassificationLoss()(logits, target), expected)
    assert torch.allclose(ClassificationLoss()(logits, target.unsqueeze(1)), expected)


def test_class_weights_change_the_loss():
    torch.manual_seed(1)
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    plain = ClassificationLoss()(logits, target)
    weighted = ClassificationLoss([1.0, 5.0, 1.0])(logits, target)
    assert not torch.isclose(plain, weighted)
    # a zero weight removes a class: the loss is then the cross-entropy of the other pixels alone
    no_unknown = ClassificationLoss([1.0, 0.0, 1.0])(logits, target)
    keep = target != 1
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], target[keep])
    assert torch.allclose(no_unknown, expected, atol=1e-6)


def test_soft_dice_is_zero_when_perfect_and_near_one_when_wrong():
    target = torch.randint(0, 3, (2, 16, 16))
    target[0, 0, :3] = torch.tensor([0, 1, 2])  # every class present
    assert soft_dice_loss(logits_for(target, 50.0), target) < 1e-3
    wrong = (target + 1) % 3
    assert soft_dice_loss(logits_for(wrong, 50.0), target) > 0.95


def test_dice_weight_adds_the_dice_term_that_favours_the_thin_class():
    """A prediction that misses a thin class entirely costs little cross-entropy but a third of the Dice."""
    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[0, 10:22, 10:22] = 2
    target[0, 9, 9:23] = 1                      # a 1-pixel 'unknown' line: under 2 % of the pixels
    pred = target.clone()
    pred[pred == 1] = 0                         # the band is missed
    logits = logits_for(pred, 6.0)
    ce = ClassificationLoss()(logits, target)
    with_dice = ClassificationLoss(dice_weight=1.0)(logits, target)
    dice = soft_dice_loss(logits, target)
    assert torch.allclose(with_dice, ce + dice)
    assert dice > 0.3 and dice > 3 * ce
    with pytest.raises(Exception):
        ClassificationLoss(dice_weight=1.0)(logits, target[:, :16])   # shapes must agree


def test_dice_gradient_flows():
    logits = torch.randn(1, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (1, 8, 8))
    ClassificationLoss(dice_weight=0.5)(logits, target).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def iou(a, b):
    return (a & b).sum().item() / max((a | b).sum().item(), 1)


def test_lovasz_of_a_hard_prediction_is_one_minus_the_iou_of_person_and_background():
    """For a 0/1 prediction the Lovász extension is the Jaccard loss itself: the mean over images of
    1 − IoU of the person mask (unknown + foreground) and of the background."""
    torch.manual_seed(0)
    target, pred = torch.randint(0, 3, (2, 16, 16)), torch.randint(0, 3, (2, 16, 16))
    expected = [1 - iou(p >= 1, t >= 1) for p, t in zip(pred, target)]
    expected += [1 - iou(p == 0, t == 0) for p, t in zip(pred, target)]
    assert float(lovasz_person_loss(logits_for(pred, 50.0), target)) == pytest.approx(sum(expected) / 4, abs=1e-6)
    swapped = pred.clone()  # unknown and foreground are one class here: swapping them changes nothing
    swapped[pred == 1], swapped[pred == 2] = 2, 1
    assert float(lovasz_person_loss(logits_for(swapped, 50.0), target)) == pytest.approx(sum(expected) / 4, abs=1e-6)
    assert float(lovasz_person_loss(logits_for(target, 50.0), target)) == pytest.approx(0.0, abs=1e-6)


def test_lovasz_weighs_a_missed_region_by_its_share_of_the_person():
    """A small person that loses half of itself costs as much as a large one that loses half: the IoU, not
    the pixel count (which is what cross-entropy sees)."""
    small, large = torch.zeros(1, 32, 32, dtype=torch.long), torch.zeros(1, 32, 32, dtype=torch.long)
    small[:, :4, :4], large[:, :16, :16] = 2, 2
    half_small, half_large = small.clone(), large.clone()
    half_small[:, :2, :4], half_large[:, :8, :16] = 0, 0
    l_small = float(lovasz_person_loss(logits_for(half_small, 50.0), small))
    l_large = float(lovasz_person_loss(logits_for(half_large, 50.0), large))
    ce_small = float(F.cross_entropy(logits_for(half_small, 5.0), small))
    ce_large = float(F.cross_entropy(logits_for(half_large, 5.0), large))
    person_small = 0.5  # 1 − IoU of the person: half of it is lost in both
    assert l_small > 0.25 and l_large > 0.25 and abs(l_small - l_large) < 0.25 * person_small
    assert ce_large > 10 * ce_small  # cross-entropy counts the 128 lost pixels against 8


def test_lovasz_term_adds_to_the_loss_and_has_a_gradient():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 12, 12, requires_grad=True)
    target = torch.randint(0, 3, (2, 12, 12))
    target[1] = 0  # an image without a person: only its background counts
    both = ClassificationLoss(dice_weight=0.5, lovasz_weight=2.0)(logits, target)
    expected = ClassificationLoss(dice_weight=0.5)(logits, target) + 2.0 * lovasz_person_loss(logits, target)
    assert torch.allclose(both, expected)
    both.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # raising the person logits where the target is a person lowers the loss
    better = logits.detach().clone()
    better[:, 2][target >= 1] += 3.0
    assert float(lovasz_person_loss(better, target)) < float(lovasz_person_loss(logits.detach(), target))


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
