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
import dataclasses
import sys
import time
import warnings
from pathlib import Path

from cli import EXIT_ERROR, EXIT_OK, OneLineParser, add_trimap_arguments, check_writable_dir, guarded, resolve_device

from idphoto.specs import SPECS, SpecError, add_spec_file, custom_spec, get_spec, text_table  # light: no torch yet

MIN_SIDE_PX = 100          # a smaller ID photo is no use to anyone (the smallest standard is 260×378)
MAX_SIDE_PX = 10000
DPI_RANGE = (72, 1200)
MIN_SHEET_PHOTO_MM = 15    # a print sheet of smaller photos is a mistake (ID photos are 22 mm wide or more)


def build_parser() -> argparse.ArgumentParser:
    from idphoto.face import DETECTORS
    from idphoto.framing import BG_STYLES
    from idphoto.output import COLORS, SHEETS
    from idphoto.pipeline import DEFAULT_MAX_SIDE, MATTING_METHODS

    p = OneLineParser(
        prog="infer.py",
        description="Turn a photo of a person into an ID photo: TNet trimap → alpha matting → foreground → "
                    "framing by the face → composite on a colour. Writes <name>_trimap.png, <name>_alpha.png, "
                    "<name>_cutout.png (RGBA) and <name>_idphoto.jpg (and <name>_sheet_<layout>.jpg with --layout).",
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

    model = p.add_argument_group("segmentation and matting")
    model.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="TNet weights (a train.py checkpoint such as results/checkpoint_tnet.pth); "
                            "default: the shipped compact model weights/tnet_unet_mobilenetv3.pth")
    add_trimap_arguments(model)
    model.add_argument("--refine-kernel", type=int, default=10, metavar="K",
                       help="erode/dilate kernel of the trimap refinement (0: none; 6: the 'smooth' variant)")
    model.add_argument("--matting", choices=sorted(MATTING_METHODS), default="cf",
                       help="cf: closed-form matting (nothing to compile); knn, lkm (large-kernel), rw (random-walk), "
                            "lbdm (learning-based): pymatting's, whose kernels compile on first use (about a minute)")
    model.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, metavar="PX",
                       help="longest side at which the matting is solved (larger photos are matted at this "
                            "size and the alpha upsampled); 0 for no cap")
    model.add_argument("--threads", type=int, default=0, metavar="N",
                       help="CPU threads for PyTorch (0: its default, or 1 per worker process with --input-dir; 1 is "
                            "often faster on a busy machine)")
    model.add_argument("--device", default="auto", help="torch device: auto (CUDA when available), cpu, cuda, cuda:1…")

    idp = p.add_argument_group("ID photo")
    idp.add_argument("--spec", default="1inch", metavar="NAME",
                     help=f"ID-photo standard (size, DPI, head height, eye line, top margin, background, file size; "
                          f"{len(SPECS)} in idphoto/specs.json: see --list-specs), or 'none' to keep the photo's own "
                          f"framing and size")
    idp.add_argument("--list-specs", action="store_true", help="print the known specs with their rules and exit")
    idp.add_argument("--spec-file", type=Path, action="append", default=[], metavar="JSON",
                     help="add the specs of a JSON file of your own (the format of idphoto/specs.json: one spec, a list, "
                          "or {\"specs\": [...]}); may be repeated")
    size = idp.add_mutually_exclusive_group()
    size.add_argument("--size-px", type=int, nargs=2, metavar=("W", "H"),
                      help=f"custom size in pixels ({MIN_SIDE_PX}–{MAX_SIDE_PX} a side), framed by --spec's head "
                           f"rule (1inch: head 60%% of the height)")
    size.add_argument("--size-mm", type=float, nargs=2, metavar=("W", "H"),
                      help=f"custom size in millimetres at --dpi (at least {MIN_SIDE_PX} px a side), framed by "
                           f"--spec's head rule")
    idp.add_argument("--dpi", type=int, default=None, metavar="N",
                     help=f"print resolution stored in the JPEG (and used by --size-mm and --layout), "
                          f"{DPI_RANGE[0]}–{DPI_RANGE[1]}; default: the spec's own (300 for most, 350 for the Chinese "
                          f"ID card), 300 for custom sizes")
    idp.add_argument("--bg", default="white", metavar="COLOUR",
                     help=f"background: {', '.join(COLORS)} (blue #438EDB, red #FF0000 as for Chinese ID photos), "
                          f"#RRGGBB, or 'keep' to keep the photo's own background and only frame it")
    idp.add_argument("--bg-style", choices=BG_STYLES, default="solid",
                     help="solid colour; gradient: the colour fading downwards to light; radial: light in the middle")
    idp.add_argument("--no-level", action="store_true",
                     help="do not turn a tilted photo to level the eyes (by default tilts of 1° or more are corrected)")
    idp.add_argument("--face-detector", choices=DETECTORS, default="auto",
                     help="landmarks: MediaPipe BlazeFace + Face Mesh (eyes, chin); haar: OpenCV's cascade (box only); "
                          "auto: landmarks, the cascade when they find nothing")
    idp.add_argument("--strict", action="store_true",
                     help="when the compliance report fails any rule, write nothing and exit 1")
    idp.add_argument("--no-face-ok", action="store_true",
                     help="without a detectable face, centre on the person's mask instead of failing")
    idp.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG quality of the ID photo (1–95)")
    idp.add_argument("--max-kb", type=float, default=None, metavar="N",
                     help="highest JPEG quality (≤ --quality) whose file is at most N KB (1 KB = 1024 bytes); "
                          "default: the spec's own file-size limit, if it has one")
    idp.add_argument("--layout", choices=sorted(SHEETS), default=None,
                     help=f"also write a print sheet (6inch = 4×6 in, 5inch = 3.5×5 in, a4) tiled with as many copies "
                          f"as fit (the sheet turned when more fit that way), with cut lines (photos of at least "
                          f"{MIN_SHEET_PHOTO_MM} mm a side at --dpi)")

    misc = p.add_argument_group("other")
    misc.add_argument("--quiet", action="store_true", help="print only errors and the batch summary")
    misc.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    return p


