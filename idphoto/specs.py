"""ID-photo standards: size at a print resolution, and where the head goes.

The head is measured from the chin to the crown (top of the hair). ``head_ratio`` is the target head
height as a fraction of the photo's height, ``head_range`` the range the standard accepts, and
``top_ratio`` the margin between the crown and the top edge, also as a fraction of the height.
"""
from __future__ import annotations

from dataclasses import dataclass

MM_PER_INCH = 25.4


@dataclass(frozen=True)
class PhotoSpec:
    name: str
    width_mm: float
    height_mm: float
    dpi: int = 300
    head_ratio: float = 0.60
    head_range: tuple[float, float] = (0.55, 0.68)
    top_ratio: float = 0.10
    description: str = ""

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) in pixels at ``dpi``."""
        return (round(self.width_mm / MM_PER_INCH * self.dpi), round(self.height_mm / MM_PER_INCH * self.dpi))

    def with_size_px(self, width: int, height: int, dpi: int | None = None) -> "PhotoSpec":
        dpi = dpi or self.dpi
        return PhotoSpec(self.name, width * MM_PER_INCH / dpi, height * MM_PER_INCH / dpi, dpi,
                         self.head_ratio, self.head_range, self.top_ratio, self.description)


# ICAO 9303 / Schengen: 35×45 mm, chin to crown 32–36 mm (71–80 %), a few mm above the hair.
_ICAO = dict(width_mm=35, height_mm=45, head_ratio=0.75, head_range=(0.71, 0.80), top_ratio=0.09)
# Chinese ID sizes (一寸/二寸): head about 3/5 of the height, about 1/10 above it.
_CN = dict(head_ratio=0.60, head_range=(0.55, 0.68), top_ratio=0.10)

SPECS: dict[str, PhotoSpec] = {s.name: s for s in (
    PhotoSpec("1inch", 25, 35, **_CN, description="一寸 1 inch, 25×35 mm"),
    PhotoSpec("small-1inch", 22, 32, **_CN, description="小一寸 small 1 inch, 22×32 mm"),
    PhotoSpec("2inch", 35, 49, **_CN, description="二寸 2 inch, 35×49 mm"),
    PhotoSpec("small-2inch", 35, 45, **_CN, description="小二寸 small 2 inch, 35×45 mm"),
    PhotoSpec("icao", **_ICAO, description="ICAO passport, 35×45 mm, head 32–36 mm"),
    PhotoSpec("schengen", **_ICAO, description="Schengen visa, 35×45 mm, head 32–36 mm"),
    PhotoSpec("uk", 35, 45, head_ratio=0.70, head_range=(0.64, 0.76), top_ratio=0.09,
              description="UK passport, 35×45 mm, head 29–34 mm"),
    PhotoSpec("cn-passport", 33, 48, head_ratio=0.64, head_range=(0.58, 0.69), top_ratio=0.08,
              description="China passport, 33×48 mm, head 28–33 mm, 3–5 mm above"),
    PhotoSpec("us", 2 * MM_PER_INCH, 2 * MM_PER_INCH, head_ratio=0.60, head_range=(0.50, 0.69), top_ratio=0.12,
              description="US passport/visa, 2×2 in, head 1–1⅜ in"),
)}
ALIASES = {"passport": "icao", "us-passport": "us", "china-passport": "cn-passport", "one-inch": "1inch",
           "two-inch": "2inch"}
CUSTOM = PhotoSpec("custom", 35, 45, description="custom size, head 60 % of the height")


def get_spec(name: str) -> PhotoSpec:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in SPECS:
        raise KeyError(name)
    return SPECS[key]


def custom_spec(size_px: tuple[int, int] | None = None, size_mm: tuple[float, float] | None = None,
                dpi: int = 300, base: PhotoSpec = CUSTOM) -> PhotoSpec:
    """A spec of a custom size (pixels, or millimetres at ``dpi``), with ``base``'s framing rule."""
    if size_px is not None:
        return base.with_size_px(*size_px, dpi=dpi)
    if size_mm is not None:
        return PhotoSpec(base.name, size_mm[0], size_mm[1], dpi, base.head_ratio, base.head_range,
                         base.top_ratio, base.description)
    raise ValueError("custom_spec needs size_px or size_mm")


def describe_specs() -> str:
    """One line per spec, for --help."""
    return "; ".join(f"{s.name} {s.size_px[0]}×{s.size_px[1]} px" for s in SPECS.values())
