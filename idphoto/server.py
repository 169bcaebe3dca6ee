"""The web app and HTTP API (FastAPI) over :mod:`idphoto.service`; ``python app.py`` starts it.

* ``GET /`` the page (plain HTML/CSS/JS in ``idphoto/static``, nothing from a CDN), ``GET /docs`` the
  OpenAPI docs (Swagger UI served from the swagger-ui-bundle package, also offline);
* ``POST /api/idphoto`` photo + the options of ``infer.py`` (:class:`~idphoto.options.IDPhotoOptions`, its
  per-photo ones) → JPEG (``X-Compliance: passed|failed|none``), or JSON with base64 images, the compliance
  report and the stage timings when ``Accept: application/json``;
  ``POST /api/matte`` → RGBA PNG; ``POST /api/layout`` ID photo → print sheet; ``GET /api/specs``, ``GET /healthz``.

Serving: the work runs on a fixed pool of worker threads with a bounded queue; a request that finds the
pool and the queue full is answered 503 with ``Retry-After`` at once instead of piling up. Uploads are
capped in bytes (read into memory, never spooled to disk) and in decoded pixels (checked from the header,
before decoding), and each request has a time limit. Every failure is a one-line JSON ``{"error": …}``.
Photos are never written to disk nor logged, unless ``save_dir`` is set.
"""
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from core.errors import clip

from . import specs as catalogue
from .errors import IDPhotoError
from .face import DETECTORS
from .framing import BG_STYLES
from .image_io import NotAnImageError, TooLargeError
from .options import DPI_RANGE, IDPhotoOptions, OptionsError, api_names
from .output import COLORS, SHEETS, write_all
from .pipeline import MATTING_METHODS, Pipeline
from .service import DEFAULT_MAX_PIXELS, make_cutout, make_idphoto, make_sheet

STATIC = Path(__file__).resolve().parent / "static"
# photos the page offers to try, from the project's examples/ (public domain or made by the project); a
# copy of the package without them offers none
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SAMPLES = {"astronaut.jpg": "a portrait (NASA, public domain)",
           "astronaut_tilted.jpg": "the same, tilted 8°: levelled",
           "astronaut_cut_at_chin.jpg": "a photo that ends at the chin: refused, with the reason"}
log = logging.getLogger("idphoto.server")


@dataclass
class ServerConfig:
    workers: int = max(1, os.cpu_count() or 1)   # photos processed at once
    queue: int = 0                               # waiting requests beyond the workers (0: 2 × workers)
    max_upload_mb: float = 15.0                  # request body limit
    max_pixels: int = DEFAULT_MAX_PIXELS         # decoded photo limit (decompression bombs)
    timeout_s: float = 60.0                      # per request, queue wait included
    max_input_size: int = 1024                   # largest TNet input a request may ask for
    max_matting_side: int = 2048                 # largest matting side a request may ask for (0, no cap, refused)
    save_dir: Path | None = None                 # keep uploads and results here (off: nothing touches the disk)
    device: str = "cpu"
    model_name: str = "TNet"

    def __post_init__(self):
        if self.queue <= 0:
            self.queue = 2 * self.workers


# ------------------------------------------------------------------------------------------------ errors
class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status, headers=headers)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"


# ------------------------------------------------------------------------------------------- worker pool
class WorkerPool:
    """``workers`` threads with room for ``queue`` more requests waiting; beyond that :meth:`run` refuses
    at once. A request that times out is answered at once; its photo keeps its worker until done (a
    thread can't be stopped), and its slot stays taken until then, so the pool never over-commits."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.queue = workers, queue
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="idphoto-worker")
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._lock = threading.Lock()
        self.taken = self.running = self.served = self.rejected = self.timed_out = 0
        self._mean_s = 1.0  # running mean of the work time, for Retry-After

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * (self.queue + self.workers) / self.workers))

    def stats(self) -> dict:
        with self._lock:
            return {"workers": self.workers, "queue": self.queue, "running": self.running,
                    "waiting": self.taken - self.running, "served": self.served, "rejected": self.rejected,
                    "timed_out": self.timed_out}

    async def run(self, fn: Callable, timeout: float):
        """``fn()`` on a worker; returns (its result, seconds waited in the queue)."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.rejected += 1
            raise ApiError(503, "busy: all workers and the queue are full; retry later",
                           {"Retry-After": str(self.retry_after())})
        with self._lock:
            self.taken += 1
        submitted = time.perf_counter()
        started = []

        def work():
            t = time.perf_counter()
            started.append(t - submitted)
            with self._lock:
                self.running += 1
            try:
                return fn()
            finally:
                with self._lock:
                    self.running -= 1
                    self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - t)

        def release(_):
            with self._lock:
                self.taken -= 1
                self.served += 1
            self._slots.release()

        future = self._executor.submit(work)
        future.add_done_callback(release)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            with self._lock:
                self.timed_out += 1
            raise ApiError(504, f"the photo took longer than the server's limit of {timeout:g} s") from None
        return result, (started[0] if started else 0.0)

    def shutdown(self):
        self._executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------- request parsing
