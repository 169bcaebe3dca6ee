"""Converting raw AiFenGe / AISegment portraits into img/, alpha/, trimap/ folders and JSON lists for training:
``python prepare_aifenge.py`` parses its flags and calls :func:`convert_dataset`.

Two raw layouts are recognised from the folder:
  * AISegment "Matting_Human_Half": clip_img/<group>/clip_<nn>/<name>.jpg + matting/<group>/matting_<nn>/<name>.png
    (an RGBA cut-out whose 4th channel is the alpha matte);
  * pairs: images/<id>.jpg + masks/<id>.png (a single-channel mask or alpha).

A run is resumable: each converted sample is journalled (with the trimap settings it was made with), every
file is written atomically, and a re-run skips what is done and removes what an interrupted run left half-written.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.cli import EXIT_ERROR, EXIT_OK, check_writable_dir
from core.errors import PrepareError
from core.fileio import atomic_path, atomic_write_bytes, read_image, write_image
from core.runtime import SerialPool
from core.trimaps import make_trimap

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


# --------------------------------------------------------------------------------------------- discovery
def find_samples(src: Path) -> tuple[str, list[dict], list[tuple[str, str]]]:
    """Pair photos with mattes in one pass over each tree (a dict by stem: linear, not quadratic).

    Returns (layout, samples, problems); a sample is {name, group, photo, matte}.
    """
    if (src / "clip_img").is_dir() and (src / "matting").is_dir():
        layout, photo_root, matte_root = "aisegment", src / "clip_img", src / "matting"
    elif (src / "images").is_dir() and (src / "masks").is_dir():
        layout, photo_root, matte_root = "pairs", src / "images", src / "masks"
    else:
        raise PrepareError(f"{src} holds neither clip_img/ + matting/ (AISegment) nor images/ + masks/ (pairs)")

    def group_of(path: Path, root: Path, stem: str) -> str:
        # AISegment: the shoot folder right under the root; pairs: every sample is its own group
        return path.relative_to(root).parts[0] if layout == "aisegment" else stem

    mattes: dict[tuple[str, str], Path] = {}
    for m in matte_root.rglob("*"):
        if m.suffix.lower() == ".png" and m.is_file():
            stem = m.stem[:-5] if layout == "pairs" and m.stem.endswith("_mask") else m.stem
            mattes[(group_of(m, matte_root, stem), stem)] = m
    samples, problems, seen, paired = [], [], set(), set()
    for p in sorted(photo_root.rglob("*")):
        if p.suffix.lower() not in PHOTO_SUFFIXES or not p.is_file():
            continue
        group = group_of(p, photo_root, p.stem)
        matte = mattes.get((group, p.stem))
        if matte is None:
            problems.append((str(p), "no matte with the same name"))
            continue
        paired.add((group, p.stem))
        if p.stem in seen:
            problems.append((str(p), "duplicate sample name"))
        else:
            seen.add(p.stem)
            samples.append({"name": p.stem, "group": group, "photo": str(p), "matte": str(matte)})
    problems += sorted((str(m), "matte without a photo") for key, m in mattes.items() if key not in paired)
    return layout, samples, problems


# ------------------------------------------------------------------------------------------ conversion
def sample_paths(out: Path, sample: dict) -> dict[str, Path]:
    suffix = Path(sample["photo"]).suffix.lower()
    return {"img": out / "img" / (sample["name"] + suffix),
            "alpha": out / "alpha" / (sample["name"] + ".png"),
            "trimap": out / "trimap" / (sample["name"] + ".png")}


def is_truncated_jpeg(path: str) -> bool:
    """Whether a file starts as a JPEG but lacks the end-of-image marker it must end with (a download or
    copy cut short)."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64))
        return b"\xff\xd9" not in f.read()


def convert(job: tuple) -> tuple[str, str | None, bool]:
    """Convert one sample; returns (name, problem or None, skipped_as_done). Runs in worker processes.

    Any failure (unreadable input, a full disk…) becomes the sample's problem, never a crash of the run.
    """
    sample, out, layout, threshold, kernel, redo = job
    paths = sample_paths(out, sample)
    # files are written atomically, so present = complete; ``redo`` when they were made with other settings
    if not redo and all(p.is_file() for p in paths.values()):
        return sample["name"], None, True
    try:
        return sample["name"], convert_sample(sample, paths, layout, threshold, kernel), False
    except Exception as exc:
        return sample["name"], f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", False


