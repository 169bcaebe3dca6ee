#!/usr/bin/env python
"""Training throughput of TNet in images/s, for every combination of mixed precision and channels_last.

    python bench/bench_train.py --device cuda --backbone resnet50 --batch-size 8 --patch 400 --steps 20
    python bench/bench_train.py --device cpu --backbone mobilenetv3 --patch 128 --batch-size 2 --steps 3
    python bench/bench_train.py --device cuda --backbone mobilenetv3 --decoder unet --batch-size 8 32   # the compact model

One step is exactly train.py's: forward under core.runtime.autocast (float16 on CUDA, bfloat16 on the CPU),
the cross-entropy loss, Adam, and a GradScaler with --amp on CUDA. The batch is random tensors already
on the device, so the figure is the model's step rate without data loading (see bench_loader.py for
that). Each combination gets a fresh model; --warmup steps (cuDNN autotuning, allocator growth) are run
and excluded, then --steps are timed with the device synchronised. Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time

from common import emit, note

CHOICES = {"both": (False, True), "on": (True,), "off": (False,)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--backbone", default="resnet50", choices=("resnet50", "resnet101", "mobilenetv3"))
    p.add_argument("--decoder", default="psp", choices=("psp", "unet"),
                   help="psp: the PSPNet head; unet: the compact MobileNetV3 U-Net (with --backbone mobilenetv3)")
    p.add_argument("--dice-weight", type=float, default=0.0, help="soft Dice term of the loss (the compact recipe uses 0.5)")
    p.add_argument("--patch", type=int, default=400, help="square input side")
    p.add_argument("--batch-size", type=int, nargs="+", default=[8], help="batch size(s), each measured in turn")
    p.add_argument("--steps", type=int, default=10, help="timed optimiser steps per combination")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones")
    p.add_argument("--amp", choices=CHOICES, default="both", help="mixed precision on, off or both")
    p.add_argument("--channels-last", choices=CHOICES, default="both", help="channels_last on, off or both")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: its default)")
    return p.parse_args(argv)


def measure(args, device, amp: bool, channels_last: bool, batch_size: int) -> dict:
    import torch

    from core.runtime import autocast, grad_scaler, optimizer_step
    from models import TNet
    from tnet.config import DEFAULTS   # the training recipe's optimiser settings
    from tnet.losses import ClassificationLoss

    torch.manual_seed(0)
    model = TNet(backbone=args.backbone, decoder=args.decoder).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=DEFAULTS.lr, betas=(0.9, 0.999), weight_decay=DEFAULTS.weight_decay)
    scaler = grad_scaler(device, amp)
    criterion = ClassificationLoss(dice_weight=args.dice_weight).to(device)
    image = torch.randn(batch_size, 3, args.patch, args.patch, device=device)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 3, (batch_size, 1, args.patch, args.patch), device=device)

    def step():
        with autocast(device, amp):
            logits = model(image)
        loss = criterion(logits, target)
        optimizer_step(loss, optimizer, scaler)
        return loss

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - t
    r = {"batch_size": batch_size, "amp": amp, "channels_last": channels_last, "steps": args.steps, "seconds": seconds,
         "ms_per_step": 1000 * seconds / args.steps, "images_per_s": args.steps * batch_size / seconds,
         "loss_finite": bool(torch.isfinite(loss))}
    if device.type == "cuda":
        r["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    return r


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from core.runtime import DeviceUnavailable, pick_device, set_threads

    set_threads(args.threads)
    try:
        name = pick_device(args.device)
    except (ValueError, DeviceUnavailable) as exc:
        print(f"bench_train.py: error: {exc}", file=sys.stderr)
        return 1
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as train.py
    if args.decoder == "unet" and args.backbone != "mobilenetv3":
        print("bench_train.py: error: --decoder unet needs --backbone mobilenetv3", file=sys.stderr)
        return 1
    runs = []
    for bs, amp, cl in itertools.product(args.batch_size, CHOICES[args.amp], CHOICES[args.channels_last]):
        r = measure(args, device, amp, cl, bs)
        note(f"batch {bs} amp {'on ' if amp else 'off'} channels_last {'on ' if cl else 'off'}: "
             f"{r['images_per_s']:.2f} images/s ({r['ms_per_step']:.0f} ms/step)")
        runs.append(r)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # each combination starts from the same free memory
    emit("train", {"backbone": args.backbone, "decoder": args.decoder, "dice_weight": args.dice_weight, "patch": args.patch,
                   "batch_size": args.batch_size, "steps": args.steps,
                   "warmup": args.warmup, "amp_dtype": "float16" if device.type == "cuda" else "bfloat16"},
         {"runs": runs}, device=name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
