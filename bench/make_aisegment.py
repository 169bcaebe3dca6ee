#!/usr/bin/env python
"""Write a synthetic raw AISegment ("Matting_Human_Half") tree of N photo/matte pairs, for conversion benchmarks.

    python bench/make_aisegment.py /tmp/aiseg_5k --pairs 5000
    python prepare_aifenge.py --src /tmp/aiseg_5k --out /tmp/aiseg_5k_out --lists-dir /tmp/aiseg_5k_out

The layout is the real one: clip_img/<group>/clip_<nn>/<group>-<nnnnnnnn>.jpg (600×800 JPEG photos) and
matting/<group>/matting_<nn>/<same name>.png (600×800 RGBA cut-outs: the photo's colours where the person
is, transparent elsewhere, the soft alpha matte in the 4th channel). Shoot groups hold --group-size pairs
in folders of --folder-size, as in the real set.

Every pair is different (its own head and shoulder shapes, position, colours and noise), so nothing is
served from a handful of cached files; the textures come from a small bank made once, which keeps the
generation itself at about 20 ms a pair. Disk: about 0.5 MiB a pair (600 MB per 1,000 pairs with a
converted copy beside it): generate into /tmp and delete afterwards. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, note  # noqa: E402
from core.runtime import SerialPool  # noqa: E402  (common puts the repository on the path)

W, H = 600, 800
BANK = 8  # background and skin/clothes textures generated once per worker


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out", type=Path, help="root of the tree to write (clip_img/ and matting/ go inside); must not exist "
                   "or be empty")
    p.add_argument("--pairs", type=int, required=True, help="number of photo/matte pairs")
    p.add_argument("--group-size", type=int, default=500, help="pairs per shoot group (the validation split takes whole groups)")
    p.add_argument("--folder-size", type=int, default=100, help="pairs per clip_<nn>/matting_<nn> folder")
    p.add_argument("--workers", type=int, default=1, help="processes writing pairs")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same files")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the photos")
    args = p.parse_args(argv)
    if args.pairs < 1 or args.group_size < 1 or args.folder_size < 1 or args.workers < 1:
        p.error("--pairs, --group-size, --folder-size and --workers must be positive")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        p.error(f"{args.out} exists and is not an empty folder")
    return args


def pair_paths(root: Path, i: int, group_size: int, folder_size: int) -> tuple[Path, Path]:
    """Photo and matte paths of pair ``i``: group names look like the real ones (a shoot's timestamp)."""
    group = f"{1803151818 + i // group_size}"
    folder = (i % group_size) // folder_size
    name = f"{group}-{i % group_size:08d}"
    return (root / "clip_img" / group / f"clip_{folder:08d}" / f"{name}.jpg",
            root / "matting" / group / f"matting_{folder:08d}" / f"{name}.png")


_bank: dict = {}


def _textures(seed: int):
    """A few blurred-noise backgrounds and person textures, made once per process."""
    import cv2
    import numpy as np

    if not _bank:
        rng = np.random.default_rng(seed)
        _bank["bg"] = [cv2.GaussianBlur(rng.integers(0, 220, (H, W, 3), dtype=np.uint8), (0, 0), 3) for _ in range(BANK)]
        _bank["person"] = [cv2.GaussianBlur(rng.integers(0, 60, (H, W, 3), dtype=np.uint8), (0, 0), 1.5) for _ in range(BANK)]
    return _bank["bg"], _bank["person"]


def make_pair(i: int, seed: int):
    """(photo BGR, matte BGRA) of pair ``i``: a head and shoulders with a soft edge on a textured background."""
    import cv2
    import numpy as np

    rng = np.random.default_rng((seed, i))
    bgs, persons = _textures(seed)
    bg = np.roll(bgs[int(rng.integers(BANK))], int(rng.integers(W)), axis=1)
    person = persons[int(rng.integers(BANK))] + rng.integers(20, 180, 3).astype(np.uint8)
    mask = np.zeros((H, W), np.uint8)
    cx, cy = W // 2 + int(rng.integers(-60, 61)), H // 3 + int(rng.integers(-40, 41))
    head = (int(rng.integers(85, 120)), int(rng.integers(105, 140)))
    cv2.ellipse(mask, (cx, cy), head, float(rng.uniform(-10, 10)), 0, 360, 255, -1)
    cv2.ellipse(mask, (cx + int(rng.integers(-30, 31)), H), (int(rng.integers(180, 280)), int(rng.integers(300, 420))),
                0, 180, 360, 255, -1)
    # hair-like soft fringe: blur the silhouette by a per-pair amount
    alpha = cv2.GaussianBlur(mask, (0, 0), float(rng.uniform(1.5, 4.0)))
    a = alpha[..., None].astype(np.float32) / 255.0
    photo = (person * a + bg * (1.0 - a)).round().astype(np.uint8)
    cutout = np.where(alpha[..., None] > 0, photo, 0).astype(np.uint8)
    return photo, np.dstack([cutout, alpha])


def write_one(job: tuple) -> int:
    import cv2

    i, root, group_size, folder_size, seed, quality = job
    photo_path, matte_path = pair_paths(root, i, group_size, folder_size)
    photo, matte = make_pair(i, seed)
    photo_path.parent.mkdir(parents=True, exist_ok=True)
    matte_path.parent.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(photo_path), photo, [cv2.IMWRITE_JPEG_QUALITY, quality])
    ok &= cv2.imwrite(str(matte_path), matte)
    if not ok:
        raise OSError(f"could not write {photo_path} or {matte_path}")
    return photo_path.stat().st_size + matte_path.stat().st_size


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2
    from tqdm import tqdm

    cv2.setNumThreads(1)  # the parallelism comes from the processes
    jobs = [(i, args.out, args.group_size, args.folder_size, args.seed, args.quality) for i in range(args.pairs)]
    t = time.perf_counter()
    total = 0
    try:
        with Pool(args.workers) if args.workers > 1 else SerialPool() as pool:
            for size in tqdm(pool.imap_unordered(write_one, jobs, chunksize=16), total=len(jobs), desc="writing pairs",
                             unit="pair", file=sys.stderr, dynamic_ncols=True):
                total += size
    except OSError as exc:
        print(f"make_aisegment.py: error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t
    groups = (args.pairs + args.group_size - 1) // args.group_size
    note(f"{args.pairs} pairs in {groups} groups, {total / 2**20:.0f} MiB, {seconds:.1f} s → {args.out}")
    emit("make_aisegment", {"out": str(args.out), "pairs": args.pairs, "groups": groups, "size": [W, H],
                            "workers": args.workers, "seed": args.seed},
         {"seconds": seconds, "pairs_per_s": args.pairs / seconds, "mib": total / 2**20})
    return 0


if __name__ == "__main__":
    sys.exit(main())
