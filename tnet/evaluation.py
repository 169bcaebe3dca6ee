"""Scoring a TNet checkpoint, and the matting pipeline behind it, against ground-truth masks or mattes.

``evaluate.py`` is the command line over this module; the benchmarks call it directly.

* the samples: :func:`samples_from_lists` (prepare_aifenge.py's lists) or :func:`samples_from_folders`
  (photos and masks paired by file stem), and :func:`read_ground_truth`;
* one image: :func:`evaluate_one` reads it, runs TNet and the matting and returns an :class:`Evaluated`,
  whose :class:`ImageScores` fields are the columns of ``per_image.csv``; :func:`score_image` computes the
  figures from the arrays alone;
* all images: :class:`EvalAccumulator` (``update()`` per image, ``summary()`` at the end: pooled and
  per-image means), filled by :func:`evaluate_samples`; :func:`write_outputs` and :func:`format_table`
  give the files and the printed table.

Photos are read by the project's one reader (:func:`core.fileio.decode_image`: Pillow, EXIF rotation
applied), so evaluation sees a photo exactly as ``infer.py`` does.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import EvalError
from core.fileio import UnreadableImage, atomic_write_bytes, decode_image, read_image
from core.trimaps import make_trimap, trimap_to_classes

SOFT_MIN_SHARE = 0.01  # share of 0 < α < 255 pixels above which a ground truth counts as a soft matte
STAGES = ("t_read", "t_trimap", "t_alpha", "t_metrics")


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
    from idphoto.errors import IDPhotoError
    from idphoto.image_io import list_images

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
def read_ground_truth(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """GT alpha as H×W uint8 0–255 at the photo's size: a mask, a grayscale matte or an RGBA cut-out's alpha.

    A 0/1 mask is scaled to 0/255; a ground truth of another size is resized (nearest neighbour when it is
    binary, so it stays binary; bilinear for a soft matte). Returns (alpha, resized?).
    """
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


def read_gt_trimap(sample: Sample, gt_alpha: np.ndarray) -> np.ndarray:
    """The sample's own GT trimap (lists), at the photo's size; or the training trimap of its GT alpha."""
    if sample.trimap is None:
        return make_trimap(gt_alpha)
    gt_trimap = read_image(sample.trimap, cv2.IMREAD_GRAYSCALE)
    if gt_trimap is None:
        raise EvalError(f"{sample.trimap}: cannot read the ground-truth trimap")
    h, w = gt_alpha.shape
    if gt_trimap.shape != (h, w):
        gt_trimap = cv2.resize(gt_trimap, (w, h), interpolation=cv2.INTER_NEAREST)
    return gt_trimap


# ------------------------------------------------------------------------------------------- one image
@dataclass
class ImageScores:
    """The figures of one image. The fields, in this order, are the columns of ``per_image.csv``."""

    name: str
    width: int
    height: int
    soft_gt: int                          # 1 when the ground truth is a soft matte (→ matting errors)
    trimap_mIoU: float                    # TNet's argmax trimap against the GT trimap
    trimap_acc: float
    trimap_IoU_bg: float
    trimap_IoU_unknown: float
    trimap_IoU_fg: float
    trimap_refined_mIoU: float            # the refined trimap (erode/dilate) the matting receives
    iou_tnet: float                       # person mask: TNet's foreground + unknown against GT alpha ≥ 128
    iou_alpha: float | None = None        # person mask: the pipeline's alpha ≥ 0.5 (None without matting)
    sad: float | None = None              # matting errors over the GT unknown band (soft ground truth only)
    mse: float | None = None
    grad: float | None = None
    conn: float | None = None
    t_read: float | None = None           # seconds of each stage
    t_trimap: float | None = None
    t_alpha: float | None = None
    t_metrics: float | None = None

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def csv_row(self) -> dict:
        """Empty cells for missing figures, floats to 6 decimals."""
        return {k: "" if v is None else round(v, 6) if isinstance(v, float) else v
                for k, v in dataclasses.asdict(self).items()}


CSV_FIELDS = ImageScores.columns()


@dataclass
class Evaluated:
    """One image's scores and what the pooled figures need: the 3×3 confusion matrices (rows = truth) of
    TNet's argmax trimap and of the refined trimap, and whether the ground truth had to be resized."""

    scores: ImageScores
    trimap_cm: object
    refined_cm: object
    gt_resized: bool = False


