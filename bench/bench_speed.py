#!/usr/bin/env python
"""The start-up and per-photo figures of an ID photo, for this checkout and (``--before REV``) an older commit.

    python bench/bench_speed.py --before 817c96b         # before/after in one run, on one machine
    python bench/bench_speed.py --skip-first-run         # this checkout only, without the slow cold start

For each tree (this checkout; with ``--before``, the commit exported by ``git archive`` into a temp folder):

* ``help`` — ``python <script> --help`` for infer.py, prepare_aifenge.py, evaluate.py, train.py, and
  ``python -c "import idphoto.specs"``;
* ``first_run`` — ``infer.py --image PHOTO`` with an empty numba cache (``NUMBA_CACHE_DIR`` set to a new
  folder: what a fresh machine compiles) and an empty TNet export cache (``IDPHOTO_CACHE_DIR``, likewise:
  the first run exports the weights for OpenCV), and whether it printed the "first run" note;
* ``later_run`` — the same command again (warm caches), the minimum of ``--repeat``;
* ``in_process`` — one photo through the pipeline, framing and encoding (``idphoto.batch.make_files``)
  in a process that has already loaded the model and done one photo, with one thread everywhere
  (PyTorch, OpenCV, BLAS, numba): the median of ``--photos-in-process`` runs, with infer.py's stages;
* ``batch`` — ``infer.py --input-dir`` over ``--batch`` photos: ``--workers 2`` (one thread each) against
  ``--workers 1 --threads 1`` (the same work on one core) and against one process with PyTorch's default
  threads (``--workers 1``; an older tree without ``--workers`` runs only the one-process variants),
  photos per second.

Every subprocess figure is given as wall seconds and as CPU seconds (user + system of the child): on a
machine shared with other jobs the wall time is inflated by waiting for a core, the CPU time much less.
The photo is the first PFCN portrait of ../shared (600×800) or a synthetic 600×800 portrait; the
weights are the shipped weights of each tree. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import PFCN, REPO, emit, note, synthetic_portrait

HELP_SCRIPTS = ("infer.py", "prepare_aifenge.py", "evaluate.py", "train.py")
PARTS = ("help", "first_run", "later_run", "in_process", "batch")

# Run by a child interpreter inside the measured tree (this checkout, or an older commit exported by --before), so
# it uses that tree's own infer.py: the figure is infer.py's per-photo time, whatever version it is.
IN_PROCESS = r"""
import json, os, statistics, sys, time
from pathlib import Path
tree, photo, out, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sys.path.insert(0, tree)
os.chdir(tree)
import cv2, torch
torch.set_num_threads(1)
cv2.setNumThreads(1)
import infer
from idphoto.pipeline import Pipeline
parser = infer.build_parser()
args = parser.parse_args(["--image", str(photo), "--out-dir", out, "--no-face-ok"])
spec, bg = infer.resolve_options(args, parser)
try:
    from idphoto.runner import open_trimap_model as load_model  # where it lives now
except ImportError:
    try:
        from idphoto.service import load_model                  # an older tree (--before)
    except ImportError:
        load_model = infer.load_model                           # an older one still
model = load_model(None, "cpu")
pipe = Pipeline(model, "cpu", args.input_size, args.matting, args.refine_kernel, args.max_side or None)
try:                                                        # where it lives now
    from idphoto.batch import make_files
    from idphoto.options import IDPhotoOptions, Resolved
    options, resolved = IDPhotoOptions.from_args(args), Resolved(spec, bg, args.dpi)
    one = lambda: make_files(photo, photo.stem, pipe, options, resolved, Path(out))
except ImportError:                                         # an older tree (--before)
    one = lambda: infer.process_one(photo, photo.stem, pipe, args, spec, bg)
one()   # warm-up: first-call costs are not per photo
walls, cpus, stages = [], [], []
for _ in range(n):
    w, c = time.perf_counter(), time.process_time()
    report = one()
    walls.append(time.perf_counter() - w)
    cpus.append(time.process_time() - c)
    stages.append(report["timings"])
print(json.dumps({"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
                  "stages_wall_s": {k: statistics.median(s[k] for s in stages) for k in stages[0]}, "runs": n}))
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--before", metavar="REV", default=None, help="also measure this commit (git archive into a temp folder)")
    p.add_argument("--photo", type=Path, default=None, help="photo to use (default: first PFCN portrait, else synthetic)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each --help and later-run measurement (minimum kept)")
    p.add_argument("--photos-in-process", type=int, default=5, help="timed photos of the in-process measurement")
    p.add_argument("--batch", type=int, default=8, help="photos of the --input-dir measurement (0: skip it)")
    p.add_argument("--skip-first-run", action="store_true", help="skip the cold-cache run (minutes on the older tree)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which measurements to make")
    p.add_argument("--timeout", type=int, default=1800, help="seconds after which one command counts as failed")
    return p.parse_args(argv)


