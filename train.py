#!/usr/bin/env python
"""Train the trimap network (TNet) on lists made by prepare_aifenge.py.

  python train.py --dataname aifenge                       # one GPU, or all GPUs with DataParallel, or the CPU
  torchrun --nproc_per_node 4 train.py --dataname aifenge  # DistributedDataParallel, one process per GPU
  tensorboard --logdir runs                                # watch it

Each epoch writes results/checkpoint_tnet.pth (resume with --resume) and, when validation improves,
results/best_tnet.pth. Ctrl-C saves a checkpoint before it stops. A folder that holds another run's
checkpoints is never written over unless --overwrite is given. With --swa-start the weights of the later
epochs are averaged, and the average is saved as results/swa_tnet.pth when the run ends.

The run, in named steps: :func:`train` → :func:`prepare_run` (device, data, :func:`build_start` for the
model and its start state, :func:`claim_out_dir`, optimiser) → :func:`run_epochs`, each epoch
:func:`train_epoch` (:func:`get_lr` per step), :func:`average_weights`, :func:`validate_all`, :func:`log_epoch`
and :func:`save`; at the end :func:`finish_swa`.
What every script shares (device, distributed set-up, autocast, the optimiser step, checkpoints) is in
:mod:`core`.
"""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from core.cli import EXIT_INTERRUPTED, OneLineParser, check_writable_dir, guarded
from core.checkpoints import SWA
from core.errors import TrainError
from models.catalog import BACKBONES, DECODERS


def load_config(path: str, parser: argparse.ArgumentParser, _seen: tuple = ()) -> dict:
    """Defaults from a TOML recipe: each key is a flag's name (``batch_size`` or ``batch-size``).

    ``base = "other.toml"`` (relative to this file) starts from another recipe and overrides its keys, so
    a later training stage states only what it changes."""
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
        out.update(load_config(base_path, parser, _seen + (os.path.abspath(path),)))
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
                   "(e.g. configs/tnet_compact.toml; a key base = \"other.toml\" starts from another recipe); flags on the command line override it")
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
    d.add_argument("--no-vflip", action="store_true", help="disable the random vertical flip (on by default: it doubles "
                   "the poses seen; ID-photo recipes turn it off, as their photos are upright)")
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
    o.add_argument("--lovasz-weight", type=float, default=0.0, help="add this weight × the Lovász loss of the person mask "
                   "(unknown + foreground), a surrogate of the person IoU that evaluate.py scores (0 = off)")
    o.add_argument("--cosine", action="store_true", help="cosine learning-rate decay over the run (default: constant)")
    o.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps in total (smoke runs; 0 = no limit)")
    o.add_argument("--swa-start", type=int, default=0, metavar="EPOCH", help="stochastic weight averaging: average the weights "
                   "at the end of every epoch from EPOCH on (best with a constant --lr); when the run ends, the average gets "
                   f"BatchNorm statistics from a pass over the training data, is validated and saved as {SWA} (0 = off)")
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
    if not 0 <= args.swa_start <= args.epochs:
        p.error(f"--swa-start must be between 1 and --epochs ({args.epochs}), or 0 for no weight averaging")
    if args.dice_weight < 0 or args.lovasz_weight < 0:
        p.error("--dice-weight and --lovasz-weight must not be negative")
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

import math  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.utils.data import ConcatDataset, DataLoader  # noqa: E402
from torch.utils.data.distributed import DistributedSampler  # noqa: E402
from tqdm import tqdm  # noqa: E402

from core.checkpoints import (BEST, CHECKPOINT, RunLock, check_out_dir, checkpoint_state,  # noqa: E402
                              load_checkpoint, save_checkpoint)
from core.metrics import AverageMeter, ConfusionMatrix  # noqa: E402
from core.runtime import (all_reduce_sum, autocast, grad_scaler, is_distributed, optimizer_step, parallelize,  # noqa: E402
                          pick_device, seed_everything, seed_worker, set_threads, setup_distributed,
                          teardown_distributed, unwrap, use_sync_bn)
from datasets import HumanDataset, list_paths, recipe_transforms, tensor_to_image, val_transforms  # noqa: E402
from loss import ClassificationLoss  # noqa: E402
from models import TNet, load_backbone_weights, load_tnet, load_tnet_state  # noqa: E402
from models.weights import WeightsError, tnet_for  # noqa: E402