def score_image(name: str, raw: np.ndarray, refined: np.ndarray, gt_trimap: np.ndarray, gt_alpha: np.ndarray,
                alpha: np.ndarray | None, soft_min_share: float = SOFT_MIN_SHARE) -> Evaluated:
    """The figures of one image from its arrays: TNet's trimap ``raw`` and the ``refined`` one (0/128/255),
    the GT trimap and alpha (uint8), and the pipeline's ``alpha`` in [0, 1] (None: no matting)."""
    import torch

    from core.metrics import mask_iou, matting_errors, soft_share

    from core.metrics import ConfusionMatrix

    gt_classes = torch.from_numpy(trimap_to_classes(gt_trimap))
    cm, cm_refined = ConfusionMatrix(3), ConfusionMatrix(3)
    cm.update(torch.from_numpy(trimap_to_classes(raw)), gt_classes)
    cm_refined.update(torch.from_numpy(trimap_to_classes(refined)), gt_classes)
    tri = cm.summary()
    gt_mask = gt_alpha >= 128
    soft = soft_share(gt_alpha) >= soft_min_share
    h, w = gt_alpha.shape
    scores = ImageScores(name, w, h, int(soft), tri["mIoU"], tri["pixel_acc"], tri["IoU_bg"], tri["IoU_unknown"],
                         tri["IoU_fg"], cm_refined.mean_iou(), mask_iou(raw >= 128, gt_mask))
    if alpha is not None:
        scores.iou_alpha = mask_iou(alpha >= 0.5, gt_mask)
        if soft:
            for key, value in matting_errors(alpha, gt_alpha, gt_trimap == 128).items():
                setattr(scores, key, value)
    return Evaluated(scores, cm, cm_refined)


def evaluate_one(sample: Sample, model, options, device) -> Evaluated:
    """Read one sample, run TNet and (unless ``options.no_matting``) the matting on it, and score it.

    ``options`` carries evaluate.py's settings: ``input_size``, ``tta``, ``refine_kernel``, ``no_matting``,
    ``matting``, ``max_side`` and ``soft_min_share``."""
    import idphoto  # looked up at each call, so a test can stand in for the network or the matting
    from idphoto.runner import model_input_size

    t0 = time.perf_counter()
    try:
        image = decode_image(sample.image)
    except UnreadableImage as exc:
        raise EvalError(f"{sample.image}: cannot read the photo ({str(exc).removeprefix(f'{sample.image}: ')})") from None
    gt, resized = read_ground_truth(sample.alpha, image.shape[:2])
    gt_trimap = read_gt_trimap(sample, gt)
    t1 = time.perf_counter()
    # TNet's own trimap is scored; the refined one (wider unknown band) is what the matting gets, as in infer.py
    raw, trimap = idphoto.predict_trimap_pair(model, image, options.input_size or model_input_size(model), device,
                                              options.refine_kernel, flip=options.tta == "flip")
    t2 = time.perf_counter()
    alpha = None
    if not options.no_matting:
        alpha = idphoto.estimate_alpha(image, trimap, options.matting, options.max_side or None)
    t3 = time.perf_counter()
    result = score_image(sample.name, raw, trimap, gt_trimap, gt, alpha, options.soft_min_share)
    result.gt_resized = resized
    s = result.scores
    s.t_read, s.t_trimap, s.t_alpha, s.t_metrics = t1 - t0, t2 - t1, (t3 - t2) if alpha is not None else None, \
        time.perf_counter() - t3
    return result


# ------------------------------------------------------------------------------------------- all images
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