class _InMemoryParser(MultiPartParser):
    # Uploaded photos are personal data: file parts stay in memory (the body is already capped in size)
    # instead of rolling over to a temporary file on disk past 1 MB.
    spool_max_size = sys.maxsize


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request too large: {int(declared) / 2**20:.1f} MB, the limit is {limit / 2**20:g} MB")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request too large: over the limit of {limit / 2**20:g} MB")
            chunks.append(chunk)
    except ClientDisconnect:  # the client went away mid-upload: one log line, not a traceback
        log.info("client disconnected during the upload to %s after %d bytes", request.url.path, size)
        raise ApiError(400, "the client disconnected during the upload") from None
    return b"".join(chunks)


async def read_form(request: Request, limit: int, file_field: str) -> tuple[bytes, dict[str, str]]:
    """(bytes of the uploaded file ``file_field``, the other fields as text) of a multipart request."""
    body = await read_body(request, limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, f"send multipart/form-data with the image in a file field named '{file_field}'")

    async def stream():
        yield body

    try:
        form = await _InMemoryParser(request.headers, stream(), max_files=1, max_fields=64,
                                     max_part_size=64 * 1024).parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart request: {exc.message}") from None
    fields, data = {}, None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != file_field:
                raise ApiError(400, f"unexpected file field {key!r}; send the image as '{file_field}'")
            data = await value.read()
            await value.close()
        else:
            fields[key] = value
    if data is None:
        raise ApiError(400, f"no image: send it in a file field named '{file_field}'")
    return data, fields


def _multipart_doc(file_field: str, description: str, fields: dict, media: dict) -> dict:
    """OpenAPI for an endpoint that reads its multipart form itself (so that uploads never touch the disk)."""
    properties = {file_field: {"type": "string", "format": "binary", "description": description}, **fields}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": [file_field], "properties": properties}}}},
        "responses": {"200": {"description": "OK", "content": media},
                      "4XX": {"description": "bad input: {\"error\": \"one line\"}"},
                      "503": {"description": "busy (see Retry-After)"}},
    }


