#!/usr/bin/env python
"""Put what gpu_check.sh / gpu_train.sh need into one folder that can travel to a GPU machine lacking ../shared.

    echo /.gpu/ >> .git/info/exclude                  # keep it out of git
    python bench/stage_gpu.py .gpu                     # 400 PFCN pairs + all vikram pairs + the pymatting wheel
    # on the GPU machine, with .gpu carried along (see bench/README.md):
    pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl; export PYTHONPATH=/tmp/site
    bash bench/gpu_check.sh $OUT/check --data .gpu/pfcn
    bash bench/gpu_train.sh $OUT/train --pfcn .gpu/pfcn --vikram .gpu/vikram

The pairs are copied (not linked: links do not travel), the first --pfcn-pairs of PFCN in name order, so
the folder stays small (about 40 MB with the defaults). The wheel is fetched with pip from the package
registry (pure Python: any platform); --no-wheels skips it where pymatting is already installed.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from common import REPO

SHARED = REPO.parent / "shared" / "data"


def copy_pairs(src: Path, dst: Path, limit: int) -> int:
    (dst / "images").mkdir(parents=True, exist_ok=True)
    (dst / "masks").mkdir(parents=True, exist_ok=True)
    masks = {m.stem.removesuffix("_mask"): m for m in (src / "masks").iterdir() if m.suffix.lower() == ".png"}
    n = 0
    for img in sorted((src / "images").iterdir()):
        if img.stem in masks and (limit <= 0 or n < limit):
            shutil.copyfile(img, dst / "images" / img.name)
            shutil.copyfile(masks[img.stem], dst / "masks" / masks[img.stem].name)
            n += 1
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out", type=Path, help="folder to fill (inside the repository, ignored by git, so that it can travel)")
    p.add_argument("--pfcn-pairs", type=int, default=400, help="PFCN pairs to copy (0: all 1,115, about 70 MB)")
    p.add_argument("--no-wheels", action="store_true", help="do not fetch the pymatting wheel")
    args = p.parse_args(argv)
    for name in ("pfcn_portrait_seg", "vikram_human_seg"):
        if not (SHARED / name / "images").is_dir():
            print(f"stage_gpu.py: error: {SHARED / name} is not here", file=sys.stderr)
            return 1
    n = copy_pairs(SHARED / "pfcn_portrait_seg", args.out / "pfcn", args.pfcn_pairs)
    m = copy_pairs(SHARED / "vikram_human_seg", args.out / "vikram", 0)
    if not args.no_wheels:
        run = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                              "-d", str(args.out / "wheels"), "pymatting"], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"stage_gpu.py: error: pip download pymatting failed: {run.stderr.strip()[-300:]}", file=sys.stderr)
            return 1
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file()) / 2**20
    print(f"{args.out}: {n} PFCN pairs, {m} vikram pairs{'' if args.no_wheels else ', the pymatting wheel'}; {size:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
