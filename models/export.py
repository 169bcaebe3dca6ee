"""Export a training checkpoint for inference: compact PyTorch weights (fp16 by default), or ONNX.

    python -m models.export results/best_tnet.pth weights/tnet_unet_mobilenetv3.pth
    python -m models.export results/best_tnet.pth tnet.onnx                 # ONNX, for onnxruntime
    python infer.py --image me.jpg --checkpoint tnet.onnx                    # runs it through onnxruntime

A ``.pth`` output holds ``{"arch", "model", "meta"}``: what :func:`models.load_tnet` reads; the optimiser
state and the training arguments' paths are dropped (the epoch, metric and recipe are kept in ``meta``).

A ``.onnx`` output has a dynamic batch and a fixed --size×--size input (see models/onnx_model.py for why
the size is fixed). It is checked against PyTorch with onnxruntime on real photos (--check-images,
default: the bundled examples/astronaut.jpg): the largest absolute logit difference must be at most
--tolerance and the argmax trimap identical, or the file is deleted and the exit code is 1. Needs the
optional packages onnx, onnxscript and onnxruntime.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.checkpoints import save_checkpoint
from core.cli import OneLineParser, guarded
from tnet.config import PATCH, RECIPE_KEYS  # the settings a weights file records: TrainConfig's recipe fields

from .weights import WeightsError, read_tnet

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"


def checkpoint_meta(obj: dict, dtype: str, input_size: int | None = None) -> dict:
    """The epoch, metric and recipe of a checkpoint, and ``input_size``: the square side inference feeds the
    model unless told otherwise (default: the training patch, or what a weights file already says)."""
    args = obj.get("args") if isinstance(obj.get("args"), dict) else {}
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    out = {"epoch": obj.get("epoch", meta.get("epoch")), "best_metric": obj.get("best_metric", meta.get("best_metric")),
           "recipe": {k: args[k] for k in RECIPE_KEYS if k in args} or meta.get("recipe", {}), "dtype": dtype}
    swa_epochs = obj.get("swa_epochs", meta.get("swa_epochs"))
    if swa_epochs:  # the weights are the average of this many epochs' (train.py --swa-start)
        out["swa_epochs"] = int(swa_epochs)
    size = input_size or args.get("patch") or meta.get("input_size")
    if size:
        out["input_size"] = int(size)
    return out


def export_tnet(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True, input_size: int | None = None) -> dict:
    """Write the weights file ``dst`` from the checkpoint ``src``; returns its ``meta``."""
    model, obj = read_tnet(src)  # a file that does not fit is refused before anything is written
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    meta = checkpoint_meta(obj, "float16" if half else "float32", input_size)
    save_checkpoint({"arch": model.arch, "model": weights, "meta": meta}, dst)
    return meta


def export_tnet_onnx(src: str | os.PathLike, dst: str | os.PathLike, size: int, check_images: list[Path],
                     tolerance: float = 1e-3) -> dict:
    """Write ``dst`` (ONNX) from ``src`` and check it against PyTorch on ``check_images``; returns the
    check's figures. A file that fails the check is removed and WeightsError raised."""
    from core.fileio import read_image

    from .onnx_model import compare_with_torch, export_onnx

    images = []
    for path in check_images:
        image = read_image(path)
        if image is None:
            raise WeightsError(f"--check-images: cannot read {path}")
        images.append(image)
    model, obj = read_tnet(src)
    meta = checkpoint_meta(obj, "float32", size)
    size = meta.setdefault("input_size", PATCH)
    export_onnx(model, dst, size, meta)
    try:
        check = compare_with_torch(model, dst, images, size) if images else None
    except WeightsError:
        Path(dst).unlink(missing_ok=True)
        raise
    if check is not None and (check["max_abs_logit_diff"] > tolerance or check["argmax_mismatch_pixels"]):
        Path(dst).unlink(missing_ok=True)
        raise WeightsError(f"the ONNX model disagrees with PyTorch (max |logit difference| {check['max_abs_logit_diff']:.2g}, "
                           f"tolerance {tolerance:g}; {check['argmax_mismatch_pixels']} pixels of another class): not written")
    return {"meta": meta, "check": check}


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m models.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a train.py checkpoint (results/best_tnet.pth) or a weights file")
    p.add_argument("output", help="the file to write: .onnx for ONNX, anything else for PyTorch weights")
    p.add_argument("--fp32", action="store_true", help="PyTorch weights: keep float32 instead of float16 (ONNX is always float32)")
    p.add_argument("--input-size", type=int, default=None, help="PyTorch weights: the square input side infer.py/evaluate.py "
                   "use by default with them (default: the training patch)")
    p.add_argument("--size", type=int, default=None, help="ONNX: the input side in pixels, fixed in the file (default: the "
                   "size the weights were trained for, else 400: infer.py's default --input-size)")
    p.add_argument("--check-images", type=Path, nargs="*", default=None, metavar="PHOTO",
                   help="ONNX: photos to compare onnxruntime and PyTorch on, as one batch (default: examples/astronaut.jpg; "
                        "none given: no check)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="ONNX: largest allowed absolute logit difference (default: %(default)s)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    args = p.parse_args(argv)
    if args.size is not None and (args.size < 32 or args.size % 8):
        p.error("--size must be a multiple of 8, at least 32 (as infer.py's --input-size)")
    return guarded("export", lambda: export(args), debug=args.debug)


def export(args) -> int:
    onnx = args.output.lower().endswith(".onnx")
    try:
        if onnx:
            checks = [EXAMPLE] if args.check_images is None else args.check_images
            result = export_tnet_onnx(args.checkpoint, args.output, args.size, checks, args.tolerance)
            meta, check = result["meta"], result["check"]
        else:
            meta, check = export_tnet(args.checkpoint, args.output, half=not args.fp32, input_size=args.input_size), None
    except OSError as exc:  # a write error names the output when the OS names no file
        raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or args.output) from None
    print(f"{args.output}: {os.path.getsize(args.output) / 2**20:.1f} MiB, epoch {meta['epoch']}, "
          f"best metric {meta['best_metric']}" + (f", input N×3×{meta['input_size']}×{meta['input_size']}" if onnx else ""))
    if check is not None:
        print(f"checked against PyTorch on {check['images']} photo(s): max |logit difference| "
              f"{check['max_abs_logit_diff']:.2g}, argmax identical on all {check['pixels']} pixels")
    elif onnx:
        print("not checked against PyTorch (no --check-images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
