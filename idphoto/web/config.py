"""The server's settings, defined once: :class:`ServerConfig`. ``app.py``'s server flags are made from its
fields (:func:`add_server_arguments`, :func:`server_config`), so their defaults can't drift apart. Imports no FastAPI."""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.cli import add_field_arguments

from ..service import DEFAULT_MAX_PIXELS


def _flag(default, help: str, *, kind=None, metavar: str | None = None, flag: str | None = None):
    """A field that is also a flag of ``app.py`` (``--max-upload-mb`` for ``max_upload_mb``, or ``flag``)."""
    return field(default=default, metadata={"help": help, "type": kind, "metavar": metavar, "flag": flag})


@dataclass
class ServerConfig:
    workers: int = _flag(max(1, os.cpu_count() or 1), "photos processed at once (by default one per CPU core)",
                         kind=int, metavar="N")
    queue: int = _flag(0, "requests that may wait for a worker; more are answered 503 with Retry-After "
                          "(0: twice --workers)", kind=int, metavar="N")
    max_upload_mb: float = _flag(15.0, "largest request body", kind=float, metavar="MB")
    max_pixels: int = _flag(DEFAULT_MAX_PIXELS, "largest photo in decoded pixels (checked before decoding: "
                                                "decompression bombs)", kind=int, metavar="N")
    timeout_s: float = _flag(60.0, "per-request time limit in seconds, queue wait included (504 past it)",
                             kind=float, metavar="S", flag="--timeout")
    max_input_size: int = _flag(1024, "largest TNet input side a request may ask for (input_size)", kind=int,
                                metavar="N")
    max_matting_side: int = _flag(2048, "largest matting side a request may ask for (max_side; 0, no cap, is "
                                        "refused)", kind=int, metavar="PX")
    save_dir: Path | None = _flag(None, "keep every upload and its results in DIR. Off by default: photos are "
                                        "personal data and are then never written to disk nor logged",
                                  kind=Path, metavar="DIR")
    device: str = "cpu"          # where the model runs: set from the loaded model, not a flag
    model_name: str = "TNet"     # shown by /healthz

    def __post_init__(self):
        if self.queue <= 0:
            self.queue = 2 * self.workers


def _flags() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(ServerConfig) if "help" in f.metadata]


def add_server_arguments(group) -> None:
    """Every flag field of :class:`ServerConfig` as a flag of ``group`` (an argparse parser or group)."""
    add_field_arguments(group, _flags())


def server_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with the server flags of ``args`` that argparse can't see."""
    out = []
    if args.workers < 1 or args.queue < 0:
        out.append("--workers must be at least 1 and --queue not negative")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.timeout_s <= 0:
        out.append("--max-upload-mb, --max-pixels and --timeout must be positive")
    if args.max_input_size < 8 or args.max_matting_side < 1:
        out.append("--max-input-size must be at least 8 and --max-matting-side positive")
    return out


def server_config(args: argparse.Namespace, **extra) -> ServerConfig:
    """The :class:`ServerConfig` of parsed arguments, with ``extra`` (device, model_name)."""
    return ServerConfig(**{f.name: getattr(args, f.name) for f in _flags()}, **extra)
