"""The routes: the page and its sample photos, ``/healthz``, ``GET /api/specs`` and the ``POST /api/…`` work.

Each handler reads what the app holds from ``request.app.state`` (:func:`idphoto.web.app.create_app` sets it):
the model, the :class:`~idphoto.web.config.ServerConfig`, the option defaults a request starts from and the
worker pool."""
from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from .. import specs as catalogue
from ..errors import IDPhotoError
from ..face import DETECTORS
from ..framing import BG_STYLES
from ..image_io import NotAnImageError, TooLargeError
from ..options import DPI_RANGE, IDPhotoOptions, OptionsError, api_names
from ..output import COLORS, SHEETS, write_all
from ..pipeline import MATTING_METHODS, Pipeline
from ..service import make_cutout, make_idphoto, make_sheet
from .errors import ApiError
from .uploads import multipart_doc, read_form

STATIC = Path(__file__).resolve().parent / "static"
# photos the page offers to try, from the project's examples/ (public domain or made by the project); a
# copy of the package without them offers none
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
SAMPLES = {"astronaut.jpg": "a portrait (NASA, public domain)",
           "astronaut_tilted.jpg": "the same, tilted 8°: levelled",
           "astronaut_cut_at_chin.jpg": "a photo that ends at the chin: refused, with the reason"}

router = APIRouter()
FORM_FIELDS = IDPhotoOptions.form_fields()
MATTE_FIELDS = IDPhotoOptions.form_fields(groups=("model",))


# ----------------------------------------------------------------------------------------------- helpers
def options_of(request: Request, fields: dict, groups=("model", "idphoto")) -> IDPhotoOptions:
    """A request's options: its fields over the server's defaults, checked, within the server's limits."""
    config = request.app.state.config
    try:
        opts = IDPhotoOptions.from_form(fields, request.app.state.defaults, groups)
        opts.validate() if "idphoto" in groups else opts.check_model()
    except OptionsError as exc:
        raise ApiError(400, api_names(str(exc))) from None
    if opts.input_size is not None and opts.input_size > config.max_input_size:
        raise ApiError(400, f"input_size: at most {config.max_input_size} on this server")
    if not 0 < opts.max_side <= config.max_matting_side:
        raise ApiError(400, f"max_side: between 1 and {config.max_matting_side} on this server")
    return opts


def pipeline_for(request: Request, opts: IDPhotoOptions) -> Pipeline:
    return Pipeline.from_options(request.app.state.model, opts, request.app.state.config.device)


async def run_work(request: Request, fn):
    """``fn()`` on the pool: (its result, seconds queued, seconds in all); the photo's errors as statuses."""
    t = time.perf_counter()
    try:
        result, queued = await request.app.state.pool.run(fn, request.app.state.config.timeout_s)
    except OptionsError as exc:
        raise ApiError(400, api_names(str(exc))) from None
    except TooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except NotAnImageError as exc:
        raise ApiError(415, str(exc)) from None
    except IDPhotoError as exc:  # truncated, too small, no person, no face, a false face, impossible max_kb,
        raise ApiError(422, api_names(str(exc))) from None  # a failed rule under strict…
    return result, queued, time.perf_counter() - t


def save_upload(request: Request, kind: str, files: dict[str, bytes | None]) -> None:
    """With ``save_dir`` only: the upload and its results, under one time-stamped name."""
    folder = request.app.state.config.save_dir
    if folder is None:
        return
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    write_all({folder / f"{stem}_{kind}_{name}": data for name, data in files.items() if data})


def timing_header(timings: dict) -> str:
    return ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items())


def limit_of(request: Request) -> int:
    return int(request.app.state.config.max_upload_mb * 2**20)