# ------------------------------------------------------------------------------------------- the run
def train(args) -> int:
    """The whole run: where it runs, the data, the model and its start state, the folder it writes to,
    then the epochs — each one training, validation, logging and saving. Ctrl-C saves a checkpoint and
    returns 130."""
    set_threads(args.threads)
    rank, world, local_rank = setup_distributed(args.device)
    try:
        with ExitStack() as stack:  # holds the lock on --out for the whole run
            run = prepare_run(args, rank, world, local_rank, stack)
            try:
                return run_epochs(run)
            finally:
                if run.writer is not None:
                    run.writer.close()
    finally:
        teardown_distributed()


@dataclass
class Progress:
    """How far the run has got: what a checkpoint records, and what a resumed run carries on from."""

    epoch: int = 0                   # epochs completed
    global_step: int = 0             # optimiser steps taken
    best: float = -math.inf          # best validation mIoU (−training loss without validation lists)
    last_saved: str | None = None    # the newest checkpoint of this run, for the NaN message
    foreign: tuple = ()              # another run's best_tnet.pth / swa_tnet.pth in --out (--overwrite: removed at the first save)


@dataclass
class Run:
    """Everything the epochs need, assembled by :func:`prepare_run`."""

    args: argparse.Namespace
    device: torch.device
    main_process: bool
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: object
    criterion: nn.Module
    train_loader: DataLoader
    val_loaders: dict
    sampler: DistributedSampler | None
    run_id: str | None
    progress: Progress
    writer: object = None
    swa: object = None                       # torch.optim.swa_utils.AveragedModel under --swa-start
    out: Path = field(init=False)
    total_steps: float = field(init=False)   # the cosine horizon

    def __post_init__(self):
        self.out = Path(self.args.out)
        steps = self.args.epochs * len(self.train_loader)
        self.total_steps = min(self.args.max_steps or math.inf, steps)


