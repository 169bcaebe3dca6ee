"""HumanDataset: the samples listed by prepare_aifenge.py's JSON lists."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cv2
import torch.utils.data

from core.fileio import read_image
from tnet.config import AUGMENTATION_KEYS, PATCH  # TrainConfig's augmentation fields, its patch

KINDS = ("img", "alpha", "trimap")


def list_paths(lists_dir: str | os.PathLike, dataname: str) -> dict[str, Path]:
    """The three list files of ``dataname``: ``<lists_dir>/<dataname>_{img,alpha,trimap}.json``."""
    return {kind: Path(lists_dir) / f"{dataname}_{kind}.json" for kind in KINDS}


def read_lists(lists_dir: str | os.PathLike, dataname: str) -> dict[str, list[Path]]:
    """The sample paths of ``dataname``; relative entries are resolved against the list's folder."""
    files = list_paths(lists_dir, dataname)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no data list {missing[0]} — run prepare_aifenge.py first, or check --data-dir/--dataname")
    lists = {}
    for kind, path in files.items():
        try:
            with open(path, encoding="utf-8") as f:
                entries = json.load(f)
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a valid JSON list (not UTF-8 text)") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a valid JSON list ({exc})") from None
        if not isinstance(entries, list):
            raise ValueError(f"{path}: holds a JSON {type(entries).__name__}, not a list of paths")
        for i, entry in enumerate(entries):
            if not isinstance(entry, str) or not entry:
                raise ValueError(f"{path}: entry {i} is {json.dumps(entry)[:60]}, not a file path")
        lists[kind] = [path.parent / p for p in entries]
    sizes = {kind: len(v) for kind, v in lists.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the lists of {dataname!r} differ in length: {sizes}")
    return lists


def check_listed_files(lists_dir: str | os.PathLike, dataname: str, lists: dict[str, list[Path]]) -> None:
    """FileNotFoundError naming the list, the entry and the count when a listed file is missing, so that
    a bad list stops a run before its first step and not in the middle of an epoch."""
    for kind, paths in lists.items():
        missing = [(i, p) for i, p in enumerate(paths) if not p.is_file()]
        if missing:
            i, first = missing[0]
            raise FileNotFoundError(f"{list_paths(lists_dir, dataname)[kind]}: {len(missing)} of {len(paths)} listed "
                                    f"files are missing (first: entry {i}, {first})")


class RandomBackgrounds:
    """A random (RGB image, alpha) pair from the given files, for :class:`datasets.transforms.BackgroundSwap`."""

    def __init__(self, images: list, alphas: list):
        if len(images) != len(alphas) or not images:
            raise ValueError("RandomBackgrounds needs as many alphas as images, and at least one")
        self.images, self.alphas = list(images), list(alphas)

    def __call__(self) -> tuple:
        i = random.randrange(len(self.images))
        image = read_image(self.images[i], cv2.IMREAD_COLOR)
        alpha = read_image(self.alphas[i], cv2.IMREAD_GRAYSCALE)
        if image is None or alpha is None:
            raise OSError(f"cannot read the background sample {self.images[i]}")
        if alpha.shape != image.shape[:2]:
            alpha = cv2.resize(alpha, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), alpha


class HumanDataset(torch.utils.data.Dataset):
    """Portrait samples as dicts ``{"image", "trimap", "alpha", "name"}`` (the image in RGB order).

    ``HumanDataset("aifenge", train_transforms())`` reads ``data/aifenge_{img,alpha,trimap}.json``.
    """

    def __init__(self, dataname: str, transforms=None, lists_dir: str | os.PathLike = "data", check_files: bool = False):
        lists = read_lists(lists_dir, dataname)
        if check_files:
            check_listed_files(lists_dir, dataname, lists)
        self.images, self.alphas, self.trimaps = lists["img"], lists["alpha"], lists["trimap"]
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image = read_image(self.images[i], cv2.IMREAD_COLOR)
        alpha = read_image(self.alphas[i], cv2.IMREAD_GRAYSCALE)
        trimap = read_image(self.trimaps[i], cv2.IMREAD_GRAYSCALE)
        for what, value, path in (("image", image, self.images[i]), ("alpha", alpha, self.alphas[i]), ("trimap", trimap, self.trimaps[i])):
            if value is None:
                raise OSError(f"cannot read the {what} {path}")
        sample = {"image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "trimap": trimap, "alpha": alpha,
                  "name": self.images[i].stem}
        return self.transforms(sample) if self.transforms else sample




def recipe_transforms(recipe: dict, sets: list[HumanDataset], patch: int | None = None):
    """The training augmentations a recipe asks for: train.py's flags, as its parsed arguments (``vars(args)``)
    or as the keys of a TOML recipe (dashes or underscores). What the recipe does not set keeps
    :func:`~datasets.transforms.train_transforms`' defaults (which are train.py's). Background swaps draw
    from the photos of ``sets``; ``patch`` overrides the recipe's."""
    from .transforms import train_transforms

    r = {k.replace("-", "_"): v for k, v in recipe.items()}
    kwargs = {name: r[name] for name in AUGMENTATION_KEYS if r.get(name) is not None}
    if "scale_range" in kwargs:
        kwargs["scale_range"] = tuple(kwargs["scale_range"])
    if r.get("no_vflip"):
        kwargs["vflip"] = False
    if kwargs.get("bg_prob", 0) > 0:
        kwargs["backgrounds"] = RandomBackgrounds([p for ds in sets for p in ds.images], [p for ds in sets for p in ds.alphas])
    return train_transforms(patch or r.get("patch") or PATCH, **kwargs)
