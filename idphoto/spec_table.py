"""Show or check ID-photo spec catalogues: ``python -m idphoto.spec_table [--markdown] [--check FILE]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import guarded

from .specs import load_catalogue, markdown_table, text_table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m idphoto.spec_table",
                                description="Show the ID-photo spec catalogue (idphoto/specs.json) or check a file of your own.")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (the README's)")
    p.add_argument("--check", type=Path, metavar="FILE", help="validate FILE (a spec, a list of specs or {\"specs\": [...]}) and list it")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    args = p.parse_args(argv)
    return guarded(p.prog, lambda: show(args), debug=args.debug)


def show(args) -> int:
    specs = list(load_catalogue(args.check)[0].values()) if args.check else None  # a bad file: SpecError, one line
    print(markdown_table(specs) if args.markdown else text_table(specs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