def prepare_run(args, rank: int, world: int, local_rank: int | None, stack: ExitStack) -> Run:
    """Everything before the first step: the device, seeds, data loaders, the model and its start state,
    the output folder, the optimiser and scaler, the parallel wrapping, and (rank 0) TensorBoard."""
    distributed = is_distributed()
    device = torch.device(pick_device(args.device, local_rank if distributed else None))
    sync_bn = use_sync_bn(args.sync_bn, distributed, device)
    seed_everything(args.seed + rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train_loader, val_loaders, sampler = make_loaders(args, rank, world, pin=device.type == "cuda")

    start = build_start(args)
    start.progress.foreign = claim_out_dir(args, start.run_id, rank == 0, world, device, stack)

    model = place_model(start.model, device, sync_bn, args.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=args.weight_decay)
    scaler = grad_scaler(device, args.amp)
    start.restore(optimizer, scaler)
    model, mode = parallelize(model, device, distributed, world, sync_bn)
    criterion = ClassificationLoss(args.class_weights, args.dice_weight, args.lovasz_weight).to(device)
    run = Run(args, device, rank == 0, model, optimizer, scaler, criterion, train_loader, val_loaders, sampler,
              start.run_id, start.progress)
    if args.swa_start:
        run.swa = start.averaged(unwrap(model))
    if run.main_process:
        run.writer = open_writer(args, unwrap(model).arch["backbone"])
        announce(run, mode, start.described, distributed)
    return run


def run_epochs(run: Run) -> int:
    """The epochs from where the run starts to --epochs (or --max-steps): each trains, validates, logs and
    saves. Returns the exit code: 0, or 130 after Ctrl-C (with a checkpoint saved)."""
    args, progress = run.args, run.progress
    run.model.train()
    try:
        for epoch in range(progress.epoch + 1, args.epochs + 1):
            if run.sampler is not None:
                run.sampler.set_epoch(epoch)
            result = train_epoch(run, epoch)
            average_weights(run, epoch, result.whole_epoch)
            summary, shown = validate_all(run.model, run.val_loaders, run.device, args) if run.val_loaders else ({}, None)
            metric = summary.get("mIoU", -result.loss)
            improved = metric > progress.best
            progress.best = max(progress.best, metric)
            # an epoch cut short by --max-steps is not counted as done: a resume repeats it
            completed = epoch if result.whole_epoch else epoch - 1
            if run.main_process:
                log_epoch(run, epoch, result, summary, shown)
                save(run, completed, improved)
                val_text = "  ".join(f"{k} {v:.4f}" for k, v in summary.items())
                tqdm.write(f"epoch {epoch}: train loss {result.loss:.4f}  {val_text}{'  (best)' if improved else ''}")
            if max_steps_reached(run):
                if run.main_process:
                    print(f"stopped after --max-steps {args.max_steps}")
                break
    except KeyboardInterrupt:
        if run.main_process:
            save_interrupted(run)
            print(f"\ninterrupted: checkpoint saved to {run.out / CHECKPOINT} (resume with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if run.swa is not None:
        finish_swa(run)  # on every process: under DDP the BatchNorm pass and the validation are collective
    if run.main_process:
        print(f"done: {run.out / CHECKPOINT}" + (f", best mIoU {progress.best:.4f} in {run.out / BEST}" if run.val_loaders else ""))
    return 0


# ------------------------------------------------------------------------ the model and its start state
@dataclass
class Start:
    """Where a run starts: the model and a line saying what it was initialised from; when resuming, also
    the checkpoint's run id, counters, optimiser and AMP scaler state."""

    model: nn.Module
    described: str
    run_id: str | None
    progress: Progress = field(default_factory=Progress)
    optimizer_state: dict | None = None
    scaler_state: dict | None = None
    swa_state: dict | None = None

    def averaged(self, model: nn.Module):
        """The running weight average for --swa-start: the resumed run's, or a new, empty one."""
        swa = torch.optim.swa_utils.AveragedModel(model)
        if self.swa_state is not None:
            swa.load_state_dict(self.swa_state)
        return swa

    def restore(self, optimizer, scaler) -> None:
        """Give the new optimiser and scaler the resumed run's state (nothing for a new run)."""
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
        if scaler is not None and self.scaler_state:
            scaler.load_state_dict(self.scaler_state)


def build_start(args) -> Start:
    """The model and its start state, from one of: --resume (the checkpoint's own architecture, weights,
    optimiser, scaler, counters and run id), --init (the whole TNet of a weights file: fine-tuning, with
    a fresh optimiser and epoch count), or --pretrained (a new TNet whose backbone has ImageNet or given
    weights, or none)."""
    if args.resume:
        return resume_start(args)
    run_id = uuid.uuid4().hex[:12]
    if args.init:
        try:
            model = load_tnet(args.init).train()
        except WeightsError as exc:
            raise TrainError(f"--init: {exc}") from None
        return Start(model, f"initialised from {args.init} (backbone {model.arch['backbone']})", run_id)
    model = TNet(backbone=args.backbone, decoder=args.decoder)
    try:
        described = load_backbone_weights(model, args.pretrained)
    except WeightsError as exc:
        raise TrainError(str(exc)) from None
    return Start(model, described, run_id)


def resume_start(args) -> Start:
    """:func:`build_start` for --resume: a TrainError unless the file is a training checkpoint with epochs
    left to train."""
    if not Path(args.resume).is_file():
        raise TrainError(f"--resume {args.resume}: no such file")
    try:
        ckpt = load_checkpoint(args.resume)
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
            raise TrainError(f"--resume {args.resume} is not a training checkpoint (no 'model' state dict)")
        done = int(ckpt.get("epoch", 0))
    except TrainError:
        raise
    except Exception as exc:
        raise TrainError(f"--resume {args.resume} is not a training checkpoint ({type(exc).__name__})") from None
    if done >= args.epochs:
        raise TrainError(f"--resume {args.resume} has already trained {done} epochs; pass --epochs above {done}")
    # a checkpoint without 'arch' (from before it was recorded) is taken to be of the flags' architecture
    described = ckpt if ckpt.get("arch") is not None else {**ckpt, "arch": {"backbone": args.backbone,
                                                                             "decoder": args.decoder}}
    try:
        model = tnet_for(described, args.resume)  # the checkpoint's own backbone
        load_tnet_state(model, ckpt["model"])
    except WeightsError as exc:
        raise TrainError(f"--resume {args.resume}: {exc}") from None
    text = f"resumed from {args.resume} (epoch {done})"
    if model.arch["backbone"] != args.backbone:
        text += f"; backbone {model.arch['backbone']} from the checkpoint (not --backbone {args.backbone})"
    progress = Progress(epoch=done, global_step=int(ckpt.get("global_step", 0)),
                        best=float(ckpt.get("best_metric", -math.inf)), last_saved=args.resume)
    # run_id: None for checkpoints written before runs had ids
    return Start(model, text, ckpt.get("run_id"), progress, ckpt.get("optimizer"), ckpt.get("scaler"), ckpt.get("swa"))


def place_model(model: nn.Module, device: torch.device, sync_bn: bool, channels_last: bool) -> nn.Module:
    """The model on its device, with SyncBatchNorm and channels_last when asked for. Both keep the same
    parameters, so the optimiser and the checkpoints are unchanged."""
    model.to(device)
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def claim_out_dir(args, run_id: str | None, main_process: bool, world: int, device, stack: ExitStack) -> tuple:
    """Make --out this run's: writable, locked for the run's lifetime, and holding no other run's
    checkpoints (unless --overwrite). Checked by rank 0; every rank stops when it refuses. Returns the names
    of another run's best_tnet.pth / swa_tnet.pth found there (to be removed at the first save)."""
    out = Path(args.out)
    refusal, foreign = None, ()
    if main_process:
        try:
            check_writable_dir(out, "--out")
            stack.enter_context(RunLock(out))
            foreign = check_out_dir(out, args.resume, run_id, args.overwrite)
        except (TrainError, OSError) as exc:
            refusal = exc
    if world > 1 and all_reduce_sum([float(refusal is not None)], device)[0]:
        raise refusal or TrainError(f"--out {out}: refused by rank 0")
    if refusal is not None:
        raise refusal
    return foreign


# ---------------------------------------------------------------------------------------- one epoch
def get_lr(step: int, total_steps: float, base_lr: float, cosine: bool) -> float:
    """The learning rate of optimiser step ``step`` (0-based): constant, or cosine-decayed from ``base_lr`` to 0
    over ``total_steps``. From the step count, so a resumed run (even with other --epochs) continues the curve."""
    if not cosine:
        return base_lr
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(step / total_steps, 1.0)))


