#!/usr/bin/env python
"""Convert raw AiFenGe / AISegment portraits into img/, alpha/, trimap/ folders and JSON lists for train.py.

Two raw layouts are recognised from the folder:
  * AISegment "Matting_Human_Half": clip_img/<group>/clip_<nn>/<name>.jpg + matting/<group>/matting_<nn>/<name>.png
    (an RGBA cut-out whose 4th channel is the alpha matte);
  * pairs: images/<id>.jpg + masks/<id>.png (a single-channel mask or alpha).

Example:  python prepare_aifenge.py --src /data/Matting_Human_Half --out data/AiFenGe --name aifenge

This script parses its flags and calls :func:`datasets.prepare.convert_dataset`, where the conversion lives.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.cli import OneLineParser, guarded


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, type=Path, help="raw data root: holds clip_img/ + matting/ or images/ + masks/")
    p.add_argument("--out", type=Path, default=Path("data/AiFenGe"), help="output root for img/, alpha/, trimap/ (default: %(default)s)")
    p.add_argument("--name", default="aifenge", help="data set name used in the list file names (default: %(default)s)")
    p.add_argument("--lists-dir", type=Path, default=Path("data"), help="folder for the JSON lists (default: %(default)s)")
    p.add_argument("--threshold", type=int, default=50, help="alpha > threshold (of 255) is the person mask for the trimap (default: %(default)s)")
    p.add_argument("--kernel", type=int, default=10, help="elliptical kernel size of the trimap band; 6 for the 'smooth' variant (default: %(default)s)")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of samples held out for validation, by whole shoot group (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores, %(default)s)")
    args = p.parse_args(argv)
    if not 0 <= args.threshold < 255:
        p.error("--threshold must be in [0, 255)")
    if not 0 <= args.val_fraction < 1:
        p.error("--val-fraction must be in [0, 1)")
    if args.kernel < 1 or args.workers < 1:
        p.error("--kernel and --workers must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from datasets.prepare import convert_dataset  # after parsing: --help answers without OpenCV

    return guarded("prepare_aifenge.py", lambda: convert_dataset(args),
                   interrupted="interrupted; finished samples are kept, run again to continue")


if __name__ == "__main__":
    sys.exit(main())
