"""Command-line conventions shared by the scripts: exit codes, one-line errors, the error guard, output folders,
and the flags of a settings dataclass.

Kept free of heavy imports so that ``--help`` and argument mistakes answer at once.
"""
from __future__ import annotations

import argparse
import dataclasses
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


def flag_name(name: str) -> str:
    """The command-line flag of a setting: ``--batch-size`` for ``batch_size``."""
    return "--" + name.replace("_", "-")


def field_argument(f: dataclasses.Field) -> tuple[str, dict]:
    """The flag and ``add_argument`` keywords of a settings dataclass's field, read from its metadata the same
    way for every such dataclass (the ID-photo options, the training config, the server config), so that
    their flags behave alike and each default is the field's own.

    Metadata: ``help``; optional ``flag`` (else ``--`` and the name with dashes), ``type``, ``nargs``,
    ``choices``, ``metavar`` and ``action``: ``"store_true"``, ``"optional"`` (``--x/--no-x``, its default
    the field's) or ``"append"`` (a repeatable flag). A tuple default of a list-valued flag is passed as a list."""
    m = f.metadata
    flag = m.get("flag") or flag_name(f.name)
    kwargs = {"help": m["help"], "dest": f.name}
    action = m.get("action")
    if action == "store_true":
        return flag, kwargs | {"action": "store_true"}
    if action == "optional":
        return flag, kwargs | {"action": argparse.BooleanOptionalAction, "default": f.default}
    listed = isinstance(f.default, tuple) and (action == "append" or m.get("nargs") == "+")
    kwargs["default"] = list(f.default) if listed else f.default
    if action is not None:
        kwargs["action"] = action
    for key in ("type", "nargs", "metavar"):
        if m.get(key) is not None:
            kwargs[key] = m[key]
    if m.get("choices") is not None:
        kwargs["choices"] = list(m["choices"])
    return flag, kwargs


def add_field_arguments(parser, fields, titles: dict[str, str] | None = None) -> dict:
    """Each of ``fields`` as a flag of ``parser`` (:func:`field_argument`); with ``titles``, in the argument
    group named by its ``group`` metadata, made on first use. Returns those groups by name."""
    groups = {}
    for f in fields:
        target = parser
        if titles is not None:
            name = f.metadata["group"]
            target = groups.get(name) or groups.setdefault(name, parser.add_argument_group(titles[name]))
        flag, kwargs = field_argument(f)
        target.add_argument(flag, **kwargs)
    return groups


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

