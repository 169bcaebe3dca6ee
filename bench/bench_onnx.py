#!/usr/bin/env python
"""TNet on the CPU through PyTorch and through onnxruntime: the export, its check, and the forward time.

    python bench/bench_onnx.py --threads 1                          # the shipped compact model, 400×400
    python bench/bench_onnx.py --backbone resnet50 --threads 1      # an untrained ResNet-50 TNet (the design's)

The model (--checkpoint, default the shipped weights; or an untrained --backbone) is exported with
``python -m models.export``'s code into a temp folder and compared with PyTorch on real photos (the
bundled example and the first --photos PFCN portraits when ../shared is present): largest absolute logit
difference and pixels of another argmax class. Then one photo's forward pass (batch 1, preprocessing
excluded) is timed --repeat times in each runtime with the same thread count, after --warmup runs; the
median is reported. Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import PFCN, REPO, emit, note


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None, help="TNet weights (default: the shipped compact model)")
    p.add_argument("--backbone", default=None, choices=("resnet50", "mobilenetv3"),
                   help="time an untrained TNet of this backbone instead of --checkpoint")
    p.add_argument("--size", type=int, default=400, help="input side")
    p.add_argument("--threads", type=int, default=1, help="threads of both runtimes")
    p.add_argument("--photos", type=int, default=8, help="PFCN portraits added to the check (when ../shared is present)")
    p.add_argument("--repeat", type=int, default=20, help="timed forward passes per runtime")
    p.add_argument("--warmup", type=int, default=3, help="untimed forward passes first")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from models import DEFAULT_WEIGHTS, TNet, WeightsError, load_tnet
    from models.onnx_model import OnnxTNet, compare_with_torch, export_onnx
    from core.fileio import read_image

    torch.set_num_threads(args.threads)
    if args.backbone:
        torch.manual_seed(0)
        model, source = TNet(args.backbone, decoder="psp").eval(), f"untrained {args.backbone} (psp)"
    else:
        path = args.checkpoint or DEFAULT_WEIGHTS
        model, source = load_tnet(path), str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    photos = [REPO / "examples" / "astronaut.jpg"]
    if PFCN.is_dir():
        photos += sorted((PFCN / "images").glob("*.jpg"))[:args.photos]
    images = [read_image(p) for p in photos]
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        onnx_path = Path(tmp) / "tnet.onnx"
        t = time.perf_counter()
        try:
            export_onnx(model, onnx_path, args.size)
        except WeightsError as exc:
            print(f"bench_onnx.py: error: {exc}", file=sys.stderr)
            return 1
        export_s = time.perf_counter() - t
        mib = onnx_path.stat().st_size / 2**20
        check = compare_with_torch(model, onnx_path, images, args.size)
        note(f"{source}: export {export_s:.1f} s, {mib:.1f} MiB; on {check['images']} photos max |logit diff| "
             f"{check['max_abs_logit_diff']:.2g}, {check['argmax_mismatch_pixels']} pixels of another class")
        onnx = OnnxTNet(onnx_path)
        x = torch.randn(1, 3, args.size, args.size)

        def timed(fn) -> tuple[list[float], list[float]]:
            for _ in range(args.warmup):
                fn(x)
            wall, cpu = [], []
            for _ in range(args.repeat):
                t, c = time.perf_counter(), time.process_time()
                fn(x)
                wall.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            return wall, cpu

        with torch.inference_mode():
            torch_wall, torch_cpu = timed(model)
        onnx_wall, onnx_cpu = timed(onnx)
    ms = lambda v: 1000 * statistics.median(v)  # noqa: E731
    # with one thread the CPU time of the process is the work itself, whatever else the machine runs
    figures = {"export_s": export_s, "onnx_mib": mib, "check": check,
               "pytorch_ms": ms(torch_wall), "onnxruntime_ms": ms(onnx_wall),
               "pytorch_cpu_ms": ms(torch_cpu), "onnxruntime_cpu_ms": ms(onnx_cpu)}
    figures["speedup"] = figures["pytorch_ms"] / figures["onnxruntime_ms"]
    figures["speedup_cpu_time"] = figures["pytorch_cpu_ms"] / figures["onnxruntime_cpu_ms"]
    note(f"forward at {args.size}×{args.size}, batch 1, {args.threads} thread(s), median of {args.repeat}: "
         f"PyTorch {figures['pytorch_ms']:.0f} ms ({figures['pytorch_cpu_ms']:.0f} ms CPU), "
         f"onnxruntime {figures['onnxruntime_ms']:.0f} ms ({figures['onnxruntime_cpu_ms']:.0f} ms CPU)")
    import onnxruntime

    emit("onnx", {"model": source, "size": args.size, "threads": args.threads, "repeat": args.repeat,
                  "onnxruntime": onnxruntime.__version__, "photos": len(photos)}, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
