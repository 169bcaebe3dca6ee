"""The FastAPI app: :func:`create_app` around a loaded TNet, its error handlers, its state and its routes.

Serving: the work runs on a fixed pool of worker threads with a bounded queue; a request that finds the
pool and the queue full is answered 503 with ``Retry-After`` at once instead of piling up. Uploads are
capped in bytes (read into memory, never spooled to disk) and in decoded pixels (checked from the header,
before decoding), and each request has a time limit. Every failure is a one-line JSON ``{"error": …}``.
Photos are never written to disk nor logged, unless ``save_dir`` is set.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import clip

from ..options import IDPhotoOptions
from .config import ServerConfig
from .errors import ApiError, error_response, single_line
from .pool import WorkerPool
from .routes import STATIC, router

log = logging.getLogger("idphoto.web")


def create_app(model, config: ServerConfig | None = None, defaults: IDPhotoOptions | None = None) -> FastAPI:
    """The FastAPI app around a loaded TNet ``model``; ``defaults`` are the options a request starts from."""
    config = config or ServerConfig()
    app = FastAPI(title="ID photos (证件照)", version="1",
                  description="Photo → TNet trimap → alpha matting → ID photo at a standard size. "
                              "Errors are JSON: {\"error\": \"one line\"}.",
                  docs_url=None, redoc_url=None)
    app.state.model, app.state.config = model, config
    app.state.defaults = defaults or IDPhotoOptions()
    app.state.pool = WorkerPool(config.workers, config.queue)
    app.state.started = time.time()
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
        log.error("unexpected %s on %s: %s", type(exc).__name__, request.url.path, clip(single_line(str(exc)), 200))
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")

    app.include_router(router)
    app.router.on_shutdown.append(app.state.pool.shutdown)
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
