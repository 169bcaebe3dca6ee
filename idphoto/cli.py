"""The ID-photo command: photo → trimap (TNet) → alpha matte → print-ready ID photo. ``python infer.py`` (in
the checkout) and the installed ``idphoto`` command both run :func:`main`.

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


def build_parser(prog: str = "infer.py") -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=prog,
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
    from idphoto.batch import batch_workers, make_files, process_photos, unique_stems
    from idphoto.options import Resolved

    options, resolved = IDPhotoOptions.from_args(args), Resolved(spec, bg, args.dpi)
    stems = [args.image.stem] if args.image is not None else unique_stems(files, args.out_dir, args.layout)
    workers = batch_workers(args.workers, len(files)) if args.image is None else 1
    if workers > 1:   # each worker process loads the model once; this one loads none
        results = process_photos(files, stems, options, resolved, args.out_dir, workers)
        return summarise(results, args, files, stems, others, t_start, workers)

    from idphoto.pipeline import Pipeline
    from idphoto.runner import open_trimap_model
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    t = time.perf_counter()
    model = open_trimap_model(args.checkpoint, device, args.threads, args.input_size)
    pipeline = Pipeline.from_options(model, options, device)
    t_model = time.perf_counter() - t

    if args.image is not None:
        report = make_files(args.image, args.image.stem, pipeline, options, resolved, args.out_dir)
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

    results = process_photos(files, stems, options, resolved, args.out_dir, 1, pipeline)
    return summarise(results, args, files, stems, others, t_start)


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


def main(argv=None, prog: str = "infer.py") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from idphoto.errors import IDPhotoError  # after parsing: --help answers without loading torch

    return guarded(prog, lambda: run(args, parser), (IDPhotoError,), args.debug)


def command() -> int:
    """The installed ``idphoto`` command (``[project.scripts]`` in pyproject.toml)."""
    return main(prog="idphoto")
