"""The TNet's training loss, by the design card's name: cross-entropy over background / unknown / person,
with optional soft Dice and Lovász terms. Defined in :mod:`tnet.losses`, the research library."""
from tnet.losses import ClassificationLoss, lovasz_person_loss, soft_dice_loss  # noqa: F401
