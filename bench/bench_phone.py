#!/usr/bin/env python
"""A phone photo to an ID photo: the time per stage by photo size, the seed's pipeline beside it, the matte
at the ID photo's size, and how far the framing moves when the photo is worked at the size the ID photo needs.

    python bench/bench_phone.py                              # all parts, 1inch
    python bench/bench_phone.py --parts sizes seed --repeat 5

Two ways to make the same ID photo, in one process, on this machine:

* "id photo" — the default: the photo is worked at about twice the ID photo's size (the faces found on a
  small copy say how large the head is) and the matte is solved there, inside the part of the photo the
  frame can show (``idphoto.maker.work_scale``);
* "whole photo" — ``matte_files``: the whole photo matted at its own size (up to ``--max-side``), as
  every photo was before; it also gives the full-size trimap, alpha and cut-out.

Parts:

* ``sizes`` — ``make_idphoto`` from the file's bytes (decoding included) to the JPEG and its report, per stage,
  on one thread and on all cores (median and best of ``--repeat`` after one warm-up): the first five PFCN portraits
  (600×800), a real 12-megapixel phone photo (``real_id_cases/p13``, 3024×4032) and the same photo at
  1080×1440.
* ``seed`` — the seed's pipeline (the design card's: ResNet-50 PSPNet TNet at 400², argmax, erode/dilate 10,
  nearest resize, pymatting's ``estimate_alpha_cf`` on the whole photo, ``estimate_foreground_ml``, composite
  on white) on the same 600×800 photos, one thread; the network is untrained (same time as trained).
* ``matte`` — the alpha of both ways against the ground truth, area-averaged to the ID photo's scale, inside
  the part of the photo the frame shows: SAD (/1000) over the soft band of the soft-alpha photos, and the
  person IoU on the PFCN validation split (``--pfcn-val``, or the first 40 PFCN photos without it).
* ``framing`` — every photo of ``--framing-dirs`` made both ways (the id photo from the file, read at the size
  it needs, as users get it): the outcome (written or refused) and, for photos written both ways, the change
  of the eye line and of the head height (crown to chin, as the framing read them) on the ID photo, in its
  pixels, and the face's fine detail (Laplacian variance) as a share of the whole-photo path's.

Prints one JSON line on stdout; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

from common import PFCN, REPO, emit, note

SHARED = REPO.parent / "shared" / "data"
PHONE = SHARED / "real_id_cases" / "images" / "p13_asian_woman_metalwall_talking.jpg"
SOFT = SHARED / "soft_alpha_people"
PARTS = ("sizes", "seed", "matte", "framing")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which measurements to make")
    p.add_argument("--spec", default="1inch", help="the ID-photo standard")
    p.add_argument("--repeat", type=int, default=5,
                   help="timed runs per photo (the median is reported, and the best: this machine is shared)")
    p.add_argument("--phone", type=Path, default=PHONE, help="a 12-megapixel phone photo")
    p.add_argument("--pfcn-val", type=Path, default=Path.home() / ".cache" / "tnet-data" / "lists" / "pfcn_val_img.json",
                   help="prepare_aifenge.py's validation list of PFCN (photos never trained on)")
    p.add_argument("--framing-dirs", type=Path, nargs="+",
                   default=[SHARED / "real_id_cases" / "images", SHARED / "unlabeled_portraits"],
                   help="folders (searched with their subfolders) of photos for the framing comparison")
    return p.parse_args(argv)


def set_threads(n: int) -> None:
    import cv2

    cv2.setNumThreads(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def photos_by_size(args) -> dict[str, list[tuple[str, bytes]]]:
    import cv2

    out = {}
    pfcn = sorted((PFCN / "images").glob("*.jpg"))[:5]
    if pfcn:
        out["600x800"] = [(p.name, p.read_bytes()) for p in pfcn]
    if args.phone.is_file():
        data = args.phone.read_bytes()
        image = cv2.imread(str(args.phone))
        small = cv2.resize(image, (1080, 1440), interpolation=cv2.INTER_AREA)
        out["1080x1440"] = [(args.phone.name, cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes())]
        out[f"{image.shape[1]}x{image.shape[0]}"] = [(args.phone.name, data)]
    return out


def time_sizes(args, pipe, opts) -> dict:
    from idphoto.errors import IDPhotoError
    from idphoto.service import make_idphoto

    res = {}
    whole = dataclasses.replace(opts, matte_files=True)
    for threads in (1, os.cpu_count() or 1):
        set_threads(threads)
        for size, photos in photos_by_size(args).items():
            for label, o in (("id photo", opts), ("whole photo", whole)):
                totals, stages = [], []
                for name, data in photos:
                    try:
                        make_idphoto(data, o, pipe)  # warm-up
                        for _ in range(args.repeat):
                            t = time.perf_counter()
                            r = make_idphoto(data, o, pipe)
                            totals.append(time.perf_counter() - t)
                            stages.append(r.timings)
                    except IDPhotoError as exc:
                        note(f"{name}: {exc}")
                if not totals:
                    continue
                keys = sorted({k for s in stages for k in s})
                row = {"total_s": round(statistics.median(totals), 3), "best_s": round(min(totals), 3),
                       "stages_s": {k: round(statistics.median(s.get(k, 0.0) for s in stages), 3) for k in keys}}
                res.setdefault(f"{threads} thread(s)", {}).setdefault(size, {})[label] = row
                note(f"{threads} thread(s), {size}, {label}: {row['total_s']:.3f} s (best {row['best_s']:.3f} s) "
                     f"{row['stages_s']}")
    set_threads(1)
    return res


def seed_pipeline(image_bgr, model, pymatting, mask):
    """The design card's inference, as the seed had it (with its scaling bug fixed): one photo → composite on
    white at the photo's size. The network is untrained, so its classes are noise: the trimap matted is the
    one a trained TNet gives, the ground-truth ``mask``'s erode/dilate band (same size, same work)."""
    import cv2
    import numpy as np
    import torch

    from core.trimaps import erode_dilate, trimap_to_image
    from datasets.transforms import image_to_tensor

    small = cv2.cvtColor(cv2.resize(image_bgr, (400, 400), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
    with torch.inference_mode():
        classes = model(image_to_tensor(small).unsqueeze(0)).argmax(1)[0].numpy()
    trimap = erode_dilate(trimap_to_image(classes), 10)   # the seed's work, whose result is then replaced
    trimap = erode_dilate(cv2.resize(mask, (400, 400), interpolation=cv2.INTER_NEAREST), 10)
    h, w = image_bgr.shape[:2]
    trimap = cv2.resize(trimap, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float64) / 255.0
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0
    alpha = pymatting.estimate_alpha_cf(rgb, trimap)
    fg = pymatting.estimate_foreground_ml(rgb, alpha)
    return (fg * alpha[..., None] + (1 - alpha[..., None])) * 255


def time_seed(args, pipe, opts, ours: dict | None) -> dict:
    import contextlib
    import io

    import cv2
    import torch

    from idphoto.pipeline import import_pymatting
    from models import TNet

    set_threads(1)
    torch.manual_seed(0)
    model = TNet("resnet50").eval()
    pymatting = import_pymatting()
    photos = photos_by_size(args).get("600x800", [])
    times = []
    for name, data in photos:
        image = cv2.imdecode(__import__("numpy").frombuffer(data, "uint8"), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(PFCN / "masks" / (Path(name).stem + ".png")), cv2.IMREAD_GRAYSCALE)
        with contextlib.redirect_stdout(io.StringIO()):
            seed_pipeline(image, model, pymatting, mask)  # warm-up (numba compiles on a machine's first use)
            t = time.perf_counter()
            seed_pipeline(image, model, pymatting, mask)
        times.append(time.perf_counter() - t)
    res = {"seed_600x800_s": round(statistics.median(times), 3)} if times else {}
    ours_s = (ours or {}).get("1 thread(s)", {}).get("600x800", {}).get("id photo", {}).get("total_s")
    if times and ours_s:
        res["ours_600x800_s"] = ours_s
        res["ratio"] = round(res["seed_600x800_s"] / ours_s, 1)
    note(f"seed pipeline: {res}")
    return res


def matte_samples(args):
    import cv2

    soft = [(p.name, cv2.imread(str(p)), cv2.imread(str(SOFT / "alphas" / p.name), cv2.IMREAD_GRAYSCALE), True)
            for p in sorted((SOFT / "images").glob("*.png"))]
    if args.pfcn_val.is_file():
        lists = args.pfcn_val.parent
        imgs = json.loads(args.pfcn_val.read_text())
        masks = json.loads((lists / args.pfcn_val.name.replace("_img", "_alpha")).read_text())
        pairs = [((lists / a).resolve(), (lists / b).resolve()) for a, b in zip(imgs, masks)]
        source = "PFCN validation split"
    else:
        pairs = [(p, PFCN / "masks" / (p.stem + ".png")) for p in sorted((PFCN / "images").glob("*.jpg"))[:40]]
        source = "first 40 PFCN photos (no validation list)"
    hard = [(a.name, cv2.imread(str(a)), cv2.imread(str(b), cv2.IMREAD_GRAYSCALE), False) for a, b in pairs]
    return soft + [h for h in hard if h[1] is not None and h[2] is not None], source


def compare_mattes(args, pipe, spec) -> dict:
    import cv2
    import numpy as np

    from idphoto.maker import work_scale

    samples, source = matte_samples(args)
    sad = {"id photo": [], "whole photo": []}
    iou = {"id photo": [], "whole photo": []}
    skipped = 0
    for name, image, gt, is_soft in samples:
        plan = work_scale(image, spec)
        if plan.region is None:  # no face to scale by: both ways are the same
            skipped += 1
            continue
        h, w = image.shape[:2]
        out_scale = plan.canvas                           # ID-photo pixels per photo pixel
        size = (max(1, round(w * out_scale)), max(1, round(h * out_scale)))
        area = lambda a: cv2.resize(a.astype(np.float32), size, interpolation=cv2.INTER_AREA)  # noqa: E731
        small = pipe.run(plan.image, plan.matte, plan.region).alpha
        whole = pipe.run(image).alpha
        x0, y0, x1, y1 = (round(v / plan.photo * out_scale) for v in plan.region)
        truth = area(gt / 255.0)[y0:y1, x0:x1]
        for label, alpha in (("id photo", small), ("whole photo", whole)):
            a = area(alpha)[y0:y1, x0:x1]
            if is_soft:
                band = cv2.dilate(((truth > 0.01) & (truth < 0.99)).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
                sad[label].append(float(np.abs(a - truth)[band].sum() / 1000))
            else:
                p, t = a >= 0.5, truth >= 0.5
                iou[label].append(float((p & t).sum() / max((p | t).sum(), 1)))
    res = {"iou_source": source, "photos_without_a_face": skipped}
    for label in sad:
        if sad[label]:
            res[f"soft_sad_{label.replace(' ', '_')}"] = round(float(np.mean(sad[label])), 3)
        if iou[label]:
            res[f"person_iou_{label.replace(' ', '_')}"] = round(float(np.mean(iou[label])), 4)
    res["soft_photos"], res["iou_photos"] = len(sad["id photo"]), len(iou["id photo"])
    note(f"matte at the ID photo's size: {res}")
    return res


def face_detail(photo) -> float:
    """Fine detail of the face on the ID photo: the variance of the Laplacian of its grey pixels inside the
    middle of the face box (skin, eyes, brows; no background)."""
    import cv2

    f, p = photo.face, photo.placement
    (x0, y0), (x1, y1) = p.apply(f.x + 0.2 * f.w, f.y + 0.2 * f.h), p.apply(f.x + 0.8 * f.w, f.y + 0.8 * f.h)
    crop = photo.image[max(int(y0), 0):int(y1), max(int(x0), 0):int(x1)]
    return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()) if crop.size else float("nan")


def compare_framing(args, pipe, opts) -> dict:
    from idphoto import load_image
    from idphoto.errors import IDPhotoError
    from idphoto.image_io import IMAGE_EXTENSIONS, open_photo
    from idphoto.service import matte_and_frame

    resolved = opts.validate()
    rows, worst_eye, worst_head, differ, retried = [], 0.0, 0.0, [], 0
    files = [p for d in args.framing_dirs if d.is_dir() for p in sorted(d.rglob("*"))
             if p.suffix.lower() in IMAGE_EXTENSIONS]
    for path in files:
        image = load_image(path)
        made = {}
        for whole in (True, False):
            timings = {}
            try:   # the ID photo as users get it: the file read at the size it needs
                _, photo = matte_and_frame(image if whole else open_photo(path), opts, resolved, pipe, timings, whole)
                made[whole] = photo
            except IDPhotoError as exc:
                made[whole] = str(exc)
            retried += (not whole) and "retry" in timings
        a, b = made[True], made[False]
        if isinstance(a, str) or isinstance(b, str):
            if isinstance(a, str) != isinstance(b, str):
                differ.append(path.name)
            continue
        if a.face is None or b.face is None or a.head is None or b.head is None:
            continue
        eye = abs(a.placement.apply(*a.face.landmarks.eye_mid)[1] - b.placement.apply(*b.face.landmarks.eye_mid)[1]) \
            if a.face.landmarks is not None and b.face.landmarks is not None else 0.0
        head = abs((a.head[1] - a.head[0]) - (b.head[1] - b.head[0]))
        worst_eye, worst_head = max(worst_eye, eye), max(worst_head, head)
        rows.append({"photo": path.name, "eye_line_px": round(eye, 2), "head_height_px": round(head, 2),
                     "face_detail": round(face_detail(b) / face_detail(a), 3)})
    res = {"photos": len(files), "written_both_ways": len(rows), "outcome_differs": differ,
           "retried_whole": retried, "worst_eye_line_px": round(worst_eye, 2), "worst_head_height_px": round(worst_head, 2),
           "mean_eye_line_px": round(statistics.mean(r["eye_line_px"] for r in rows), 3) if rows else None,
           "mean_head_height_px": round(statistics.mean(r["head_height_px"] for r in rows), 3) if rows else None,
           # the face's fine detail on the ID photo, as a share of the whole-photo path's
           "face_detail_median": round(statistics.median(r["face_detail"] for r in rows), 3) if rows else None,
           "face_detail_worst": min((r["face_detail"] for r in rows), default=None),
           "face_detail_by_photo": {r["photo"]: r["face_detail"] for r in rows if r["face_detail"] < 0.9}}
    note(f"framing: {res}")
    return res


def main(argv=None):
    args = parse_args(argv)
    from idphoto.options import IDPhotoOptions
    from idphoto.pipeline import Pipeline
    from idphoto.runner import open_trimap_model

    set_threads(1)
    opts = IDPhotoOptions(spec=args.spec)
    pipe = Pipeline.from_options(open_trimap_model(None, "cpu", 1), opts)
    spec = opts.validate().spec
    figures = {}
    if "sizes" in args.parts:
        figures["sizes"] = time_sizes(args, pipe, opts)
    if "seed" in args.parts:
        figures["seed"] = time_seed(args, pipe, opts, figures.get("sizes"))
    if "matte" in args.parts:
        figures["matte"] = compare_mattes(args, pipe, spec)
    if "framing" in args.parts:
        figures["framing"] = compare_framing(args, pipe, opts)
    emit("phone", {"spec": args.spec, "repeat": args.repeat, "parts": args.parts}, figures)


if __name__ == "__main__":
    main()