@dataclass
class EpochResult:
    loss: float          # mean training loss over all processes
    batch: dict | None   # the last batch, and its predicted classes, for the image grid
    pred: torch.Tensor | None
    whole_epoch: bool    # False when --max-steps cut it short


def train_epoch(run: Run, epoch: int) -> EpochResult:
    """One pass over the training data (or up to --max-steps): for each batch the forward pass under
    autocast, the loss, the learning rate of the step and the optimiser step."""
    args, progress = run.args, run.progress
    meter = AverageMeter()
    bar = tqdm(run.train_loader, desc=f"epoch {epoch}/{args.epochs}", disable=not run.main_process,
               dynamic_ncols=True, unit="batch")
    batch, logits, steps = None, None, 0
    for batch in bar:
        image, target = batch_to(batch, run.device, args.channels_last)
        with autocast(run.device, args.amp):
            logits = run.model(image)
        loss = run.criterion(logits, target)
        if not torch.isfinite(loss):
            raise diverged(run, loss, epoch)
        for group in run.optimizer.param_groups:
            group["lr"] = get_lr(progress.global_step, run.total_steps, args.lr, args.cosine)
        optimizer_step(loss, run.optimizer, run.scaler)
        progress.global_step += 1
        steps += 1
        meter.update(loss.item(), image.shape[0])
        if run.main_process:
            bar.set_postfix(loss=f"{meter.avg:.4f}")
            run.writer.add_scalar("train/loss_step", loss.item(), progress.global_step)
        if max_steps_reached(run):
            break
    total, count = all_reduce_sum([meter.sum, meter.count], run.device)
    pred = logits.detach().argmax(1) if batch is not None else None
    return EpochResult(total / max(count, 1), batch, pred, steps == len(run.train_loader))


