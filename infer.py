#!/usr/bin/env python
"""Photo → trimap (TNet) → alpha matte → print-ready ID photo.  Run ``python infer.py --help``.

    python infer.py --image examples/astronaut.jpg --spec 1inch --bg blue
    python infer.py --input-dir photos/ --spec icao --bg white --max-kb 200 --layout 6inch

The command lives in the library (:mod:`idphoto.cli`, also installed as ``idphoto``); this file keeps the
design card's name for it at the top of the checkout.
"""
import sys

from idphoto.cli import build_parser, main, resolve_options  # noqa: F401 — the command's parts, for scripts and tests

if __name__ == "__main__":
    sys.exit(main())
