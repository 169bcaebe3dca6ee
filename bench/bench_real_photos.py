#!/usr/bin/env python
"""Does the tool make an ID photo exactly when it should? Outcomes on real photos against expected ones.

    python bench/bench_real_photos.py                                   # ../shared/data/real_id_cases, 1inch
    python bench/bench_real_photos.py --spec 1inch us-passport icao --out /tmp/real
    python bench/bench_real_photos.py --folder ../shared/data/unlabeled_portraits/*/ --out /tmp/u  # outcomes only

The folder holds the photos (or an ``images/`` folder of them) and, when labelled, ``expected.tsv``
(tab-separated with a header: ``file``, ``expect`` = write or refuse, ``why``). Each photo runs through
:func:`idphoto.service.process_image` with the shipped model, as ``infer.py`` runs it. Prints one JSON
line: per spec, the outcomes that match, the photos written that should have been refused, the usable
photos refused, and every photo's outcome with its reason (refusal) or missed rules (written). With
``--out DIR`` the ID photos are written there, ``<spec>/<stem>.jpg``, to be looked at.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from common import REPO, emit, note

REAL_CASES = REPO.parent / "shared" / "data" / "real_id_cases"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--folder", type=Path, nargs="+", default=[REAL_CASES],
                   help="folders of photos (or of images/ of them), each with its expected.tsv when labelled")
    p.add_argument("--spec", nargs="+", default=["1inch"], help="specs to make each photo for")
    p.add_argument("--out", type=Path, help="write the ID photos here, <spec>/<stem>.jpg")
    p.add_argument("--checkpoint", type=Path, help="TNet weights (default: the shipped compact model)")
    p.add_argument("--threads", type=int, default=1, help="threads for the model and OpenCV")
    return p.parse_args(argv)


def read_expected(folder: Path) -> dict[str, tuple[str, str]]:
    """file → (write|refuse, why) from ``expected.tsv``; {} when the folder has none."""
    path = folder / "expected.tsv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["file"]: (row["expect"].strip(), row.get("why", "")) for row in csv.DictReader(f, delimiter="\t")}


def main(argv=None) -> int:
    args = parse_args(argv)
    for folder in args.folder:
        if not folder.is_dir():
            print(f"bench_real_photos.py: error: {folder} is not a folder", file=sys.stderr)
            return 1
    import cv2

    from idphoto.errors import IDPhotoError
    from idphoto.image_io import list_images, load_image
    from idphoto.options import IDPhotoOptions
    from idphoto.pipeline import Pipeline
    from idphoto.runner import open_trimap_model
    from idphoto.service import process_image

    cv2.setNumThreads(args.threads)
    expected, files = {}, []
    for folder in args.folder:
        expected.update(read_expected(folder))
        files += list_images(folder / "images" if (folder / "images").is_dir() else folder)[0]
    model = open_trimap_model(args.checkpoint, "cpu", args.threads)
    figures = {}
    for spec in args.spec:
        options = IDPhotoOptions(spec=spec)
        pipeline = Pipeline.from_options(model, options, "cpu")
        rows, right, wrong_write, wrong_refuse = [], 0, [], []
        for path in files:
            image = load_image(path)
            try:
                out = process_image(image, options, pipeline)
            except IDPhotoError as exc:
                outcome, detail = "refuse", str(exc)
            else:
                missed = out.report.soft_failed if out.report is not None else []
                outcome, detail = "write", "; ".join(c.rule for c in missed)
                if args.out:
                    (args.out / spec).mkdir(parents=True, exist_ok=True)
                    (args.out / spec / f"{path.stem}.jpg").write_bytes(out.idphoto)
            want = expected.get(path.name, (None, ""))[0]
            if want == outcome:
                right += 1
            elif want == "refuse":
                wrong_write.append(path.name)
            elif want == "write":
                wrong_refuse.append(path.name)
            rows.append({"file": path.name, "expect": want, "outcome": outcome, "detail": detail})
            note(f"{spec:12} {path.name:48} {outcome:6} {'' if want in (None, outcome) else 'WRONG '}{detail[:150]}")
        labelled = sum(r["expect"] is not None for r in rows)
        figures[spec] = {"photos": len(rows), "labelled": labelled, "right": right,
                         "written": sum(r["outcome"] == "write" for r in rows),
                         "written_should_refuse": wrong_write, "refused_should_write": wrong_refuse, "rows": rows}
        note(f"{spec}: {right}/{labelled} outcomes right; written but should be refused: {len(wrong_write)}; "
             f"usable but refused: {len(wrong_refuse)}")
    emit("real_photos", {"folders": [str(f) for f in args.folder], "specs": args.spec, "threads": args.threads}, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
