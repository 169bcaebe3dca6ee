#!/usr/bin/env python
"""Inference time of one photo: per stage and for the whole ``infer.py`` process, plus the matting alone
against closed-form matting of the whole full-resolution photo (no crop, no size cap).

    python bench/bench_infer.py                       # first PFCN portrait (600×800) or a synthetic one
    python bench/bench_infer.py --checkpoint results/best_tnet.pth --repeat 3

Part 1 times ``infer.py --image PHOTO --spec none`` in a fresh subprocess: the wall time includes Python
start-up, imports and the model load, as a user sees it. The stages come from the library functions
infer.py calls, timed in this process (model load, then the photo through load_image, the Pipeline's
trimap, alpha and foreground, the framing and the JPEG encoding); they return their own timings, so no
output is parsed. An untrained model
(used when no trained weights exist) gives a trimap without sure foreground, so its matting stages are
near zero: part 2 therefore times the matting on the trimap of the photo's *ground-truth* mask, the
project's cropped/capped estimate_alpha versus pymatting's estimate_alpha_cf on the whole photo.
Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import PFCN, REPO, emit, note, random_checkpoint, synthetic_portrait

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--image", type=Path, default=None,
                   help="photo to time (default: the first image of ../shared/data/pfcn_portrait_seg, else a synthetic 600×800 portrait)")
    p.add_argument("--mask", type=Path, default=None, help="its ground-truth mask, for part 2 (default: the PFCN mask of the same id)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="TNet weights (default: weights/tnet_unet_mobilenetv3.pth if present, else an untrained compact TNet)")
    p.add_argument("--matting", default="cf", help="pymatting method for both parts")
    p.add_argument("--threads", type=int, default=0, help="torch threads passed to infer.py (0: its default)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the minimum is reported")
    p.add_argument("--no-original", action="store_true", help="skip the (slow) matting of the whole full-resolution photo")
    p.add_argument("--size", type=int, nargs=2, default=(600, 800), metavar=("W", "H"), help="size of the synthetic photo")
    return p.parse_args(argv)


def pick_photo(args, tmp: Path) -> tuple[Path, Path | None, str]:
    import cv2

    if args.image is not None:
        return args.image, args.mask, str(args.image)
    if PFCN.is_dir():
        images = sorted((PFCN / "images").glob("*.jpg"))
        if images:
            mask = PFCN / "masks" / f"{images[0].stem}.png"
            return images[0], mask if mask.is_file() else None, f"pfcn_portrait_seg/{images[0].name}"
    photo, alpha = synthetic_portrait(0, *args.size)
    cv2.imwrite(str(tmp / "photo.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(tmp / "mask.png"), alpha)
    return tmp / "photo.jpg", tmp / "mask.png", f"synthetic {args.size[0]}x{args.size[1]}"


def time_infer(photo: Path, checkpoint: Path, args, out: Path) -> dict:
    """The whole ``infer.py`` process (wall seconds), and its stages in this process."""
    cmd = [sys.executable, str(REPO / "infer.py"), "--image", str(photo), "--checkpoint", str(checkpoint),
           "--spec", "none", "--no-face-ok", "--out-dir", str(out), "--matting", args.matting, "--quiet"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t
    if run.returncode != 0:
        raise SystemExit(f"bench_infer.py: infer.py failed (rc {run.returncode}): {run.stderr.strip()[-300:]}")
    return {"process_wall_s": wall, **time_stages(photo, checkpoint, args)}


def time_stages(photo: Path, checkpoint: Path, args) -> dict:
    """infer.py's stages for one photo, timed here from the library: the model load, then load_image, the
    Pipeline (trimap, alpha, foreground), compose_id_photo (``--spec none``) and the JPEG encoding."""
    from core.runtime import set_threads
    from idphoto import Pipeline, encode_jpeg, load_image, compose_id_photo
    from idphoto.runner import open_trimap_model

    set_threads(args.threads)
    t = time.perf_counter()
    pipeline = Pipeline(open_trimap_model(checkpoint, "cpu"), "cpu", matting=args.matting)
    model_load = time.perf_counter() - t
    start = t = time.perf_counter()
    image = load_image(photo)
    stages = {"load": time.perf_counter() - t}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pipeline.run(image)
    stages.update(result.timings)
    t = time.perf_counter()
    framed = compose_id_photo(image, result.alpha, result.foreground, None, no_face_ok=True)
    stages["idphoto"] = time.perf_counter() - t
    t = time.perf_counter()
    encode_jpeg(framed.image, framed.dpi)
    stages["encode"] = time.perf_counter() - t
    return {"model_load_s": model_load, "infer_total_s": time.perf_counter() - start, "stages_s": stages}


def time_matting(photo: Path, mask: Path, args) -> dict:
    import cv2
    import numpy as np
    import pymatting

    from core.fileio import read_image
    from core.trimaps import make_trimap
    from idphoto import estimate_alpha

    image = read_image(photo)
    gt = read_image(mask, cv2.IMREAD_GRAYSCALE)
    if gt.shape != image.shape[:2]:
        gt = cv2.resize(gt, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    trimap = make_trimap(gt)
    res = {"trimap": "ground-truth mask → make_trimap (threshold 50, kernel 10)",
           "unknown_share": float((trimap == 128).mean())}
    # warm-up on a small copy: pymatting's numba kernels compile/load on first use (not what we time)
    small = (cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA), cv2.resize(trimap, (64, 64), interpolation=cv2.INTER_NEAREST))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        estimate_alpha(*small, args.matting)
        pymatting.estimate_alpha_cf(cv2.cvtColor(small[0], cv2.COLOR_BGR2RGB) / 255.0, small[1] / 255.0)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimate_alpha(image, trimap, args.matting)
        times.append(time.perf_counter() - t)
    res["cropped_s"] = min(times)
    if not args.no_original and args.matting == "cf":
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                pymatting.estimate_alpha_cf(rgb, trimap.astype(np.float64) / 255.0)
            times.append(time.perf_counter() - t)
        res["original_full_cf_s"] = min(times)
        res["speedup"] = res["original_full_cf_s"] / res["cropped_s"]
    return res


def main(argv=None) -> int:
    args = parse_args(argv)
    from models import DEFAULT_WEIGHTS

    with tempfile.TemporaryDirectory(prefix="bench_infer_") as tmp:
        tmp = Path(tmp)
        photo, mask, source = pick_photo(args, tmp)
        checkpoint, weights = args.checkpoint, str(args.checkpoint)
        if checkpoint is None:
            if DEFAULT_WEIGHTS.is_file():
                checkpoint, weights = DEFAULT_WEIGHTS, str(DEFAULT_WEIGHTS.relative_to(REPO))
            else:
                checkpoint, weights = random_checkpoint(tmp / "tnet.pth"), "untrained mobilenetv3 (no trained weights found)"
        note(f"photo: {source}; weights: {weights}")
        runs = [time_infer(photo, checkpoint, args, tmp / "out") for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["process_wall_s"])
        note(f"infer.py: process {best['process_wall_s']:.2f} s, in-process total {best['infer_total_s']:.2f} s, "
             + ", ".join(f"{k} {v:.2f}" for k, v in best["stages_s"].items()))
        figures = {"infer": best}
        if mask is not None:
            figures["matting_on_gt_trimap"] = m = time_matting(photo, mask, args)
            note(f"matting on the GT trimap: cropped {m['cropped_s']:.2f} s"
                 + (f", whole full-resolution photo {m['original_full_cf_s']:.2f} s" if "original_full_cf_s" in m else ""))
        import cv2

        h, w = cv2.imread(str(photo)).shape[:2]
    emit("infer", {"photo": source, "size": [w, h], "weights": weights, "matting": args.matting,
                   "threads": args.threads, "repeat": args.repeat}, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
