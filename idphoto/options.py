"""The inference and ID-photo options, defined once for infer.py, evaluate.py, app.py and the HTTP API.

Every option is one field of :class:`IDPhotoOptions`, and its flag, help text, group, type and choices
live with the field. The command-line flags (:meth:`IDPhotoOptions.add_arguments`), the parsed values
(:meth:`from_args`), the API's form fields (:meth:`form_fields`, :meth:`from_form`) and the checks
argparse can't make (:meth:`validate`) are all made from those fields, so the CLI and the server can't
disagree: an option added here reaches both, with the same default and the same one-line error.

Options have a scope: ``photo`` options may change with every photo (an API request sets them), while
``process`` options (which model, which device, how many threads, extra spec files) are set when a
process starts: ``infer.py`` per run, the server at start-up, never per request.

Importing this module loads no PyTorch, so ``--help`` answers at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from core.cli import field_argument, flag_name

from .face import DETECTORS
from .framing import BG_STYLES
from .output import COLORS, MIN_SHEET_PHOTO_MM, SHEETS, parse_color, sheet_problem
from .retouch import RANGE as RETOUCH_RANGE, SATURATION_RANGE, SMOOTH_RANGE, Retouch
from .pipeline import DEFAULT_MAX_SIDE, MATTING_METHODS
from .specs import SPECS, PhotoSpec, SpecError, add_spec_file, custom_spec, get_spec

TTA_CHOICES = ("none", "flip")
MIN_SIDE_PX = 100          # a smaller ID photo is no use to anyone (the smallest standard is 260×378)
MAX_SIDE_PX = 10000        # a larger one is a typo, not a photo
DPI_RANGE = (72, 1200)
DEFAULT_DPI = 300          # for --spec none and custom sizes, which have no DPI of their own
WHITE = (255, 255, 255)

PHOTO, PROCESS = "photo", "process"
GROUPS = {"model": "segmentation and matting", "idphoto": "ID photo"}


class OptionsError(ValueError):
    """An impossible option or combination; the message is one line naming the flag (``--bg: …``)."""


# how each kind of value is read from the command line (core.cli.field_argument reads these keys)
_FLAG_OF_KIND = {"integer": {"type": int}, "number": {"type": float}, "string": {"type": str},
                 "boolean": {"action": "store_true"}, "int_pair": {"type": int, "nargs": 2},
                 "number_pair": {"type": float, "nargs": 2}, "path": {"type": Path},
                 "paths": {"type": Path, "action": "append"}}


def _option(default, help: str, *, group: str, kind: str, scope: str = PHOTO, choices=None, metavar=None,
            exclusive: str | None = None):
    """A field of :class:`IDPhotoOptions` with what its flag and its form field need.

    ``kind``: integer, number, string, boolean (a switch), int_pair / number_pair (W H), path, paths (repeatable).
    """
    meta = {"help": help, "group": group, "kind": kind, "scope": scope, "choices": choices, "metavar": metavar,
            "exclusive": exclusive, **_FLAG_OF_KIND[kind]}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults: use a tuple")
    return field(default=default, metadata=meta)


@dataclass
class IDPhotoOptions:
    # ---------------------------------------------------------------------------- segmentation and matting
    checkpoint: Path | None = _option(
        None, "TNet weights (a train.py checkpoint such as results/checkpoint_tnet.pth, a file made by "
              "models.export, or an ONNX export); default: the shipped compact model weights/tnet_unet_mobilenetv3.pth",
        group="model", kind="path", scope=PROCESS, metavar="PATH")
    input_size: int | None = _option(
        None, "side of the square TNet input (default: the size the weights were trained for, recorded in the "
              "weights file, or a train.py checkpoint's --patch; 400 for files that say neither)",
        group="model", kind="integer", metavar="N")
    tta: str = _option(
        "none", "test-time augmentation of the trimap: 'flip' averages the photo and its mirror image (about "
                "twice the network time)", group="model", kind="string", choices=TTA_CHOICES)
    refine_kernel: int = _option(
        10, "erode/dilate kernel that widens the predicted trimap's unknown band before the matting (0: none; "
            "6: the 'smooth' variant)", group="model", kind="integer", metavar="K")
    matting: str = _option(
        "cf", "cf: closed-form matting (nothing to compile); knn, lkm (large-kernel), rw (random-walk), lbdm "
              "(learning-based): pymatting's, whose kernels compile on first use (about a minute)",
        group="model", kind="string", choices=tuple(sorted(MATTING_METHODS)))
    max_side: int = _option(
        DEFAULT_MAX_SIDE, "longest side at which the matting is solved (larger photos are matted at this size and "
                          "the alpha upsampled); 0 for no cap", group="model", kind="integer", metavar="PX")
    matte_files: bool = _option(
        False, "also make the whole photo's trimap, alpha and cut-out at its own size (<name>_trimap.png, "
               "_alpha.png, _cutout.png). Without it only the ID photo is made, from a copy of the photo at about "
               "twice the ID photo's size: much faster on large photos. Always on with --spec none, whose "
               "product is the cut-out", group="model", kind="boolean")
    threads: int = _option(
        0, "CPU threads for PyTorch (0: its default, or the cores shared out when several worker processes or "
           "server workers run at once; 1 is often faster on a busy machine)",
        group="model", kind="integer", scope=PROCESS, metavar="N")
    device: str = _option(
        "auto", "torch device: auto (CUDA when available), cpu, cuda, cuda:1…",
        group="model", kind="string", scope=PROCESS)
    # -------------------------------------------------------------------------------------------- ID photo
    spec: str = _option(
        "1inch", f"ID-photo standard (size, DPI, head height, eye line, top margin, background, file size; "
                 f"{len(SPECS)} in idphoto/specs.json: see --list-specs), or 'none' to keep the photo's own framing "
                 f"and size", group="idphoto", kind="string", metavar="NAME")
    spec_file: tuple[Path, ...] = _option(
        (), "add the specs of a JSON file of your own (the format of idphoto/specs.json: one spec, a list, or "
            "{\"specs\": [...]}); may be repeated", group="idphoto", kind="paths", scope=PROCESS, metavar="JSON")
    size_px: tuple[int, int] | None = _option(
        None, f"custom size in pixels ({MIN_SIDE_PX}–{MAX_SIDE_PX} a side), framed by --spec's head rule "
              f"(1inch: head 60%% of the height)", group="idphoto", kind="int_pair", metavar=("W", "H"),
        exclusive="size")
    size_mm: tuple[float, float] | None = _option(
        None, f"custom size in millimetres at --dpi (at least {MIN_SIDE_PX} px a side), framed by --spec's head rule",
        group="idphoto", kind="number_pair", metavar=("W", "H"), exclusive="size")
    dpi: int | None = _option(
        None, f"print resolution stored in the JPEG (and used by --size-mm and --layout), {DPI_RANGE[0]}–"
              f"{DPI_RANGE[1]}; default: the spec's own (300 for most, 350 for the Chinese ID card), "
              f"{DEFAULT_DPI} for custom sizes", group="idphoto", kind="integer", metavar="N")
    bg: str = _option(
        "white", f"background: {', '.join(COLORS)} (blue #438EDB, red #FF0000 as for Chinese ID photos), #RRGGBB, "
                 f"or 'keep' to keep the photo's own background and only frame it",
        group="idphoto", kind="string", metavar="COLOUR")
    bg_style: str = _option(
        "solid", "solid colour; gradient: the colour fading downwards to light; radial: light in the middle",
        group="idphoto", kind="string", choices=BG_STYLES)
    no_level: bool = _option(
        False, "do not turn a tilted photo to level the eyes (by default tilts of 1° or more are corrected)",
        group="idphoto", kind="boolean")
    face_detector: str = _option(
        "auto", "landmarks: MediaPipe BlazeFace + Face Mesh (eyes, chin); haar: OpenCV's cascade (box only); "
                "auto: landmarks, the cascade when they find nothing", group="idphoto", kind="string",
        choices=DETECTORS)
    strict: bool = _option(
        False, "refuse a photo that misses any rule of its report, soft ones (margins, centring, background "
               "colour) included: infer.py writes nothing for it and exits 1, the API answers 422 (hard rules — a "
               "second face, hidden eyes, the head cut off — always refuse)", group="idphoto", kind="boolean")
    no_face_ok: bool = _option(
        False, "without a usable face (none found, or one the landmarks could not fit), centre on the person's "
               "mask instead of refusing",
        group="idphoto", kind="boolean")
    quality: int = _option(95, "JPEG quality of the ID photo (1–95)", group="idphoto", kind="integer", metavar="Q")
    max_kb: float | None = _option(
        None, "highest JPEG quality (≤ --quality) whose file is at most N KB (1 KB = 1024 bytes); default: the "
              "spec's own file-size limit, if it has one", group="idphoto", kind="number", metavar="N")
    brightness: float = _option(
        0.0, "retouching, on the person only: brightness change in percent (−50 to 50; 0: off)", group="idphoto",
        kind="number", metavar="PCT")
    contrast: float = _option(
        0.0, "retouching: contrast change in percent (−50 to 50; 0: off)", group="idphoto", kind="number", metavar="PCT")
    saturation: float = _option(
        0.0, "retouching: colour saturation change in percent (−100: grey, up to 50; 0: off)", group="idphoto",
        kind="number", metavar="PCT")
    sharpness: float = _option(
        0.0, "retouching: sharpening (unsharp mask) in percent (−50 to 50; 0: off)", group="idphoto", kind="number",
        metavar="PCT")
    smooth_skin: float = _option(
        0.0, "retouching: gentle, edge-preserving skin smoothing, strength 0–100 (0: off)", group="idphoto",
        kind="number", metavar="STRENGTH")
    head_size: float | None = _option(
        None, "head height (chin to crown) as a place in the spec's allowed range, 0–100: 0 near the smallest "
              "head the spec allows, 100 near the largest (a tenth of the range inside, so the report's own "
              "measure stays in it); default: the framing's own choice, near the middle. Kept inside every "
              "rule of the spec", group="idphoto", kind="number", metavar="PCT")
    top_margin: float | None = _option(
        None, "room above the head as a place in the spec's allowed range, 0–100, like --head-size (a spec "
              "without a rule on it: from just below the top edge to the usual 30 %% of the free height); default: the "
              "framing's own choice. Kept inside every rule of the spec", group="idphoto", kind="number",
        metavar="PCT")
    hd: bool = _option(
        False, "also make a high-resolution copy (<name>_idphoto_hd.jpg): the same framing at twice the pixels "
               "(at the photo's own resolution when it has fewer; none when it has no more than the standard "
               "photo), checked by the same rules; the standard photo stays the one the spec asks for",
        group="idphoto", kind="boolean")
    layout: str | None = _option(
        None, f"also make a print sheet (6inch = 4×6 in, 5inch = 3.5×5 in, a4) tiled with as many copies as fit "
              f"(the sheet turned when more fit that way), with cut lines (photos of at least {MIN_SHEET_PHOTO_MM} "
              f"mm a side at --dpi)", group="idphoto", kind="string", choices=tuple(sorted(SHEETS)))

    def retouch(self) -> Retouch:
        return Retouch(self.brightness, self.contrast, self.saturation, self.sharpness, self.smooth_skin)

    def prefer(self) -> dict[str, float]:
        """The framing's preferences (:func:`idphoto.framing.plan_by_rules`): places in the spec's ranges, 0–1."""
        return {k: v / 100 for k, v in (("head", self.head_size), ("top", self.top_margin)) if v is not None}

    # ---------------------------------------------------------------------------------------- the fields
    @classmethod
    def options(cls, scope: str | None = None, groups=tuple(GROUPS)) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls)
                if f.metadata["group"] in groups and (scope is None or f.metadata["scope"] == scope)]

    flag = staticmethod(flag_name)

    # -------------------------------------------------------------------------------------- command line
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, groups=tuple(GROUPS)) -> dict[str, argparse._ArgumentGroup]:
        """Add the options of ``groups`` (model, idphoto) as flags, in argument groups; returns the groups so
        that a script can add its own flags to them. The idphoto group also gets ``--list-specs``, a command
        (print the catalogue and exit) that belongs beside ``--spec`` and ``--spec-file``."""
        made, exclusive = {}, {}
        for f in cls.options(groups=groups):
            m = f.metadata
            group = made.get(m["group"]) or made.setdefault(m["group"], parser.add_argument_group(GROUPS[m["group"]]))
            target = group
            if m["exclusive"]:
                target = exclusive.get(m["exclusive"]) or exclusive.setdefault(m["exclusive"],
                                                                              group.add_mutually_exclusive_group())
            flag, kwargs = field_argument(f)
            target.add_argument(flag, **kwargs)
            if f.name == "spec_file":
                group.add_argument("--list-specs", action="store_true",
                                   help="print the known specs (with those of --spec-file) with their rules and exit")
        return made

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "IDPhotoOptions":
        """The options of parsed arguments; those the parser did not define keep their defaults."""
        values = {}
        for f in dataclasses.fields(cls):
            if hasattr(args, f.name):
                v = getattr(args, f.name)
                values[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**values)

    def load_spec_files(self) -> None:
        """Make the specs of ``spec_file`` known (to this process: the CLI run, or the server for all requests)."""
        for path in self.spec_file:
            try:
                add_spec_file(path)
            except SpecError as exc:
                raise OptionsError(f"--spec-file {exc}") from None

    # --------------------------------------------------------------------------------------------- forms
    @classmethod
    def form_fields(cls, groups=tuple(GROUPS)) -> dict[str, dict]:
        """The per-photo options as form fields: name → JSON-schema-like description (for the API docs)."""
        out = {}
        for f in cls.options(PHOTO, groups):
            m = f.metadata
            schema = {"type": m["kind"], "description": _api_text(m["help"])}
            if m["kind"] in ("int_pair", "number_pair"):
                schema["type"] = "string"
                schema["description"] += " — two numbers, e.g. '295x413' or '295 413'"
            if f.default is not None:
                schema["default"] = f.default
            if m["choices"]:
                schema["enum"] = list(m["choices"])
            out[f.name] = schema
        return out

    @classmethod
    def from_form(cls, form: Mapping[str, str], base: "IDPhotoOptions | None" = None,
                  groups=tuple(GROUPS)) -> "IDPhotoOptions":
        """Options from text fields (an HTML form, a multipart request): names as the dataclass fields
        (``max_kb``; ``max-kb`` works too), empty values keep ``base``'s value (the defaults). The process
        options are refused: a server sets them when it starts."""
        opts = dataclasses.replace(base) if base is not None else cls()
        known = {f.name: f for f in cls.options(PHOTO, groups)}
        process = {f.name for f in cls.options(PROCESS)}
        for raw_key, raw in form.items():
            key = raw_key.replace("-", "_")
            if key in process:
                raise OptionsError(f"{cls.flag(key)}: set when the server starts, not per request")
            if key not in known:
                raise OptionsError(f"unknown option {raw_key!r}; known: {', '.join(sorted(known))}")
            text = str(raw).strip()
            if text != "":
                value = _parse_field(key, known[key].metadata["kind"], text)
                _check_choice(known[key], value)  # as argparse does, at once
                setattr(opts, key, value)
        return opts

    # ---------------------------------------------------------------------------------------- validation
    def check_model(self) -> None:
        """The checks of the segmentation and matting options; raises :class:`OptionsError`."""
        self._check_choices(groups=("model",))
        if self.input_size is not None and (self.input_size <= 0 or self.input_size % 8):
            raise OptionsError("--input-size must be a positive multiple of 8")
        for name in ("refine_kernel", "max_side", "threads"):
            if getattr(self, name) < 0:
                raise OptionsError(f"{self.flag(name)} must not be negative")

    def validate(self) -> "Resolved":
        """Every check argparse can't make; raises :class:`OptionsError` (one line, naming the flag).
        Returns the resolved spec (None: keep the photo's framing) and background colour (None: keep)."""
        def error(msg):
            raise OptionsError(msg)

        self.check_model()
        self._check_choices(groups=("idphoto",))
        if self.size_px and self.size_mm:
            error("argument --size-mm: not allowed with argument --size-px")
        if self.dpi is not None and not DPI_RANGE[0] <= self.dpi <= DPI_RANGE[1]:
            error(f"--dpi must be between {DPI_RANGE[0]} and {DPI_RANGE[1]}")
        if not 1 <= self.quality <= 95:
            error("--quality must be between 1 and 95")
        if self.max_kb is not None and self.max_kb <= 0:
            error("--max-kb must be positive")
        for name, (lo, hi) in (("brightness", RETOUCH_RANGE), ("contrast", RETOUCH_RANGE),
                               ("saturation", SATURATION_RANGE), ("sharpness", RETOUCH_RANGE),
                               ("smooth_skin", SMOOTH_RANGE)):
            if not lo <= getattr(self, name) <= hi:
                error(f"{self.flag(name)} must be between {lo:g} and {hi:g}")
        for name in ("head_size", "top_margin"):
            if getattr(self, name) is not None and not 0 <= getattr(self, name) <= 100:
                error(f"{self.flag(name)} must be between 0 and 100")
        bg = None
        if self.bg.strip().lower() != "keep":
            try:
                bg = parse_color(self.bg)
            except ValueError as exc:
                error(f"--bg: {exc} or keep")
        custom = self.size_px or self.size_mm
        if custom is not None and min(custom) <= 0:
            error("--size-px/--size-mm values must be positive")
        if self.spec.lower() == "none":
            if custom:
                error("--spec none keeps the photo's size; drop --size-px/--size-mm")
            for name in ("head_size", "top_margin"):
                if getattr(self, name) is not None:
                    error(f"{self.flag(name)}: --spec none keeps the photo's framing; choose a spec")
            if self.hd:
                error("--hd: --spec none keeps the photo's own size already; choose a spec")
            return Resolved(None, bg, self.dpi)
        if self.size_px and not MIN_SIDE_PX <= min(self.size_px) <= max(self.size_px) <= MAX_SIDE_PX:
            error(f"--size-px: {MIN_SIDE_PX} to {MAX_SIDE_PX} px a side")
        try:
            base = get_spec(self.spec)
        except KeyError:
            error(f"--spec: unknown standard {self.spec!r}; see --list-specs")
        dpi = self.dpi or DEFAULT_DPI
        if custom:  # a custom size framed by --spec's head rule
            if self.size_px:
                spec = custom_spec(size_px=tuple(self.size_px), dpi=dpi, base=base)
            else:
                spec = custom_spec(size_mm=tuple(self.size_mm), dpi=dpi, base=base)
                if not MIN_SIDE_PX <= min(spec.size_px) <= max(spec.size_px) <= MAX_SIDE_PX:
                    w, h = spec.size_px
                    error(f"--size-mm at --dpi {dpi} gives {w}×{h} px; {MIN_SIDE_PX} to {MAX_SIDE_PX} px a side needed")
            spec = dataclasses.replace(spec, name=f"custom size, {base.name} framing")
        elif self.dpi is not None and self.dpi != base.dpi:  # same physical (or pixel) size at another resolution
            spec = dataclasses.replace(base, dpi=self.dpi, px=None) if base.px is None else \
                base.with_size_px(*base.px, dpi=self.dpi)
            if min(spec.size_px) < MIN_SIDE_PX:
                error(f"--dpi {self.dpi} makes a {spec.size_px[0]}×{spec.size_px[1]} px {base.name} photo; "
                      f"at least {MIN_SIDE_PX} px a side needed")
        else:
            spec = base
        if self.head_size is not None and (spec.head is None or None in spec.head):
            error(f"--head-size: {base.name} sets no range for the head height (it frames by "
                  f"{'the eye line and top margin' if spec.eyes else 'its own rules'}); drop --head-size")
        if self.layout:
            problem = sheet_problem(spec.size_px, spec.dpi, self.layout)
            if problem:
                error(f"--layout: {problem}")
        return Resolved(spec, bg, self.dpi)

    def _check_choices(self, groups) -> None:
        # argparse checks these on the command line; a dataclass made in code is checked here
        for f in self.options(groups=groups):
            _check_choice(f, getattr(self, f.name))


def _check_choice(f: dataclasses.Field, value) -> None:
    choices = f.metadata["choices"]
    if choices and value is not None and value not in choices:
        raise OptionsError(f"{IDPhotoOptions.flag(f.name)}: invalid choice {value!r} (choose from {', '.join(choices)})")


@dataclass
class Resolved:
    """What :meth:`IDPhotoOptions.validate` works out from the options."""
    spec: PhotoSpec | None           # None: keep the photo's framing and size
    bg: tuple[int, int, int] | None  # BGR; None: keep the photo's own background
    dpi_option: int | None = None    # --dpi as given (the DPI of a photo kept at its own size)

    @property
    def dpi(self) -> int:
        """The ID photo's DPI."""
        return self.spec.dpi if self.spec is not None else self.dpi_option or DEFAULT_DPI

    @property
    def spec_name(self) -> str:
        return "photo framing" if self.spec is None else self.spec.name


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _parse_field(key: str, kind: str, text: str):
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean":
            low = text.lower()
            if low not in _TRUE | _FALSE:
                raise ValueError
            return low in _TRUE
        if kind in ("int_pair", "number_pair"):
            parts = [p for p in re.split(r"[\s,x×*]+", text.lower()) if p]
            if len(parts) != 2:
                raise ValueError
            num = int if kind == "int_pair" else float
            return (num(parts[0]), num(parts[1]))
    except ValueError:
        want = {"integer": "a whole number", "number": "a number", "boolean": "true or false",
                "int_pair": "two whole numbers such as 295x413", "number_pair": "two numbers such as 35x45"}[kind]
        raise OptionsError(f"{IDPhotoOptions.flag(key)}: expected {want}, got {text!r}") from None
    return text


def _api_text(text: str) -> str:
    """A flag's help text for the API: fields are named without dashes ('--max-kb' → 'max_kb'), and '%%'
    (argparse's escape) is a plain '%'."""
    return api_names(text.replace("%%", "%"))


def api_names(message: str) -> str:
    """'--max-kb must be positive' → 'max_kb must be positive': the API's fields are named without dashes,
    and its catalogue is GET /api/specs."""
    message = message.replace("see --list-specs", "see GET /api/specs")
    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), message)
