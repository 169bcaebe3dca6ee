#!/usr/bin/env python
"""Train the PSPNet trimap network (TNet) on lists made by prepare_aifenge.py (SPEC §5).

  python train.py --dataname aifenge                       # one GPU, or all GPUs with DataParallel, or the CPU
  torchrun --nproc_per_node 4 train.py --dataname aifenge  # DistributedDataParallel, one process per GPU
  tensorboard --logdir runs                                # watch it

Each epoch writes results/checkpoint_tnet.pth (resume with --resume) and, when validation improves,
results/best_tnet.pth. Ctrl-C saves a checkpoint before it stops. A folder that holds another run's
checkpoints is never written over unless --overwrite is given.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from cli import EXIT_INTERRUPTED, OneLineParser, check_writable_dir, guarded
from core.errors import TrainError
from models.catalog import BACKBONES, DECODERS


def load_config(path: str, parser: argparse.ArgumentParser) -> dict:
    """Defaults from a TOML recipe: each key is a flag's name (``batch_size`` or ``batch-size``)."""
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


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, metavar="TOML", help="a recipe file whose keys set the flags' defaults "
                   "(e.g. configs/tnet_compact.toml); flags on the command line override it")
    d = p.add_argument_group("data")
    d.add_argument("--data-dir", default="data", help="folder holding the JSON lists (default: %(default)s)")
    d.add_argument("--dataname", nargs="+", default=["aifenge"], help="list name(s): reads <data-dir>/<dataname>_{img,alpha,trimap}.json "
                   "for training and <dataname>_val_* for validation; several names train on all of them and validate "
                   "on each (default: aifenge)")
    d.add_argument("--repeat", type=int, nargs="+", default=None, metavar="K", help="with several --dataname, how many times each "
                   "list is seen per epoch (e.g. 1 3 oversamples a small second set; default: 1 each)")
    d.add_argument("--patch", type=int, default=400, help="training patch side in pixels; validation resizes to it too (default: %(default)s)")
    d.add_argument("--scale-prob", type=float, default=0.5, help="probability of the random rescale (default: %(default)s)")
    d.add_argument("--scale-range", type=float, nargs=2, default=(0.75, 1.25), metavar=("LO", "HI"),
                   help="range of the random rescale factor (default: 0.75 1.25)")
    d.add_argument("--crop-prob", type=float, default=0.5, help="probability of a random patch crop instead of resizing the "
                   "whole image to the patch (default: %(default)s)")
    d.add_argument("--no-vflip", action="store_true", help="disable the random vertical flip (on in the original)")
    a = p.add_argument_group("extra augmentations (off by default; the compact recipe turns them on)")
    a.add_argument("--portrait-crop-prob", type=float, default=0.0, help="probability of a head-and-shoulders crop framed like an ID-photo input")
    a.add_argument("--rotate-prob", type=float, default=0.0, help="probability of a small rotation (see --rotate-degrees)")
    a.add_argument("--rotate-degrees", type=float, default=10.0, help="largest rotation angle (default: %(default)s)")
    a.add_argument("--bg-prob", type=float, default=0.0, help="probability of pasting the person onto a new background: another "
                   "photo's with its person removed, or a synthetic one")
    a.add_argument("--color-prob", type=float, default=0.0, help="probability of brightness/contrast/saturation/hue/gamma jitter")
    a.add_argument("--blur-prob", type=float, default=0.0, help="probability of a Gaussian blur")
    a.add_argument("--noise-prob", type=float, default=0.0, help="probability of Gaussian sensor noise")
    a.add_argument("--jpeg-prob", type=float, default=0.0, help="probability of JPEG re-compression artefacts")
    d.add_argument("--workers", type=int, default=4, help="DataLoader worker processes (default: %(default)s)")
    m = p.add_argument_group("model")
    m.add_argument("--backbone", default="resnet50", choices=list(BACKBONES), help="feature extractor (default: %(default)s)")
    m.add_argument("--decoder", default="psp", choices=DECODERS, help="psp: the PSPNet head of the design (any backbone); "
                   "unet: the compact MobileNetV3 U-Net with pyramid pooling (backbone mobilenetv3) (default: %(default)s)")
    m.add_argument("--pretrained", default="imagenet", help="backbone initialisation: 'imagenet' (torchvision weights, cached in "
                   "$TORCH_HOME), 'none' (random) or a path to a torchvision-format .pth (default: %(default)s)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=100, help="number of epochs (default: %(default)s)")
    o.add_argument("--batch-size", type=int, default=8, help="batch size per step, over all GPUs (default: %(default)s)")
    o.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: %(default)s)")
    o.add_argument("--weight-decay", type=float, default=5e-4, help="Adam weight decay (default: %(default)s)")
    o.add_argument("--class-weights", type=float, nargs=3, metavar=("BG", "UNKNOWN", "FG"), help="cross-entropy class weights")
    o.add_argument("--dice-weight", type=float, default=0.0, help="add this weight × the soft Dice loss over the 3 classes to the "
                   "cross-entropy (0 = cross-entropy only, the design's loss)")
    o.add_argument("--cosine", action="store_true", help="cosine learning-rate decay over the run (default: constant, as the original)")
    o.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps in total (smoke runs; 0 = no limit)")
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N' (default: %(default)s)")
    r.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (0 = PyTorch's default); 1 on a busy shared "
                   "machine, where two competing threads per core run many times slower")
    r.add_argument("--amp", action="store_true", help="mixed precision: float16 with loss scaling on CUDA, bfloat16 on the CPU")
    r.add_argument("--channels-last", action="store_true", help="channels_last memory format (faster convolutions on recent GPUs)")
    r.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=None,
                   help="SyncBatchNorm: BatchNorm statistics over the whole batch of all DDP processes instead of each "
                        "GPU's share (batch 8 on 4 GPUs leaves 2 images per GPU, too few). Default: on under torchrun "
                        "on CUDA, off otherwise; PyTorch synchronises GPU batches only, so it is refused on the CPU")
    r.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    r.add_argument("--out", default="results", help="folder for checkpoint_tnet.pth and best_tnet.pth (default: %(default)s)")
    r.add_argument("--logdir", default="runs", help="TensorBoard folder; each run gets a sub-folder (default: %(default)s)")
    r.add_argument("--run-name", default=None, help="TensorBoard sub-folder name (default: <dataname>-<backbone>-<time>)")
    r.add_argument("--resume", default=None, help="checkpoint to resume from: model, optimiser, scaler, epoch and best metric")
    r.add_argument("--overwrite", action="store_true", help="start a new run in --out even though it holds another run's "
                   "checkpoint_tnet.pth / best_tnet.pth (they are replaced); without it such a folder is refused")
    r.add_argument("--init", default=None, metavar="PATH", help="start from the whole TNet of a checkpoint or weights file "
                   "(e.g. weights/tnet_unet_mobilenetv3.pth) with a fresh optimiser and epoch count: fine-tuning")
    r.add_argument("--log-images", type=int, default=4, help="samples per TensorBoard image grid, 0 to disable (default: %(default)s)")
    r.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    config_path = _config_flag(argv)
    if config_path:
        p.set_defaults(**load_config(config_path, p))
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "patch", "lr"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if not (0 <= args.scale_prob <= 1 and 0 <= args.crop_prob <= 1) or not 0 < args.scale_range[0] <= args.scale_range[1]:
        p.error("--scale-prob and --crop-prob must be in [0, 1], --scale-range LO HI with 0 < LO <= HI")
    if args.resume and args.init:
        p.error("--resume continues a run, --init starts a new one from given weights: use one")
    if args.workers < 0 or args.max_steps < 0 or args.threads < 0:
        p.error("--workers, --max-steps and --threads must not be negative")
    probs = ("portrait_crop_prob", "rotate_prob", "bg_prob", "color_prob", "blur_prob", "noise_prob", "jpeg_prob")
    for name in probs:
        if not 0 <= getattr(args, name) <= 1:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1]")
    if args.dice_weight < 0:
        p.error("--dice-weight must not be negative")
    if args.repeat is not None and (len(args.repeat) != len(args.dataname) or min(args.repeat) < 1):
        p.error("--repeat needs one positive count per --dataname")
    if args.decoder == "unet" and args.backbone != "mobilenetv3":
        p.error("--decoder unet needs --backbone mobilenetv3")
    if args.device != "auto":
        import torch  # only here: --help and most mistakes answer before PyTorch loads

        try:
            torch.device(args.device)
        except RuntimeError:
            p.error(f"--device: not a torch device: {args.device!r} (use auto, cpu, cuda or cuda:N)")
    return args


