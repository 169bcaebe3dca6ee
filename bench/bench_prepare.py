#!/usr/bin/env python
"""prepare_aifenge.py throughput in images/s, on a pairs folder (images/<id>.jpg + masks/<id>.png).

    python bench/bench_prepare.py --src ../shared/data/pfcn_portrait_seg --limit 100 --workers 1 2
    python bench/bench_prepare.py --synthetic 20          # a synthetic 600×800 pairs folder in a temp dir

The first --limit pairs are symlinked (nothing is copied) into a temp pairs folder; prepare_aifenge.py
runs in a subprocess per worker count, writing into a fresh temp --out that is deleted afterwards. The
figure is converted images per second of the whole process (start-up, pairing, JPEG/PNG decode and
encode, trimaps, lists). Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PFCN, REPO, emit, note, write_pairs

DONE_LINE = re.compile(r"converted (\d+), already done (\d+), skipped (\d+)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--src", type=Path, default=None,
                   help="pairs folder (default: ../shared/data/pfcn_portrait_seg if present, else synthetic)")
    p.add_argument("--synthetic", type=int, default=0, metavar="N",
                   help="use N synthetic 600×800 pairs instead of --src")
    p.add_argument("--limit", type=int, default=50, help="pairs converted per run (0: all of --src)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="--workers values of prepare_aifenge.py to measure")
    return p.parse_args(argv)


def link_pairs(src: Path, dst: Path, limit: int) -> int:
    """Symlink the first ``limit`` images of ``src`` that have a mask into ``dst`` (a pairs layout)."""
    (dst / "images").mkdir(parents=True)
    (dst / "masks").mkdir(parents=True)
    masks = {m.stem.removesuffix("_mask"): m for m in (src / "masks").iterdir() if m.suffix.lower() == ".png"}
    n = 0
    for img in sorted((src / "images").iterdir()):
        if img.stem not in masks or img.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        (dst / "images" / img.name).symlink_to(img.resolve())
        (dst / "masks" / masks[img.stem].name).symlink_to(masks[img.stem].resolve())
        n += 1
        if n == limit:
            break
    return n


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        tmp = Path(tmp)
        if args.synthetic or (args.src is None and not PFCN.is_dir()):
            n = args.synthetic or args.limit or 20
            src, source = write_pairs(tmp / "src", n), f"synthetic 600x800 x{n}"
        else:
            origin = args.src or PFCN
            if not (origin / "images").is_dir() or not (origin / "masks").is_dir():
                print(f"bench_prepare.py: error: {origin} has no images/ and masks/ folders", file=sys.stderr)
                return 1
            n = link_pairs(origin, tmp / "src", args.limit)
            src, source = tmp / "src", str(origin)
            if n == 0:
                print(f"bench_prepare.py: error: no image/mask pairs in {origin}", file=sys.stderr)
                return 1
        runs = []
        for w in args.workers:
            out = tmp / f"out{w}"
            cmd = [sys.executable, str(REPO / "prepare_aifenge.py"), "--src", str(src), "--out", str(out),
                   "--name", "bench", "--lists-dir", str(out / "lists"), "--workers", str(w)]
            t = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            seconds = time.perf_counter() - t
            m = DONE_LINE.search(run.stdout)
            if run.returncode != 0 or m is None:
                print(f"bench_prepare.py: error: prepare_aifenge.py failed (rc {run.returncode}): "
                      f"{run.stderr.strip().splitlines()[-1:] or run.stdout[-200:]}", file=sys.stderr)
                return 1
            converted = int(m[1])
            r = {"workers": w, "converted": converted, "skipped": int(m[3]), "seconds": seconds,
                 "images_per_s": converted / seconds}
            note(f"{w} worker(s): {converted} images in {seconds:.1f} s = {r['images_per_s']:.1f} images/s")
            runs.append(r)
    emit("prepare", {"src": source, "pairs": n}, {"runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