def resolve_options(args, parser):
    """Check the arguments that argparse can't; returns (spec or None, background BGR)."""
    from idphoto.output import parse_color

    if args.input_size is not None and (args.input_size <= 0 or args.input_size % 8):
        parser.error("--input-size must be a positive multiple of 8")
    if args.dpi is not None and not DPI_RANGE[0] <= args.dpi <= DPI_RANGE[1]:
        parser.error(f"--dpi must be between {DPI_RANGE[0]} and {DPI_RANGE[1]}")
    if args.refine_kernel < 0 or args.max_side < 0 or args.threads < 0 or args.workers < 0:
        parser.error("--refine-kernel, --max-side, --threads and --workers must not be negative")
    if not 1 <= args.quality <= 95:
        parser.error("--quality must be between 1 and 95")
    if args.max_kb is not None and args.max_kb <= 0:
        parser.error("--max-kb must be positive")
    if args.bg.strip().lower() == "keep":
        bg = None
    else:
        try:
            bg = parse_color(args.bg)
        except ValueError as exc:
            parser.error(f"--bg: {exc} or keep")
    custom = args.size_px or args.size_mm
    if custom is not None and min(custom) <= 0:
        parser.error("--size-px/--size-mm values must be positive")
    if args.spec.lower() == "none":
        if custom:
            parser.error("--spec none keeps the photo's size; drop --size-px/--size-mm")
        return None, bg
    if args.size_px and not MIN_SIDE_PX <= min(args.size_px) <= max(args.size_px) <= MAX_SIDE_PX:
        parser.error(f"--size-px: {MIN_SIDE_PX} to {MAX_SIDE_PX} px a side")
    try:
        base = get_spec(args.spec)
    except KeyError:
        parser.error(f"--spec: unknown standard {args.spec!r}; see --list-specs")
    if args.size_px or args.size_mm:  # a custom size framed by --spec's head rule
        if args.size_px:
            spec = custom_spec(size_px=tuple(args.size_px), dpi=args.dpi or 300, base=base)
        else:
            spec = custom_spec(size_mm=tuple(args.size_mm), dpi=args.dpi or 300, base=base)
            if not MIN_SIDE_PX <= min(spec.size_px) <= max(spec.size_px) <= MAX_SIDE_PX:
                w, h = spec.size_px
                parser.error(f"--size-mm at --dpi {args.dpi or 300} gives {w}×{h} px; {MIN_SIDE_PX} to {MAX_SIDE_PX} px a side needed")
        spec = dataclasses.replace(spec, name=f"custom size, {base.name} framing")
    elif args.dpi is not None and args.dpi != base.dpi:  # same physical size (or pixel size) at another resolution
        spec = dataclasses.replace(base, dpi=args.dpi, px=None) if base.px is None else base.with_size_px(*base.px, dpi=args.dpi)
        if min(spec.size_px) < MIN_SIDE_PX:
            parser.error(f"--dpi {args.dpi} makes a {spec.size_px[0]}×{spec.size_px[1]} px {base.name} photo; "
                         f"at least {MIN_SIDE_PX} px a side needed")
    else:
        spec = base
    if args.layout:
        mm = min(spec.size_px) / spec.dpi * 25.4
        if mm < MIN_SHEET_PHOTO_MM:
            parser.error(f"--layout: the photo is {spec.size_px[0]}×{spec.size_px[1]} px at {spec.dpi} DPI, "
                         f"{mm:.1f} mm on its short side; print sheets need at least {MIN_SHEET_PHOTO_MM} mm "
                         f"(lower --dpi or enlarge the photo)")
    return spec, bg