def timed(cmd: list[str], cwd: Path, timeout: int, env: dict | None = None) -> dict:
    """Wall and CPU (user + system) seconds of one subprocess, with its exit code and stderr's last line."""
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if run.returncode not in (0, 1):
        raise SystemExit(f"bench_speed.py: {' '.join(map(str, cmd[:3]))} failed (rc {run.returncode}): {run.stderr.strip()[-400:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "rc": run.returncode, "stdout": run.stdout, "stderr": run.stderr}


def best(runs: list[dict]) -> dict:
    return {"wall_s": min(r["wall_s"] for r in runs), "cpu_s": min(r["cpu_s"] for r in runs)}


def measure_tree(tree: Path, photo: Path, batch_dir: Path | None, args, tmp: Path, label: str, has_workers: bool) -> dict:
    py = sys.executable
    res: dict = {}
    for script in HELP_SCRIPTS if "help" in args.parts else ():
        res.setdefault("help", {})
        res["help"][script] = best([timed([py, script, "--help"], tree, args.timeout) for _ in range(args.repeat)])
    if "help" in args.parts:
        res["help"]["import idphoto.specs"] = best([timed([py, "-c", "import idphoto.specs"], tree, args.timeout)
                                                    for _ in range(args.repeat)])
        note(f"{label}: --help of infer.py {res['help']['infer.py']['wall_s']:.2f} s wall, "
             f"{res['help']['infer.py']['cpu_s']:.2f} s CPU")

    cmd = [py, "infer.py", "--image", str(photo), "--no-face-ok", "--out-dir", str(tmp / f"out-{label}")]
    env = {"NUMBA_CACHE_DIR": str(tmp / f"numba-{label}"), "IDPHOTO_CACHE_DIR": str(tmp / f"export-{label}")}
    if "first_run" in args.parts and not args.skip_first_run:
        first = timed(cmd, tree, args.timeout, env)
        res["first_run"] = {"wall_s": first["wall_s"], "cpu_s": first["cpu_s"], "rc": first["rc"],
                            "announced": "first run" in first["stderr"]}
        note(f"{label}: first run {first['wall_s']:.1f} s wall, {first['cpu_s']:.1f} s CPU")
    if "later_run" in args.parts:
        later = [timed(cmd, tree, args.timeout, env) for _ in range(args.repeat)]
        res["later_run"] = {**best(later), "announced": any("first run" in r["stderr"] for r in later)}
        note(f"{label}: later run {res['later_run']['wall_s']:.2f} s wall, {res['later_run']['cpu_s']:.2f} s CPU")

    if "later_run" not in args.parts and ({"in_process", "batch"} & set(args.parts)):
        timed(cmd, tree, args.timeout, env)  # untimed: what follows measures warm caches, as a later run does

    one = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    if "in_process" in args.parts:
        r = timed([py, "-c", IN_PROCESS, str(tree), str(photo), str(tmp / f"inproc-{label}"), str(args.photos_in_process)],
                  tree, args.timeout, {**env, **one})
        res["in_process"] = json.loads(r["stdout"].strip().splitlines()[-1])
        note(f"{label}: in-process per photo {res['in_process']['wall_s']:.3f} s wall, {res['in_process']['cpu_s']:.3f} s CPU")

    if batch_dir is not None and "batch" in args.parts:
        res["batch"] = {}
        variants = {"one_process_default_threads": [], "one_process_one_thread": ["--threads", "1"]}
        if has_workers:
            variants = {"one_process_default_threads": ["--workers", "1"],
                        "one_process_one_thread": ["--workers", "1", "--threads", "1"], "two_workers": ["--workers", "2"]}
        for key, extra in variants.items():
            r = timed([py, "infer.py", "--input-dir", str(batch_dir), "--no-face-ok", "--quiet",
                       "--out-dir", str(tmp / f"batch-{label}-{key}"), *extra], tree, args.timeout, env)
            res["batch"][key] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "photos": args.batch,
                                 "photos_per_s": round(args.batch / r["wall_s"], 3)}
            note(f"{label}: batch of {args.batch}, {key}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU")
        if has_workers:
            b = res["batch"]
            b["two_workers_vs_one_thread"] = round(b["one_process_one_thread"]["wall_s"] / b["two_workers"]["wall_s"], 3)
            b["two_workers_vs_default"] = round(b["one_process_default_threads"]["wall_s"] / b["two_workers"]["wall_s"], 3)
    return res


def export(rev: str, dest: Path) -> Path:
    """The tree of ``rev`` in ``dest`` (git archive: the repository and its worktrees are not touched)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=REPO, capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"bench_speed.py: git archive {rev}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2

    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        tmp = Path(tmp)
        if args.photo is not None:
            photo, source = args.photo.resolve(), str(args.photo)
        elif PFCN.is_dir() and sorted((PFCN / "images").glob("*.jpg")):
            photo = sorted((PFCN / "images").glob("*.jpg"))[0]
            source = f"pfcn_portrait_seg/{photo.name}"
        else:
            photo, source = tmp / "photo.jpg", "synthetic 600x800"
            cv2.imwrite(str(photo), synthetic_portrait(0, 600, 800)[0], [cv2.IMWRITE_JPEG_QUALITY, 95])
        batch_dir = None
        if args.batch and "batch" in args.parts:
            batch_dir = tmp / "batch"
            batch_dir.mkdir()
            pfcn = sorted((PFCN / "images").glob("*.jpg"))[:args.batch] if PFCN.is_dir() else []
            for i in range(args.batch):
                if len(pfcn) == args.batch:
                    (batch_dir / pfcn[i].name).symlink_to(pfcn[i])  # nothing is copied
                else:
                    cv2.imwrite(str(batch_dir / f"{i:03d}.jpg"), synthetic_portrait(i, 600, 800)[0])
        h, w = cv2.imread(str(photo)).shape[:2]
        figures = {"after": measure_tree(REPO, photo, batch_dir, args, tmp, "after", has_workers=True)}
        if args.before:
            old = export(args.before, tmp / "before")
            figures["before"] = measure_tree(old, photo, batch_dir, args, tmp, "before",
                                             has_workers='"--workers"' in (old / "infer.py").read_text(encoding="utf-8"))
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
    emit("speed", {"photo": source, "size": [w, h], "before": args.before, "repeat": args.repeat,
                   "photos_in_process": args.photos_in_process, "batch": args.batch,
                   "load_average_at_end": load}, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
