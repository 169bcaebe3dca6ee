#!/usr/bin/env python
"""Every GPU path of the research half in one command (about 8 minutes on one GPU): see bench/gpu_check.sh.

    bash bench/gpu_check.sh OUT                    # on a machine with CUDA
    bash bench/gpu_check.sh OUT --dry-run          # the same steps on the CPU with tiny settings (CI)

Steps, each a subprocess logged to OUT/logs/<step>.log (TensorBoard events in OUT/runs):

  prepare            prepare_aifenge.py on the PFCN pairs (--data), validation fraction 0.1
  train_fp32         train.py, ResNet-50 TNet, --max-steps (200) in fp32
  train_amp_cl       the same with --amp (float16 + GradScaler) and --channels-last
  resume             the compact recipe for one whole epoch, then --resume to epoch 2: the run must
                     continue at the next step (TensorBoard steps 1..2E exactly once, Adam's step 2E)
  ddp                torchrun --nproc_per_node <GPUs> train.py (NCCL; SyncBatchNorm, the default there)
  data_parallel      train.py on all GPUs with DataParallel (only when more than one GPU is visible)
  evaluate           evaluate.py --device cuda against --device cpu with the shipped weights: same scores
  infer              infer.py --device cuda against --device cpu: the same trimap and alpha
  bench_train_*      bench_train.py images/s, ResNet-50 and the compact model, batch 8 and 32, AMP on/off
                     × channels_last on/off
  loader             bench_loader.py images/s per worker at patch 400 with the compact recipe's augmentations

A failed step does not stop the others. The last line on stdout is one JSON record (also written to
OUT/gpu_check.json, and with the logs and events to OUT/gpu_check.tar.gz); the exit code is 0 when
every step that ran passed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit  # noqa: E402
from gpu_runner import (CheckFailed, Runner, adam_step, checkpoint, default_data, last_json_line,  # noqa: E402
                        prepare_cmd, prepared_counts, require_pairs, scalars, settle_args, step_rate,
                        synthetic_pairs)

PY = sys.executable
COMPACT = REPO / "configs" / "tnet_compact.toml"
SHIPPED = REPO / "weights" / "tnet_unet_mobilenetv3.pth"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="gpu_check.sh", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out", type=Path, help="output folder for logs, TensorBoard events, checkpoints and the JSON record")
    p.add_argument("--dry-run", action="store_true", help="run every step on the CPU with tiny settings (checks the "
                   "script's own plumbing; synthetic data unless --data is given)")
    p.add_argument("--data", type=Path, default=None,
                   help="PFCN-style pairs folder (images/ + masks/); default ../shared/data/pfcn_portrait_seg")
    p.add_argument("--gpus", type=int, default=0, help="GPUs to use for DDP (0: all visible)")
    p.add_argument("--steps", type=int, default=200, help="optimiser steps of the fp32 and the AMP training runs")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: min(16, CPU cores))")
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole check; steps that would start "
                   "later are reported as skipped (default: 480, or 1800 for --dry-run on a possibly busy CPU)")
    p.add_argument("--skip", nargs="*", default=[], metavar="STEP", help="steps to leave out (e.g. bench_train_resnet50)")
    args = p.parse_args(argv)
    settle_args(p, args, ("data",), 480.0, " (the check reads what its steps write there)")
    return args


class Settings:
    """What each step runs with: real figures on a GPU, tiny ones for --dry-run on the CPU."""

    def __init__(self, args, gpus: int):
        cores = os.cpu_count() or 1
        self.dry = args.dry_run
        self.device = "cpu" if self.dry else "cuda"
        self.gpus = gpus
        self.workers = args.workers or (0 if self.dry else min(16, cores))
        self.threads = ["--threads", "1"] if self.dry else []
        self.steps = 2 if self.dry else args.steps
        self.patch = 64 if self.dry else 400
        self.batch = 2 if self.dry else 8
        self.big_backbone = "mobilenetv3" if self.dry else "resnet50"  # the dry run checks the plumbing, not ResNet
        self.compact_batch = 4 if self.dry else 32
        self.ddp_procs = 2 if self.dry else gpus
        self.ddp_steps = 2 if self.dry else 60
        self.eval_limit = 3 if self.dry else 60
        self.bench = (["--patch", "64", "--batch-size", "1", "--steps", "1", "--warmup", "0", "--amp", "both",
                       "--channels-last", "off", "--threads", "1"] if self.dry else
                      ["--patch", "400", "--batch-size", "8", "32", "--steps", "20", "--warmup", "5", "--amp", "both",
                       "--channels-last", "both"])
        self.loader = (["--workers", "0", "1", "--batches", "2", "--batch-size", "2", "--patch", "64", "--threads", "1"]
                       if self.dry else
                       ["--workers", "1", "4", str(min(16, cores)), "--batches", "12", "--batch-size", "16", "--patch", "400"])


def train_cmd(s: Settings, data: Path, out: Path, run: str, *extra) -> list:
    return [PY, REPO / "train.py", "--data-dir", data, "--dataname", "pfcn", "--workers", s.workers, "--device", s.device,
            "--out", out, "--logdir", out.parent.parent / "runs", "--run-name", run, "--log-images", "2", *s.threads, *extra]


def compact_cmd(s: Settings, data: Path, out: Path, run: str, *extra) -> list:
    """The compact recipe on PFCN alone (the recipe names two sets)."""
    return train_cmd(s, data, out, run, "--config", COMPACT, "--dataname", "pfcn", "--repeat", "1",
                     "--batch-size", s.compact_batch, "--patch", s.patch if s.dry else 256, *extra)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    gpus = torch.cuda.device_count()
    if not args.dry_run and gpus == 0:
        print("gpu_check.sh: error: no CUDA device is visible (torch.cuda.device_count() is 0); "
              "use --dry-run to check the script on the CPU", file=sys.stderr)
        return 1
    if args.gpus:
        gpus = min(gpus, args.gpus)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    s = Settings(args, gpus)
    env = {"OMP_NUM_THREADS": "1"} if s.dry else {}
    r = Runner(out, args.budget, env)
    if args.data is not None:
        src = require_pairs(args.data, "--data")
    elif s.dry:
        src = synthetic_pairs(out / "synthetic_pairs", 20)
    else:
        src = require_pairs(default_data("pfcn_portrait_seg"), "--data")
    data, work = out / "data", out / "train"

    def wanted(name: str) -> bool:
        if name in args.skip:
            r.skip(name, "--skip")
            return False
        return True

    # 1. data
    prep = r.run("prepare", prepare_cmd(src, data, data, "pfcn", 0.1, min(os.cpu_count() or 1, 16)), 300,
                 prepared_counts(data, "pfcn"))
    if not prep.get("ok"):
        for name in ("train_fp32", "train_amp_cl", "resume", "ddp", "data_parallel", "evaluate", "infer", "loader"):
            r.skip(name, "no data: the prepare step failed")
    else:
        # 2–3. fp32, then AMP + channels_last
        for name, extra in (("train_fp32", []), ("train_amp_cl", ["--amp", "--channels-last"])):
            if wanted(name):
                ckpt_dir = work / name
                r.run(name, train_cmd(s, data, ckpt_dir, name, "--backbone", s.big_backbone, "--pretrained", "none",
                                      "--batch-size", s.batch, "--patch", s.patch, "--max-steps", s.steps, "--epochs", 100,
                                      *extra),
                      600, lambda out_, d=ckpt_dir, n=name, amp=bool(extra): check_short_run(out_, d, n, s, amp))
        # 4. a whole epoch, then a resume that must continue at the next step
        if wanted("resume"):
            run_resume(r, s, data, work)
        # 5. DDP (NCCL on GPUs, gloo in the dry run)
        if wanted("ddp"):
            ckpt_dir = work / "ddp"
            per_gpu = 2 if s.dry else 8
            cmd = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", s.ddp_procs,
                   *compact_cmd(s, data, ckpt_dir, "ddp", "--batch-size", per_gpu * s.ddp_procs, "--max-steps", s.ddp_steps,
                                "--workers", 0 if s.dry else max(1, s.workers // s.ddp_procs))[1:]]
            r.run("ddp", cmd, 300, lambda out_: check_ddp(out_, ckpt_dir, s))
        # 6. DataParallel
        if s.dry or gpus < 2:
            r.skip("data_parallel", "needs more than one visible GPU" if not s.dry else "no GPU in a dry run")
        elif wanted("data_parallel"):
            ckpt_dir = work / "dp"
            r.run("data_parallel", compact_cmd(s, data, ckpt_dir, "dp", "--max-steps", 30),
                  300, lambda out_: check_dp(out_, ckpt_dir, gpus))
        # 7–8. evaluation and inference on CUDA against the CPU
        if wanted("evaluate"):
            run_evaluate(r, s, data, out)
        if wanted("infer"):
            run_infer(r, s, data, out)
    # 9. training throughput without data loading
    for name, model in (("bench_train_resnet50", ["--backbone", "resnet50"]),
                        ("bench_train_compact", ["--backbone", "mobilenetv3", "--decoder", "unet", "--dice-weight", "0.5"])):
        if wanted(name):
            if s.dry:
                model = ["--backbone", "mobilenetv3"] + model[2:] if name.endswith("resnet50") else model
            r.run(name, [PY, REPO / "bench" / "bench_train.py", "--device", s.device, *model, *s.bench], 300, bench_figures)
    # 10. the loader at training settings
    if prep.get("ok") and wanted("loader"):
        r.run("loader", [PY, REPO / "bench" / "bench_loader.py", "--dataname", "pfcn", "--data-dir", data,
                         "--config", COMPACT, *s.loader], 240, loader_figures)

    figures = {"ok": r.all_ok(), "seconds": round(args.budget - r.left(), 1), "gpus": gpus, "steps": r.results,
               "workers_per_gpu": workers_needed(r.results)}
    params = {"dry_run": s.dry, "data": str(src), "train_steps": s.steps, "workers": s.workers, "budget_s": args.budget}
    line = io.StringIO()
    with contextlib.redirect_stdout(line):
        emit("gpu_check", params, figures, device=s.device)
    (out / "gpu_check.json").write_text(line.getvalue())
    r.pack("gpu_check")
    sys.stdout.write(line.getvalue())
    return 0 if figures["ok"] else 1


# ----------------------------------------------------------------------------------------------- checks
def check_short_run(stdout: str, ckpt_dir: Path, run: str, s: Settings, amp: bool) -> dict:
    ckpt = checkpoint(ckpt_dir / "checkpoint_tnet.pth")
    if ckpt["global_step"] != s.steps:
        raise CheckFailed(f"checkpoint at step {ckpt['global_step']}, expected {s.steps}")
    if amp and s.device == "cuda" and not (ckpt.get("scaler") or {}).get("scale"):
        raise CheckFailed("--amp on CUDA saved no GradScaler state")
    if f"on {s.device}" not in stdout:
        raise CheckFailed(f"train.py did not report running on {s.device}")
    events = scalars(ckpt_dir.parent.parent / "runs" / run, "train/loss_step")
    losses = [e.value for e in events]
    if [e.step for e in events] != list(range(1, s.steps + 1)) or not all(math.isfinite(v) for v in losses):
        raise CheckFailed(f"loss events: steps {events[0].step}..{events[-1].step} ({len(events)}), finite: "
                          f"{all(math.isfinite(v) for v in losses)}")
    rate = step_rate(events)
    return {"global_step": ckpt["global_step"], "first_loss": losses[0], "last_loss": losses[-1],
            "steps_per_s": rate, "images_per_s": rate * s.batch, "loss_scale": (ckpt.get("scaler") or {}).get("scale")}


def run_resume(r: Runner, s: Settings, data: Path, work: Path) -> None:
    ckpt_dir = work / "resume"
    first = r.run("resume_epoch1", compact_cmd(s, data, ckpt_dir, "resume", "--epochs", 1), 400,
                  lambda out_: {"steps_per_epoch": checkpoint(ckpt_dir / "checkpoint_tnet.pth")["global_step"]})
    if not first.get("ok"):
        r.skip("resume", "the first epoch failed")
        return
    per_epoch = first["steps_per_epoch"]

    def check(stdout: str) -> dict:
        ckpt = checkpoint(ckpt_dir / "checkpoint_tnet.pth")
        if "resumed from" not in stdout:
            raise CheckFailed("train.py did not report resuming")
        if (ckpt["epoch"], ckpt["global_step"], adam_step(ckpt)) != (2, 2 * per_epoch, 2 * per_epoch):
            raise CheckFailed(f"after the resume: epoch {ckpt['epoch']}, step {ckpt['global_step']}, Adam step "
                              f"{adam_step(ckpt)}; expected 2, {2 * per_epoch}, {2 * per_epoch}")
        steps = [e.step for e in scalars(work.parent / "runs" / "resume", "train/loss_step")]
        if sorted(steps) != list(range(1, 2 * per_epoch + 1)):
            raise CheckFailed(f"TensorBoard steps are not 1..{2 * per_epoch} once each (got {len(steps)} events, "
                              f"{len(set(steps))} distinct)")
        return {"steps_per_epoch": per_epoch, "global_step": ckpt["global_step"], "scaler_resumed": bool(ckpt.get("scaler"))}

    r.run("resume", compact_cmd(s, data, ckpt_dir, "resume", "--epochs", 2, "--resume", ckpt_dir / "checkpoint_tnet.pth"),
          400, check)


def check_ddp(stdout: str, ckpt_dir: Path, s: Settings) -> dict:
    procs = s.ddp_procs
    expected = f"DistributedDataParallel over {procs} process{'es' if procs > 1 else ''}"
    if expected not in stdout:
        raise CheckFailed(f"train.py did not report '{expected}'")
    sync = "with SyncBatchNorm" in stdout
    if s.device == "cuda" and not sync:
        raise CheckFailed("SyncBatchNorm is not on under DDP on CUDA")
    ckpt = checkpoint(ckpt_dir / "checkpoint_tnet.pth")
    if ckpt["global_step"] != s.ddp_steps or any(k.startswith("module.") for k in ckpt["model"]):
        raise CheckFailed(f"checkpoint at step {ckpt['global_step']} (expected {s.ddp_steps}), "
                          f"'module.' keys: {any(k.startswith('module.') for k in ckpt['model'])}")
    from models import load_tnet

    load_tnet(ckpt_dir / "checkpoint_tnet.pth")  # a DDP + SyncBatchNorm checkpoint loads into a plain TNet
    return {"processes": procs, "sync_bn": sync, "sync_bn_synchronises": sync and procs > 1,
            "backend": "nccl" if s.device == "cuda" else "gloo"}


def check_dp(stdout: str, ckpt_dir: Path, gpus: int) -> dict:
    if f"DataParallel over {gpus} GPUs" not in stdout:
        raise CheckFailed(f"train.py did not report DataParallel over {gpus} GPUs")
    ckpt = checkpoint(ckpt_dir / "checkpoint_tnet.pth")
    if any(k.startswith("module.") for k in ckpt["model"]):
        raise CheckFailed("the DataParallel checkpoint has 'module.' keys")
    return {"gpus": gpus, "global_step": ckpt["global_step"]}


def run_evaluate(r: Runner, s: Settings, data: Path, out: Path) -> None:
    def cmd(device: str) -> list:
        return [PY, REPO / "evaluate.py", "--checkpoint", SHIPPED, "--dataname", "pfcn_val", "--data-dir", data,
                "--device", device, "--limit", s.eval_limit, "--no-matting", "--quiet", "--out-dir", out / f"eval_{device}",
                *s.threads]

    def summary(device: str) -> dict:
        return json.loads((out / f"eval_{device}" / "summary.json").read_text())

    res = r.run("evaluate", cmd(s.device), 300, lambda _: {"mIoU": summary(s.device)["trimap"]["pooled"]["mIoU"]})
    if not res.get("ok") or s.dry:
        return  # in the dry run both devices are the CPU: nothing to compare

    def compare(_):
        gpu, cpu = summary("cuda"), summary("cpu")
        diff = {k: abs(gpu["trimap"]["pooled"][k] - cpu["trimap"]["pooled"][k]) for k in ("mIoU", "pixel_acc")}
        diff["person_iou"] = abs(gpu["person_iou"]["tnet_fg_unknown"] - cpu["person_iou"]["tnet_fg_unknown"])
        if max(diff.values()) > 0.002:
            raise CheckFailed(f"CUDA and CPU scores differ: {diff}")
        return {"mIoU_cuda": gpu["trimap"]["pooled"]["mIoU"], "mIoU_cpu": cpu["trimap"]["pooled"]["mIoU"], "abs_diff": diff}

    r.run("evaluate_cpu_reference", cmd("cpu"), 300, compare)


def run_infer(r: Runner, s: Settings, data: Path, out: Path) -> None:
    photo = data / json.loads((data / "pfcn_val_img.json").read_text())[0]

    def cmd(device: str) -> list:
        return [PY, REPO / "infer.py", "--image", photo, "--checkpoint", SHIPPED, "--device", device, "--spec", "none",
                "--no-face-ok", "--out-dir", out / f"infer_{device}", *s.threads]

    def outputs(device: str):
        import cv2

        stem = Path(photo).stem
        return [cv2.imread(str(out / f"infer_{device}" / f"{stem}_{k}.png"), cv2.IMREAD_GRAYSCALE) for k in ("trimap", "alpha")]

    def check(_):
        trimap, alpha = outputs(s.device)
        if trimap is None or alpha is None:
            raise CheckFailed("infer.py wrote no trimap/alpha")
        return {"photo": str(photo.name), "person_share": float((trimap > 0).mean())}

    res = r.run("infer", cmd(s.device), 300, check)
    if not res.get("ok") or s.dry:
        return

    def compare(_):
        import numpy as np

        (tg, ag), (tc, ac) = outputs("cuda"), outputs("cpu")
        differ = float((tg != tc).mean())
        alpha_diff = float(np.abs(ag.astype(int) - ac.astype(int)).mean())
        if differ > 0.002 or alpha_diff > 1.0:
            raise CheckFailed(f"CUDA and CPU differ: {differ:.2%} of the trimap, mean |alpha difference| {alpha_diff:.2f}/255")
        return {"trimap_pixels_differing": differ, "alpha_mean_abs_diff_255": alpha_diff}

    r.run("infer_cpu_reference", cmd("cpu"), 300, compare)


def bench_figures(stdout: str) -> dict:
    rec = last_json_line(stdout)
    runs = rec["figures"]["runs"]
    if not all(x["loss_finite"] for x in runs):
        raise CheckFailed("a non-finite loss in the throughput benchmark")
    return {"gpu": rec.get("gpu"), "backbone": rec["params"]["backbone"], "decoder": rec["params"].get("decoder"),
            "runs": [{k: x[k] for k in ("batch_size", "amp", "channels_last", "images_per_s", "ms_per_step")
                      if k in x} | ({"max_memory_gib": x["max_memory_gib"]} if "max_memory_gib" in x else {}) for x in runs]}


def loader_figures(stdout: str) -> dict:
    rec = last_json_line(stdout)
    return {"runs": [{"workers": x["workers"], "images_per_s": x["images_per_s"]} for x in rec["figures"]["runs"]],
            "transforms": rec["params"].get("transforms")}


def workers_needed(results: dict) -> dict | None:
    """Loader workers that keep one GPU busy: the GPU's best images/s over the loader's images/s per worker."""
    loader = results.get("loader", {})
    per_worker = [x["images_per_s"] / x["workers"] for x in loader.get("runs", []) if x["workers"] > 0]
    if not per_worker:
        return None
    rate = max(per_worker)  # the fewest workers reach the best rate per worker; more share the CPU
    out = {"loader_images_per_s_per_worker": rate}
    for name in ("bench_train_resnet50", "bench_train_compact"):
        runs = results.get(name, {}).get("runs")
        if runs:
            best = max(runs, key=lambda x: x["images_per_s"])
            out[name.removeprefix("bench_train_")] = {"gpu_images_per_s": best["images_per_s"], "batch_size": best["batch_size"],
                                                     "amp": best["amp"], "workers": math.ceil(best["images_per_s"] / rate)}
    return out


if __name__ == "__main__":
    sys.exit(main())