def _config_flag(argv) -> str | None:
    """The value of --config in ``argv`` (read before the full parse, since it sets the defaults)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    return pre.parse_known_args(argv)[0].config


if __name__ == "__main__":
    # --help and usage mistakes answer here, before seconds of PyTorch start-up below
    parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.utils.data import ConcatDataset, DataLoader  # noqa: E402
from torch.utils.data.distributed import DistributedSampler  # noqa: E402
from tqdm import tqdm  # noqa: E402

from datasets import HumanDataset, list_paths, tensor_to_image, train_transforms, val_transforms  # noqa: E402
from datasets.human import RandomBackgrounds  # noqa: E402
from loss import ClassificationLoss  # noqa: E402
from models import TNet, WeightsError, load_backbone_weights, load_tnet, load_tnet_state  # noqa: E402
from models.weights import tnet_for  # noqa: E402
from core.checkpoints import (BEST, CHECKPOINT, RunLock, check_out_dir, checkpoint_state,  # noqa: E402,F401
                              load_checkpoint, save_checkpoint)
from core.metrics import AverageMeter, ConfusionMatrix  # noqa: E402
from core.runtime import (all_reduce_sum, autocast, optimizer_step, pick_device, seed_worker,  # noqa: E402
                          setup_distributed, unwrap, use_sync_bn)


# ----------------------------------------------------------------------------------------------- loops
def build_train_transforms(args, sets: list[HumanDataset]):
    """The training augmentations that the flags ask for; background swaps draw from ``sets``."""
    backgrounds = None
    if args.bg_prob > 0:
        backgrounds = RandomBackgrounds([p for ds in sets for p in ds.images], [p for ds in sets for p in ds.alphas])
    return train_transforms(args.patch, vflip=not args.no_vflip, scale_prob=args.scale_prob,
                            scale_range=tuple(args.scale_range), crop_prob=args.crop_prob,
                            portrait_crop_prob=args.portrait_crop_prob, rotate_prob=args.rotate_prob,
                            rotate_degrees=args.rotate_degrees, bg_prob=args.bg_prob, backgrounds=backgrounds,
                            color_prob=args.color_prob, blur_prob=args.blur_prob, noise_prob=args.noise_prob,
                            jpeg_prob=args.jpeg_prob)


def make_loaders(args, rank: int, world: int, pin: bool):
    """Training loader over every --dataname (each --repeat times), and one validation loader per name
    that has ``<name>_val`` lists: {name: loader}."""
    # every listed file is checked now: a bad list fails in seconds, not in the middle of an epoch
    sets = [HumanDataset(name, None, args.data_dir, check_files=True) for name in args.dataname]
    for name, ds in zip(args.dataname, sets):
        if len(ds) == 0:
            raise TrainError(f"the list {list_paths(args.data_dir, name)['img']} is empty")
    transforms = build_train_transforms(args, sets)
    for ds in sets:
        ds.transforms = transforms
    repeats = args.repeat or [1] * len(sets)
    train_set = sets[0] if len(sets) == 1 and repeats[0] == 1 else ConcatDataset([ds for ds, k in zip(sets, repeats) for _ in range(k)])
    per_process = max(1, args.batch_size // world)
    sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=args.seed) if world > 1 else None
    common = dict(num_workers=args.workers, pin_memory=pin, persistent_workers=args.workers > 0,
                  worker_init_fn=seed_worker)
    train_loader = DataLoader(train_set, per_process, shuffle=sampler is None, sampler=sampler,
                              drop_last=len(train_set) >= per_process * world, **common)
    val_loaders = {}
    for name in args.dataname:
        if all(p.is_file() for p in list_paths(args.data_dir, name + "_val").values()):
            val_set = HumanDataset(name + "_val", val_transforms(args.patch), args.data_dir, check_files=True)
            if len(val_set):
                val_sampler = DistributedSampler(val_set, world, rank, shuffle=False) if world > 1 else None
                val_loaders[name] = DataLoader(val_set, per_process, shuffle=False, sampler=val_sampler, **common)
    return train_loader, val_loaders, sampler


def validate_all(model, loaders: dict, device, args) -> tuple[dict, tuple]:
    """:func:`validate` on each validation set. With one set its metrics keep their plain names; with
    several they are ``<name>/<metric>``, plus each metric's mean over the sets under its plain name
    (what picks the best checkpoint, so no set is ignored)."""
    results, shown = {}, None
    for name, loader in loaders.items():
        summary, batch = validate(model, loader, device, args)
        results[name] = summary
        shown = shown or batch
    if len(results) == 1:
        return next(iter(results.values())), shown
    merged = {f"{name}/{k}": v for name, summary in results.items() for k, v in summary.items()}
    keys = next(iter(results.values())).keys()
    merged.update({k: sum(r[k] for r in results.values()) / len(results) for k in keys})
    return merged, shown


@torch.no_grad()
def validate(model, loader, device, args) -> tuple[dict, tuple]:
    """Trimap metrics over the validation lists, and the person-mask IoU (predicted foreground + unknown
    against alpha ≥ 0.5); returns (summary, one batch for the image grid)."""
    model.eval()
    cm, person = ConfusionMatrix(3), ConfusionMatrix(2)
    shown = None
    for batch in loader:
        image = batch["image"].to(device, non_blocking=True)
        if args.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with autocast(device, args.amp):
            pred = model(image).argmax(1)
        cm.update(pred, batch["trimap"])
        person.update(pred.cpu() > 0, batch["alpha"] >= 0.5)
        if shown is None:
            shown = (batch["image"], pred.cpu(), batch["trimap"])
    for m in (cm, person):
        n = m.num_classes
        m.matrix = torch.tensor(all_reduce_sum(m.matrix.flatten().tolist(), device), dtype=torch.int64).view(n, n)
    model.train()
    return {**cm.summary(), "person_IoU": float(person.iou()[1])}, shown


def log_images(writer, tag: str, images, pred, truth, step: int, n: int) -> None:
    """Three grids: the input, the predicted trimap and the true trimap (0/128/255 shown as grey levels)."""
    import torchvision.utils as vutils
    n = min(n, images.shape[0])
    writer.add_image(f"{tag}/input", vutils.make_grid(tensor_to_image(images[:n].float()), nrow=n), step)
    for name, classes in (("predicted_trimap", pred), ("true_trimap", truth)):
        grey = classes[:n].reshape(n, 1, *classes.shape[-2:]).float() / 2
        writer.add_image(f"{tag}/{name}", vutils.make_grid(grey, nrow=n), step)


def get_lr(step: int, total_steps: float, base_lr: float, cosine: bool) -> float:
    """The learning rate of optimiser step ``step`` (0-based): constant, or cosine-decayed from ``base_lr`` to 0
    over ``total_steps``. From the step count, so a resumed run (even with other --epochs) continues the curve."""
    if not cosine:
        return base_lr
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(step / total_steps, 1.0)))


def train(args) -> int:
    with ExitStack() as stack:  # holds the lock on --out for the whole run
        return _train(args, stack)


def _train(args, stack: ExitStack) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, local_rank = setup_distributed(args.device)
    distributed = dist.is_available() and dist.is_initialized()
    main_process = rank == 0
    device = torch.device(pick_device(args.device, local_rank if distributed else None))
    sync_bn = use_sync_bn(args.sync_bn, distributed, device)
    torch.manual_seed(args.seed + rank)
    random.seed(args.seed + rank)
    np.random.seed(args.seed + rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    train_loader, val_loaders, sampler = make_loaders(args, rank, world, pin=device.type == "cuda")

    resume, run_id = None, uuid.uuid4().hex[:12]
    if args.resume:
        if not Path(args.resume).is_file():
            raise TrainError(f"--resume {args.resume}: no such file")
        try:
            resume = load_checkpoint(args.resume)
            if not isinstance(resume, dict) or not isinstance(resume.get("model"), dict):
                raise TrainError(f"--resume {args.resume} is not a training checkpoint (no 'model' state dict)")
            done = int(resume.get("epoch", 0))
        except TrainError:
            raise
        except Exception as exc:
            raise TrainError(f"--resume {args.resume} is not a training checkpoint ({type(exc).__name__})") from None
        if done >= args.epochs:
            raise TrainError(f"--resume {args.resume} has already trained {done} epochs; pass --epochs above {done}")
        run_id = resume.get("run_id")  # None for checkpoints written before runs had ids

    # nothing of another run in --out is written over (unless --overwrite); one run at a time per folder
    out = Path(args.out)
    refusal, stale_best = None, False
    if main_process:
        try:
            check_writable_dir(out, "--out")
            stack.enter_context(RunLock(out))
            stale_best = check_out_dir(out, args.resume, run_id, args.overwrite)
        except (TrainError, OSError) as exc:
            refusal = exc
    if world > 1 and all_reduce_sum([float(refusal is not None)], device)[0]:
        raise refusal or TrainError(f"--out {out}: refused by rank 0")
    if refusal is not None:
        raise refusal

    if resume is not None:
        try:
            described = resume if resume.get("arch") is not None else {  # files of the original code: the flags'
                **resume, "arch": {"backbone": args.backbone, "decoder": args.decoder}}
            model = tnet_for(described, args.resume)  # the checkpoint's own backbone
            load_tnet_state(model, resume["model"])
        except WeightsError as exc:
            raise TrainError(f"--resume {args.resume}: {exc}") from None
        init = f"resumed from {args.resume} (epoch {done})"
        if model.arch["backbone"] != args.backbone:
            init += f"; backbone {model.arch['backbone']} from the checkpoint (not --backbone {args.backbone})"
    elif args.init:
        try:
            model = load_tnet(args.init).train()
        except WeightsError as exc:
            raise TrainError(f"--init: {exc}") from None
        init = f"initialised from {args.init} (backbone {model.arch['backbone']})"
    else:
        model = TNet(backbone=args.backbone, decoder=args.decoder)
        try:
            init = load_backbone_weights(model, args.pretrained)
        except WeightsError as exc:
            raise TrainError(str(exc)) from None
    model.to(device)
    if sync_bn:  # the same parameters in new modules: the optimiser below and the checkpoints are unchanged
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=args.weight_decay)
    steps_per_epoch = len(train_loader)
    total_steps = min(args.max_steps or math.inf, args.epochs * steps_per_epoch)  # the cosine horizon
    scaler = torch.amp.GradScaler("cuda") if args.amp and device.type == "cuda" else None
    start_epoch, global_step, best = 1, 0, -math.inf
    if resume is not None:
        if "optimizer" in resume:
            optimizer.load_state_dict(resume["optimizer"])
        if scaler is not None and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        start_epoch = int(resume.get("epoch", 0)) + 1
        global_step = int(resume.get("global_step", 0))
        best = float(resume.get("best_metric", -math.inf))

    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
        mode = f"DistributedDataParallel over {world} process{'es' if world > 1 else ''}" + (" with SyncBatchNorm" if sync_bn else "")
    elif device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        model = nn.DataParallel(model)
        mode = f"DataParallel over {torch.cuda.device_count()} GPUs"
    else:
        mode = str(device)
    criterion = ClassificationLoss(args.class_weights, args.dice_weight).to(device)

    writer = None
    last_saved = args.resume  # the newest checkpoint of this run, for the NaN message
    if main_process:
        from torch.utils.tensorboard import SummaryWriter
        run_name = args.run_name or f"{'+'.join(args.dataname)}-{unwrap(model).arch['backbone']}-{time.strftime('%Y%m%d-%H%M%S')}"
        writer = SummaryWriter(str(Path(args.logdir) / run_name))
        print(f"TNet({unwrap(model).arch['backbone']}) on {mode}; {init}")
        print(f"train: {len(train_loader.dataset)} samples, {steps_per_epoch} steps/epoch; "
              f"val: {sum(len(v.dataset) for v in val_loaders.values())} samples; TensorBoard: {writer.log_dir}")
        if not val_loaders:
            print("  no validation lists (<dataname>_val_*.json): best_tnet.pth follows the training loss")
        if args.sync_bn and not distributed:
            print("  --sync-bn has no effect in a single process (it needs torchrun)")

    epoch = start_epoch - 1
    model.train()
    try:
        for epoch in range(start_epoch, args.epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            meter = AverageMeter()
            bar = tqdm(train_loader, desc=f"epoch {epoch}/{args.epochs}", disable=not main_process,
                       dynamic_ncols=True, unit="batch")
            batch, steps_this_epoch = None, 0
            for batch in bar:
                image = batch["image"].to(device, non_blocking=True)
                target = batch["trimap"].to(device, non_blocking=True)
                if args.channels_last:
                    image = image.contiguous(memory_format=torch.channels_last)
                with autocast(device, args.amp):
                    logits = model(image)
                loss = criterion(logits, target)
                if not torch.isfinite(loss):
                    where = (f"the last good checkpoint is {last_saved} (resume with --resume {last_saved})"
                             if last_saved else "no checkpoint was saved yet")
                    raise TrainError(f"the loss became {loss.item()} at epoch {epoch}, step {global_step + 1}: "
                                     f"lower --lr{' or drop --amp' if args.amp else ''}; {where}")
                for group in optimizer.param_groups:
                    group["lr"] = get_lr(global_step, total_steps, args.lr, args.cosine)
                optimizer_step(loss, optimizer, scaler)
                global_step += 1
                steps_this_epoch += 1
                meter.update(loss.item(), image.shape[0])
                if main_process:
                    bar.set_postfix(loss=f"{meter.avg:.4f}")
                    writer.add_scalar("train/loss_step", loss.item(), global_step)
                if args.max_steps and global_step >= args.max_steps:
                    break
            pred = logits.detach().argmax(1) if batch is not None else None
            completed = epoch if steps_this_epoch == steps_per_epoch else epoch - 1

            total, count = all_reduce_sum([meter.sum, meter.count], device)
            epoch_loss = total / max(count, 1)
            summary, shown = validate_all(model, val_loaders, device, args) if val_loaders else ({}, None)
            metric = summary.get("mIoU", -epoch_loss)
            improved = metric > best
            best = max(best, metric)
            if main_process:
                writer.add_scalar("train/loss_epoch", epoch_loss, epoch)
                writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], epoch)
                for key, value in summary.items():
                    writer.add_scalar(f"val/{key}", value, epoch)
                if args.log_images and batch is not None:
                    log_images(writer, "train", batch["image"], pred.cpu(), batch["trimap"], epoch, args.log_images)
                    if shown is not None:
                        log_images(writer, "val", *shown, epoch, args.log_images)
                writer.flush()
                # an epoch cut short by --max-steps is not counted as done: a resume repeats it
                state = checkpoint_state(model, optimizer, scaler, completed, best, global_step, args, run_id)
                save_checkpoint(state, out / CHECKPOINT)
                last_saved = str(out / CHECKPOINT)
                # best_tnet.pth changes only for a better model of this run (another run's: --overwrite)
                if improved:
                    save_checkpoint(state, out / BEST)
                elif stale_best:
                    (out / BEST).unlink(missing_ok=True)
                stale_best = False
                val_text = "  ".join(f"{k} {v:.4f}" for k, v in summary.items())
                tqdm.write(f"epoch {epoch}: train loss {epoch_loss:.4f}  {val_text}{'  (best)' if improved else ''}")
            if args.max_steps and global_step >= args.max_steps:
                if main_process:
                    print(f"stopped after --max-steps {args.max_steps}")
                break
    except KeyboardInterrupt:
        if main_process:
            # the interrupted epoch is not counted: resuming repeats it
            save_checkpoint(checkpoint_state(model, optimizer, scaler, epoch - 1, best, global_step, args, run_id,
                                             interrupted=True), out / CHECKPOINT)
            if stale_best:  # --overwrite: the folder holds this run only
                (out / BEST).unlink(missing_ok=True)
            print(f"\ninterrupted: checkpoint saved to {out / 'checkpoint_tnet.pth'} (resume with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if writer is not None:
            writer.close()
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    if main_process:
        print(f"done: {out / 'checkpoint_tnet.pth'}" + (f", best {best:.4f} in {out / 'best_tnet.pth'}" if val_loaders else ""))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    # a user's mistake, a bad list or file, a full disk: one line naming the file (a DataLoader worker's
    # error included), never a traceback unless --debug
    return guarded("train.py", lambda: train(args), (TrainError, WeightsError, ValueError), args.debug)


if __name__ == "__main__":
    sys.exit(main())
