#!/usr/bin/env python
"""Data-loader throughput: images/s of HumanDataset + DataLoader with the training transforms.

    python bench/bench_loader.py --dataname pfcn --data-dir data --workers 0 2 4
    python bench/bench_loader.py                          # a synthetic 600×800 set made in a temp folder
    python bench/bench_loader.py --config configs/tnet_compact.toml --patch 400 --workers 1 2   # full augmentation

For each worker count the loader is built afresh; the first batch (worker start-up, first file reads)
is timed apart and excluded from the images/s figure. Files are read from disk each time, as in training
(the OS page cache will hold a small set after the first pass). The CPU seconds of the timed part (this
process and its workers) give the rate per dedicated core, which is what to compare on a busy machine. Without --config the augmentations are
train.py's defaults (rescale, patch, flips); --config takes them from a train.py recipe, e.g. the compact
model's full set (portrait crop, rotation, background swap, colour, blur, noise, JPEG), and --patch
overrides the recipe's patch. Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import emit, note, synthetic_portrait


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataname", default=None, help="list name in --data-dir (default: a synthetic set in a temp folder)")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="folder of the JSON lists")
    p.add_argument("--synthetic", type=int, default=32, metavar="N", help="size of the synthetic set (without --dataname)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to measure")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--patch", type=int, default=400, help="training patch side")
    p.add_argument("--batches", type=int, default=10, help="batches timed after the first one")
    p.add_argument("--config", type=Path, default=None, metavar="TOML",
                   help="take the augmentations from this train.py recipe (e.g. configs/tnet_compact.toml)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads of the main process (0: its default)")
    return p.parse_args(argv)


def make_synthetic(root: Path, n: int) -> Path:
    """img/alpha/trimap files and the three lists, as prepare_aifenge.py writes them (name 'synthetic')."""
    import cv2

    from core.trimaps import make_trimap

    for kind in ("img", "alpha", "trimap"):
        (root / kind).mkdir(parents=True)
    lists = {"img": [], "alpha": [], "trimap": []}
    for i in range(n):
        photo, alpha = synthetic_portrait(i)
        name = f"{i:05d}"
        cv2.imwrite(str(root / "img" / f"{name}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "alpha" / f"{name}.png"), alpha)
        cv2.imwrite(str(root / "trimap" / f"{name}.png"), make_trimap(alpha))
        for kind, ext in (("img", "jpg"), ("alpha", "png"), ("trimap", "png")):
            lists[kind].append(f"{kind}/{name}.{ext}")
    for kind, paths in lists.items():
        (root / f"synthetic_{kind}.json").write_text(json.dumps(paths))
    return root


def measure(dataset, workers: int, batch_size: int, batches: int) -> dict:
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0)  # as train.py: workers live across passes
    t0 = time.perf_counter()
    seen, timed_batches, t1, cpu1 = 0, 0, None, None
    while timed_batches < batches:  # several passes over a small set when needed
        for batch in loader:
            if t1 is None:
                t1 = time.perf_counter()  # the first batch is start-up
                cpu1 = cpu_seconds()
                continue
            seen += batch["image"].shape[0]
            timed_batches += 1
            if timed_batches == batches:
                break
    t2 = time.perf_counter()
    cpu = cpu_seconds() - cpu1
    del loader
    return {"workers": workers, "first_batch_s": t1 - t0, "images": seen, "seconds": t2 - t1,
            "images_per_s": seen / (t2 - t1), "cpu_seconds": cpu, "images_per_cpu_s": seen / cpu if cpu > 0 else None}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its live children (the loader's workers): what the
    images cost on a dedicated core, which a busy machine's wall time does not show."""
    import psutil

    total = 0.0
    me = psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from datasets import HumanDataset, train_transforms

    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        if args.dataname:
            lists_dir, name, source = args.data_dir, args.dataname, f"{args.data_dir}/{args.dataname}"
        else:
            lists_dir, name, source = make_synthetic(Path(tmp), args.synthetic), "synthetic", f"synthetic 600x800 x{args.synthetic}"
        try:
            dataset = HumanDataset(name, None, lists_dir)
            if args.config:
                import tomllib

                from datasets import recipe_transforms

                recipe = tomllib.loads(args.config.read_text())
                dataset.transforms = recipe_transforms(recipe, [dataset], patch=args.patch)
            else:
                dataset.transforms = train_transforms(args.patch)
        except (FileNotFoundError, ValueError) as exc:
            print(f"bench_loader.py: error: {exc}", file=sys.stderr)
            return 1
        if len(dataset) < args.batch_size:
            print(f"bench_loader.py: error: {source} has {len(dataset)} samples, fewer than a batch", file=sys.stderr)
            return 1
        results = []
        for w in args.workers:
            r = measure(dataset, w, args.batch_size, args.batches)
            note(f"{w} worker(s): {r['images_per_s']:.1f} images/s (first batch {r['first_batch_s']:.2f} s); "
                 f"{r['images_per_cpu_s'] or 0:.1f} images per CPU second")
            results.append(r)
    emit("loader", {"data": source, "samples": len(dataset), "batch_size": args.batch_size, "patch": args.patch,
                    "batches": args.batches, "augmentations": str(args.config) if args.config else "train.py defaults",
                    "transforms": [type(t).__name__ for t in dataset.transforms.transforms]}, {"runs": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