# -------------------------------------------------------------------------------------------------- app
def create_app(model, config: ServerConfig | None = None, defaults: IDPhotoOptions | None = None) -> FastAPI:
    """The FastAPI app around a loaded TNet ``model``; ``defaults`` are the options a request starts from."""
    config = config or ServerConfig()
    defaults = defaults or IDPhotoOptions()
    pool = WorkerPool(config.workers, config.queue)
    limit = int(config.max_upload_mb * 2**20)
    started = time.time()

    app = FastAPI(title="ID photos (证件照)", version="1",
                  description="Photo → TNet trimap → alpha matting → ID photo at a standard size. "
                              "Errors are JSON: {\"error\": \"one line\"}.",
                  docs_url=None, redoc_url=None)
    app.state.pool, app.state.config = pool, config
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _mount_docs(app)

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        return error_response(exc.status_code, exc.detail if isinstance(exc.detail, str) else "error",
                              getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):
        log.error("unexpected %s on %s: %s", type(exc).__name__, request.url.path, clip(_one_line(str(exc)), 200))
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")

    def options_of(fields: dict, groups=("model", "idphoto")) -> IDPhotoOptions:
        try:
            opts = IDPhotoOptions.from_form(fields, defaults, groups)
            opts.validate() if "idphoto" in groups else opts.check_model()
        except OptionsError as exc:
            raise ApiError(400, api_names(str(exc))) from None
        if opts.input_size is not None and opts.input_size > config.max_input_size:
            raise ApiError(400, f"input_size: at most {config.max_input_size} on this server")
        if not 0 < opts.max_side <= config.max_matting_side:
            raise ApiError(400, f"max_side: between 1 and {config.max_matting_side} on this server")
        return opts

    async def run_work(fn):
        t = time.perf_counter()
        try:
            result, queued = await pool.run(fn, config.timeout_s)
        except OptionsError as exc:
            raise ApiError(400, api_names(str(exc))) from None
        except TooLargeError as exc:
            raise ApiError(413, str(exc)) from None
        except NotAnImageError as exc:
            raise ApiError(415, str(exc)) from None
        except IDPhotoError as exc:  # truncated, too small, no person, no face, a false face, impossible max_kb,
            raise ApiError(422, api_names(str(exc))) from None  # a failed rule under strict…
        return result, queued, time.perf_counter() - t

    def save(kind: str, files: dict[str, bytes]):
        if config.save_dir is None:
            return
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        write_all({config.save_dir / f"{stem}_{kind}_{name}": data for name, data in files.items() if data})

    def timing_header(timings: dict) -> str:
        return ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items())

    # ------------------------------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/samples/{name}", include_in_schema=False)
    async def sample(name: str):
        if name not in SAMPLES or not (SAMPLES_DIR / name).is_file():   # the list only: no path from the URL
            raise ApiError(404, f"no sample {name!r}")
        return FileResponse(SAMPLES_DIR / name, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get("/healthz", summary="Liveness, the model and the pool's load")
    async def healthz():
        return {"status": "ok", "model": config.model_name, "device": config.device,
                "uptime_s": round(time.time() - started, 1), "rss_mb": _rss_mb(), **pool.stats()}

    @app.get("/api/specs", summary="The ID-photo standards, colours, sheets and option defaults")
    async def specs():
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
            "defaults": {k: v for k, v in asdict(defaults).items()
                         if k in IDPhotoOptions.form_fields()},
            "limits": {"max_upload_mb": config.max_upload_mb, "max_pixels": config.max_pixels,
                       "timeout_s": config.timeout_s, "max_input_size": config.max_input_size,
                       "max_matting_side": config.max_matting_side},
        }

    # -------------------------------------------------------------------------------------------- API
    form_fields = IDPhotoOptions.form_fields()
    matte_fields = IDPhotoOptions.form_fields(groups=("model",))

    @app.post("/api/idphoto", summary="A photo → the ID photo (JPEG, or JSON with every image)",
              openapi_extra=_multipart_doc(
                  "photo", "the photo (JPEG, PNG, WebP, BMP, TIFF)", form_fields,
                  {"image/jpeg": {}, "application/json": {}}))
    async def api_idphoto(request: Request):
        photo, fields = await read_form(request, limit, "photo")
        opts = options_of(fields)
        pipeline = Pipeline.from_options(app.state.model, opts, config.device)
        result, queued, total = await run_work(lambda: make_idphoto(photo, opts, pipeline, config.max_pixels))
        timings = {"queue": queued, **result.timings, "total": total}
        save("idphoto", {"input": photo, "idphoto.jpg": result.idphoto, "cutout.png": result.cutout,
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

    @app.post("/api/matte", summary="A photo → the person as an RGBA PNG",
              openapi_extra=_multipart_doc("photo", "the photo", matte_fields, {"image/png": {}}))
    async def api_matte(request: Request):
        photo, fields = await read_form(request, limit, "photo")
        opts = options_of(fields, groups=("model",))
        pipeline = Pipeline.from_options(app.state.model, opts, config.device)
        (png, timings), queued, total = await run_work(lambda: make_cutout(photo, opts, pipeline, config.max_pixels))
        save("matte", {"input": photo, "cutout.png": png})
        return Response(png, media_type="image/png",
                        headers={"Server-Timing": timing_header({"queue": queued, **timings, "total": total}),
                                 "Content-Disposition": 'inline; filename="cutout.png"'})

    @app.post("/api/layout", summary="An ID photo → a print sheet (JPEG) with as many copies as fit",
              openapi_extra=_multipart_doc(
                  "photo", "the ID photo", {
                      "layout": {"type": "string", "enum": sorted(SHEETS), "default": "6inch"},
                      "dpi": {"type": "integer", "description": "default: the photo's own DPI, else 300"}},
                  {"image/jpeg": {}}))
    async def api_layout(request: Request):
        photo, fields = await read_form(request, limit, "photo")
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
        dpi = int(dpi_text) if dpi_text else None
        (sheet, copies, used_dpi), queued, total = await run_work(
            lambda: make_sheet(photo, layout, dpi, config.max_pixels))
        save("layout", {"input": photo, "sheet.jpg": sheet})
        return Response(sheet, media_type="image/jpeg",
                        headers={"X-Copies": str(copies), "X-DPI": str(used_dpi),
                                 "Server-Timing": timing_header({"queue": queued, "total": total}),
                                 "Content-Disposition": f'inline; filename="sheet_{layout}.jpg"'})

    app.state.model = model
    app.router.on_shutdown.append(pool.shutdown)
    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package's files, so the docs work offline too."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import swagger_ui_bundle
        assets = Path(swagger_ui_bundle.swagger_ui_path)
    except ImportError:  # optional: without it the docs page loads Swagger UI from its CDN
        assets = None
    if assets is not None:
        app.mount("/swagger", StaticFiles(directory=assets), name="swagger")
        urls = {"swagger_js_url": "/swagger/swagger-ui-bundle.js", "swagger_css_url": "/swagger/swagger-ui.css",
                "swagger_favicon_url": "/swagger/favicon-32x32.png"}
    else:
        urls = {}

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} — API", **urls)


def _rss_mb() -> float | None:
    """This process's resident memory (Linux /proc), for /healthz and the load benchmark."""
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None
