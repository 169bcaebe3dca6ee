"""Command-line conventions shared by the scripts: exit codes and one-line usage errors.

Kept free of heavy imports so that ``--help`` and argument mistakes answer at once.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (exit 2) instead of the usage block and a message."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def guarded(prog: str, run: Callable[[], int], user_errors: tuple = (), debug: bool = False,
            interrupted: str = "interrupted") -> int:
    """Run a command's body; turn every failure into one line on stderr and an exit code (never a traceback,
    unless ``debug``): a user mistake (``user_errors``) or an OS error → 1, Ctrl-C → 130."""
    try:
        return run()
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except user_errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # e.g. the output folder can't be written
        print(f"{prog}: error: {exc.filename or ''} {exc.strerror or exc}".strip(), file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"{prog}: error: unexpected {type(exc).__name__}: {first} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_ERROR
