#!/usr/bin/env python
"""prepare_aifenge.py throughput: images/s per worker, peak memory, growth with the data size, and kill/resume.

    python bench/bench_prepare.py --src ../shared/data/pfcn_portrait_seg --limit 100 --workers 1 2
    python bench/bench_prepare.py --synthetic 20                       # synthetic 600×800 pairs folder
    python bench/bench_prepare.py --aisegment 5000 20000 --workers 1 2 --kill-resume --tmp /tmp

Pairs mode (--src / --synthetic): the first --limit pairs of an images/ + masks/ folder are symlinked
(nothing is copied) into a temp folder and converted.

AISegment mode (--aisegment N ...): a synthetic raw AISegment tree (bench/make_aisegment.py: 600×800 JPEG
photos, RGBA mattes, the real folder layout) of the largest N is written once (or --tree reuses one), and
each smaller N gets a tree of symlinks to its first N pairs. Every (N, workers) run converts into a fresh
folder; comparing the seconds per pair at each N shows whether the time grows linearly. --kill-resume
also kills a run at the smallest N half-way (SIGKILL of the whole process group, as a crash or an OOM
kill would), runs it again, and checks that the result is byte-for-byte the uninterrupted run's.

Each figure is for the whole process (start-up, pairing, decode, encode, trimaps, lists), in wall seconds
and in CPU seconds (user + system of the process and its workers: the rate of one dedicated core, which
is what a busy machine's wall time hides). Peak memory is
the largest proportional set size (PSS) summed over the process and its workers (sampled every 0.2 s). Temp folders
are deleted afterwards. Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import PFCN, REPO, emit, note, write_pairs

JOURNAL, REPORT = "prepare_done.tsv", "prepare_report.txt"  # prepare_aifenge.py: one line per sample done / skipped


def lines_in(path: Path) -> int:
    """Complete lines of ``path`` (a line torn by a kill has no newline yet), 0 when it does not exist."""
    return sum(1 for line in open(path, encoding="utf-8", errors="replace") if line.endswith("\n")) if path.is_file() else 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--src", type=Path, default=None,
                   help="pairs folder (default: ../shared/data/pfcn_portrait_seg if present, else synthetic)")
    p.add_argument("--synthetic", type=int, default=0, metavar="N",
                   help="use N synthetic 600×800 pairs instead of --src")
    p.add_argument("--limit", type=int, default=50, help="pairs converted per run in pairs mode (0: all of --src)")
    p.add_argument("--aisegment", type=int, nargs="+", default=None, metavar="N",
                   help="AISegment mode: convert synthetic raw AISegment trees of these sizes")
    p.add_argument("--tree", type=Path, default=None,
                   help="AISegment mode: an existing raw tree (make_aisegment.py) to take the pairs from instead of "
                        "writing one; it must hold at least the largest N")
    p.add_argument("--gen-workers", type=int, default=1, help="processes writing the synthetic AISegment tree")
    p.add_argument("--kill-resume", action="store_true",
                   help="AISegment mode: also kill a run half-way and check that a re-run gives the same result")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="--workers values of prepare_aifenge.py to measure")
    p.add_argument("--tmp", type=Path, default=None, help="folder for the temp data (default: the system's temp folder)")
    args = p.parse_args(argv)
    if args.aisegment is not None and (min(args.aisegment) < 1 or args.src or args.synthetic):
        p.error("--aisegment takes positive sizes and excludes --src/--synthetic")
    if min(args.workers) < 1:
        p.error("--workers values must be positive")
    return args


# ------------------------------------------------------------------------------------------------ inputs
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


def aisegment_pairs(tree: Path) -> list[tuple[Path, Path]]:
    """(photo, matte) paths of a raw AISegment tree, in name order."""
    pairs = []
    for photo in sorted((tree / "clip_img").rglob("*.jpg")):
        rel = photo.relative_to(tree / "clip_img")
        matte = tree / "matting" / rel.parts[0] / rel.parts[1].replace("clip_", "matting_") / (photo.stem + ".png")
        if matte.is_file():
            pairs.append((photo, matte))
    return pairs


def link_aisegment(pairs: list[tuple[Path, Path]], tree: Path, dst: Path) -> Path:
    """A raw tree at ``dst`` whose files are symlinks to ``pairs`` (same relative layout as in ``tree``)."""
    for photo, matte in pairs:
        for f in (photo, matte):
            target = dst / f.relative_to(tree)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(f.resolve())
    return dst


# ----------------------------------------------------------------------------------------------- running
class PeakMemory:
    """Samples the memory of a process and all its descendants; ``peak`` is the largest sum seen.

    The proportional set size (PSS) is summed, not the resident size: forked workers share the parent's
    pages (the imported libraries), and summing their RSS would count those pages once per worker."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.root, self.every, self.peak, self.peak_main = psutil.Process(pid), every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                main = self.root.memory_full_info().pss
                total = main
                for child in self.root.children(recursive=True):
                    try:
                        total += child.memory_full_info().pss
                    except psutil.Error:
                        pass
                self.peak, self.peak_main = max(self.peak, total), max(self.peak_main, main)
            except psutil.Error:
                return
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._thread.join()


