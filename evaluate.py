#!/usr/bin/env python
"""Evaluate a TNet checkpoint, and the matting pipeline behind it, against ground-truth masks or mattes.

    python evaluate.py --checkpoint results/best_tnet.pth --dataname aifenge_val
    python evaluate.py --checkpoint results/best_tnet.pth --images photos/ --masks masks/ --no-matting

Per image: the trimap metrics of TNet's own argmax trimap against the ground-truth trimap (per-class IoU,
mean IoU, pixel accuracy) and the mean IoU of the refined trimap (erode/dilate, as infer.py; its unknown
band is wider, so it is the matting's input but not what TNet was trained to predict), the person-mask IoU
of TNet (argmax foreground + unknown) and of the pipeline's alpha (alpha ≥ 0.5, matted from the refined
trimap), and — when the ground truth is a soft matte — SAD, MSE, gradient and connectivity errors
(matting_metrics.py). Writes <out-dir>/per_image.csv and <out-dir>/summary.json (atomically) and prints a
table. Usage mistakes are reported in one line with a non-zero exit.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from cli import EXIT_ERROR, EXIT_OK, OneLineParser, add_trimap_arguments, check_writable_dir, guarded
from core.errors import EvalError
from core.runtime import pick_device

SOFT_MIN_SHARE = 0.01  # share of 0 < α < 255 pixels above which a ground truth counts as a soft matte
CSV_FIELDS = ["name", "width", "height", "soft_gt", "trimap_mIoU", "trimap_acc", "trimap_IoU_bg",
              "trimap_IoU_unknown", "trimap_IoU_fg", "trimap_refined_mIoU", "iou_tnet", "iou_alpha",
              "sad", "mse", "grad", "conn", "t_read", "t_trimap", "t_alpha", "t_metrics"]



def build_parser() -> argparse.ArgumentParser:
    from idphoto.pipeline import DEFAULT_MAX_SIDE, MATTING_METHODS

    p = OneLineParser(
        prog="evaluate.py",
        description="Score a TNet checkpoint on a data set: trimap IoU/accuracy of TNet's argmax trimap against the "
                    "ground-truth trimap (and the mIoU of the refined trimap the matting uses), "
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

    model = p.add_argument_group("model and pipeline")
    model.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="TNet weights (train.py checkpoint or shipped weights); "
                            "default: weights/tnet_unet_mobilenetv3.pth")
    add_trimap_arguments(model)
    model.add_argument("--refine-kernel", type=int, default=10, metavar="K",
                       help="erode/dilate kernel of the refinement of the predicted trimap before the matting, "
                            "as infer.py (0: none); the trimap metrics score TNet's trimap before it")
    model.add_argument("--matting", choices=sorted(MATTING_METHODS), default="cf",
                       help="cf: closed-form matting (nothing to compile); knn, lkm (large-kernel), rw (random-walk), "
                            "lbdm (learning-based): pymatting's, whose kernels compile on first use (about a minute)")
    model.add_argument("--no-matting", action="store_true",
                       help="skip the matting (the slow part): trimap metrics and TNet's mask IoU only")
    model.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, metavar="PX",
                       help="longest side at which the matting is solved, as infer.py (0: no cap)")
    model.add_argument("--device", default="auto", help="torch device: auto (CUDA when available), cpu, cuda, cuda:1…")
    model.add_argument("--threads", type=int, default=0, metavar="N",
                       help="CPU threads for PyTorch (0: its default; 1 is often much faster on a busy machine)")

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
    if args.input_size is not None and (args.input_size <= 0 or args.input_size % 8):
        parser.error("--input-size must be a positive multiple of 8")
    for name in ("limit", "refine_kernel", "max_side", "threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if not 0.0 <= args.soft_min_share <= 1.0:
        parser.error("--soft-min-share must be between 0 and 1")


# ---------------------------------------------------------------------------------------------- samples
@dataclass
class Sample:
    name: str
    image: Path
    alpha: Path
    trimap: Path | None = None  # the data set's own GT trimap (lists); None: built from the alpha


def samples_from_lists(data_dir: Path, dataname: str) -> list[Sample]:
    from datasets import read_lists

    try:
        lists = read_lists(data_dir, dataname)  # its errors name the list file (and the entry)
    except (FileNotFoundError, ValueError) as exc:
        raise EvalError(str(exc)) from None
    return [Sample(i.stem, i, a, t) for i, a, t in zip(lists["img"], lists["alpha"], lists["trimap"])]


def _shorten(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", … ({len(names) - n} more)" if len(names) > n else "")


def samples_from_folders(images: Path, masks: Path, skip_unmatched: bool) -> tuple[list[Sample], list[str]]:
    """Photo/mask pairs by file stem; returns (samples, notes about unmatched files)."""
    from idphoto import IDPhotoError, list_images

    try:
        photos, _ = list_images(images)
        mask_files, _ = list_images(masks)
    except IDPhotoError as exc:
        raise EvalError(str(exc)) from None
    if not photos:
        raise EvalError(f"{images}: no images (.jpg .png .webp .bmp .tif) in this folder")
    if not mask_files:
        raise EvalError(f"{masks}: no masks (.png .jpg .bmp .tif …) in this folder")
    by_stem = {}
    for m in mask_files:
        by_stem.setdefault(m.stem, m)
    photo_stems = {p.stem for p in photos}
    samples = [Sample(p.stem, p, by_stem[p.stem]) for p in photos if p.stem in by_stem]
    no_mask = [p.name for p in photos if p.stem not in by_stem]
    no_photo = [m.name for m in mask_files if m.stem not in photo_stems]
    notes = []
    if no_mask:
        notes.append(f"{len(no_mask)} photo(s) in {images} without a mask: {_shorten(no_mask)}")
    if no_photo:
        notes.append(f"{len(no_photo)} mask(s) in {masks} without a photo: {_shorten(no_photo)}")
    if not samples:
        raise EvalError(f"no photo in {images} has a mask of the same name in {masks}")
    if notes and not skip_unmatched:
        raise EvalError("; ".join(notes) + f" — pass --skip-unmatched to evaluate the {len(samples)} matched pair(s)")
    return samples, notes


# ------------------------------------------------------------------------------------------ ground truth
def read_ground_truth(path: Path, shape: tuple[int, int]):
    """GT alpha as H×W uint8 0–255 at the photo's size: a mask, a grayscale matte or an RGBA cut-out's alpha.

    A 0/1 mask is scaled to 0/255; a ground truth of another size is resized (nearest neighbour when it is
    binary, so it stays binary; bilinear for a soft matte). Returns (alpha, resized?).
    """
    import cv2
    import numpy as np

    from utils import read_image

    gt = read_image(path, cv2.IMREAD_UNCHANGED)
    if gt is None:
        raise EvalError(f"{path}: cannot read the ground truth")
    if gt.ndim == 3:
        gt = gt[..., 3] if gt.shape[2] == 4 else cv2.cvtColor(gt[..., :3], cv2.COLOR_BGR2GRAY)
    if gt.dtype == np.uint16:
        gt = (gt.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif gt.dtype != np.uint8:
        raise EvalError(f"{path}: unsupported ground-truth type {gt.dtype}")
    if gt.max() == 1:
        gt = gt * np.uint8(255)
    resized = gt.shape != shape
    if resized:
        binary = np.isin(gt, (0, 255)).all()
        gt = cv2.resize(gt, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST if binary else cv2.INTER_LINEAR)
    return gt, resized


# ------------------------------------------------------------------------------------------- evaluation
def evaluate_one(sample: Sample, model, args, device) -> tuple[dict, "object", "object"]:
    """Metrics of one sample; returns (CSV row, the 3×3 trimap confusion matrices of TNet's argmax trimap
    and of the refined trimap)."""
    import cv2
    import torch

    from idphoto import estimate_alpha, predict_trimap_pair
    from idphoto.pipeline import model_input_size
    from matting_metrics import mask_iou, matting_errors, soft_share
    from utils import ConfusionMatrix, make_trimap, read_image, trimap_to_classes

    t0 = time.perf_counter()
    image = read_image(sample.image, cv2.IMREAD_COLOR)
    if image is None:
        raise EvalError(f"{sample.image}: cannot read the photo")
    h, w = image.shape[:2]
    gt, resized = read_ground_truth(sample.alpha, (h, w))
    if sample.trimap is not None:
        gt_trimap = read_image(sample.trimap, cv2.IMREAD_GRAYSCALE)
        if gt_trimap is None:
            raise EvalError(f"{sample.trimap}: cannot read the ground-truth trimap")
        if gt_trimap.shape != (h, w):
            gt_trimap = cv2.resize(gt_trimap, (w, h), interpolation=cv2.INTER_NEAREST)
    else:
        gt_trimap = make_trimap(gt)
    t1 = time.perf_counter()
    # TNet's own trimap is scored; the refined one (wider unknown band) is what the matting gets, as in infer.py
    raw, trimap = predict_trimap_pair(model, image, args.input_size or model_input_size(model), device,
                                      args.refine_kernel, flip=args.tta == "flip")
    t2 = time.perf_counter()
    alpha = None
    if not args.no_matting:
        alpha = estimate_alpha(image, trimap, args.matting, args.max_side or None)
    t3 = time.perf_counter()

    gt_classes = torch.from_numpy(trimap_to_classes(gt_trimap))
    cm, cm_refined = ConfusionMatrix(3), ConfusionMatrix(3)
    cm.update(torch.from_numpy(trimap_to_classes(raw)), gt_classes)
    cm_refined.update(torch.from_numpy(trimap_to_classes(trimap)), gt_classes)
    tri = cm.summary()
    gt_mask = gt >= 128
    soft = soft_share(gt) >= args.soft_min_share
    row = {"name": sample.name, "width": w, "height": h, "soft_gt": int(soft),
           "trimap_mIoU": tri["mIoU"], "trimap_acc": tri["pixel_acc"], "trimap_IoU_bg": tri["IoU_bg"],
           "trimap_IoU_unknown": tri["IoU_unknown"], "trimap_IoU_fg": tri["IoU_fg"],
           "trimap_refined_mIoU": cm_refined.mean_iou(), "iou_tnet": mask_iou(raw >= 128, gt_mask),
           "iou_alpha": None,
           "sad": None, "mse": None, "grad": None, "conn": None, "_gt_resized": resized}
    if alpha is not None:
        row["iou_alpha"] = mask_iou(alpha >= 0.5, gt_mask)
        if soft:
            row.update(matting_errors(alpha, gt, gt_trimap == 128))
    t4 = time.perf_counter()
    row.update(t_read=t1 - t0, t_trimap=t2 - t1, t_alpha=(t3 - t2) if alpha is not None else None, t_metrics=t4 - t3)
    return row, cm, cm_refined


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def _clean(obj):
    """JSON-safe: NaN/inf → null (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def summarise(rows: list[dict], total_cm, total_cm_refined, args, meta: dict) -> dict:
    soft_rows = [r for r in rows if r["sad"] is not None]
    matting = {"images": len(soft_rows),
               "region": "unknown band (128) of the ground-truth trimap",
               "units": "SAD, Grad and Conn in thousands (sum / 1000); MSE per pixel of the region, alpha in [0, 1]",
               **{k: _mean(r[k] for r in soft_rows) for k in ("sad", "mse", "grad", "conn")}}
    if args.no_matting:
        matting["skipped"] = "--no-matting"
    elif not soft_rows:
        matting["skipped"] = (f"the ground truth is binary (fewer than {args.soft_min_share:.1%} of the pixels "
                              f"strictly between 0 and 255): no matting errors")
    elif len(soft_rows) < len(rows):
        matting["note"] = f"{len(rows) - len(soft_rows)} image(s) with a binary ground truth are left out"
    stages = ("t_read", "t_trimap", "t_alpha", "t_metrics")
    return _clean({
        **meta,
        "images": len(rows),
        "gt_resized": sum(bool(r["_gt_resized"]) for r in rows),
        "trimap": {"scored": "TNet's argmax trimap, before the erode/dilate refinement",
                   "pooled": total_cm.summary(),  # over all pixels of all images
                   "mean_per_image": {k: _mean(r[f"trimap_{k}"] for r in rows)
                                      for k in ("mIoU", "acc", "IoU_bg", "IoU_unknown", "IoU_fg")},
                   "refined_mIoU": {"pooled": total_cm_refined.mean_iou(),
                                    "mean_per_image": _mean(r["trimap_refined_mIoU"] for r in rows),
                                    "refine_kernel": args.refine_kernel}},
        "person_iou": {"tnet_fg_unknown": _mean(r["iou_tnet"] for r in rows),  # of the argmax trimap
                       "alpha_ge_0.5": _mean(r["iou_alpha"] for r in rows),
                       "gt_mask": "GT alpha >= 128"},
        "matting": matting,
        "seconds_per_image": {k[2:]: _mean(r[k] for r in rows) for k in stages},
    })


def format_table(s: dict) -> str:
    def f(v, fmt=".4f"):
        return "—" if v is None else format(v, fmt)

    pooled, per, refined = s["trimap"]["pooled"], s["trimap"]["mean_per_image"], s["trimap"]["refined_mIoU"]
    m, iou, t = s["matting"], s["person_iou"], s["seconds_per_image"]
    lines = [
        f"{s['images']} image(s) of {s['data']}; checkpoint {s['checkpoint']} ({s['backbone']}); device {s['device']}",
        f"{'':32}{'mIoU':>8}{'acc':>8}{'bg':>8}{'unknown':>9}{'fg':>8}",
        f"{'TNet trimap, pooled over pixels':32}{f(pooled['mIoU']):>8}{f(pooled['pixel_acc']):>8}"
        f"{f(pooled['IoU_bg']):>8}{f(pooled['IoU_unknown']):>9}{f(pooled['IoU_fg']):>8}",
        f"{'TNet trimap, mean per image':32}{f(per['mIoU']):>8}{f(per['acc']):>8}"
        f"{f(per['IoU_bg']):>8}{f(per['IoU_unknown']):>9}{f(per['IoU_fg']):>8}",
        f"refined trimap (erode/dilate {refined['refine_kernel']}, the matting's input): mIoU pooled "
        f"{f(refined['pooled'])}, mean per image {f(refined['mean_per_image'])}",
        f"person IoU (mean per image): TNet fg+unknown {f(iou['tnet_fg_unknown'])}, alpha ≥ 0.5 {f(iou['alpha_ge_0.5'])}",
    ]
    if m.get("skipped"):
        lines.append(f"matting errors: skipped — {m['skipped']}")
    else:
        lines.append(f"matting errors over {m['images']} image(s), unknown band of the GT trimap: SAD {f(m['sad'], '.3f')}k  "
                     f"MSE {f(m['mse'], '.5f')}  Grad {f(m['grad'], '.3f')}k  Conn {f(m['conn'], '.3f')}k")
        if m.get("note"):
            lines.append(f"  ({m['note']})")
    if s.get("matting_warnings"):
        lines.append(f"  ({s['matting_warnings']} matting warning(s): trimaps without sure foreground or background, "
                     f"or a solver that did not converge)")
    lines.append("seconds per image: " + ", ".join(f"{k} {f(v, '.3f')}" for k, v in t.items()))
    return "\n".join(lines)


def write_outputs(out_dir: Path, rows: list[dict], summary: dict) -> tuple[Path, Path]:
    from utils import atomic_write_bytes

    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r[k] is None else round(r[k], 6) if isinstance(r[k], float) else r[k])
                         for k in CSV_FIELDS})
    csv_path, json_path = out_dir / "per_image.csv", out_dir / "summary.json"
    atomic_write_bytes(csv_path, buf.getvalue().encode("utf-8"))
    atomic_write_bytes(json_path, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return csv_path, json_path


def run(args, parser) -> int:
    t_start = time.perf_counter()
    check_args(args, parser)
    if args.dataname:
        samples, notes = samples_from_lists(args.data_dir, args.dataname), []
        if not samples:
            raise EvalError(f"the lists of {args.dataname!r} in {args.data_dir} are empty")
        data = f"{args.dataname} (lists in {args.data_dir})"
    else:
        samples, notes = samples_from_folders(args.images, args.masks, args.skip_unmatched)
        data = f"{args.images} + {args.masks}"
    for note in notes:
        print(f"evaluate.py: warning: {note} (skipped)", file=sys.stderr)
    if args.limit:
        samples = samples[:args.limit]
    check_writable_dir(args.out_dir)  # now, not after the last image has been evaluated

    import torch
    from tqdm import tqdm

    from idphoto import MattingWarning
    from models import DEFAULT_WEIGHTS, WeightsError, load_tnet

    try:
        device = pick_device(args.device)  # a missing CUDA device: exit 1, as in infer.py and train.py
    except ValueError as exc:
        parser.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or DEFAULT_WEIGHTS
    t = time.perf_counter()
    try:
        model = load_tnet(checkpoint, device)
    except WeightsError as exc:
        hint = " (the default; pass --checkpoint results/best_tnet.pth or another train.py checkpoint)" \
            if args.checkpoint is None else ""
        raise EvalError(f"checkpoint: {exc}{hint}") from None
    t_model = time.perf_counter() - t

    total_cm = total_cm_refined = None
    rows, failed, warned = [], [], 0
    bar = tqdm(samples, desc="evaluate", unit="img", file=sys.stderr, disable=args.quiet, dynamic_ncols=True)
    for sample in bar:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", MattingWarning)
                row, cm, cm_refined = evaluate_one(sample, model, args, device)
        except EvalError as exc:
            failed.append({"name": sample.name, "error": str(exc)})
            bar.write(f"evaluate.py: skipped: {exc}", file=sys.stderr)
            continue
        warned += sum(issubclass(w.category, MattingWarning) for w in caught)
        rows.append(row)
        if total_cm is None:
            total_cm, total_cm_refined = cm, cm_refined
        else:
            total_cm.matrix += cm.matrix
            total_cm_refined.matrix += cm_refined.matrix
    bar.close()
    if not rows:
        raise EvalError(f"none of the {len(samples)} sample(s) could be evaluated (first: {failed[0]['error']})")

    from idphoto.pipeline import model_input_size

    meta = {"data": data, "checkpoint": str(checkpoint), "backbone": model.arch["backbone"],
            "decoder": model.arch.get("decoder", "psp"), "device": str(device),
            "settings": {"input_size": args.input_size or model_input_size(model), "tta": args.tta,
                         "refine_kernel": args.refine_kernel,
                         "matting": None if args.no_matting else args.matting, "max_side": args.max_side,
                         "soft_min_share": args.soft_min_share, "limit": args.limit,
                         "gt_trimap": "the lists' trimaps" if args.dataname else
                                      "built from the GT alpha (alpha > 50, 10×10 elliptical band)"},
            "failed": failed, "unmatched": notes, "matting_warnings": warned,
            "seconds_model_load": t_model}
    summary = summarise(rows, total_cm, total_cm_refined, args, meta)
    summary["seconds_total"] = time.perf_counter() - t_start
    csv_path, json_path = write_outputs(args.out_dir, rows, summary)
    print(format_table(summary))
    print(f"wrote {csv_path} and {json_path}" + (f"; {len(failed)} sample(s) failed" if failed else ""))
    return EXIT_ERROR if failed else EXIT_OK


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return guarded("evaluate.py", lambda: run(args, parser), debug=args.debug,
                   interrupted="interrupted (nothing written)")


if __name__ == "__main__":
    sys.exit(main())
