#!/usr/bin/env python
"""Evaluate a TNet checkpoint, and the matting pipeline behind it, against ground-truth masks or mattes.

    python evaluate.py --checkpoint results/best_tnet.pth --dataname aifenge_val
    python evaluate.py --checkpoint results/best_tnet.pth --images photos/ --masks masks/ --no-matting

Per image: the trimap metrics of TNet's own argmax trimap (its class probabilities resized bilinearly to the
photo) against the ground-truth trimap (per-class IoU, mean IoU, pixel accuracy) and the mean IoU of the
refined trimap (erode/dilate, as infer.py; its unknown band is wider, so it is the matting's input but not
what TNet was trained to predict), the person-mask IoU of TNet (argmax foreground + unknown) and of the
pipeline's alpha (alpha ≥ 0.5, matted from the refined trimap), and — when the ground truth is a soft
matte — SAD, MSE, gradient and connectivity errors (core/metrics.py). Writes <out-dir>/per_image.csv
and <out-dir>/summary.json (atomically) and prints a table. Usage mistakes are reported in one line with a
non-zero exit.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.cli import EXIT_ERROR, EXIT_OK, OneLineParser, check_writable_dir, guarded
from core.errors import EvalError
from tnet.evaluation import (SOFT_MIN_SHARE, evaluate_samples, format_table, samples_from_folders,
                             samples_from_lists, write_outputs)
from core.runtime import pick_device, set_threads
from idphoto.options import IDPhotoOptions, OptionsError  # light: no torch yet
from idphoto.runner import open_trimap_model
from models import DEFAULT_WEIGHTS


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="evaluate.py",
        description="Score a TNet checkpoint on a data set: trimap IoU/accuracy of TNet's argmax trimap (at the "
                    "photo's size) against the ground-truth trimap (and the mIoU of the refined trimap the matting uses), "
                    "person-mask IoU against the ground-truth mask (GT alpha ≥ 128), and the matting errors SAD, "
                    "MSE, gradient and connectivity (alphamatting.com conventions, over the unknown band of the GT "
                    "trimap) where the ground truth is a soft matte. Writes per_image.csv and summary.json.",
        epilog="Ground truth: with --dataname, the alpha and trimap of prepare_aifenge.py's lists; with --images/--masks, "
               "the mask of the same file stem (any image extension; 0/1 masks are read as 0/255; a mask of another "
               "size is resized to the photo), and the GT trimap is built from it as in training (alpha > 50, "
               "10×10 elliptical band). A binary ground truth has no matting errors: only the IoUs are reported.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data (either --dataname or --images with --masks)")
    data.add_argument("--dataname", metavar="NAME",
                      help="list name: reads <data-dir>/<NAME>_{img,alpha,trimap}.json (e.g. aifenge_val)")
    data.add_argument("--data-dir", type=Path, default=Path("data"), metavar="DIR", help="folder of the JSON lists")
    data.add_argument("--images", type=Path, metavar="DIR", help="folder of photos")
    data.add_argument("--masks", type=Path, metavar="DIR", help="folder of ground-truth masks or alpha mattes, "
                                                                 "one per photo with the same file stem")
    data.add_argument("--skip-unmatched", action="store_true",
                      help="evaluate the matched pairs when some photos or masks have no partner (without it, that is an error)")
    data.add_argument("--limit", type=int, default=0, metavar="N", help="evaluate only the first N samples (0: all)")
    data.add_argument("--soft-min-share", type=float, default=SOFT_MIN_SHARE, metavar="F",
                      help="a ground truth is a soft matte (→ matting errors) when at least this share of its "
                           "pixels lies strictly between 0 and 255")

    # the model and matting flags of infer.py, defined once in IDPhotoOptions: both read a photo the same way
    model = IDPhotoOptions.add_arguments(p, groups=("model",))["model"]
    model.add_argument("--no-matting", action="store_true",
                       help="skip the matting (the slow part): trimap metrics and TNet's mask IoU only")

    out = p.add_argument_group("output")
    out.add_argument("--out-dir", type=Path, default=Path("results/eval"), metavar="DIR",
                     help="where per_image.csv and summary.json are written")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    return p


def check_args(args, parser) -> None:
    folders = args.images is not None or args.masks is not None
    if args.dataname and folders:
        parser.error("give either --dataname or --images/--masks, not both")
    if not args.dataname and not folders:
        parser.error("no data: give --dataname NAME (lists in --data-dir) or --images DIR --masks DIR")
    if folders and (args.images is None or args.masks is None):
        parser.error("--images and --masks go together")
    if args.limit < 0:
        parser.error("--limit must not be negative")
    try:
        IDPhotoOptions.from_args(args).check_model()
    except OptionsError as exc:
        parser.error(str(exc))
    if not 0.0 <= args.soft_min_share <= 1.0:
        parser.error("--soft-min-share must be between 0 and 1")


def run(args, parser) -> int:
    t_start = time.perf_counter()
    check_args(args, parser)
    samples, notes, data = find_samples(args)
    for note in notes:
        print(f"evaluate.py: warning: {note} (skipped)", file=sys.stderr)
    if args.limit:
        samples = samples[:args.limit]
    check_writable_dir(args.out_dir)  # now, not after the last image has been evaluated

    try:
        device = pick_device(args.device)  # a missing CUDA device: exit 1, as in infer.py and train.py
    except ValueError as exc:
        parser.error(str(exc))
    set_threads(args.threads)
    t = time.perf_counter()
    model = open_trimap_model(args.checkpoint, device, args.threads, args.input_size)  # None: the shipped one
    checkpoint = args.checkpoint or DEFAULT_WEIGHTS
    t_model = time.perf_counter() - t

    acc, warned = evaluate_samples(samples, model, args, device, args.quiet)
    if not acc.rows:
        raise EvalError(f"none of the {len(samples)} sample(s) could be evaluated (first: {acc.failed[0]['error']})")
    summary = acc.summary(describe(args, data, checkpoint, model, device) | {
        "failed": acc.failed, "unmatched": notes, "matting_warnings": warned, "seconds_model_load": t_model})
    summary["seconds_total"] = time.perf_counter() - t_start
    csv_path, json_path = write_outputs(args.out_dir, acc.rows, summary)
    print(format_table(summary))
    print(f"wrote {csv_path} and {json_path}" + (f"; {len(acc.failed)} sample(s) failed" if acc.failed else ""))
    return EXIT_ERROR if acc.failed else EXIT_OK


def find_samples(args) -> tuple[list, list[str], str]:
    """(samples, notes about unmatched files, a description of the data) of --dataname or --images/--masks."""
    if args.dataname:
        samples = samples_from_lists(args.data_dir, args.dataname)
        if not samples:
            raise EvalError(f"the lists of {args.dataname!r} in {args.data_dir} are empty")
        return samples, [], f"{args.dataname} (lists in {args.data_dir})"
    samples, notes = samples_from_folders(args.images, args.masks, args.skip_unmatched)
    return samples, notes, f"{args.images} + {args.masks}"


def describe(args, data: str, checkpoint: Path, model, device: str) -> dict:
    """What was evaluated and how: the head of summary.json."""
    from idphoto.runner import model_input_size

    return {"data": data, "checkpoint": str(checkpoint), "backbone": model.arch["backbone"],
            "decoder": model.arch.get("decoder", "psp"), "device": str(device),
            "settings": {"input_size": args.input_size or model_input_size(model), "tta": args.tta,
                         "refine_kernel": args.refine_kernel,
                         "matting": None if args.no_matting else args.matting, "max_side": args.max_side,
                         "soft_min_share": args.soft_min_share, "limit": args.limit,
                         "gt_trimap": "the lists' trimaps" if args.dataname else
                                      "built from the GT alpha (alpha > 50, 10×10 elliptical band)"}}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return guarded("evaluate.py", lambda: run(args, parser), debug=args.debug,
                   interrupted="interrupted (nothing written)")


if __name__ == "__main__":
    sys.exit(main())
