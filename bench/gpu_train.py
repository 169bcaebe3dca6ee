#!/usr/bin/env python
"""Train the compact TNet recipe on one GPU within about 10 minutes and export its fp16 weights: see bench/gpu_train.sh.

    bash bench/gpu_train.sh OUT                    # PFCN + vikram from ../shared/data, on CUDA
    bash bench/gpu_train.sh OUT --dry-run          # the same steps on the CPU with tiny settings (CI)

Steps, each logged to OUT/logs/<step>.log:

  prepare_pfcn, prepare_vikram   prepare_aifenge.py into a temp folder (validation fractions 0.1 and 0.15)
  train                          train.py --config configs/tnet_compact.toml with GPU-sized overrides
                                 (--batch-size, --workers, --epochs, --lr); TensorBoard events in OUT/runs.
                                 If the run would overrun --budget it is interrupted (train.py then saves
                                 its checkpoint) and the best checkpoint so far is exported
  export                         python -m models.export best_tnet.pth OUT/tnet_mobilenetv3_gpu.pth (fp16,
                                 at most 16 MiB)
  evaluate_pfcn, evaluate_vikram evaluate.py of the exported weights on each validation split (no matting)

The last line on stdout is one JSON record (also OUT/gpu_train.json; logs, events and JSON in
OUT/gpu_train.tar.gz). The temp folder (converted data, full checkpoints) is deleted at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit  # noqa: E402
from gpu_runner import (CheckFailed, Runner, checkpoint, default_data, prepare_cmd, prepared_counts,  # noqa: E402
                        remove, require_pairs, scalars, settle_args, step_rate, synthetic_pairs)

PY = sys.executable
COMPACT = REPO / "configs" / "tnet_compact.toml"
MAX_MIB = 16.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="gpu_train.sh", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out", type=Path, help="output folder for the weights, logs, TensorBoard events and the JSON record")
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU with tiny settings and synthetic data")
    p.add_argument("--pfcn", type=Path, default=None, help="PFCN pairs folder (default ../shared/data/pfcn_portrait_seg)")
    p.add_argument("--vikram", type=Path, default=None, help="vikram pairs folder (default ../shared/data/vikram_human_seg)")
    p.add_argument("--epochs", type=int, default=100, help="training epochs (the cosine schedule spans them)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (the recipe's 8 is sized for a CPU)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: CPU cores - 1, at most 16)")
    p.add_argument("--budget", type=float, default=None, help="seconds for everything; training is interrupted in time "
                   "to export and evaluate (default: 600, or 1800 for --dry-run on a possibly busy CPU)")
    p.add_argument("--name", default="tnet_mobilenetv3_gpu.pth", help="file name of the exported weights in OUT")
    args = p.parse_args(argv)
    settle_args(p, args, ("pfcn", "vikram"), 600.0)
    if args.epochs < 1 or args.batch_size < 1 or args.workers < 0:
        p.error("--epochs and --batch-size must be positive, --workers not negative")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_train.sh: error: no CUDA device is visible; use --dry-run to check the script on the CPU", file=sys.stderr)
        return 1
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dry = args.dry_run
    cores = os.cpu_count() or 1
    workers = args.workers or (0 if dry else max(1, min(16, cores - 1)))
    r = Runner(out, args.budget, {"OMP_NUM_THREADS": "1"} if dry else {})
    tmp = Path(tempfile.mkdtemp(prefix="gpu_train_"))
    sources, weights = {}, out / args.name
    try:
        for name, given, seed in (("pfcn", args.pfcn, 0), ("vikram", args.vikram, 100)):
            if given is not None:
                sources[name] = require_pairs(given, f"--{name}")
            elif dry:
                sources[name] = synthetic_pairs(tmp / f"synthetic_{name}", 16, seed)
            else:
                sources[name] = require_pairs(default_data("pfcn_portrait_seg" if name == "pfcn" else "vikram_human_seg"),
                                              f"--{name}")
        lists = tmp / "lists"
        ok = True
        for name, fraction in (("pfcn", 0.1), ("vikram", 0.15)):
            ok &= bool(r.run(f"prepare_{name}", prepare_cmd(sources[name], tmp / "data", lists, name, fraction, min(cores, 16)),
                             300, prepared_counts(lists, name)).get("ok"))
        ckpts = tmp / "checkpoints"
        if ok:
            run_train(r, args, dry, workers, lists, ckpts)
        else:
            r.skip("train", "the data preparation failed")
        best = ckpts / "best_tnet.pth"
        if best.is_file():
            r.run("export", [PY, "-m", "models.export", best, weights], 120, lambda _: check_export(weights))
        else:
            r.skip("export", "no best_tnet.pth")
        for name in ("pfcn", "vikram"):
            if weights.is_file():
                eval_dir = out / f"eval_{name}"
                r.run(f"evaluate_{name}", [PY, REPO / "evaluate.py", "--checkpoint", weights, "--dataname", f"{name}_val",
                                           "--data-dir", lists, "--device", "cpu" if dry else "cuda", "--no-matting",
                                           "--quiet", "--out-dir", eval_dir, *(["--threads", "1"] if dry else [])],
                      180, lambda _, d=eval_dir: eval_figures(d))
            else:
                r.skip(f"evaluate_{name}", "no exported weights")
    finally:
        remove(tmp)
    figures = {"ok": r.all_ok(), "seconds": round(args.budget - r.left(), 1), "weights": str(weights) if weights.is_file() else None,
               "steps": r.results}
    params = {"dry_run": dry, "config": str(COMPACT.relative_to(REPO)), "epochs": args.epochs, "batch_size": args.batch_size,
              "lr": args.lr, "workers": workers, "budget_s": args.budget,
              "data": {k: str(v) for k, v in sources.items()}}
    line = io.StringIO()
    with contextlib.redirect_stdout(line):
        emit("gpu_train", params, figures, device="cpu" if dry else "cuda")
    (out / "gpu_train.json").write_text(line.getvalue())
    r.pack("gpu_train")
    sys.stdout.write(line.getvalue())
    return 0 if figures["ok"] else 1


def run_train(r: Runner, args, dry: bool, workers: int, lists: Path, ckpts: Path) -> None:
    cmd = [PY, REPO / "train.py", "--config", COMPACT, "--data-dir", lists, "--out", ckpts, "--logdir", r.out / "runs",
           "--run-name", "compact-gpu", "--device", "cpu" if dry else "cuda", "--workers", workers,
           "--threads", 1 if dry else 0, "--epochs", 1 if dry else args.epochs, "--batch-size", 4 if dry else args.batch_size]
    if dry:
        cmd += ["--patch", 64]
    if args.lr is not None:
        cmd += ["--lr", args.lr]
    reserve = 20 if dry else 90  # export and two evaluations after the training
    started = time.monotonic()

    def check(stdout: str) -> dict:
        ckpt = checkpoint(ckpts / "checkpoint_tnet.pth")
        events = scalars(r.out / "runs" / "compact-gpu", "train/loss_step")
        miou = scalars(r.out / "runs" / "compact-gpu", "val/mIoU")
        rate = step_rate(events)
        return {"epochs_done": ckpt["epoch"], "interrupted": bool(ckpt.get("interrupted")), "global_step": ckpt["global_step"],
                "best_val_mIoU": ckpt["best_metric"], "last_val_mIoU": miou[-1].value,
                "steps_per_s": rate, "images_per_s": rate * (4 if dry else args.batch_size),
                "train_seconds": round(time.monotonic() - started, 1)}

    r.run("train", cmd, r.left(), check, interrupt_after=max(10.0, r.left() - reserve))


def check_export(weights: Path) -> dict:
    mib = weights.stat().st_size / 2**20
    if mib > MAX_MIB:
        raise CheckFailed(f"{weights.name} is {mib:.1f} MiB, over {MAX_MIB:g} MiB")
    meta = checkpoint(weights)["meta"]
    return {"mib": round(mib, 2), "dtype": meta["dtype"], "epoch": meta["epoch"], "best_metric": meta["best_metric"]}


def eval_figures(folder: Path) -> dict:
    s = json.loads((folder / "summary.json").read_text())
    return {"images": s["images"], "trimap_mIoU": s["trimap"]["pooled"]["mIoU"],
            "person_IoU": s["person_iou"]["tnet_fg_unknown"]}


if __name__ == "__main__":
    sys.exit(main())
