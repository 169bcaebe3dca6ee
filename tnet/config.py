"""The training recipe, defined once: :class:`TrainConfig`.

Each field is one setting of a TNet training run, and carries its flag's help text, group, type and
default. From these fields come ``train.py``'s command line (:func:`add_arguments`), the TOML recipes in
``configs/`` (:func:`load_recipe`: each key a field's name), the recipe a weights file records
(:data:`RECIPE_KEYS`) and the augmentation arguments (:data:`AUGMENTATION_KEYS`), so none of them lists
the settings again. Importing this module loads no PyTorch: ``--help`` answers at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field

from core.checkpoints import SWA
from core.cli import add_field_arguments, flag_name
from models.catalog import BACKBONES, DECODERS

PATCH = 400   # the design's training patch and input side (inference's default for weights that don't say)
GROUPS = {"data": "data", "augmentation": "extra augmentations (off by default; the compact recipe turns them on)",
          "model": "model", "optimisation": "optimisation", "run": "run"}


def _setting(default, help: str, *, group: str, kind=None, nargs=None, choices=None, metavar=None,
             recipe: bool = False, augment: bool = False, switch: str | None = None):
    """A field of :class:`TrainConfig`. ``kind``: the type of one value (None for strings); ``switch``:
    ``"on"`` for a flag that sets True, ``"both"`` for ``--x/--no-x`` with None as 'not said'. ``recipe``:
    recorded in the weights file (``models.export``); ``augment``: an argument of the training transforms."""
    action = {"on": "store_true", "both": "optional", None: None}[switch]
    meta = {"help": help, "group": group, "type": kind, "nargs": nargs, "choices": choices, "metavar": metavar,
            "action": action, "recipe": recipe, "augment": augment}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # ------------------------------------------------------------------------------------------ data
    data_dir: str = _setting("data", "folder holding the JSON lists (default: %(default)s)", group="data")
    dataname: tuple[str, ...] = _setting(
        ("aifenge",), "list name(s): reads <data-dir>/<dataname>_{img,alpha,trimap}.json for training and "
                      "<dataname>_val_* for validation; several names train on all of them and validate on each "
                      "(default: aifenge)", group="data", nargs="+", recipe=True)
    repeat: tuple[int, ...] | None = _setting(
        None, "with several --dataname, how many times each list is seen per epoch (e.g. 1 3 oversamples a small "
              "second set; default: 1 each)", group="data", kind=int, nargs="+", metavar="K", recipe=True)
    patch: int = _setting(PATCH, "training patch side in pixels; validation resizes to it too (default: %(default)s)",
                          group="data", kind=int, recipe=True)
    scale_prob: float = _setting(0.5, "probability of the random rescale (default: %(default)s)", group="data",
                                 kind=float, recipe=True, augment=True)
    scale_range: tuple[float, float] = _setting(
        (0.75, 1.25), "range of the random rescale factor (default: 0.75 1.25)", group="data", kind=float, nargs=2,
        metavar=("LO", "HI"), recipe=True, augment=True)
    crop_prob: float = _setting(0.5, "probability of a random patch crop instead of resizing the whole image to the "
                                     "patch (default: %(default)s)", group="data", kind=float, recipe=True, augment=True)
    no_vflip: bool = _setting(False, "disable the random vertical flip (on by default: it doubles the poses seen; "
                                     "ID-photo recipes turn it off, as their photos are upright)",
                              group="data", switch="on", recipe=True)
    # ---------------------------------------------------------------------------------- augmentation
    portrait_crop_prob: float = _setting(0.0, "probability of a head-and-shoulders crop framed like an ID-photo input",
                                         group="augmentation", kind=float, recipe=True, augment=True)
    rotate_prob: float = _setting(0.0, "probability of a small rotation (see --rotate-degrees)", group="augmentation",
                                  kind=float, recipe=True, augment=True)
    rotate_degrees: float = _setting(10.0, "largest rotation angle (default: %(default)s)", group="augmentation",
                                     kind=float, recipe=True, augment=True)
    bg_prob: float = _setting(0.0, "probability of pasting the person onto a new background: another photo's with "
                                   "its person removed, or a synthetic one", group="augmentation", kind=float,
                              recipe=True, augment=True)
    color_prob: float = _setting(0.0, "probability of brightness/contrast/saturation/hue/gamma jitter",
                                 group="augmentation", kind=float, recipe=True, augment=True)
    blur_prob: float = _setting(0.0, "probability of a Gaussian blur", group="augmentation", kind=float, recipe=True,
                                augment=True)
    noise_prob: float = _setting(0.0, "probability of Gaussian sensor noise", group="augmentation", kind=float,
                                 recipe=True, augment=True)
    jpeg_prob: float = _setting(0.0, "probability of JPEG re-compression artefacts", group="augmentation", kind=float,
                                recipe=True, augment=True)
    workers: int = _setting(4, "DataLoader worker processes (default: %(default)s)", group="data", kind=int)
    # ----------------------------------------------------------------------------------------- model
    backbone: str = _setting("resnet50", "feature extractor (default: %(default)s)", group="model",
                             choices=tuple(BACKBONES), recipe=True)
    decoder: str = _setting("psp", "psp: the PSPNet head of the design (any backbone); unet: the compact MobileNetV3 "
                                   "U-Net with pyramid pooling (backbone mobilenetv3) (default: %(default)s)",
                            group="model", choices=tuple(DECODERS), recipe=True)
    pretrained: str = _setting("imagenet", "backbone initialisation: 'imagenet' (torchvision weights, cached in "
                                           "$TORCH_HOME), 'none' (random) or a path to a torchvision-format .pth "
                                           "(default: %(default)s)", group="model", recipe=True)
    # ---------------------------------------------------------------------------------- optimisation
    epochs: int = _setting(100, "number of epochs (default: %(default)s)", group="optimisation", kind=int, recipe=True)
    batch_size: int = _setting(8, "batch size per step, over all GPUs (default: %(default)s)", group="optimisation",
                               kind=int, recipe=True)
    lr: float = _setting(1e-4, "Adam learning rate (default: %(default)s)", group="optimisation", kind=float,
                         recipe=True)
    weight_decay: float = _setting(5e-4, "Adam weight decay (default: %(default)s)", group="optimisation", kind=float,
                                   recipe=True)
    class_weights: tuple[float, float, float] | None = _setting(
        None, "cross-entropy class weights", group="optimisation", kind=float, nargs=3,
        metavar=("BG", "UNKNOWN", "FG"), recipe=True)
    dice_weight: float = _setting(0.0, "add this weight × the soft Dice loss over the 3 classes to the cross-entropy "
                                       "(0 = cross-entropy only, the design's loss)", group="optimisation", kind=float,
                                  recipe=True)
    lovasz_weight: float = _setting(0.0, "add this weight × the Lovász loss of the person mask (unknown + foreground), "
                                         "a surrogate of the person IoU that evaluate.py scores (0 = off)",
                                    group="optimisation", kind=float, recipe=True)
    cosine: bool = _setting(False, "cosine learning-rate decay over the run (default: constant)", group="optimisation",
                            switch="on", recipe=True)
    max_steps: int = _setting(0, "stop after this many optimiser steps in total (smoke runs; 0 = no limit)",
                              group="optimisation", kind=int)
    swa_start: int = _setting(
        0, "stochastic weight averaging: average the weights at the end of every epoch from EPOCH on (best with a "
           "constant --lr); when the run ends, the average gets BatchNorm statistics from a pass over the training "
           f"data, is validated and saved as {SWA} (0 = off)", group="optimisation", kind=int, metavar="EPOCH",
        recipe=True)
    # ------------------------------------------------------------------------------------------- run
    device: str = _setting("auto", "'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N' (default: %(default)s)",
                           group="run")
    threads: int = _setting(0, "PyTorch CPU threads (0 = PyTorch's default); 1 on a busy shared machine, where two "
                               "competing threads per core run many times slower", group="run", kind=int)
    amp: bool = _setting(False, "mixed precision: float16 with loss scaling on CUDA, bfloat16 on the CPU", group="run",
                         switch="on", recipe=True)
    channels_last: bool = _setting(False, "channels_last memory format (faster convolutions on recent GPUs)",
                                   group="run", switch="on", recipe=True)
    sync_bn: bool | None = _setting(
        None, "SyncBatchNorm: BatchNorm statistics over the whole batch of all DDP processes instead of each GPU's "
              "share (batch 8 on 4 GPUs leaves 2 images per GPU, too few). Default: on under torchrun on CUDA, off "
              "otherwise; PyTorch synchronises GPU batches only, so it is refused on the CPU", group="run",
        switch="both")
    seed: int = _setting(0, "random seed (default: %(default)s)", group="run", kind=int, recipe=True)
    out: str = _setting("results", "folder for checkpoint_tnet.pth and best_tnet.pth (default: %(default)s)",
                        group="run")
    logdir: str = _setting("runs", "TensorBoard folder; each run gets a sub-folder (default: %(default)s)", group="run")
    run_name: str | None = _setting(None, "TensorBoard sub-folder name (default: <dataname>-<backbone>-<time>)",
                                    group="run")
    resume: str | None = _setting(None, "checkpoint to resume from: model, optimiser, scaler, epoch and best metric",
                                  group="run")
    overwrite: bool = _setting(False, "start a new run in --out even though it holds another run's "
                                      "checkpoint_tnet.pth / best_tnet.pth (they are replaced); without it such a "
                                      "folder is refused", group="run", switch="on")
    init: str | None = _setting(None, "start from the whole TNet of a checkpoint or weights file (e.g. "
                                      "weights/tnet_unet_mobilenetv3.pth) with a fresh optimiser and epoch count: "
                                      "fine-tuning", group="run", metavar="PATH")
    log_images: int = _setting(4, "samples per TensorBoard image grid, 0 to disable (default: %(default)s)",
                               group="run", kind=int)


RECIPE_KEYS = ("config",) + tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["recipe"])
AUGMENTATION_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["augment"])
DEFAULTS = TrainConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every field of :class:`TrainConfig` as a flag, in its group (``--batch-size`` for ``batch_size``)."""
    add_field_arguments(parser, dataclasses.fields(TrainConfig), GROUPS)


