"""ID-photo standards, read from a catalogue file (``idphoto/specs.json``, plus any ``--spec-file``).

Each spec gives the photo size (mm or inches at a DPI, or pixels), and the rules the head must meet: head
height (chin to crown), eye line (above the bottom edge), top margin (crown below the top edge), face
width; the allowed background colours; the file-size range; and the source of the rule. In memory every
rule is a fraction of the photo's height, so a custom size keeps the spec's proportions.

    python -m idphoto.spec_table              # the catalogue as a table
    python -m idphoto.spec_table --markdown   # the README's table
    python -m idphoto.spec_table --check my.json
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

MM_PER_INCH = 25.4
CATALOGUE = Path(__file__).resolve().parent / "specs.json"
UNITS = {"mm": 1.0, "in": MM_PER_INCH, "px": None}
RULES = ("head_height", "eyes_from_bottom", "crown_from_top", "face_width")
FIELDS = {"id", "title", "region", "document", "unit", "size", "dpi", *RULES, "background", "file_kb", "format",
          "source", "aliases", "note"}
REQUIRED = ("id", "unit", "size", "source")
FORMATS = {"jpeg": "jpeg", "jpg": "jpeg"}
Range = tuple  # (low or None, high or None)


class SpecError(UserError, ValueError):
    """A catalogue entry that can't be used; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class PhotoSpec:
    name: str
    width_mm: float
    height_mm: float
    dpi: int = 300
    head: Range | None = (0.55, 0.68)   # chin to crown, fractions of the height
    eyes: Range | None = None           # eye line above the bottom edge
    top: Range | None = None            # crown below the top edge
    face_width: Range | None = None     # cheek to cheek
    background: tuple[str, ...] = ()    # allowed colours, "#RRGGBB"; empty: any plain colour
    kb: Range | None = None             # file size in KiB
    format: str = "jpeg"
    description: str = ""
    region: str = ""
    source: str = ""
    px: tuple[int, int] | None = None   # exact pixel size when the rule is given in pixels

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) in pixels at ``dpi``."""
        if self.px is not None:
            return self.px
        return (round(self.width_mm / MM_PER_INCH * self.dpi), round(self.height_mm / MM_PER_INCH * self.dpi))

    # the head rule as fractions, for callers that need one number
    @property
    def head_range(self) -> tuple[float, float]:
        lo, hi = self.head or (None, None)
        return (0.0 if lo is None else lo, 1.0 if hi is None else hi)

    @property
    def head_ratio(self) -> float:
        return sum(self.head_range) / 2

    @property
    def top_ratio(self) -> float:
        if self.top is None:
            return 0.3 * (1 - self.head_ratio)
        lo, hi = self.top
        return ((lo or 0.0) + (hi if hi is not None else 2 * (lo or 0.0))) / 2

    def rule_px(self, name: str) -> Range | None:
        """A rule in pixels of this spec's height: ``head``, ``eyes``, ``top`` or ``face_width``."""
        r = getattr(self, name)
        h = self.size_px[1]
        return None if r is None else tuple(None if v is None else v * h for v in r)

    def with_size_px(self, width: int, height: int, dpi: int | None = None) -> "PhotoSpec":
        dpi = dpi or self.dpi
        return dataclasses.replace(self, width_mm=width * MM_PER_INCH / dpi, height_mm=height * MM_PER_INCH / dpi,
                                   dpi=dpi, px=(width, height), kb=None)

    def with_size_mm(self, width_mm: float, height_mm: float, dpi: int) -> "PhotoSpec":
        return dataclasses.replace(self, width_mm=width_mm, height_mm=height_mm, dpi=dpi, px=None, kb=None)


# ------------------------------------------------------------------------------------------ the catalogue
def _fail(where: str, field: str, why: str):
    raise SpecError(f"{where}: field '{field}': {why}")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _range(entry: dict, field: str, where: str, limit: float | None) -> Range | None:
    v = entry.get(field)
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 2 and all(x is None or _number(x) for x in v)) or v == [None, None]:
        _fail(where, field, f"expected [min, max] (numbers, either may be null) or null, got {json.dumps(v)}")
    lo, hi = v
    if any(x is not None and x < 0 for x in v):
        _fail(where, field, f"negative value in {json.dumps(v)}")
    if lo is not None and hi is not None and lo > hi:
        _fail(where, field, f"min {lo} is above max {hi}")
    if limit is not None and any(x is not None and x > limit for x in v):
        _fail(where, field, f"{json.dumps(v)} is larger than the photo ({limit:g})")
    return (lo, hi)


