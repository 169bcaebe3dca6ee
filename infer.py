"""Photo → trimap (TNet) → alpha matte → print-ready ID photo.  Run ``python infer.py --help``.

    python infer.py --image examples/astronaut.jpg --spec 1inch --bg blue
    python infer.py --input-dir photos/ --spec icao --bg white --max-kb 200 --layout 6inch

Every input problem (missing or broken file, wrong checkpoint, no face…) is reported in one line on
stderr with a non-zero exit; in batch mode the file is skipped and the rest processed. Outputs are
written only when the whole photo succeeded, each atomically, so no partial file is ever left behind.
In batch mode every photo gets its own output names (checked before any work), and no input photo is
ever written over.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, OneLineParser, check_writable_dir, guarded
from core.runtime import pick_device  # --device: a malformed name is a ValueError (exit 2), a missing GPU exit 1

from idphoto.options import IDPhotoOptions, OptionsError  # light: no torch yet

# Flags of infer.py alone (where photos come from and go, how a batch runs, what is printed); every other
# flag is an IDPhotoOptions field, which the web app and the HTTP API accept too.
CLI_ONLY = ("image", "input_dir", "workers", "out_dir", "quiet", "debug")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="infer.py",
        description="Turn a photo of a person into an ID photo: TNet trimap → alpha matting → foreground → "
                    "framing by the face → composite on a colour → compliance report. Writes <name>_idphoto.jpg and "
                    "<name>_report.json (and <name>_sheet_<layout>.jpg with --layout; the whole photo's "
                    "<name>_trimap.png, <name>_alpha.png and <name>_cutout.png (RGBA) with --matte-files or --spec "
                    "none). The same options serve the web app (python app.py).",
        epilog="A photo that can't make a usable ID photo (no face or another face, a head tilted over 15° or turned "
               "over 30°, a hand, sunglasses or a mask on the face, too little below the chin, the head cut off) is "
               "refused with the reason and nothing is written for it; a rule missed by a little is a warning "
               "(--strict refuses it too). Exit status: 0 when every photo was written, 1 when any was refused or "
               "could not be read, 2 for a wrong command line, 130 after Ctrl-C.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    src = p.add_argument_group("input and output")
    one = src.add_mutually_exclusive_group()
    one.add_argument("--image", type=Path, metavar="PATH", help="one photo (JPEG, PNG, WebP, BMP, TIFF)")
    one.add_argument("--input-dir", type=Path, metavar="DIR",
                     help="process every image in DIR with one model load; bad files are reported and skipped")
    src.add_argument("--workers", type=int, default=0, metavar="N",
                     help="--input-dir: processes working in parallel, each loading the model once and using "
                          "--threads threads (default 1) (0: one per CPU core, at most one per photo; 1: all in "
                          "this process)")
    src.add_argument("--out-dir", type=Path, default=Path("results"), metavar="DIR", help="where the outputs go")
    IDPhotoOptions.add_arguments(p)
    misc = p.add_argument_group("other")
    misc.add_argument("--quiet", action="store_true", help="print only errors and the batch summary")
    misc.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    return p


def resolve_options(args, parser):
    """Check the arguments that argparse can't; returns (spec or None, background BGR or None for 'keep')."""
    if args.workers < 0:
        parser.error("--workers must not be negative")
    try:
        resolved = IDPhotoOptions.from_args(args).validate()
    except OptionsError as exc:
        parser.error(str(exc))
    return resolved.spec, resolved.bg


def process_one(path: Path, stem: str, pipeline, args, spec, bg) -> dict:
    """Everything for one photo, in memory first (:func:`idphoto.service.process_image`, the work the API
    does per request); then all files are written (or none). Returns a report."""
    from idphoto.errors import IDPhotoError
    from idphoto.image_io import open_photo
    from idphoto.options import Resolved
    from idphoto.output import output_paths, write_all
    from idphoto.service import process_image

    t = time.perf_counter()
    try:  # read as far as its header: the pixels are decoded at the size the ID photo needs
        image = open_photo(path)
        load_s = time.perf_counter() - t
        out = process_image(image, IDPhotoOptions.from_args(args), pipeline, Resolved(spec, bg, args.dpi))
    except IDPhotoError as exc:  # refused: every line names its photo, and says that nothing was written
        text = str(exc)
        raise IDPhotoError(f"{text if text.startswith(str(path)) else f'{path}: {text}'}; nothing written") from None
    timings = {"load": load_s + out.timings.pop("decode", 0.0), **out.timings}
    made = {"trimap": out.trimap, "alpha": out.alpha, "cutout": out.cutout, "idphoto": out.idphoto,
            "idphoto_hd": out.idphoto_hd, "sheet": out.sheet,
            "report": None if out.report is None else out.report.to_json()}
    paths = {k: p for k, p in output_paths(args.out_dir, stem, args.layout, report=spec is not None).items()
             if made[k] is not None}   # the matte files only with --matte-files or --spec none
    files = {path: made[k] for k, path in paths.items()}
    t = time.perf_counter()
    write_all(files)
    timings["write"] = time.perf_counter() - t
    return {"paths": paths, "timings": timings, "notes": out.notes, "quality": out.quality, "copies": out.copies,
            "size": out.size, "dpi": out.dpi, "kb": out.kb, "input": image.size[::-1], "report": out.report}