def config_of(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed arguments (lists become tuples)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def problems(c) -> list[str]:
    """What is wrong with a config (parsed arguments or a :class:`TrainConfig`) that argparse can't see."""
    out = []
    for name in ("epochs", "batch_size", "patch", "lr"):
        if getattr(c, name) <= 0:
            out.append(f"{flag_name(name)} must be positive")
    if not (0 <= c.scale_prob <= 1 and 0 <= c.crop_prob <= 1) or not 0 < c.scale_range[0] <= c.scale_range[1]:
        out.append("--scale-prob and --crop-prob must be in [0, 1], --scale-range LO HI with 0 < LO <= HI")
    if c.resume and c.init:
        out.append("--resume continues a run, --init starts a new one from given weights: use one")
    if c.workers < 0 or c.max_steps < 0 or c.threads < 0:
        out.append("--workers, --max-steps and --threads must not be negative")
    for name in AUGMENTATION_KEYS:
        if name.endswith("_prob") and name not in ("scale_prob", "crop_prob") and not 0 <= getattr(c, name) <= 1:
            out.append(f"{flag_name(name)} must be in [0, 1]")
    if not 0 <= c.swa_start <= c.epochs:
        out.append(f"--swa-start must be between 1 and --epochs ({c.epochs}), or 0 for no weight averaging")
    if c.dice_weight < 0 or c.lovasz_weight < 0:
        out.append("--dice-weight and --lovasz-weight must not be negative")
    if c.repeat is not None and (len(c.repeat) != len(c.dataname) or min(c.repeat) < 1):
        out.append("--repeat needs one positive count per --dataname")
    if c.decoder == "unet" and c.backbone != "mobilenetv3":
        out.append("--decoder unet needs --backbone mobilenetv3")
    return out


def load_recipe(path: str, parser: argparse.ArgumentParser, _seen: tuple = ()) -> dict:
    """Defaults from a TOML recipe: each key is a field's name (``batch_size`` or ``batch-size``).

    ``base = "other.toml"`` (relative to this file) starts from another recipe and overrides its keys, so
    a later training stage states only what it changes. Mistakes go to ``parser.error`` (one line, exit 2)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except OSError as exc:
        parser.error(f"--config {path}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        parser.error(f"--config {path} is not valid TOML ({exc})")
    known = {a.dest: a for a in parser._actions}
    out = {}
    base = config.pop("base", None)
    if base is not None:
        base_path = os.path.join(os.path.dirname(os.path.abspath(path)), str(base))
        if os.path.abspath(base_path) in _seen:
            parser.error(f"--config {path}: base {base!r} includes itself")
        out.update(load_recipe(base_path, parser, _seen + (os.path.abspath(path),)))
    for key, value in config.items():
        dest = key.replace("-", "_")
        if dest not in known or dest in ("help", "config"):
            parser.error(f"--config {path}: unknown key {key!r}")
        action = known[dest]
        if action.nargs in ("+", 2, 3) and not isinstance(value, list):
            value = [value]
        if action.type is not None and value is not None:
            try:
                value = [action.type(v) for v in value] if isinstance(value, list) else action.type(value)
            except (TypeError, ValueError):
                parser.error(f"--config {path}: {key} = {value!r} is not a valid {action.type.__name__}")
        if action.choices is not None and value not in action.choices:
            parser.error(f"--config {path}: {key} must be one of {', '.join(map(str, action.choices))}")
        out[dest] = value
    return out