def prepare_cmd(src: Path, out: Path, workers: int) -> list[str]:
    return [sys.executable, str(REPO / "prepare_aifenge.py"), "--src", str(src), "--out", str(out),
            "--name", "bench", "--lists-dir", str(out), "--workers", str(workers)]


def run_prepare(src: Path, out: Path, workers: int) -> dict:
    """One prepare_aifenge.py process: converted/skipped counts, wall seconds, images/s, CPU seconds, peak memory.

    The CPU seconds (user + system of the process and its workers) give the rate of one dedicated core,
    which a shared or busy machine's wall time does not."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    already_done = lines_in(out / JOURNAL)  # samples a previous (killed) run finished: this run skips them
    t = time.perf_counter()
    proc = subprocess.Popen(prepare_cmd(src, out, workers), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    memory = PeakMemory(proc.pid)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - t
    memory.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"bench_prepare.py: error: prepare_aifenge.py failed (rc {proc.returncode}): "
                         f"{stderr.strip().splitlines()[-1:] or stdout[-200:]}")
    # the counts from the files prepare_aifenge.py writes for this purpose, not from its printed summary
    converted = lines_in(out / JOURNAL) - already_done
    return {"workers": workers, "converted": converted, "already_done": already_done, "skipped": lines_in(out / REPORT),
            "seconds": seconds, "images_per_s": converted / seconds, "images_per_s_per_worker": converted / seconds / workers,
            "cpu_seconds": cpu, "images_per_cpu_s": converted / cpu if cpu > 0 else None,
            "load_avg_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
            "peak_pss_mib": memory.peak / 2**20, "peak_pss_main_mib": memory.peak_main / 2**20}


def kill_half_way(src: Path, out: Path, workers: int, total: int) -> dict:
    """Start a conversion and SIGKILL its whole process group once half the trimaps exist."""
    proc = subprocess.Popen(prepare_cmd(src, out, workers), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=REPO, start_new_session=True)
    trimaps = out / "trimap"
    t = time.perf_counter()
    done = 0
    while proc.poll() is None:
        done = sum(1 for e in os.scandir(trimaps) if not e.name.startswith(".")) if trimaps.is_dir() else 0
        if done >= total // 2:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)  # a short poll: a run whose second half takes under the poll would end unkilled
    proc.wait()
    return {"killed_after_s": time.perf_counter() - t, "done_when_killed": done, "killed": proc.returncode == -signal.SIGKILL}


def tree_digest(out: Path) -> dict[str, str]:
    """sha1 of every file under ``out`` except the report (which holds absolute paths) — names included."""
    digest = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "prepare_report.txt":
            digest[str(path.relative_to(out))] = hashlib.sha1(path.read_bytes()).hexdigest()
    return digest


# ------------------------------------------------------------------------------------------------- modes
def pairs_mode(args, tmp: Path) -> int:
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
        r = run_prepare(src, tmp / f"out{w}", w)
        note(f"{w} worker(s): {r['converted']} images in {r['seconds']:.1f} s = {r['images_per_s']:.1f} images/s, "
             f"peak {r['peak_pss_mib']:.0f} MiB")
        runs.append(r)
    emit("prepare", {"src": source, "pairs": n}, {"runs": runs})
    return 0


def aisegment_mode(args, tmp: Path) -> int:
    sizes = sorted(set(args.aisegment))
    gen = None
    if args.tree is not None:
        tree = args.tree
        if not (tree / "clip_img").is_dir():
            print(f"bench_prepare.py: error: {tree} holds no clip_img/ folder", file=sys.stderr)
            return 1
    else:
        tree = tmp / "tree"
        cmd = [sys.executable, str(REPO / "bench" / "make_aisegment.py"), str(tree), "--pairs", str(sizes[-1]),
               "--workers", str(args.gen_workers)]
        t = time.perf_counter()
        if subprocess.run(cmd, stdout=subprocess.DEVNULL, cwd=REPO).returncode != 0:
            print("bench_prepare.py: error: make_aisegment.py failed", file=sys.stderr)
            return 1
        gen = {"pairs": sizes[-1], "seconds": time.perf_counter() - t}
    pairs = aisegment_pairs(tree)
    if len(pairs) < sizes[-1]:
        print(f"bench_prepare.py: error: {tree} has {len(pairs)} pairs, fewer than {sizes[-1]}", file=sys.stderr)
        return 1
    runs, srcs = [], {}
    for n in sizes:
        srcs[n] = tree if n == len(pairs) else link_aisegment(pairs[:n], tree, tmp / f"src{n}")
        for w in args.workers:
            out = tmp / f"out{n}_{w}"
            r = {"pairs": n, **run_prepare(srcs[n], out, w)}
            r["seconds_per_pair"] = r["seconds"] / n
            note(f"{n} pairs, {w} worker(s): {r['seconds']:.1f} s = {r['images_per_s']:.1f} images/s "
                 f"({r['images_per_s_per_worker']:.1f} per worker); {r['cpu_seconds']:.1f} CPU s = "
                 f"{r['images_per_cpu_s']:.1f} images per CPU second; peak {r['peak_pss_mib']:.0f} MiB; "
                 f"load average {r['load_avg_1min']}")
            runs.append(r)
            if not (args.kill_resume and n == sizes[0] and w == args.workers[0]):
                shutil.rmtree(out)  # keep the disk use to one converted copy at a time
    figures = {"runs": runs, "generation": gen}
    # time per pair at the largest N over that at the smallest: 1.0 is linear growth
    # time (wall and CPU) per pair at the largest N over that at the smallest: 1.0 is linear growth
    def per_pair(n, w, key):
        return next(r[key] / r["pairs"] for r in runs if r["pairs"] == n and r["workers"] == w)

    figures["growth"] = {f"{key}_{w}_workers": per_pair(sizes[-1], w, key) / per_pair(sizes[0], w, key)
                         for w in args.workers for key in ("seconds", "cpu_seconds")} if len(sizes) > 1 else None
    best = max(r["images_per_cpu_s"] or 0 for r in runs)
    figures["aifenge_34427_pairs_on_16_cores_min"] = 34427 / (16 * best) / 60 if best else None
    if args.kill_resume:
        n, w = sizes[0], args.workers[0]
        reference, out = tmp / f"out{n}_{w}", tmp / f"killed{n}_{w}"
        kill = kill_half_way(srcs[n], out, w, n)
        leftovers = sum(1 for p in out.rglob(".*.tmp"))
        resumed = run_prepare(srcs[n], out, w)
        same = tree_digest(out) == tree_digest(reference)
        figures["kill_resume"] = {"pairs": n, "workers": w, **kill, "temp_files_left_by_the_kill": leftovers,
                                  "resumed": resumed, "identical_to_uninterrupted": same}
        note(f"killed at {kill['done_when_killed']} of {n}; the re-run converted {resumed['converted']} and skipped "
             f"{resumed['already_done']} done; result identical to the uninterrupted run: {same}")
        shutil.rmtree(out)
        shutil.rmtree(reference)
    emit("prepare", {"src": f"synthetic AISegment tree{'' if args.tree is None else ' ' + str(args.tree)}",
                     "sizes": sizes, "workers": args.workers}, figures)
    return 0 if not args.kill_resume or figures["kill_resume"]["identical_to_uninterrupted"] else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tmp is not None:
        args.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_prepare_", dir=args.tmp) as tmp:
        return (aisegment_mode if args.aisegment else pairs_mode)(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