def parse_entry(entry, where: str) -> tuple[PhotoSpec, list[str]]:
    """One catalogue entry → (spec, aliases). Raises :class:`SpecError` naming the first bad field."""
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: an entry must be a JSON object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        _fail(where, unknown[0], f"unknown field (known: {', '.join(sorted(FIELDS))})")
    for f in REQUIRED:
        if f not in entry:
            _fail(where, f, "missing")
    sid = entry["id"]
    if not (isinstance(sid, str) and re.fullmatch(r"[a-z0-9][a-z0-9._-]*", sid)) or sid == "none":
        _fail(where, "id", f"{json.dumps(sid)} is not a name of lower-case letters, digits, '-', '_' or '.'")
    where = f"{where} ('{sid}')"
    unit = entry["unit"]
    if unit not in UNITS:
        _fail(where, "unit", f"{json.dumps(unit)} is not one of {', '.join(UNITS)}")
    size = entry["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(_number(x) and x > 0 for x in size)):
        _fail(where, "size", f"expected [width, height], two positive numbers, got {json.dumps(size)}")
    dpi = entry.get("dpi", 300)
    if not (_number(dpi) and dpi == int(dpi) and 0 < dpi <= 2400):
        _fail(where, "dpi", f"expected a whole number from 1 to 2400, got {json.dumps(dpi)}")
    dpi = int(dpi)
    w, h = size
    if unit == "px":
        if w != int(w) or h != int(h) or max(w, h) > 10000:
            _fail(where, "size", f"pixel sizes are whole numbers up to 10000, got {json.dumps(size)}")
        w_mm, h_mm, px = w * MM_PER_INCH / dpi, h * MM_PER_INCH / dpi, (int(w), int(h))
    else:
        w_mm, h_mm, px = w * UNITS[unit], h * UNITS[unit], None
        if max(w_mm, h_mm) / MM_PER_INCH * dpi > 10000:
            _fail(where, "size", f"{json.dumps(size)} {unit} at {dpi} DPI is more than 10000 px")
    rules = {}
    for field in RULES:
        r = _range(entry, field, where, w if field == "face_width" else h)
        rules[field] = None if r is None else tuple(None if x is None else x / h for x in r)
    bg = entry.get("background", [])
    if not (isinstance(bg, list) and all(isinstance(c, str) and re.fullmatch(r"#[0-9A-Fa-f]{6}", c) for c in bg)):
        _fail(where, "background", f"expected a list of \"#RRGGBB\" colours, got {json.dumps(bg, ensure_ascii=False)}")
    kb = _range(entry, "file_kb", where, None)
    fmt = entry.get("format", "jpeg")
    if fmt not in FORMATS:
        _fail(where, "format", f"{json.dumps(fmt)}: only jpeg is supported")
    src = entry["source"]
    if not (isinstance(src, str) and src.strip()):
        _fail(where, "source", "say where the rule comes from (a non-empty text)")
    for f in ("title", "region", "document", "note"):
        if f in entry and not isinstance(entry[f], str):
            _fail(where, f, "expected a text")
    aliases = entry.get("aliases", [])
    if not (isinstance(aliases, list) and all(isinstance(a, str) and a for a in aliases)):
        _fail(where, "aliases", "expected a list of names")
    spec = PhotoSpec(sid, w_mm, h_mm, dpi, rules["head_height"], rules["eyes_from_bottom"], rules["crown_from_top"],
                     rules["face_width"], tuple(c.upper() for c in bg), kb, FORMATS[fmt],
                     entry.get("title", sid), entry.get("region", ""), src.strip(), px)
    return spec, [a.lower() for a in aliases]


def load_catalogue(path: str | Path) -> tuple[dict[str, PhotoSpec], dict[str, str]]:
    """A catalogue file → ({id: spec}, {alias: id}). The file holds ``{"specs": [...]}``, a list of entries,
    or a single entry. Raises :class:`SpecError` (one line, naming the file, entry and field)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read it ({type(exc).__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if isinstance(data, dict) and "specs" in data:
        entries = data["specs"]
        if not isinstance(entries, list):
            raise SpecError(f"{path}: field 'specs': expected a list of entries")
    elif isinstance(data, list):
        entries = data
    elif isinstance(data, dict):
        entries = [data]
    else:
        raise SpecError(f"{path}: expected a spec object, a list of them, or {{\"specs\": [...]}}")
    if not entries:
        raise SpecError(f"{path}: no specs in the file")
    specs, aliases = {}, {}
    for i, entry in enumerate(entries):
        spec, names = parse_entry(entry, f"{path.name}: spec #{i + 1}")
        if spec.name in specs:
            raise SpecError(f"{path.name}: spec #{i + 1}: field 'id': '{spec.name}' appears twice")
        specs[spec.name] = spec
        for a in names:
            aliases[a] = spec.name
    return specs, aliases


SPECS, ALIASES = load_catalogue(CATALOGUE)
CUSTOM = PhotoSpec("custom", 35, 45, description="custom size, head 60 % of the height")


def add_spec_file(path: str | Path) -> list[PhotoSpec]:
    """Load a user's catalogue and make its specs known to :func:`get_spec` (an id already known is
    replaced by the user's). Returns them."""
    specs, aliases = load_catalogue(path)
    SPECS.update(specs)
    ALIASES.update(aliases)
    for name in specs:
        ALIASES.pop(name, None)
    return list(specs.values())


def get_spec(name: str) -> PhotoSpec:
    key = name.lower()
    key = key if key in SPECS else ALIASES.get(key, key)
    if key not in SPECS:
        raise KeyError(name)
    return SPECS[key]


def custom_spec(size_px: tuple[int, int] | None = None, size_mm: tuple[float, float] | None = None,
                dpi: int = 300, base: PhotoSpec = CUSTOM) -> PhotoSpec:
    """A spec of a custom size (pixels, or millimetres at ``dpi``), with ``base``'s rules as fractions of
    the height."""
    if size_px is not None:
        return base.with_size_px(*size_px, dpi=dpi)
    if size_mm is not None:
        return base.with_size_mm(size_mm[0], size_mm[1], dpi)
    raise ValueError("custom_spec needs size_px or size_mm")


def describe_specs() -> str:
    """A short list for --help."""
    return ", ".join(SPECS)


# ------------------------------------------------------------------------------------------------- tables
def _fmt_range(r: Range | None, scale: float, unit: str, digits: int = 1) -> str:
    if r is None:
        return "–"
    lo, hi = (None if v is None else round(v * scale, digits) for v in r)
    f = (lambda v: f"{v:g}")
    if lo is not None and hi is not None:
        return f"{f(lo)}–{f(hi)} {unit}" if lo != hi else f"{f(lo)} {unit}"
    return f"≥ {f(lo)} {unit}" if lo is not None else f"≤ {f(hi)} {unit}"


def spec_row(s: PhotoSpec) -> dict[str, str]:
    w, h = s.size_px
    if s.px is not None:
        scale, unit, size = h, "px", f"{w}×{h} px"
    else:
        scale, unit, size = s.height_mm, "mm", f"{s.width_mm:g}×{s.height_mm:g} mm ({w}×{h} px)"
    kb = _fmt_range(s.kb, 1, "KB", 0) if s.kb else "–"
    return {"id": s.name, "title": s.description, "size": f"{size} @ {s.dpi} DPI",
            "head": _fmt_range(s.head, scale, unit), "eyes": _fmt_range(s.eyes, scale, unit),
            "top": _fmt_range(s.top, scale, unit), "background": " ".join(s.background) or "any plain",
            "kb": kb, "source": s.source}


def text_table(specs=None) -> str:
    rows = [spec_row(s) for s in (specs or SPECS.values())]
    cols = ("id", "size", "head", "eyes", "top", "kb", "title")
    heads = {"id": "spec", "size": "size", "head": "head (chin-crown)", "eyes": "eyes from bottom",
             "top": "crown from top", "kb": "file", "title": "what"}
    widths = {c: max(len(heads[c]), *(len(r[c]) for r in rows)) for c in cols}
    out = ["  ".join(heads[c].ljust(widths[c]) for c in cols)]
    out += ["  ".join(r[c].ljust(widths[c]) for c in cols).rstrip() for r in rows]
    return "\n".join(out)


def markdown_table(specs=None) -> str:
    rows = [spec_row(s) for s in (specs or SPECS.values())]
    out = ["| `--spec` | what | size | head (chin to crown) | eyes from bottom | crown from top | background | file | source |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| `{r['id']}` | {r['title']} | {r['size']} | {r['head']} | {r['eyes']} | {r['top']} | "
                   f"{r['background']} | {r['kb']} | {r['source'].replace('|', '/')} |")
    return "\n".join(out)
