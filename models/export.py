"""Export a training checkpoint as a compact inference weights file (fp16 by default).

    python -m models.export results/best_tnet.pth weights/tnet_mobilenetv3_pfcn.pth

The file holds ``{"arch", "model", "meta"}``: what :func:`models.load_tnet` reads; the optimiser state
and the training arguments' paths are dropped (the epoch, metric and recipe are kept in ``meta``).
"""
from __future__ import annotations

import argparse
import os
import sys


from utils import save_checkpoint

from .weights import WeightsError, _torch_load, _unwrap_state, load_tnet_state, tnet_for

RECIPE_KEYS = ("config", "backbone", "decoder", "pretrained", "patch", "batch_size", "epochs", "lr", "weight_decay",
               "cosine", "dice_weight", "class_weights", "scale_prob", "scale_range", "crop_prob", "no_vflip",
               "portrait_crop_prob", "rotate_prob", "rotate_degrees", "bg_prob", "color_prob", "blur_prob", "noise_prob",
               "jpeg_prob", "dataname", "repeat", "seed", "amp", "channels_last")


def export_tnet(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True, input_size: int | None = None) -> dict:
    """Write ``dst`` from the checkpoint ``src``; returns its ``meta``. ``input_size`` (default: the training
    patch) is the square side inference feeds the model unless told otherwise."""
    obj = _torch_load(src)
    try:
        state = _unwrap_state(obj)
    except WeightsError as exc:
        raise WeightsError(f"{src}: {exc}") from None
    model = tnet_for(obj, src)
    arch = model.arch
    load_tnet_state(model, state)  # refuse a file that does not fit before writing anything
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    args = obj.get("args") if isinstance(obj.get("args"), dict) else {}
    meta = {"epoch": obj.get("epoch"), "best_metric": obj.get("best_metric"),
            "recipe": {k: args[k] for k in RECIPE_KEYS if k in args}, "dtype": "float16" if half else "float32"}
    size = input_size or args.get("patch")
    if size:
        meta["input_size"] = int(size)
    save_checkpoint({"arch": arch, "model": weights, "meta": meta}, dst)
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a train.py checkpoint (results/best_tnet.pth)")
    p.add_argument("output", help="the weights file to write")
    p.add_argument("--fp32", action="store_true", help="keep float32 instead of float16")
    p.add_argument("--input-size", type=int, default=None, help="square input side that infer.py/evaluate.py use by "
                   "default with these weights (default: the training patch)")
    args = p.parse_args(argv)
    try:
        meta = export_tnet(args.checkpoint, args.output, half=not args.fp32, input_size=args.input_size)
    except WeightsError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the output can't be written (a missing folder is made; a full disk is not)
        print(f"export: error: {exc.filename or args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{args.output}: {os.path.getsize(args.output) / 2**20:.1f} MiB, epoch {meta['epoch']}, "
          f"best metric {meta['best_metric']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
