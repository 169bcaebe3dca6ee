"""The trimap loss: cross-entropy, class weights and the soft-Dice term."""
import pytest
import torch
import torch.nn.functional as F

from loss import ClassificationLoss, soft_dice_loss


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