def convert_sample(sample: dict, paths: dict, layout: str, threshold: int, kernel: int) -> str | None:
    """Write img/, alpha/ and trimap/ for one sample; returns the reason it was skipped, or None."""
    photo = read_image(sample["photo"], cv2.IMREAD_COLOR)
    if photo is None:  # the reader refuses truncated files too; the report says which ones they were
        truncated = Path(sample["photo"]).suffix.lower() in (".jpg", ".jpeg") and is_truncated_jpeg(sample["photo"])
        return "photo is a truncated JPEG" if truncated else "photo unreadable"
    matte = read_image(sample["matte"], cv2.IMREAD_UNCHANGED)
    if matte is None:
        return "matte unreadable"
    has_alpha = matte.ndim == 3 and matte.shape[2] == 4
    if layout == "aisegment" and not has_alpha:
        return "matte has no alpha channel"
    if has_alpha:
        alpha = matte[:, :, 3]
    else:  # a pairs-layout mask: grey, or colour read as grey
        alpha = matte if matte.ndim == 2 else cv2.cvtColor(matte[:, :, :3], cv2.COLOR_BGR2GRAY)
    if alpha.dtype != np.uint8:  # 16-bit PNG
        alpha = (alpha.astype(np.float32) * (255.0 / np.iinfo(alpha.dtype).max)).round().astype(np.uint8)
    h, w = photo.shape[:2]
    if alpha.shape != (h, w):
        if layout == "aisegment" or abs(alpha.shape[1] / alpha.shape[0] - w / h) > 0.02:
            return f"matte is {alpha.shape[1]}×{alpha.shape[0]}, photo {w}×{h}"
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)  # same aspect, smaller mask
    write_image(paths["alpha"], alpha)
    write_image(paths["trimap"], make_trimap(alpha, threshold, kernel))
    with atomic_path(paths["img"]) as tmp:  # the photo's own bytes: no re-encoding
        shutil.copyfile(sample["photo"], tmp)
    return None


JOURNAL = "prepare_done.tsv"     # one line per converted sample: its settings, a tab, its name
PARAMS = "prepare_params.json"   # the settings of the last run that finished


def settings_key(threshold: int, kernel: int) -> str:
    return f"threshold={threshold},kernel={kernel}"


def read_journal(out: Path, key: str) -> dict[str, str]:
    """{sample name: settings key it was converted with}. Which settings made each sample's files is recorded
    per sample as it finishes, so a run interrupted halfway through a change of settings is never taken for
    a finished one: its samples still on the old settings are converted again.

    Folders converted before the journal existed: their files are trusted when the finished run recorded
    in ``prepare_params.json`` had the same settings; otherwise they are all converted again."""
    journal = out / JOURNAL
    if journal.is_file():
        done = {}
        for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[0] and parts[1]:  # a torn last line (power cut) is ignored
                done[parts[1]] = parts[0]
        return done
    try:
        old = json.loads((out / PARAMS).read_text())
        trusted = settings_key(old["threshold"], old["kernel"]) == key
    except (OSError, ValueError, KeyError, TypeError):
        trusted = False
    return {p.stem: key for p in (out / "trimap").glob("*.png")} if trusted else {}


class Journal:
    """Appends ``key<TAB>name`` lines, each flushed at once (a Ctrl-C or a crash loses no finished sample)."""

    def __init__(self, out: Path, key: str):
        self.path, self.key = out / JOURNAL, key
        out.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a", encoding="utf-8")

    def add(self, name: str) -> None:
        try:
            self.file.write(f"{self.key}\t{name}\n")
            self.file.flush()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass


def remove_unfinished(out: Path, lists_dir: Path, name: str) -> int:
    """Delete the temp files that a killed run left half-written (atomic writes name them ``.<file>.<random>.tmp``
    beside their target); a finished file is never one of them, so the re-run's result is the uninterrupted one's."""
    removed = 0
    places = [(out / kind, "") for kind in ("img", "alpha", "trimap")] + [(out, ""), (lists_dir, f"{name}_")]
    for folder, prefix in places:
        if folder.is_dir():
            for entry in os.scandir(folder):
                if entry.name.startswith("." + prefix) and entry.name.endswith(".tmp") and entry.is_file():
                    os.unlink(entry.path)
                    removed += 1
    return removed


def split_by_group(samples: list[dict], val_fraction: float) -> tuple[list[dict], list[dict]]:
    """Deterministic split: whole shoot groups go to validation, in sha1 order of the group name, until
    ``val_fraction`` of the samples is reached — near-duplicates never straddle train and val."""
    if val_fraction <= 0:
        return samples, []
    sizes = Counter(s["group"] for s in samples)
    order = sorted(sizes, key=lambda g: hashlib.sha1(g.encode()).hexdigest())
    target = max(1, round(val_fraction * len(samples)))
    val_groups, count = set(), 0
    for g in order[:-1]:  # always keep at least one group for training
        if count >= target:
            break
        val_groups.add(g)
        count += sizes[g]
    return [s for s in samples if s["group"] not in val_groups], [s for s in samples if s["group"] in val_groups]


