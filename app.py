#!/usr/bin/env python
"""The ID-photo web page and HTTP API: ``python app.py``, then open the URL it prints.

    python app.py                                   # http://127.0.0.1:7860/ (page), /docs (API)
    python app.py --port 8000 --checkpoint results/best_tnet.pth --workers 2

The command lives in the library (:mod:`idphoto.web.serve`, also installed as ``idphoto-app``); the routes
and the serving rules are beside it in idphoto/web/. This file keeps the command at the top of the checkout.
"""
import sys

from idphoto.web.serve import build_parser, main  # noqa: F401 — the command's parts, for scripts and tests

if __name__ == "__main__":
    sys.exit(main())