def rss_mb() -> float | None:
    """This process's resident memory (Linux /proc), for /healthz and the load benchmark."""
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------------------- pages
@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/samples/{name}", include_in_schema=False)
async def sample(name: str):
    if name not in SAMPLES or not (SAMPLES_DIR / name).is_file():   # the list only: no path from the URL
        raise ApiError(404, f"no sample {name!r}")
    return FileResponse(SAMPLES_DIR / name, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.get("/healthz", summary="Liveness, the model and the pool's load")
async def healthz(request: Request):
    state = request.app.state
    return {"status": "ok", "model": state.config.model_name, "device": state.config.device,
            "uptime_s": round(time.time() - state.started, 1), "rss_mb": rss_mb(), **state.pool.stats()}


@router.get("/api/specs", summary="The ID-photo standards, colours, sheets and option defaults")
async def specs(request: Request):
    config, defaults = request.app.state.config, request.app.state.defaults
    return {
        "specs": [{"name": s.name, "description": s.description, "region": s.region,
                   "width_mm": round(s.width_mm, 3), "height_mm": round(s.height_mm, 3), "dpi": s.dpi,
                   "width_px": s.size_px[0], "height_px": s.size_px[1], "head_ratio": s.head_ratio,
                   "head_range": list(s.head_range), "top_ratio": s.top_ratio,
                   # the rules as shares of the height ([low, high], null: no bound), for the page's sliders
                   "head": list(s.head) if s.head else None, "top": list(s.top) if s.top else None,
                   "background": list(s.background), "kb": list(s.kb) if s.kb else None}
                  for s in catalogue.SPECS.values()],  # read now: --spec-file may have added some
        "aliases": catalogue.ALIASES,
        "colors": {name: "#{:02X}{:02X}{:02X}".format(*bgr[::-1]) for name, bgr in COLORS.items()},
        "bg_styles": list(BG_STYLES),
        "face_detectors": list(DETECTORS),
        "layouts": {name: {"width_in": w, "height_in": h} for name, (w, h) in SHEETS.items()},
        "matting": sorted(MATTING_METHODS),
        "samples": [{"name": n, "url": f"/samples/{n}", "description": d} for n, d in SAMPLES.items()
                    if (SAMPLES_DIR / n).is_file()],
        "defaults": {k: v for k, v in asdict(defaults).items() if k in FORM_FIELDS},
        "limits": {"max_upload_mb": config.max_upload_mb, "max_pixels": config.max_pixels,
                   "timeout_s": config.timeout_s, "max_input_size": config.max_input_size,
                   "max_matting_side": config.max_matting_side},
    }


# --------------------------------------------------------------------------------------------------- API
@router.post("/api/idphoto", summary="A photo → the ID photo (JPEG, or JSON with every image)",
             openapi_extra=multipart_doc("photo", "the photo (JPEG, PNG, WebP, BMP, TIFF)", FORM_FIELDS,
                                         {"image/jpeg": {}, "application/json": {}}))
async def api_idphoto(request: Request):
    photo, fields = await read_form(request, limit_of(request), "photo")
    opts = options_of(request, fields)
    pipeline, max_pixels = pipeline_for(request, opts), request.app.state.config.max_pixels
    result, queued, total = await run_work(request, lambda: make_idphoto(photo, opts, pipeline, max_pixels))
    timings = {"queue": queued, **result.timings, "total": total}
    save_upload(request, "idphoto", {"input": photo, "idphoto.jpg": result.idphoto, "cutout.png": result.cutout,
                              "sheet.jpg": result.sheet, "idphoto_hd.jpg": result.idphoto_hd})
    if "application/json" not in request.headers.get("accept", ""):
        compliance = "none" if result.report is None else "passed" if result.report.passed else "failed"
        return Response(result.idphoto, media_type="image/jpeg",
                        headers={"Server-Timing": timing_header(timings), "X-Compliance": compliance,
                                 "Content-Disposition": 'inline; filename="idphoto.jpg"'})
    b64 = lambda data: base64.b64encode(data).decode("ascii") if data else None  # noqa: E731
    return {
        "spec": result.spec_name, "width": result.size[0], "height": result.size[1], "dpi": result.dpi,
        "quality": result.quality, "kb": round(result.kb, 2), "copies": result.copies,
        "input": {"width": result.input_size[0], "height": result.input_size[1]},
        "timings": {k: round(v, 4) for k, v in timings.items()}, "notes": result.notes,
        "report": json.loads(result.report.to_json()) if result.report is not None else None,
        "media_types": {"idphoto": "image/jpeg", "cutout": "image/png", "trimap": "image/png",
                        "alpha": "image/png", "sheet": "image/jpeg", "idphoto_hd": "image/jpeg"},
        "images": {"idphoto": b64(result.idphoto), "cutout": b64(result.cutout), "trimap": b64(result.trimap),
                   "alpha": b64(result.alpha), "sheet": b64(result.sheet), "idphoto_hd": b64(result.idphoto_hd)},
    }


@router.post("/api/matte", summary="A photo → the person as an RGBA PNG",
             openapi_extra=multipart_doc("photo", "the photo", MATTE_FIELDS, {"image/png": {}}))
async def api_matte(request: Request):
    photo, fields = await read_form(request, limit_of(request), "photo")
    opts = options_of(request, fields, groups=("model",))
    pipeline, max_pixels = pipeline_for(request, opts), request.app.state.config.max_pixels
    (png, timings), queued, total = await run_work(request, lambda: make_cutout(photo, opts, pipeline, max_pixels))
    save_upload(request, "matte", {"input": photo, "cutout.png": png})
    return Response(png, media_type="image/png",
                    headers={"Server-Timing": timing_header({"queue": queued, **timings, "total": total}),
                             "Content-Disposition": 'inline; filename="cutout.png"'})


@router.post("/api/layout", summary="An ID photo → a print sheet (JPEG) with as many copies as fit",
             openapi_extra=multipart_doc(
                 "photo", "the ID photo", {
                     "layout": {"type": "string", "enum": sorted(SHEETS), "default": "6inch"},
                     "dpi": {"type": "integer", "description": "default: the photo's own DPI, else 300"}},
                 {"image/jpeg": {}}))
async def api_layout(request: Request):
    photo, fields = await read_form(request, limit_of(request), "photo")
    unknown = set(fields) - {"layout", "dpi"}
    if unknown:
        raise ApiError(400, f"unknown option {sorted(unknown)[0]!r}; known: layout, dpi")
    layout = fields.get("layout", "").strip() or "6inch"
    if layout not in SHEETS:
        raise ApiError(400, f"layout: invalid choice {layout!r} (choose from {', '.join(sorted(SHEETS))})")
    dpi_text = fields.get("dpi", "").strip()
    lo, hi = DPI_RANGE
    if dpi_text and not (dpi_text.isdigit() and lo <= int(dpi_text) <= hi):
        raise ApiError(400, f"dpi: expected a whole number from {lo} to {hi}, got {dpi_text!r}")
    dpi, max_pixels = (int(dpi_text) if dpi_text else None), request.app.state.config.max_pixels
    (sheet, copies, used_dpi), queued, total = await run_work(request, lambda: make_sheet(photo, layout, dpi, max_pixels))
    save_upload(request, "layout", {"input": photo, "sheet.jpg": sheet})
    return Response(sheet, media_type="image/jpeg",
                    headers={"X-Copies": str(copies), "X-DPI": str(used_dpi),
                             "Server-Timing": timing_header({"queue": queued, "total": total}),
                             "Content-Disposition": f'inline; filename="sheet_{layout}.jpg"'})
