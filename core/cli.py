"""Command-line conventions shared by the scripts: exit codes, one-line errors, the error guard, output folders.

Kept free of heavy imports so that ``--help`` and argument mistakes answer at once.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

from core.errors import UserError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (exit 2) instead of the usage block and a message."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` in one line. An error re-raised by a DataLoader worker carries the worker's
    whole traceback; its last line is the real message."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Original Traceback" in text:
        last = lines[-1]
        return last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].isidentifier() else last
    return lines[0]


def describe_os_error(exc: OSError) -> str:
    """``path: reason`` for an OS error (reason alone when it names no file)."""
    reason = exc.strerror or one_line(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def check_writable_dir(path: str | os.PathLike, flag: str = "--out-dir") -> None:
    """Fail before any work when ``path`` can't become a folder we may write into; create nothing.

    An existing folder is tested with a real temporary file (permissions, read-only mounts, full quotas
    all show up); a folder still to be made is judged by its nearest existing parent.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{flag} is a file, not a folder", str(path))
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{flag}: {probe} is a file, not a folder", str(path))
    if probe == path:
        try:
            fd, tmp = tempfile.mkstemp(dir=path, prefix=".write-test.")
        except OSError as exc:
            raise PermissionError(exc.errno, f"{flag} is not writable ({exc.strerror})", str(path)) from None
        os.close(fd)
        os.unlink(tmp)
    elif not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{flag} can't be created: {probe} is not writable", str(path))


def guarded(prog: str, run: Callable[[], int], user_errors: tuple = (), debug: bool = False,
            interrupted: str = "interrupted") -> int:
    """Run a command's body; turn every failure into one line on stderr and an exit code (never a traceback,
    unless ``debug``): a user mistake (any :class:`core.errors.UserError`, and the script's own
    ``user_errors`` such as a bad list's ValueError) or an OS error → 1, Ctrl-C → 130."""
    try:
        return run()
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserError, *user_errors) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # e.g. the output folder can't be written, a full disk
        print(f"{prog}: error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if debug:
            raise
        print(f"{prog}: error: unexpected {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_ERROR