def batch_to(batch: dict, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, target trimap classes) of a batch, on the device."""
    image = batch["image"].to(device, non_blocking=True)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    return image, batch["trimap"].to(device, non_blocking=True)


def max_steps_reached(run: Run) -> bool:
    return bool(run.args.max_steps) and run.progress.global_step >= run.args.max_steps


def diverged(run: Run, loss: torch.Tensor, epoch: int) -> TrainError:
    """The error of a NaN or infinite loss, naming the last good checkpoint to resume from."""
    last = run.progress.last_saved
    where = f"the last good checkpoint is {last} (resume with --resume {last})" if last else "no checkpoint was saved yet"
    return TrainError(f"the loss became {loss.item()} at epoch {epoch}, step {run.progress.global_step + 1}: "
                      f"lower --lr{' or drop --amp' if run.args.amp else ''}; {where}")


# ---------------------------------------------------------------------------------------- validation
@torch.no_grad()
def validate(model, loader, device, args) -> tuple[dict, tuple]:
    """Trimap metrics over the validation lists, and the person-mask IoU (predicted foreground + unknown
    against alpha ≥ 0.5); returns (summary, one batch for the image grid)."""
    model.eval()
    cm, person = ConfusionMatrix(3), ConfusionMatrix(2)
    shown = None
    for batch in loader:
        image, _ = batch_to(batch, device, args.channels_last)
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


# ------------------------------------------------------------------------------------------- logging
def open_writer(args, backbone: str):
    from torch.utils.tensorboard import SummaryWriter

    run_name = args.run_name or f"{'+'.join(args.dataname)}-{backbone}-{time.strftime('%Y%m%d-%H%M%S')}"
    return SummaryWriter(str(Path(args.logdir) / run_name))


def announce(run: Run, mode: str, described: str, distributed: bool) -> None:
    """What is trained where, from what, on how much data."""
    args = run.args
    print(f"TNet({unwrap(run.model).arch['backbone']}) on {mode}; {described}")
    print(f"train: {len(run.train_loader.dataset)} samples, {len(run.train_loader)} steps/epoch; "
          f"val: {sum(len(v.dataset) for v in run.val_loaders.values())} samples; TensorBoard: {run.writer.log_dir}")
    if not run.val_loaders:
        print("  no validation lists (<dataname>_val_*.json): best_tnet.pth follows the training loss")
    if args.sync_bn and not distributed:
        print("  --sync-bn has no effect in a single process (it needs torchrun)")


def log_epoch(run: Run, epoch: int, result: EpochResult, summary: dict, shown) -> None:
    """The epoch's scalars (loss, learning rate, validation metrics) and image grids in TensorBoard."""
    writer, n = run.writer, run.args.log_images
    writer.add_scalar("train/loss_epoch", result.loss, epoch)
    writer.add_scalar("train/lr", run.optimizer.param_groups[0]["lr"], epoch)
    for key, value in summary.items():
        writer.add_scalar(f"val/{key}", value, epoch)
    if n and result.batch is not None:
        log_images(writer, "train", result.batch["image"], result.pred.cpu(), result.batch["trimap"], epoch, n)
        if shown is not None:
            log_images(writer, "val", *shown, epoch, n)
    writer.flush()


def log_images(writer, tag: str, images, pred, truth, step: int, n: int) -> None:
    """Three grids: the input, the predicted trimap and the true trimap (0/128/255 shown as grey levels)."""
    import torchvision.utils as vutils
    n = min(n, images.shape[0])
    writer.add_image(f"{tag}/input", vutils.make_grid(tensor_to_image(images[:n].float()), nrow=n), step)
    for name, classes in (("predicted_trimap", pred), ("true_trimap", truth)):
        grey = classes[:n].reshape(n, 1, *classes.shape[-2:]).float() / 2
        writer.add_image(f"{tag}/{name}", vutils.make_grid(grey, nrow=n), step)


# -------------------------------------------------------------------------------------------- saving
def save(run: Run, completed: int, improved: bool) -> None:
    """checkpoint_tnet.pth after every epoch (with the running weight average under --swa-start);
    best_tnet.pth when validation improved. best_tnet.pth and swa_tnet.pth only ever hold models of this
    run: another run's (kept until now by --overwrite) go at the first save."""
    progress = run.progress
    progress.epoch = completed
    state = run_state(run)
    save_checkpoint(state, run.out / CHECKPOINT)
    progress.last_saved = str(run.out / CHECKPOINT)
    if improved:
        save_checkpoint(state, run.out / BEST)
    drop_foreign(run, keep=(BEST,) if improved else ())


