"""A TNet training run, in named phases, importable: :func:`train` → :func:`prepare_run` (device, data,
:func:`build_start` for the model and its start state, :func:`claim_out_dir`, optimiser) →
:func:`run_epochs`, each epoch :func:`train_epoch` (:func:`get_lr` per step), :func:`average_weights`,
:func:`validate_all`, :func:`log_epoch` and :func:`save`; at the end :func:`finish_swa`.

``args`` is a :class:`tnet.config.TrainConfig` or the parsed arguments of ``train.py`` (the same fields). What
every script shares (device, distributed set-up, autocast, the optimiser step, checkpoints) is in :mod:`core`.
"""
from __future__ import annotations

import math
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import ConcatDataset, DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from core.checkpoints import (BEST, CHECKPOINT, SWA, RunLock, check_out_dir, checkpoint_state, load_checkpoint,
                              save_checkpoint, settings_of)
from core.cli import EXIT_INTERRUPTED, check_writable_dir
from core.errors import TrainError
from core.metrics import AverageMeter, ConfusionMatrix
from core.runtime import (all_reduce_sum, autocast, grad_scaler, is_distributed, optimizer_step, parallelize,
                          pick_device, seed_everything, seed_worker, set_threads, setup_distributed,
                          teardown_distributed, unwrap, use_sync_bn)
from datasets import HumanDataset, list_paths, recipe_transforms, tensor_to_image, val_transforms
from models import TNet, load_backbone_weights, load_tnet, load_tnet_state
from models.weights import WeightsError, tnet_for

from .losses import ClassificationLoss


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

    args: object          # a TrainConfig, or train.py's parsed arguments (the same fields)
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
    transforms = recipe_transforms(recipe_of(args), sets)
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


def recipe_of(args) -> dict:
    """The settings of ``args`` (a :class:`~tnet.config.TrainConfig` or parsed arguments) as a dict."""
    return settings_of(args)
