"""The web page and HTTP API over :mod:`idphoto.service` (FastAPI); ``python app.py`` starts it.

* :mod:`idphoto.web.config` — :class:`~idphoto.web.config.ServerConfig`, the server's settings defined once:
  ``app.py``'s server flags come from its fields (no FastAPI on import: ``--help`` answers at once);
* :mod:`idphoto.web.app` — :func:`~idphoto.web.app.create_app`: the app, its error handlers and state;
* :mod:`idphoto.web.routes` — the page, the samples, ``/healthz`` and the ``/api/…`` routes;
* :mod:`idphoto.web.pool` — the fixed pool of worker threads with a bounded queue (503 beyond it);
* :mod:`idphoto.web.uploads` — uploads read into memory, capped in bytes, never spooled to disk;
* :mod:`idphoto.web.errors` — every failure as a one-line JSON ``{"error": …}``;
* :mod:`idphoto.web.serve` — the server command (``python app.py``, installed as ``idphoto-app``): bind,
  load the model once, run uvicorn;
* ``static/`` — the page (plain HTML/CSS/JS, nothing from a CDN).

The per-photo options of a request are :class:`idphoto.options.IDPhotoOptions`, the same as ``infer.py``'s.
"""
from __future__ import annotations

from core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "app": ("create_app",),
    "config": ("ServerConfig",),
}, globals())
