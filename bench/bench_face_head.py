#!/usr/bin/env python
"""How wide is a detected face next to the person's head? The figure behind idphoto.headcheck's threshold.

    python bench/bench_face_head.py --limit 200          # the shared PFCN portraits with their masks
    python bench/bench_face_head.py --images DIR --masks DIR

For each photo with a mask (same stem; ``<id>_mask.png`` too), the largest Haar face that infer.py would
consider is measured against the head's width in the mask (idphoto.headcheck.head_width_at). Prints one
JSON line: the ratio's percentiles, and the photos whose ratio is under the threshold (those infer.py
now refuses to frame on), so they can be looked at.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import PFCN, emit, note


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--images", type=Path, default=PFCN / "images", help="folder of photos")
    p.add_argument("--masks", type=Path, default=PFCN / "masks", help="folder of person masks (0/255 or alpha)")
    p.add_argument("--limit", type=int, default=200, help="photos measured, in name order (0: all)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2
    import numpy as np

    from core.fileio import read_image  # the photo as infer.py sees it (EXIF rotation applied)
    from idphoto.face import detect_faces
    from idphoto.headcheck import MIN_FACE_TO_HEAD, head_width_at

    if not args.images.is_dir() or not args.masks.is_dir():
        print(f"bench_face_head.py: error: {args.images} or {args.masks} is not a folder", file=sys.stderr)
        return 1
    masks = {m.stem.removesuffix("_mask"): m for m in args.masks.iterdir() if m.suffix.lower() == ".png"}
    photos = [p for p in sorted(args.images.iterdir()) if p.stem in masks]
    photos = photos[:args.limit] if args.limit else photos
    ratios, no_face, low = [], 0, []
    for i, path in enumerate(photos):
        image, mask = read_image(path), read_image(masks[path.stem], cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None:
            continue
        faces = detect_faces(image)
        alpha = mask.astype(np.float32) / (255.0 if mask.max() > 1 else 1.0)
        head = head_width_at(faces[0], alpha) if faces else None
        if head is None:
            no_face += 1
            continue
        ratio = faces[0].w / head
        ratios.append(ratio)
        if ratio < MIN_FACE_TO_HEAD:
            low.append({"photo": path.name, "face_px": round(faces[0].w), "head_px": round(head), "ratio": round(ratio, 3)})
        if (i + 1) % 50 == 0:
            note(f"{i + 1}/{len(photos)}")
    r = np.array(ratios)
    pct = {f"p{q}": round(float(np.percentile(r, q)), 3) for q in (0, 1, 5, 25, 50, 75, 95, 100)} if r.size else {}
    emit("face_head", {"images": str(args.images), "masks": str(args.masks), "limit": args.limit,
                       "threshold": MIN_FACE_TO_HEAD},
         {"photos": len(photos), "measured": len(ratios), "no_face_on_person": no_face, "ratio_face_to_head": pct,
          "under_threshold": low})
    return 0


if __name__ == "__main__":
    sys.exit(main())