def format_times(timings: dict) -> str:
    return ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())


def print_report(report: dict, spec_name: str, out=None) -> None:
    out = out or sys.stdout
    paths = report["paths"]
    w, h = report["size"]
    for key, path in paths.items():
        extra = ""
        if key == "idphoto":
            extra = f"  ({w}×{h} px, {report['dpi']} DPI, {spec_name}, {report['kb']:.1f} KB, JPEG quality {report['quality']})"
        elif key == "sheet":
            extra = f"  ({report['copies']} copies)"
        elif key == "report" and report.get("report") is not None:
            extra = "  (" + ("all rules met" if report["report"].passed else
                             f"{len(report['report'].failed)} rule(s) failed") + ")"
        print(f"{key:8} {path}{extra}", file=out)
    if report.get("report") is not None:
        for line in report["report"].lines():
            print(f"         {line}", file=out)


def _key(path: Path) -> tuple[str, str]:
    """A file's identity for collisions: its real folder and its name without case (on Windows and macOS
    ``photo.JPG`` and ``photo.jpg`` are one file)."""
    return str(path.parent.resolve()), path.name.casefold()


def unique_stems(files: list[Path], out_dir: Path, layout: str | None = None) -> list[str]:
    """One output name stem per input, never shared and never naming an input photo, decided before any work.

    A photo keeps its own stem when no other input has it (case ignored); photos sharing a stem add their
    extension (``a.jpg`` → ``a_jpg``, ``a.png`` → ``a_png``). A stem still taken — by another photo, or
    because one of its outputs would be an input photo (``a.jpg`` beside ``a_idphoto.jpg`` in --out-dir) —
    gets ``_2``, ``_3``…: plain stems are served first, then the others in file-name order.
    """
    from collections import Counter

    from idphoto.output import output_paths

    inputs = {_key(f) for f in files}
    shared = Counter(f.stem.casefold() for f in files)
    wanted = [f.stem if shared[f.stem.casefold()] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}" for f in files]
    taken: set[str] = set()
    stems: list[str] = [""] * len(files)
    for i in sorted(range(len(files)), key=lambda i: (wanted[i] != files[i].stem, files[i].name)):
        stem, n = wanted[i], 1
        while stem.casefold() in taken or any(_key(p) in inputs for p in output_paths(out_dir, stem, layout).values()):
            n += 1
            stem = f"{wanted[i]}_{n}"
        taken.add(stem.casefold())
        stems[i] = stem
    # the guarantee itself, checked: every output path is distinct and none is an input
    planned = [_key(p) for stem in stems for p in output_paths(out_dir, stem, layout).values()]
    if len(set(planned)) != len(planned) or inputs & set(planned):
        raise RuntimeError("output names collide; refusing to write anything")
    return stems


