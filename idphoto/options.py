"""The ID-photo options, in one place for the command line (``infer.py``) and the web app / HTTP API.

:class:`IDPhotoOptions` holds every option of ``infer.py`` that is not about where files come from or go
to: the model and matting settings and the ID-photo settings. It adds exactly ``infer.py``'s flags to a
parser (:meth:`IDPhotoOptions.add_arguments`), is built from parsed arguments (:meth:`from_args`) or from
an HTML form / multipart request (:meth:`from_form`), and :meth:`validate` makes the checks argparse can't,
with the same messages as ``infer.py``. One option set, so the CLI and the server can never disagree.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .output import COLORS, SHEETS, parse_color
from .pipeline import DEFAULT_MAX_SIDE, MATTING_METHODS
from .specs import SPECS, PhotoSpec, custom_spec, describe_specs, get_spec

TTA_CHOICES = ("none", "flip")
MAX_SIDE_PX = 10000  # a custom ID photo larger than this on a side is a typo, not a photo

# Options that belong to the process (which model, which device, how many threads), not to one photo:
# a server sets them when it starts and refuses them per request.
PROCESS_OPTIONS = ("checkpoint", "device", "threads")


class OptionsError(ValueError):
    """An impossible option or combination; the message is one line naming the flag (``--bg: …``)."""


@dataclass
class Resolved:
    """What :meth:`IDPhotoOptions.validate` works out: the spec (None: keep the photo's framing) and colour."""
    spec: PhotoSpec | None
    bg: tuple[int, int, int]  # BGR

    @property
    def spec_name(self) -> str:
        return "photo framing" if self.spec is None else self.spec.name


@dataclass
class IDPhotoOptions:
    # segmentation and matting
    checkpoint: Path | None = None
    input_size: int | None = None
    tta: str = "none"
    refine_kernel: int = 10
    matting: str = "cf"
    max_side: int = DEFAULT_MAX_SIDE
    threads: int = 0
    device: str = "auto"
    # ID photo
    spec: str = "1inch"
    size_px: tuple[int, int] | None = None
    size_mm: tuple[float, float] | None = None
    dpi: int = 300
    bg: str = "white"
    no_face_ok: bool = False
    quality: int = 95
    max_kb: float | None = None
    layout: str | None = None
    extra: dict = field(default_factory=dict, repr=False, compare=False)  # room for options still to come

    # ------------------------------------------------------------------------------------------- parser
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add the options as ``infer.py``'s flags, in its two groups, with its help texts and defaults."""
        model = parser.add_argument_group("segmentation and matting")
        model.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                           help="TNet weights (a train.py checkpoint such as results/checkpoint_tnet.pth); "
                                "default: the shipped compact model weights/tnet_mobilenetv3_pfcn.pth")
        model.add_argument("--input-size", type=int, default=None, metavar="N",
                           help="side of the square TNet input (default: the size the weights were trained for, "
                                "recorded in the weights file; 400 for files that don't say)")
        model.add_argument("--tta", choices=TTA_CHOICES, default="none",
                           help="test-time augmentation of the trimap: 'flip' averages the photo and its mirror "
                                "image (about twice the network time)")
        model.add_argument("--refine-kernel", type=int, default=10, metavar="K",
                           help="erode/dilate kernel of the trimap refinement (0: none; 6: the 'smooth' variant)")
        model.add_argument("--matting", choices=sorted(MATTING_METHODS), default="cf",
                           help="pymatting method: closed-form, KNN, large-kernel, random-walk, learning-based")
        model.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, metavar="PX",
                           help="longest side at which the matting is solved (larger photos are matted at this "
                                "size and the alpha upsampled); 0 for no cap")
        model.add_argument("--threads", type=int, default=0, metavar="N",
                           help="CPU threads for PyTorch (0: its default; 1 is often faster on a busy machine)")
        model.add_argument("--device", default="auto",
                           help="torch device: auto (CUDA when available), cpu, cuda, cuda:1…")

        idp = parser.add_argument_group("ID photo")
        idp.add_argument("--spec", default="1inch", metavar="NAME",
                         help=f"standard size and head framing at 300 DPI, or 'none' to keep the photo's own "
                              f"framing and size. Known: {describe_specs()} (aliases: passport=icao)")
        size = idp.add_mutually_exclusive_group()
        size.add_argument("--size-px", type=int, nargs=2, metavar=("W", "H"),
                          help="custom size in pixels, framed by --spec's head rule (1inch: head 60%% of the height)")
        size.add_argument("--size-mm", type=float, nargs=2, metavar=("W", "H"),
                          help="custom size in millimetres at --dpi, framed by --spec's head rule")
        idp.add_argument("--dpi", type=int, default=300, metavar="N",
                         help="print resolution stored in the JPEG (and used by --size-mm and --layout)")
        idp.add_argument("--bg", default="white", metavar="COLOUR",
                         help=f"background: {', '.join(COLORS)} (blue #438EDB, red #FF0000 as for Chinese ID "
                              f"photos) or #RRGGBB")
        idp.add_argument("--no-face-ok", action="store_true",
                         help="without a detectable face, centre on the person's mask instead of failing")
        idp.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG quality of the ID photo (1–95)")
        idp.add_argument("--max-kb", type=float, default=None, metavar="N",
                         help="highest JPEG quality (≤ --quality) whose file is at most N KB (1 KB = 1024 bytes)")
        idp.add_argument("--layout", choices=sorted(SHEETS), default=None,
                         help="also write a print sheet (6inch = 4×6 in) tiled with as many copies as fit, "
                              "with cut lines")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "IDPhotoOptions":
        values = {}
        for f in dataclasses.fields(cls):
            if f.name != "extra" and hasattr(args, f.name):
                v = getattr(args, f.name)
                values[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**values)

    # --------------------------------------------------------------------------------------------- forms
    @classmethod
    def form_fields(cls) -> dict[str, dict]:
        """The per-photo options as form fields: name → JSON-schema-like description (for the API docs)."""
        out = {}
        for f in dataclasses.fields(cls):
            if f.name in PROCESS_OPTIONS or f.name == "extra":
                continue
            kind = _FORM_KINDS[f.name]
            schema = {"type": kind}
            if kind == "pair":
                schema = {"type": "string", "description": "two numbers, e.g. '295x413' or '295 413'"}
            default = f.default if f.default is not dataclasses.MISSING else None
            if default is not None:
                schema["default"] = default
            out[f.name] = schema
        out["matting"]["enum"] = sorted(MATTING_METHODS)
        out["tta"]["enum"] = list(TTA_CHOICES)
        out["layout"]["enum"] = sorted(SHEETS)
        return out

    @classmethod
    def from_form(cls, form: Mapping[str, str], base: "IDPhotoOptions | None" = None) -> "IDPhotoOptions":
        """Options from text fields (an HTML form, a multipart request): names as the dataclass fields
        (``max_kb``; ``max-kb`` works too), empty values keep ``base``'s value (the defaults). The process
        options (checkpoint, device, threads) are refused: a server sets them when it starts."""
        opts = dataclasses.replace(base) if base is not None else cls()
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        for raw_key, raw in form.items():
            key = raw_key.replace("-", "_")
            if key in PROCESS_OPTIONS:
                raise OptionsError(f"--{key.replace('_', '-')}: set when the server starts, not per request")
            if key not in names:
                raise OptionsError(f"unknown option {raw_key!r}; known: {', '.join(sorted(cls.form_fields()))}")
            text = str(raw).strip()
            if text == "":
                continue
            setattr(opts, key, _parse_field(key, text))
        return opts

    # ---------------------------------------------------------------------------------------- validation
    def validate(self) -> Resolved:
        """The checks argparse can't make (same order and messages as ``infer.py``); raises :class:`OptionsError`.
        Returns the resolved spec and background colour."""
        def error(msg):
            raise OptionsError(msg)

        if self.tta not in TTA_CHOICES:
            error(f"--tta: invalid choice {self.tta!r} (choose from {', '.join(TTA_CHOICES)})")
        if self.matting not in MATTING_METHODS:
            error(f"--matting: invalid choice {self.matting!r} (choose from {', '.join(sorted(MATTING_METHODS))})")
        if self.layout is not None and self.layout not in SHEETS:
            error(f"--layout: invalid choice {self.layout!r} (choose from {', '.join(sorted(SHEETS))})")
        if self.size_px and self.size_mm:
            error("argument --size-mm: not allowed with argument --size-px")
        if self.dpi <= 0:
            error("--dpi must be positive")
        if self.input_size is not None and (self.input_size <= 0 or self.input_size % 8):
            error("--input-size must be a positive multiple of 8")
        if self.refine_kernel < 0 or self.max_side < 0 or self.threads < 0:
            error("--refine-kernel and --max-side must not be negative")
        if not 1 <= self.quality <= 95:
            error("--quality must be between 1 and 95")
        if self.max_kb is not None and self.max_kb <= 0:
            error("--max-kb must be positive")
        try:
            bg = parse_color(self.bg)
        except ValueError as exc:
            error(f"--bg: {exc}")
        custom = self.size_px or self.size_mm
        if custom is not None and min(custom) <= 0:
            error("--size-px/--size-mm values must be positive")
        if self.size_px and max(self.size_px) > MAX_SIDE_PX:
            error(f"--size-px: at most {MAX_SIDE_PX} px a side")
        if self.spec.lower() == "none":
            if custom:
                error("--spec none keeps the photo's size; drop --size-px/--size-mm")
            return Resolved(None, bg)
        try:
            base = get_spec(self.spec)
        except KeyError:
            error(f"--spec: unknown standard {self.spec!r}; known: none, {', '.join(SPECS)}")
        if self.size_px or self.size_mm:  # a custom size framed by --spec's head rule
            if self.size_px:
                spec = custom_spec(size_px=tuple(self.size_px), dpi=self.dpi, base=base)
            else:
                spec = custom_spec(size_mm=tuple(self.size_mm), dpi=self.dpi, base=base)
                if max(spec.size_px) > MAX_SIDE_PX or min(spec.size_px) < 1:
                    error("--size-mm at --dpi gives an unusable pixel size")
            spec = dataclasses.replace(spec, name=f"custom size, {base.name} framing")
        elif self.dpi != base.dpi:  # same physical size at another resolution
            spec = custom_spec(size_mm=(base.width_mm, base.height_mm), dpi=self.dpi, base=base)
        else:
            spec = base
        return Resolved(spec, bg)


_FORM_KINDS = {"input_size": "integer", "tta": "string", "refine_kernel": "integer", "matting": "string",
               "max_side": "integer", "spec": "string", "size_px": "pair", "size_mm": "pair", "dpi": "integer",
               "bg": "string", "no_face_ok": "boolean", "quality": "integer", "max_kb": "number", "layout": "string"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _parse_field(key: str, text: str):
    flag = "--" + key.replace("_", "-")
    kind = _FORM_KINDS[key]
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
        if kind == "pair":
            parts = [p for p in re.split(r"[\s,x×*]+", text.lower()) if p]
            if len(parts) != 2:
                raise ValueError
            num = int if key == "size_px" else float
            return (num(parts[0]), num(parts[1]))
    except ValueError:
        want = {"integer": "a whole number", "number": "a number", "boolean": "true or false",
                "pair": "two numbers such as 295x413"}[kind]
        raise OptionsError(f"{flag}: expected {want}, got {text!r}") from None
    return text
