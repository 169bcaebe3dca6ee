"""Command-line conventions shared by the scripts: exit codes, one-line errors, devices, output folders.

Kept free of heavy imports so that ``--help`` and argument mistakes answer at once (torch is imported
only inside :func:`resolve_device`).
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (exit 2) instead of the usage block and a message."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class DeviceUnavailable(RuntimeError):
    """A well-formed --device that this machine does not have (exit 1, like any other unmet requirement)."""


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


def resolve_device(name: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``. A name torch does not parse is a ValueError (a usage
    mistake, exit 2); a CUDA device this machine lacks is :class:`DeviceUnavailable` (exit 1)."""
    if name == "cpu" or (name == "auto" and not gpu_device_nodes()):
        return "cpu"  # known without importing torch (a second or two)
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: not a torch device: {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"--device {name}: no CUDA device is available here (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return name


def gpu_device_nodes() -> bool:
    """False when this is Linux without the device files of an NVIDIA (``/dev/nvidia0``…), WSL (``/dev/dxg``)
    or ROCm (``/dev/kfd``) GPU, so that PyTorch can't see a CUDA device; True when there may be one."""
    if not sys.platform.startswith("linux"):
        return True
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg") or os.path.exists("/dev/kfd"))


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
    unless ``debug``): a user mistake (``user_errors``, :class:`DeviceUnavailable`) or an OS error → 1,
    Ctrl-C → 130."""
    try:
        return run()
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (DeviceUnavailable, *user_errors) as exc:
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


def add_trimap_arguments(group) -> None:
    """The trimap-network flags that infer.py and evaluate.py share, so both read a photo the same way."""
    group.add_argument("--input-size", type=int, default=None, metavar="N",
                       help="side of the square TNet input (default: the size the weights were trained for, "
                            "recorded in the weights file; 400 for files that don't say)")
    group.add_argument("--tta", choices=("none", "flip"), default="none",
                       help="test-time augmentation of the trimap: 'flip' averages the photo and its mirror image "
                            "(about twice the network time)")