def run(args, parser) -> int:
    t_start = time.perf_counter()
    try:
        IDPhotoOptions.from_args(args).load_spec_files()
    except OptionsError as exc:
        parser.error(str(exc))
    if args.list_specs:
        from idphoto.specs import text_table

        print(text_table())
        return EXIT_OK
    if args.image is None and args.input_dir is None:
        parser.error("one of the arguments --image --input-dir is required")
    spec, bg = resolve_options(args, parser)
    spec_name = "photo framing" if spec is None else spec.name
    from idphoto.errors import IDPhotoError
    from idphoto.image_io import is_our_output, list_images

    if args.image is not None:
        if not args.image.exists():
            raise IDPhotoError(f"{args.image}: file not found")
        files, others = [args.image], []
    else:
        # listed once, before anything is written: this run's own outputs are never taken as inputs
        files, others = list_images(args.input_dir)
        ours = [f for f in files if is_our_output(f)]  # an earlier run's outputs are never photos
        files = [f for f in files if f not in ours]
        if ours and not args.quiet:
            print(f"note: {len(ours)} image(s) written by this tool (an earlier run's outputs) left out", file=sys.stderr)
        if not files:
            raise IDPhotoError(f"{args.input_dir}: no images (.jpg .png .webp .bmp .tif) in this folder"
                               + (" other than this tool's own outputs" if ours else ""))
    check_writable_dir(args.out_dir)  # before the model and the photos: not after the last photo
    stems = [args.image.stem] if args.image is not None else unique_stems(files, args.out_dir, args.layout)

    workers = batch_workers(args.workers, len(files)) if args.image is None else 1
    if workers > 1:
        return run_pool(args, files, stems, others, spec, bg, workers, t_start)

    from idphoto.pipeline import Pipeline
    from idphoto.service import load_model
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    t = time.perf_counter()
    model = load_model(args.checkpoint, device, args.threads, args.input_size)
    pipeline = Pipeline.from_options(model, IDPhotoOptions.from_args(args), device)
    t_model = time.perf_counter() - t

    if args.image is not None:
        report = process_one(args.image, args.image.stem, pipeline, args, spec, bg)
        if not args.quiet:
            for note in report["notes"]:
                print(f"warning: {args.image}: {note}", file=sys.stderr)
            print_report(report, spec_name)
            print(f"time     {format_times(report['timings'])}; model load {t_model:.2f} s; "
                  f"total {time.perf_counter() - t_start:.2f} s")
        missed = report["report"].soft_failed if report.get("report") is not None else []
        if missed:
            print(f"written, rules missed: {args.image}: {report['report'].summary(missed)}", file=sys.stderr)
        return EXIT_OK

    results = ((path, photo_result(path, stem, pipeline, args, spec, bg)) for path, stem in zip(files, stems))
    return summarise(results, args, files, stems, others, t_start)


def photo_result(path: Path, stem: str, pipeline, args, spec, bg) -> tuple[str, object]:
    """("done", report) or ("skipped", one-line reason): one bad photo must not stop the batch."""
    from idphoto.errors import IDPhotoError

    try:
        return "done", process_one(path, stem, pipeline, args, spec, bg)
    except OSError as exc:  # the out-dir can't be written (a full disk): every later photo would fail too
        raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or str(args.out_dir)) from None
    except IDPhotoError as exc:
        return "skipped", str(exc)
    except Exception as exc:  # noqa: BLE001 — reported, and the batch goes on
        return "skipped", f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def summarise(results, args, files: list[Path], stems: list[str], others: list[Path], t_start: float,
              workers: int = 1) -> int:
    """Consume (path, result) pairs as they come: progress bar, warnings, refusals, then the summary: how many
    photos were written with all rules met, written with rules missed (which), and refused (why). The exit
    status is 0 only when every photo was written."""
    from tqdm import tqdm

    if not args.quiet:
        for path, stem in zip(files, stems):
            if stem != path.stem:
                print(f"note: {path.name} → outputs named {stem}_* (its own name is taken)", file=sys.stderr)
    met, missed, refused, totals = 0, [], [], {}
    interrupted = False
    desc = "photos" if workers == 1 else f"photos ({workers} workers)"
    with tqdm(total=len(files), desc=desc, unit="photo", file=sys.stderr, disable=args.quiet) as bar:
        try:
            pairs = list_results(results, bar, args, totals)
        except KeyboardInterrupt as stop:  # Ctrl-C: what finished so far is reported below
            pairs, interrupted = stop.args[0] if stop.args else [], True
    for path, (status, value) in pairs:
        if status == "skipped":
            refused.append((path, value))
            continue
        report = value.get("report")
        if report is not None and report.soft_failed:
            missed.append((path, report.summary(report.soft_failed)))
        else:
            met += 1
    written = met + len(missed)
    mean = {k: v / written for k, v in totals.items()} if written else {}
    print(f"{written} of {len(files)} photos written ({met} with all rules met, {len(missed)} with rules missed), "
          f"{len(refused)} refused" + (f", {len(others)} non-image files ignored" if others else "")
          + f"; outputs in {args.out_dir}; total {time.perf_counter() - t_start:.1f} s"
          + (f"; mean per photo: {format_times(mean)}" if mean else ""))
    for path, why in missed:
        print(f"  written, rules missed: {path.name}: {why}")
    for path, reason in refused:
        print(f"  refused: {path.name}: {reason}")
    if interrupted:
        done = {path for path, _ in pairs}
        left = [path for path in files if path not in done]
        print(f"interrupted: {len(left)} photo(s) not made: " + ", ".join(p.name for p in left[:10])
              + (f" and {len(left) - 10} more" if len(left) > 10 else ""))
        return EXIT_INTERRUPTED
    return EXIT_OK if not refused else EXIT_ERROR