class EvalAccumulator:
    """Collects the images of one evaluation: :meth:`update` with each :class:`Evaluated` (or :meth:`fail`
    with a sample that could not be scored), :meth:`summary` at the end.

    The trimap figures are given twice: pooled over all pixels of all images (from the summed confusion
    matrices) and as the mean of the per-image figures; the matting errors are means over the images whose
    ground truth is a soft matte."""

    def __init__(self, matting: bool = True, soft_min_share: float = SOFT_MIN_SHARE, refine_kernel: int = 10):
        from core.metrics import ConfusionMatrix

        self.matting, self.soft_min_share, self.refine_kernel = matting, soft_min_share, refine_kernel
        self.rows: list[ImageScores] = []
        self.failed: list[dict] = []
        self.trimap_cm, self.refined_cm = ConfusionMatrix(3), ConfusionMatrix(3)
        self.gt_resized = 0

    def update(self, result: Evaluated) -> None:
        self.rows.append(result.scores)
        self.trimap_cm.matrix += result.trimap_cm.matrix
        self.refined_cm.matrix += result.refined_cm.matrix
        self.gt_resized += bool(result.gt_resized)

    def fail(self, name: str, error: str) -> None:
        self.failed.append({"name": name, "error": error})

    def _column(self, key: str):
        return [getattr(r, key) for r in self.rows]

    def summary(self, meta: dict | None = None) -> dict:
        """The figures of all images so far, after ``meta`` (what was evaluated, how); JSON-safe: NaN
        becomes None."""
        soft = [r for r in self.rows if r.sad is not None]
        matting = {"images": len(soft),
                   "region": "unknown band (128) of the ground-truth trimap",
                   "units": "SAD, Grad and Conn in thousands (sum / 1000); MSE per pixel of the region, alpha in [0, 1]",
                   **{k: _mean(getattr(r, k) for r in soft) for k in ("sad", "mse", "grad", "conn")}}
        if not self.matting:
            matting["skipped"] = "--no-matting"
        elif not soft:
            matting["skipped"] = (f"the ground truth is binary (fewer than {self.soft_min_share:.1%} of the pixels "
                                  f"strictly between 0 and 255): no matting errors")
        elif len(soft) < len(self.rows):
            matting["note"] = f"{len(self.rows) - len(soft)} image(s) with a binary ground truth are left out"
        return _clean({
            **(meta or {}),
            "images": len(self.rows),
            "gt_resized": self.gt_resized,
            "trimap": {"scored": "TNet's argmax trimap at the photo's size (probabilities resized bilinearly), "
                                 "before the erode/dilate refinement",
                       "pooled": self.trimap_cm.summary(),  # over all pixels of all images
                       "mean_per_image": {k: _mean(self._column(f"trimap_{k}"))
                                          for k in ("mIoU", "acc", "IoU_bg", "IoU_unknown", "IoU_fg")},
                       "refined_mIoU": {"pooled": self.refined_cm.mean_iou(),
                                        "mean_per_image": _mean(self._column("trimap_refined_mIoU")),
                                        "refine_kernel": self.refine_kernel}},
            "person_iou": {"tnet_fg_unknown": _mean(self._column("iou_tnet")),  # of the argmax trimap
                           "alpha_ge_0.5": _mean(self._column("iou_alpha")),
                           "gt_mask": "GT alpha >= 128"},
            "matting": matting,
            "seconds_per_image": {k[2:]: _mean(self._column(k)) for k in STAGES},
        })


def evaluate_samples(samples: list[Sample], model, options, device, quiet: bool = False) -> tuple[EvalAccumulator, int]:
    """Every sample through :func:`evaluate_one`, with a progress bar on stderr; a sample that can't be read
    is reported and counted as failed, not fatal. Returns (the accumulator, the number of matting warnings)."""
    from tqdm import tqdm

    from idphoto.pipeline import MattingWarning

    acc = EvalAccumulator(not options.no_matting, options.soft_min_share, options.refine_kernel)
    warned = 0
    bar = tqdm(samples, desc="evaluate", unit="img", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    for sample in bar:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", MattingWarning)
                result = evaluate_one(sample, model, options, device)
        except EvalError as exc:
            acc.fail(sample.name, str(exc))
            bar.write(f"evaluate.py: skipped: {exc}", file=sys.stderr)
            continue
        warned += sum(issubclass(w.category, MattingWarning) for w in caught)
        acc.update(result)
    bar.close()
    return acc, warned


# ---------------------------------------------------------------------------------------------- outputs
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


def write_outputs(out_dir: Path, rows: list[ImageScores], summary: dict) -> tuple[Path, Path]:
    """``per_image.csv`` (one row per image, the :class:`ImageScores` columns) and ``summary.json``, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.csv_row() for r in rows)
    csv_path, json_path = out_dir / "per_image.csv", out_dir / "summary.json"
    atomic_write_bytes(csv_path, buf.getvalue().encode("utf-8"))
    atomic_write_bytes(json_path, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return csv_path, json_path