def write_lists(samples: list[dict], out: Path, lists_dir: Path, name: str) -> list[Path]:
    """``<lists_dir>/<name>_{img,alpha,trimap}.json``, paths relative to lists_dir, index i = one sample."""
    written = []
    for kind in ("img", "alpha", "trimap"):
        paths = [os.path.relpath(sample_paths(out, s)[kind], lists_dir) for s in samples]
        target = lists_dir / f"{name}_{kind}.json"
        atomic_write_bytes(target, json.dumps(paths, indent=0).encode())
        written.append(target)
    return written


def init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled once, by the main process


def convert_dataset(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if not args.src.is_dir():
        raise PrepareError(f"--src {args.src} is not a folder")
    check_writable_dir(args.out, "--out")  # a file in the way or a read-only folder: now, not after the work
    check_writable_dir(args.lists_dir, "--lists-dir")
    layout, samples, problems = find_samples(args.src)
    if not samples:
        raise PrepareError(f"no photo/matte pairs found under {args.src}")
    unpaired = Counter(why for _, why in problems)
    print(f"{layout} layout: {len(samples)} pairs found in {args.src}"
          + "".join(f", {unpaired[why]} {what}" for why, what in (("no matte with the same name", "photos without a matte"),
                                                                   ("matte without a photo", "mattes without a photo"))
                    if unpaired[why]))

    removed = remove_unfinished(args.out, args.lists_dir, args.name)
    if removed:
        print(f"  removed {removed} unfinished temp files of an interrupted run")
    params = {"threshold": args.threshold, "kernel": args.kernel}
    key = settings_key(args.threshold, args.kernel)
    converted_with = read_journal(args.out, key)
    stale = [s for s in samples if converted_with.get(s["name"]) != key
             and all(p.is_file() for p in sample_paths(args.out, s).values())]
    if stale:
        print(f"  trimap settings changed for {len(stale)} converted samples (made with other settings, or by an "
              f"interrupted run with other settings): converting them again with {params}")
    jobs = [(s, args.out, layout, args.threshold, args.kernel, converted_with.get(s["name"]) != key) for s in samples]
    done, skipped_done = set(), 0
    # parallelism comes from the processes; set before the fork (OpenCV's thread pool does not survive one)
    cv2.setNumThreads(1)
    journal = Journal(args.out, key)
    try:
        with Pool(args.workers, initializer=init_worker) if args.workers > 1 else SerialPool() as pool:
            for name, problem, was_done in tqdm(pool.imap_unordered(convert, jobs, chunksize=8), total=len(jobs),
                                                 desc="converting", unit="img", dynamic_ncols=True):
                if problem:
                    problems.append((name, problem))
                else:
                    done.add(name)
                    skipped_done += was_done
                    if not was_done:
                        journal.add(name)
    finally:
        journal.close()
    good = [s for s in samples if s["name"] in done]

    # the report first: it is what explains a short data set, and it is small
    report = args.out / "prepare_report.txt"
    report_text = "".join(f"{where}\t{why}\n" for where, why in sorted(problems))
    try:
        atomic_write_bytes(report, report_text.encode())
    except OSError:
        if problems:
            print(f"the report {report} could not be written; the skipped files:\n{report_text}", end="")
        raise
    # compact the journal to one line per converted sample, then record the finished run's settings
    atomic_write_bytes(args.out / JOURNAL, "".join(f"{key}\t{s['name']}\n" for s in good).encode())
    atomic_write_bytes(args.out / PARAMS, json.dumps(params).encode())
    train, val = split_by_group(good, args.val_fraction)
    lists = write_lists(train, args.out, args.lists_dir, args.name) + write_lists(val, args.out, args.lists_dir, args.name + "_val")

    print(f"converted {len(good) - skipped_done}, already done {skipped_done}, skipped {len(problems)} "
          f"in {time.perf_counter() - start:.1f} s → {args.out}")
    for why, n in Counter(why for _, why in problems).most_common():
        print(f"  skipped {n}: {why}")
    if problems:
        print(f"  the skipped files are listed in {report}")
    groups = lambda ss: len({s['group'] for s in ss})  # noqa: E731
    print(f"train: {len(train)} samples ({groups(train)} groups), val: {len(val)} samples ({groups(val)} groups)")
    if not val and args.val_fraction > 0:
        print("  note: a single shoot group cannot be split; the validation lists are empty")
    print("lists: " + ", ".join(str(p) for p in lists))
    return EXIT_OK if good else EXIT_ERROR