def list_results(results, bar, args, totals: dict) -> list:
    """Take the (path, (status, value)) results as they come, with the progress bar, refusal and warning
    lines and the stage times; returns them all, a refusal's value being its reason without the photo's
    name. Ctrl-C raises KeyboardInterrupt carrying those taken."""
    pairs = []
    try:
        for path, (status, value) in results:
            bar.update()
            if status == "skipped":
                value = value.removeprefix(f"{path}: ").removesuffix("; nothing written")  # named once
                bar.write(f"refused: {path}: {value}", file=sys.stderr)
            pairs.append((path, (status, value)))
            if status == "skipped":
                continue
            for key, v in value["timings"].items():
                totals[key] = totals.get(key, 0.0) + v
            if not args.quiet:
                for note in value["notes"]:
                    bar.write(f"warning: {path.name}: {note}", file=sys.stderr)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(pairs) from None
    return pairs


# ------------------------------------------------------------------------------------------ batch in parallel
def batch_workers(requested: int, n_files: int) -> int:
    """How many processes --input-dir uses: ``requested``, or one per CPU core this process may use."""
    import os

    if requested:
        return max(1, min(requested, n_files))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_files))


_WORKER: dict = {}


def _worker_start(args, threads: int) -> None:
    """Pool initialiser: one model per worker process. A failure is kept and reported by the first photo."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))  # before NumPy/SciPy load: the cores are shared by the workers
    try:
        import cv2

        from idphoto.pipeline import Pipeline
        from idphoto.service import load_model

        cv2.setNumThreads(threads)
        device = pick_device(args.device)
        model = load_model(args.checkpoint, device, threads, args.input_size)
        _WORKER["pipeline"] = Pipeline.from_options(model, IDPhotoOptions.from_args(args), device)
    except Exception as exc:  # noqa: BLE001 — e.g. a bad checkpoint: the parent stops with this line
        _WORKER["fatal"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _worker_photo(path: Path, stem: str, args, spec, bg) -> tuple[str, object]:
    if "fatal" in _WORKER:
        return "fatal", _WORKER["fatal"]
    return photo_result(path, stem, _WORKER["pipeline"], args, spec, bg)


def run_pool(args, files: list[Path], stems: list[str], others: list[Path], spec, bg, workers: int, t_start: float) -> int:
    """--input-dir on ``workers`` processes (spawned: safe with PyTorch's threads, and portable). The parent
    loads no model; each worker loads it once and takes photos as it finishes the previous one."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from idphoto.errors import IDPhotoError

    if args.matting != "cf":  # compile (or load) pymatting's kernels once here, not in every worker at once
        from idphoto.pipeline import import_pymatting

        import_pymatting()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start,
                               initargs=(args, args.threads or 1))
    todo = list(zip(files, stems))

    def results():
        """Photos are handed out one per free worker (none queued ahead), so that Ctrl-C stops the batch at
        once: the photos in flight finish (each written whole), no other starts."""
        running = {}
        try:
            while todo or running:
                while todo and len(running) < workers:
                    path, stem = todo.pop(0)
                    running[pool.submit(_worker_photo, path, stem, args, spec, bg)] = path
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    path = running.pop(future)
                    try:
                        status, value = future.result()
                    except BrokenProcessPool:
                        raise IDPhotoError("a worker process died (out of memory?); try --workers 1") from None
                    if status == "fatal":
                        raise IDPhotoError(value)
                    yield path, (status, value)
        except KeyboardInterrupt:
            todo.clear()
            for future, path in list(running.items()):  # the photos in flight finish, whole
                try:
                    status, value = future.result()
                except Exception:  # noqa: BLE001 — a worker gone on Ctrl-C: that photo is not made
                    continue
                if status != "fatal":
                    yield path, (status, value)
            raise

    try:
        return summarise(results(), args, files, stems, others, t_start, workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from idphoto.errors import IDPhotoError  # after parsing: --help answers without loading torch

    return guarded("infer.py", lambda: run(args, parser), (IDPhotoError,), args.debug)


if __name__ == "__main__":
    sys.exit(main())
