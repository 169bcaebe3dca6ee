"""Portrait matting data: the dataset over prepare_aifenge.py's lists and its joint transforms."""
from .human import HumanDataset, list_paths, read_lists, recipe_transforms
from .transforms import (IMAGENET_MEAN, IMAGENET_STD, Compose, RandomFlip, RandomPatch, RandomScale, Resize,
                         ToTensor, image_to_tensor, tensor_to_image, train_transforms, val_transforms)

__all__ = [
    "HumanDataset", "list_paths", "read_lists", "recipe_transforms", "IMAGENET_MEAN", "IMAGENET_STD", "Compose", "RandomFlip",
    "RandomPatch", "RandomScale", "Resize", "ToTensor", "image_to_tensor", "tensor_to_image",
    "train_transforms", "val_transforms",
]
