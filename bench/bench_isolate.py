#!/usr/bin/env python
"""How often does cleaning the matte remove a real part of the person? And how often are portraits refused?

    python bench/bench_isolate.py                                    # the shared PFCN portraits and vikram photos
    python bench/bench_isolate.py --sets pfcn --limit 200 --predicted  # the shipped TNet's matte instead of the mask

For each labelled photo (its hand-drawn or machine-made person mask), the subject is chosen as
``compose_id_photo`` chooses it (:func:`idphoto.subject.choose_subject`, palms included) and
:func:`idphoto.subject.isolate_person` cleans the matte: the hand-drawn mask itself (every pixel it drops
is a real part of the person: a raised hand, a strand of hair), or with ``--predicted`` the pipeline's
alpha (the share of the true person it drops). The masks hold every person in the photo, so on photos
with several faces the other people count as lost too; the figure for photos with one face is the one
about real parts. Prints one JSON line: photos cleaned, the share of photos losing more than 0.5 % / 2 %
of the mask, the same for one-face photos, the worst ones, and the refusals by reason.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

from common import REPO, emit, note

SHARED = REPO.parent / "shared" / "data"
SETS = {"pfcn": SHARED / "pfcn_portrait_seg", "vikram": SHARED / "vikram_human_seg"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS), help="labelled sets to measure")
    p.add_argument("--limit", type=int, default=0, help="photos per set, in name order (0: all)")
    p.add_argument("--predicted", action="store_true", help="clean the shipped TNet's alpha, not the mask")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2
    import numpy as np

    from idphoto import landmarks
    from idphoto.errors import IDPhotoError
    from idphoto.face import detect_faces
    from idphoto.image_io import load_image
    from idphoto.subject import check_hands, choose_subject, isolate_person

    pipeline = None
    if args.predicted:
        from idphoto.pipeline import Pipeline
        from idphoto.runner import open_trimap_model

        pipeline = Pipeline(open_trimap_model(None, "cpu", 1))
    figures = {}
    for name in args.sets:
        root = SETS[name]
        if not (root / "images").is_dir():
            print(f"bench_isolate.py: error: {root} not found (needs ../shared/data)", file=sys.stderr)
            return 1
        photos = sorted((root / "images").glob("*.jpg"))
        photos = photos[:args.limit] if args.limit else photos
        lost, refused, worst, alone = [], Counter(), [], []
        for path in photos:
            mask_path = root / "masks" / f"{path.stem}.png"
            if not mask_path.is_file():
                continue
            image = load_image(path)
            truth = cv2.resize(cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE), image.shape[1::-1]) > 127
            alpha = pipeline.run(image).alpha if pipeline else truth.astype(np.float32)
            try:
                subject = choose_subject(detect_faces(image), alpha)
                if subject.face is None:
                    refused["no face"] += 1
                    continue
                check_hands(subject.face, landmarks.detect_hands(image))
            except IDPhotoError as exc:
                refused[re.sub(r"\d+", "N", str(exc).split(":")[0].split(" (")[0])[:60]] += 1
                continue
            clean, _ = isolate_person(alpha, subject.face, subject.others)
            dropped = (alpha > 0.5) & (clean <= 0.5) & truth
            share = float(dropped.sum()) / max(int(truth.sum()), 1)
            lost.append(share)
            alone.append(not subject.others)
            worst.append((share, path.name))
        one = np.array([s for s, a in zip(lost, alone) if a]) if any(alone) else np.zeros(1)
        lost = np.array(lost) if lost else np.zeros(1)
        worst = sorted(worst, reverse=True)[:5]
        figures[name] = {"photos": len(photos), "cleaned": len(alone), "mean_lost": float(lost.mean()),
                         "photos_losing_over_0.5pct": float((lost > 0.005).mean()),
                         "photos_losing_over_2pct": float((lost > 0.02).mean()),
                         "one_face_photos": int(len(one)), "one_face_losing_over_0.5pct": float((one > 0.005).mean()),
                         "worst": [[n, round(s, 4)] for s, n in worst], "refused": dict(refused)}
        note(f"{name}: {len(lost)} cleaned ({len(one)} with one face: {100 * (one > 0.005).mean():.1f} % lose > 0.5 %); "
             f"lost > 0.5 % of the mask (other people included): {100 * (lost > 0.005).mean():.1f} %, "
             f"> 2 %: {100 * (lost > 0.02).mean():.1f} %; refused {dict(refused)}")
    emit("isolate", {"sets": args.sets, "limit": args.limit, "predicted": args.predicted}, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