def save_interrupted(run: Run) -> None:
    """After Ctrl-C: the steps since the last finished epoch are kept, but that epoch is not counted as
    done (resuming repeats it)."""
    save_checkpoint(run_state(run, interrupted=True), run.out / CHECKPOINT)
    drop_foreign(run)


def run_state(run: Run, interrupted: bool = False) -> dict:
    """The checkpoint of the run as far as ``run.progress`` says, with the running weight average under
    --swa-start (so a resume carries it on)."""
    progress = run.progress
    state = checkpoint_state(run.model, run.optimizer, run.scaler, progress.epoch, progress.best,
                             progress.global_step, run.args, run.run_id, interrupted=interrupted)
    if run.swa is not None:
        state["swa"] = run.swa.state_dict()
    return state


def drop_foreign(run: Run, keep: tuple = ()) -> None:
    """--overwrite: remove another run's best_tnet.pth / swa_tnet.pth (those not just written over), so the
    folder holds this run only."""
    for name in run.progress.foreign:
        if name not in keep:
            (run.out / name).unlink(missing_ok=True)
    run.progress.foreign = ()


# -------------------------------------------------------------------------------- weight averaging
def average_weights(run: Run, epoch: int, whole_epoch: bool) -> None:
    """Add the weights at the end of ``epoch`` to the running average (from --swa-start on; an epoch cut
    short by --max-steps is not added, as a resume repeats it)."""
    if run.swa is not None and whole_epoch and epoch >= run.args.swa_start:
        run.swa.update_parameters(unwrap(run.model))


def finish_swa(run: Run) -> None:
    """The averaged weights as a model: BatchNorm statistics from a pass over the training data (averaged
    weights make the running statistics of every single epoch wrong), then validation and swa_tnet.pth.
    Every process takes part (SyncBatchNorm and the validation's sums are collective); rank 0 writes."""
    n = int(run.swa.n_averaged)
    if n == 0:
        if run.main_process:
            print(f"--swa-start {run.args.swa_start}: no epoch was averaged, no {SWA} written")
        return
    bar = tqdm(run.train_loader, desc=f"{SWA}: BatchNorm statistics", disable=not run.main_process,
               dynamic_ncols=True, unit="batch")
    with autocast(run.device, run.args.amp):
        torch.optim.swa_utils.update_bn((batch_to(batch, run.device, run.args.channels_last)[0] for batch in bar), run.swa)
    summary, _ = validate_all(run.swa.module, run.val_loaders, run.device, run.args) if run.val_loaders else ({}, None)
    if not run.main_process:
        return
    progress = run.progress
    state = checkpoint_state(run.swa.module, run.optimizer, run.scaler, progress.epoch, summary.get("mIoU", progress.best),
                             progress.global_step, run.args, run.run_id)
    state["swa_epochs"] = n
    save_checkpoint(state, run.out / SWA)
    for k, v in summary.items():
        run.writer.add_scalar(f"swa/{k}", v, progress.epoch)
    val_text = "  ".join(f"{k} {v:.4f}" for k, v in summary.items())
    print(f"{SWA}: the average of {n} epochs' weights  {val_text}")


# ---------------------------------------------------------------------------------------------- data
def make_loaders(args, rank: int, world: int, pin: bool):
    """Training loader over every --dataname (each --repeat times), and one validation loader per name
    that has ``<name>_val`` lists: {name: loader}."""
    # every listed file is checked now: a bad list fails in seconds, not in the middle of an epoch
    sets = [HumanDataset(name, None, args.data_dir, check_files=True) for name in args.dataname]
    for name, ds in zip(args.dataname, sets):
        if len(ds) == 0:
            raise TrainError(f"the list {list_paths(args.data_dir, name)['img']} is empty")
    transforms = recipe_transforms(vars(args), sets)
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


def main(argv=None) -> int:
    args = parse_args(argv)
    # a user's mistake, a bad list or file, a full disk: one line naming the file (a DataLoader worker's
    # error included), never a traceback unless --debug
    return guarded("train.py", lambda: train(args), (ValueError,), args.debug)


if __name__ == "__main__":
    sys.exit(main())
