#!/usr/bin/env python
"""Ablation of the compact recipe: train each variant for a few epochs and score it the same way.

Each variant is the recipe (``--config``) with some flags overridden; each is trained from scratch with
train.py for ``--epochs`` (its own cosine schedule) and its last checkpoint is scored with evaluate.py
(pipeline alpha ≥ 0.5 person IoU with closed-form matting, and TNet's trimap IoUs) on every validation
list of the recipe. Short runs rank the levers; they do not predict the full run's figures.

    python bench/ablation.py --data-dir ~/.cache/tnet-data/lists --work /tmp/ablation --epochs 6

Prints one JSON line (and a Markdown table on stderr). Runs can be resumed: a variant whose
``summary.json`` files exist is not trained again.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, emit, note

EXTRA_AUGMENTATIONS = ["--portrait-crop-prob", "0", "--rotate-prob", "0", "--bg-prob", "0", "--color-prob", "0",
                       "--blur-prob", "0", "--noise-prob", "0", "--jpeg-prob", "0"]
VARIANTS = {
    "recipe": [],
    "no-extra-augmentation": EXTRA_AUGMENTATIONS,
    "no-background-swap": ["--bg-prob", "0"],
    "no-dice": ["--dice-weight", "0"],
    "psp-decoder": ["--decoder", "psp"],          # the earlier compact model: dilated MobileNetV3 + PSP head
    "pfcn-only": ["--dataname", "pfcn", "--repeat", "1"],
}


def run(cmd: list[str], log: Path) -> None:
    note("$ " + " ".join(cmd))
    with open(log, "w") as f:
        r = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode:
        sys.exit(f"ablation: {cmd[1]} failed (exit {r.returncode}); see {log}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configs" / "tnet_compact.toml"), help="the recipe (default: %(default)s)")
    p.add_argument("--data-dir", required=True, help="folder of the JSON lists the recipe names")
    p.add_argument("--work", default="/tmp/ablation", help="folder for the variants' checkpoints and scores")
    p.add_argument("--epochs", type=int, default=6, help="epochs per variant (default: %(default)s)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="which variants (default: all)")
    p.add_argument("--val", nargs="+", default=["pfcn_val", "vikram_val"], help="validation lists to score on")
    p.add_argument("--limit", type=int, default=0, help="score only the first N samples of each list (0: all)")
    args = p.parse_args(argv)
    work = Path(args.work)
    rows = {}
    for name in args.variants:
        out = work / name
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        if not all((out / f"eval_{v}" / "summary.json").is_file() for v in args.val):
            run([sys.executable, "train.py", "--config", args.config, "--data-dir", args.data_dir, "--epochs",
                 str(args.epochs), "--out", str(out), "--logdir", str(work / "runs"), "--run-name", name,
                 "--log-images", "0", *VARIANTS[name]], out / "train.log")
            for v in args.val:
                run([sys.executable, "evaluate.py", "--checkpoint", str(out / "checkpoint_tnet.pth"), "--dataname", v,
                     "--data-dir", args.data_dir, "--out-dir", str(out / f"eval_{v}"), "--threads", "1", "--quiet",
                     "--limit", str(args.limit)], out / f"eval_{v}.log")
        scores = {}
        for v in args.val:
            s = json.loads((out / f"eval_{v}" / "summary.json").read_text())
            scores[v] = {"person_iou": s["person_iou"]["alpha_ge_0.5"],
                         "unknown_iou": s["trimap"]["pooled"]["IoU_unknown"], "trimap_miou": s["trimap"]["pooled"]["mIoU"]}
        rows[name] = {"overrides": " ".join(VARIANTS[name]), "minutes": round((time.time() - t0) / 60, 1), **scores}
        note(f"{name}: {scores}")
    header = "| variant | " + " | ".join(f"{v} person IoU | {v} unknown IoU" for v in args.val) + " |"
    note(header)
    note("|" + "---|" * (1 + 2 * len(args.val)))
    for name, r in rows.items():
        note(f"| {name} | " + " | ".join(f"{r[v]['person_iou']:.3f} | {r[v]['unknown_iou']:.3f}" for v in args.val) + " |")
    emit("ablation", {"config": args.config, "epochs": args.epochs, "val": args.val, "limit": args.limit}, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