def pick_device(name: str) -> str:
    """--device: a malformed name is a ValueError (usage, exit 2); a missing CUDA device exits 1, as in train.py."""
    return resolve_device(name)


def load_model(checkpoint: Path | None, device: str, threads: int = 0, input_size: int | None = None):
    """The TNet, as idphoto.runner gives it: without PyTorch when its OpenCV export is cached."""
    from idphoto.errors import IDPhotoError
    from idphoto.runner import load_trimap_model
    from models import DEFAULT_WEIGHTS, WeightsError

    if checkpoint is None:
        if not DEFAULT_WEIGHTS.is_file():
            root = Path(__file__).resolve().parent
            shown = DEFAULT_WEIGHTS.relative_to(root) if DEFAULT_WEIGHTS.is_relative_to(root) else DEFAULT_WEIGHTS
            raise IDPhotoError(
                f"no model weights: the shipped compact model {shown} "
                f"is missing; train one with train.py and pass --checkpoint results/checkpoint_tnet.pth")
        checkpoint = DEFAULT_WEIGHTS
    try:
        return load_trimap_model(checkpoint, device, threads, input_size)
    except WeightsError as exc:
        raise IDPhotoError(f"checkpoint: {exc}") from None


def process_one(path: Path, stem: str, pipeline, args, spec, bg) -> dict:
    """Everything for one photo, in memory first; then all files are written (or none). Returns a report."""
    from idphoto import MattingWarning, encode_jpeg, load_image, make_id_photo, print_sheet
    from idphoto.compliance import check_photo
    from idphoto.errors import IDPhotoError
    from idphoto.output import encode_for_spec, encode_png, output_paths, write_all

    timings = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MattingWarning)
        t = time.perf_counter()
        image = load_image(path)
        timings["load"] = time.perf_counter() - t
        result = pipeline.run(image)
        timings.update(result.timings)

        t = time.perf_counter()
        photo = make_id_photo(image, result.alpha, result.foreground, spec, bg or (255, 255, 255), args.no_face_ok,
                              args.dpi or 300, level_eyes=not args.no_level, bg_style=args.bg_style,
                              keep_background=bg is None, detector=args.face_detector)
        timings["idphoto"] = time.perf_counter() - t

        t = time.perf_counter()
        paths = output_paths(args.out_dir, stem, args.layout, report=spec is not None)
        jpeg, quality = encode_for_spec(photo.image, photo.dpi, spec and spec.kb, args.max_kb, args.quality)
        timings["encode"] = time.perf_counter() - t
        report = None
        if spec is not None:
            t = time.perf_counter()
            report = check_photo(photo.image, spec, jpeg, photo.alpha, args.face_detector, photo.levelled_degrees,
                                 photo.gave_way)
            timings["check"] = time.perf_counter() - t
            if args.strict and not report.passed:
                failed = "; ".join(f"{c.rule} {c.value if c.value is not None else '–'}"
                                   + (f" (allowed {c.allowed})" if c.allowed else "") for c in report.failed)
                raise IDPhotoError(f"{path}: --strict: {len(report.failed)} rule(s) of {spec.name} failed, nothing "
                                   f"written: {failed}")
        t = time.perf_counter()
        files = {
            paths["trimap"]: encode_png(result.trimap),
            paths["alpha"]: encode_png((result.alpha * 255 + 0.5).astype("uint8")),
            paths["cutout"]: encode_png(result.cutout_rgba()),
            paths["idphoto"]: jpeg,
        }
        copies = 0
        if args.layout:
            sheet, copies = print_sheet(photo.image, photo.dpi, args.layout)
            files[paths["sheet"]] = encode_jpeg(sheet, photo.dpi, 95)
        if report is not None:
            files[paths["report"]] = report.to_json()
        timings["encode"] += time.perf_counter() - t
        t = time.perf_counter()
        write_all(files)
        timings["write"] = time.perf_counter() - t
    notes = photo.warnings + [str(w.message).splitlines()[0] for w in caught
                              if issubclass(w.category, MattingWarning)]
    h, w = photo.image.shape[:2]
    return {"paths": paths, "timings": timings, "notes": notes, "quality": quality, "copies": copies,
            "size": (w, h), "dpi": photo.dpi, "kb": len(jpeg) / 1024, "input": image.shape[:2], "report": report}


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
    for f in args.spec_file:
        try:
            add_spec_file(f)
        except SpecError as exc:
            parser.error(f"--spec-file {exc}")
    if args.list_specs:
        print(text_table())
        return EXIT_OK
    if args.image is None and args.input_dir is None:
        parser.error("one of the arguments --image --input-dir is required")
    spec, bg = resolve_options(args, parser)
    spec_name = "photo framing" if spec is None else spec.name
    from idphoto.errors import IDPhotoError
    from idphoto.image_io import list_images

    if args.image is not None:
        if not args.image.exists():
            raise IDPhotoError(f"{args.image}: file not found")
        files, others = [args.image], []
    else:
        # listed once, before anything is written: this run's own outputs are never taken as inputs
        files, others = list_images(args.input_dir)
        if not files:
            raise IDPhotoError(f"{args.input_dir}: no images (.jpg .png .webp .bmp .tif) in this folder")
    check_writable_dir(args.out_dir)  # before the model and the photos: not after the last photo
    stems = [args.image.stem] if args.image is not None else unique_stems(files, args.out_dir, args.layout)

    workers = batch_workers(args.workers, len(files)) if args.image is None else 1
    if workers > 1:
        return run_pool(args, files, stems, others, spec, bg, workers, t_start)

    from idphoto.pipeline import Pipeline
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    t = time.perf_counter()
    model = load_model(args.checkpoint, device, args.threads, args.input_size)
    pipeline = Pipeline(model, device, args.input_size, args.matting, args.refine_kernel, args.max_side or None,
                        flip=args.tta == "flip")
    t_model = time.perf_counter() - t

    if args.image is not None:
        report = process_one(args.image, args.image.stem, pipeline, args, spec, bg)
        for note in report["notes"]:
            print(f"warning: {args.image}: {note}", file=sys.stderr)
        if not args.quiet:
            print_report(report, spec_name)
            print(f"time     {format_times(report['timings'])}; model load {t_model:.2f} s; "
                  f"total {time.perf_counter() - t_start:.2f} s")
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
    """Consume (path, result) pairs as they come: progress bar, warnings, skips, then the summary line."""
    from tqdm import tqdm

    if not args.quiet:
        for path, stem in zip(files, stems):
            if stem != path.stem:
                print(f"note: {path.name} → outputs named {stem}_* (its own name is taken)", file=sys.stderr)
    done, skipped, totals = 0, [], {}
    desc = "photos" if workers == 1 else f"photos ({workers} workers)"
    with tqdm(total=len(files), desc=desc, unit="photo", file=sys.stderr, disable=args.quiet) as bar:
        for path, (status, value) in results:
            bar.update()
            if status == "skipped":
                reason = value.removeprefix(f"{path}: ")  # every line names its file once
                skipped.append((path, reason))
                bar.write(f"skipped: {path}: {reason}", file=sys.stderr)
                continue
            done += 1
            for key, v in value["timings"].items():
                totals[key] = totals.get(key, 0.0) + v
            for note in value["notes"]:
                bar.write(f"warning: {path.name}: {note}", file=sys.stderr)
    mean = {k: v / done for k, v in totals.items()} if done else {}
    print(f"{done} of {len(files)} photos done, {len(skipped)} skipped"
          + (f", {len(others)} non-image files ignored" if others else "")
          + f"; outputs in {args.out_dir}; total {time.perf_counter() - t_start:.1f} s"
          + (f"; mean per photo: {format_times(mean)}" if mean else ""))
    for path, reason in skipped:
        print(f"  skipped {path.name}: {reason}")
    return EXIT_OK if not skipped else EXIT_ERROR


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

        cv2.setNumThreads(threads)
        device = pick_device(args.device)
        model = load_model(args.checkpoint, device, threads, args.input_size)
        _WORKER["pipeline"] = Pipeline(model, device, args.input_size, args.matting,
                                       args.refine_kernel, args.max_side or None, flip=args.tta == "flip")
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
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from idphoto.errors import IDPhotoError

    if args.matting != "cf":  # compile (or load) pymatting's kernels once here, not in every worker at once
        from idphoto.pipeline import import_pymatting

        import_pymatting()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start,
                               initargs=(args, args.threads or 1))
    futures = {pool.submit(_worker_photo, path, stem, args, spec, bg): path
               for path, stem in zip(files, stems)}

    def results():
        for future in as_completed(futures):
            try:
                status, value = future.result()
            except BrokenProcessPool:
                raise IDPhotoError("a worker process died (out of memory?); try --workers 1") from None
            if status == "fatal":
                raise IDPhotoError(value)
            yield futures[future], (status, value)

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
