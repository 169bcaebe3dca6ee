"""Photo → trimap (TNet) → alpha matte → print-ready ID photo.  Run ``python infer.py --help``.

    python infer.py --image examples/astronaut.jpg --spec 1inch --bg blue
    python infer.py --input-dir photos/ --spec icao --bg white --max-kb 200 --layout 6inch

Every input problem (missing or broken file, wrong checkpoint, no face…) is reported in one line on
stderr with a non-zero exit; in batch mode the file is skipped and the rest processed. Outputs are
written only when the whole photo succeeded, each atomically, so no partial file is ever left behind.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

from cli import EXIT_ERROR, EXIT_OK, OneLineParser, guarded

from idphoto.specs import SPECS, SpecError, add_spec_file, custom_spec, get_spec, text_table  # light: no torch yet




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
    src.add_argument("--out-dir", type=Path, default=Path("results"), metavar="DIR", help="where the outputs go")

    model = p.add_argument_group("segmentation and matting")
    model.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="TNet weights (a train.py checkpoint such as results/checkpoint_tnet.pth); "
                            "default: the shipped compact model weights/tnet_mobilenetv3_pfcn.pth")
    model.add_argument("--input-size", type=int, default=400, metavar="N", help="side of the square TNet input")
    model.add_argument("--refine-kernel", type=int, default=10, metavar="K",
                       help="erode/dilate kernel of the trimap refinement (0: none; 6: the 'smooth' variant)")
    model.add_argument("--matting", choices=sorted(MATTING_METHODS), default="cf",
                       help="pymatting method: closed-form, KNN, large-kernel, random-walk, learning-based")
    model.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, metavar="PX",
                       help="longest side at which the matting is solved (larger photos are matted at this "
                            "size and the alpha upsampled); 0 for no cap")
    model.add_argument("--threads", type=int, default=0, metavar="N",
                       help="CPU threads for PyTorch (0: its default; 1 is often faster on a busy machine)")
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
                      help="custom size in pixels, framed by --spec's head rule (1inch: head 60%% of the height)")
    size.add_argument("--size-mm", type=float, nargs=2, metavar=("W", "H"),
                      help="custom size in millimetres at --dpi, framed by --spec's head rule")
    idp.add_argument("--dpi", type=int, default=None, metavar="N",
                     help="print resolution stored in the JPEG (and used by --size-mm and --layout); default: the "
                          "spec's own (300 for most, 350 for the Chinese ID card), 300 for custom sizes")
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
                     help="also write a print sheet (6inch = 4×6 in, 5inch = 3.5×5 in, a4) tiled with as many copies "
                          "as fit (the sheet turned when more fit that way), with cut lines")

    misc = p.add_argument_group("other")
    misc.add_argument("--quiet", action="store_true", help="print only errors and the batch summary")
    misc.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    return p


def resolve_options(args, parser):
    """Check the arguments that argparse can't; returns (spec or None, background BGR)."""
    from idphoto.output import parse_color

    for name in ("input_size", "dpi"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.input_size % 8:
        parser.error("--input-size must be a multiple of 8")
    if args.refine_kernel < 0 or args.max_side < 0 or args.threads < 0:
        parser.error("--refine-kernel and --max-side must not be negative")
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
    if args.size_px and max(args.size_px) > 10000:
        parser.error("--size-px: at most 10000 px a side")
    if args.spec.lower() == "none":
        if custom:
            parser.error("--spec none keeps the photo's size; drop --size-px/--size-mm")
        return None, bg
    try:
        base = get_spec(args.spec)
    except KeyError:
        parser.error(f"--spec: unknown standard {args.spec!r}; see --list-specs")
    if args.size_px or args.size_mm:  # a custom size framed by --spec's head rule
        if args.size_px:
            spec = custom_spec(size_px=tuple(args.size_px), dpi=args.dpi or 300, base=base)
        else:
            spec = custom_spec(size_mm=tuple(args.size_mm), dpi=args.dpi or 300, base=base)
            if max(spec.size_px) > 10000 or min(spec.size_px) < 1:
                parser.error("--size-mm at --dpi gives an unusable pixel size")
        spec = dataclasses.replace(spec, name=f"custom size, {base.name} framing")
    elif args.dpi is not None and args.dpi != base.dpi:  # same physical size (or pixel size) at another resolution
        spec = dataclasses.replace(base, dpi=args.dpi, px=None) if base.px is None else base.with_size_px(*base.px, dpi=args.dpi)
    else:
        spec = base
    return spec, bg


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: not a torch device: {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device available (use --device cpu)")
    return name


def load_model(checkpoint: Path | None, device: str):
    from idphoto.errors import IDPhotoError
    from models import DEFAULT_WEIGHTS, WeightsError, load_tnet

    if checkpoint is None:
        if not DEFAULT_WEIGHTS.is_file():
            root = Path(__file__).resolve().parent
            shown = DEFAULT_WEIGHTS.relative_to(root) if DEFAULT_WEIGHTS.is_relative_to(root) else DEFAULT_WEIGHTS
            raise IDPhotoError(
                f"no model weights: the shipped compact model {shown} "
                f"is missing; train one with train.py and pass --checkpoint results/checkpoint_tnet.pth")
        checkpoint = DEFAULT_WEIGHTS
    try:
        return load_tnet(checkpoint, device)
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


def unique_stems(files: list[Path]) -> list[str]:
    """Output name stems; two inputs with the same stem (a.jpg, a.png) keep their extension in the name."""
    counts = {}
    for f in files:
        counts[f.stem] = counts.get(f.stem, 0) + 1
    return [f.stem if counts[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}" for f in files]


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
        files, others = list_images(args.input_dir)
        if not files:
            raise IDPhotoError(f"{args.input_dir}: no images (.jpg .png .webp .bmp .tif) in this folder")

    from idphoto.pipeline import Pipeline
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    model = load_model(args.checkpoint, device)
    pipeline = Pipeline(model, device, args.input_size, args.matting, args.refine_kernel, args.max_side or None)
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

    from tqdm import tqdm

    done, skipped, totals = 0, [], {}
    for path, stem in zip(bar := tqdm(files, desc="photos", unit="photo", file=sys.stderr, disable=args.quiet),
                          unique_stems(files)):
        try:
            report = process_one(path, stem, pipeline, args, spec, bg)
        except KeyboardInterrupt:
            raise
        except IDPhotoError as exc:
            skipped.append((path, str(exc)))
        except Exception as exc:  # one bad photo must not stop the batch
            skipped.append((path, f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
        else:
            done += 1
            for key, v in report["timings"].items():
                totals[key] = totals.get(key, 0.0) + v
            for note in report["notes"]:
                bar.write(f"warning: {path.name}: {note}", file=sys.stderr)
            continue
        bar.write(f"skipped: {skipped[-1][1]}", file=sys.stderr)
    bar.close()
    mean = {k: v / done for k, v in totals.items()} if done else {}
    print(f"{done} of {len(files)} photos done, {len(skipped)} skipped"
          + (f", {len(others)} non-image files ignored" if others else "")
          + f"; outputs in {args.out_dir}; total {time.perf_counter() - t_start:.1f} s"
          + (f"; mean per photo: {format_times(mean)}" if mean else ""))
    return EXIT_OK if not skipped else EXIT_ERROR


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from idphoto.errors import IDPhotoError  # after parsing: --help answers without loading torch

    return guarded("infer.py", lambda: run(args, parser), (IDPhotoError,), args.debug)


if __name__ == "__main__":
    sys.exit(main())
