#!/usr/bin/env python
"""Matte quality and time of the matting step: pymatting (numba) against idphoto.matting (NumPy/SciPy).

    python bench/bench_matting.py                          # ../shared/data/soft_alpha_people at 800 px
    python bench/bench_matting.py --side 800 1280 --kernels 10 25

For each photo with a soft ground-truth alpha, resized to ``--side`` pixels on its longest side:

* alpha — the trimap of the ground truth (alpha > 50, erode/dilate with an elliptical ``--kernels``
  kernel, as training makes it) is matted by pymatting's ``estimate_alpha_cf`` and by
  ``idphoto.matting.closed_form_alpha``; SAD (/1000) and MSE over the unknown band, their largest
  difference, and the CPU time of each;
* foreground — the photo is taken as a foreground F and composited with the ground-truth alpha over
  another photo B (I = αF + (1 − α)B); pymatting's ``estimate_foreground_ml`` and
  ``idphoto.matting.estimate_foreground_ml`` recover F from I and α. The error is that of compositing
  the estimate on a new background, α·|F̂ − F| (SAD /1000 per channel, MSE ×1000) over 0 < α < 1; "none"
  (F̂ = I) is the error without any estimation.

Without the shared photos, synthetic portraits are used (the figures then say little). Times are CPU
seconds of this process (``time.process_time``; minimum of ``--repeat``), which a busy machine
distorts less than wall time; run with one thread (OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1) to compare
like with like. Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from pathlib import Path

from common import REPO, emit, note, synthetic_portrait

SOFT = REPO.parent / "shared" / "data" / "soft_alpha_people"
PFCN_IMAGES = REPO.parent / "shared" / "data" / "pfcn_portrait_seg" / "images"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=SOFT, help="folder with images/<name>.png and alphas/<name>.png")
    p.add_argument("--side", type=int, nargs="+", default=[800], help="longest side(s) the photos are resized to")
    p.add_argument("--kernels", type=int, nargs="+", default=[10, 25],
                   help="erode/dilate kernel(s) of the trimap: 10 as in training, larger for a wider unknown band")
    p.add_argument("--repeat", type=int, default=2, help="runs of each timing; the minimum is reported")
    p.add_argument("--limit", type=int, default=0, help="use only the first N photos (0: all)")
    return p.parse_args(argv)


def load_samples(args):
    import cv2

    if args.data.is_dir():
        names = sorted((args.data / "images").glob("*.png"))
        if args.limit:
            names = names[:args.limit]
        return [(p.stem, cv2.imread(str(p)), cv2.imread(str(args.data / "alphas" / p.name), cv2.IMREAD_GRAYSCALE))
                for p in names], str(args.data.name)
    note(f"{args.data} not found: synthetic portraits instead")
    return [(f"synthetic{i}", *synthetic_portrait(i, 600, 800)) for i in range(args.limit or 2)], "synthetic"


def backgrounds(n: int, seed: int = 0):
    """Other photos to composite over: PFCN portraits mirrored, else smooth random colours."""
    import cv2
    import numpy as np

    files = sorted(PFCN_IMAGES.glob("*.jpg"))[:n] if PFCN_IMAGES.is_dir() else []
    if len(files) == n:
        return [cv2.imread(str(f))[:, ::-1] for f in files]
    rng = np.random.default_rng(seed)
    return [cv2.resize(rng.integers(0, 255, (8, 6, 3), dtype=np.uint8), (600, 800), interpolation=cv2.INTER_CUBIC)
            for _ in range(n)]


def cpu_time(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t)
    return result, best


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2
    import numpy as np

    from idphoto.matting import closed_form_alpha, estimate_foreground_ml
    from idphoto.pipeline import import_pymatting
    from core.metrics import mse, sad
    from core.trimaps import make_trimap

    pymatting = import_pymatting()  # compiled (or loaded) before any timing
    samples, source = load_samples(args)
    bgs = backgrounds(len(samples))
    rows = []
    for side in args.side:
        for (name, image, gt), bg in zip(samples, bgs):
            s = side / max(image.shape[:2])
            size = (round(image.shape[1] * s), round(image.shape[0] * s))
            img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            a_gt = cv2.resize(gt, size, interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0
            for k in args.kernels:
                trimap = make_trimap(a_gt, kernel_size=k)
                band = trimap == 128
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    ref, t_ref = cpu_time(lambda: pymatting.estimate_alpha_cf(rgb, trimap / 255.0), args.repeat)
                new, t_new = cpu_time(lambda: closed_form_alpha(rgb, trimap == 255, trimap == 0), args.repeat)
                rows.append({"photo": name, "side": side, "kernel": k, "size": list(size), "unknown_px": int(band.sum()),
                             "alpha_pymatting": {"SAD": sad(ref, a_gt, band), "MSE": mse(ref, a_gt, band), "cpu_s": t_ref},
                             "alpha_idphoto": {"SAD": sad(new, a_gt, band), "MSE": mse(new, a_gt, band), "cpu_s": t_new},
                             "alpha_max_abs_diff": float(np.abs(ref - new).max())})
                note(f"{name} {size[0]}×{size[1]} kernel {k}: {band.sum()} unknown px; alpha SAD pymatting "
                     f"{rows[-1]['alpha_pymatting']['SAD']:.3f} ({t_ref:.3f} s) / idphoto "
                     f"{rows[-1]['alpha_idphoto']['SAD']:.3f} ({t_new:.3f} s), max diff {rows[-1]['alpha_max_abs_diff']:.1e}")
            # foreground: this photo as F over another photo
            F = img.astype(np.float32) / 255.0
            B = cv2.resize(bg, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            a = a_gt.astype(np.float32) / 255.0
            I = a[..., None] * F + (1 - a[..., None]) * B
            soft = (a > 0) & (a < 1)

            def errors(F_hat):
                d = a[..., None] * np.abs(F_hat - F)
                return {"SAD": float(d[soft].sum() / 1000 / 3), "MSE_x1000": float((d[soft] ** 2).mean() * 1000)}

            ref, t_ref = cpu_time(lambda: pymatting.estimate_foreground_ml(I.astype(np.float64), a.astype(np.float64)), args.repeat)
            new, t_new = cpu_time(lambda: estimate_foreground_ml(I, a), args.repeat)
            rows.append({"photo": name, "side": side, "size": list(size), "soft_px": int(soft.sum()),
                         "foreground_none": errors(I),
                         "foreground_pymatting": {**errors(ref.astype(np.float32)), "cpu_s": t_ref},
                         "foreground_idphoto": {**errors(new), "cpu_s": t_new}})
            note(f"{name} {size[0]}×{size[1]} foreground: composite SAD none {rows[-1]['foreground_none']['SAD']:.3f}, "
                 f"pymatting {rows[-1]['foreground_pymatting']['SAD']:.3f} ({t_ref:.3f} s), "
                 f"idphoto {rows[-1]['foreground_idphoto']['SAD']:.3f} ({t_new:.3f} s)")

    def mean(key, field):
        vals = [r[key][field] for r in rows if key in r]
        return float(np.mean(vals)) if vals else None

    summary = {key: {f: mean(key, f) for f in fields} for key, fields in (
        ("alpha_pymatting", ("SAD", "MSE", "cpu_s")), ("alpha_idphoto", ("SAD", "MSE", "cpu_s")),
        ("foreground_none", ("SAD", "MSE_x1000")), ("foreground_pymatting", ("SAD", "MSE_x1000", "cpu_s")),
        ("foreground_idphoto", ("SAD", "MSE_x1000", "cpu_s")))}
    emit("matting", {"data": source, "side": args.side, "kernels": args.kernels, "repeat": args.repeat},
         {"mean": summary, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
