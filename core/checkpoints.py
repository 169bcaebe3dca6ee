"""Training checkpoints, and the run folder that holds them.

A run writes ``checkpoint_tnet.pth`` after every epoch and ``best_tnet.pth`` when validation improves,
each atomically and tagged with the run's id, so that a folder's files can be told apart from another
run's (:func:`check_out_dir`) and two runs never write into one folder at once (:class:`RunLock`).
"""
from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path

from .errors import TrainError
from .fileio import atomic_path

CHECKPOINT, BEST, SWA = "checkpoint_tnet.pth", "best_tnet.pth", "swa_tnet.pth"


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """torch.save atomically: a crash or Ctrl-C never leaves a torn checkpoint.

    torch reports a failed write (a full disk, a quota) as a RuntimeError from its C++ zip writer
    ("inline_container.cc … file write failed"); it becomes an OSError that names ``path``.
    """
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as exc:
            text = str(exc)
            if "inline_container" not in text and "iostream" not in text and "write" not in text:
                raise
            raise OSError(errno.EIO, f"could not write the checkpoint{_space_hint(Path(path).parent)}", str(path)) from None


def _space_hint(folder: Path) -> str:
    """' (no space left: N MiB free)' when the disk holding ``folder`` is (nearly) full, else ''."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f" (no space left: {free / 2**20:.0f} MiB free)" if free < 64 * 2**20 else " (write failed)"


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """A training checkpoint written by :func:`save_checkpoint` (weights_only: no code is unpickled)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def checkpoint_state(model, optimizer, scaler, epoch: int, best: float, global_step: int, args, run_id: str | None,
                     interrupted: bool = False) -> dict:
    """What a training checkpoint holds: the bare model's weights and architecture, the optimiser and AMP
    scaler, how far the run got, its best metric, its arguments and its id."""
    from .runtime import unwrap

    bare = unwrap(model)
    return {"epoch": epoch, "global_step": global_step, "best_metric": best, "interrupted": interrupted,
            "run_id": run_id, "arch": bare.arch, "model": bare.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "args": settings_of(args)}


# --------------------------------------------------------------------------------------- the run folder
def describe_run(path: Path) -> tuple[str | None, str]:
    """(run id or None, a short description) of the checkpoint at ``path`` ("unreadable" for both when it
    can't be read); memory-mapped where possible, so a large checkpoint costs no time."""
    import torch

    obj = None
    for mmap in (True, False):  # mmap reads no tensors, but only works on the zip format of torch ≥ 1.6
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            break
        except Exception:
            continue
    if not isinstance(obj, dict):
        return "unreadable", "unreadable"
    text = f"epoch {obj.get('epoch', '?')}" + (", interrupted" if obj.get("interrupted") else "")
    best = obj.get("best_metric")
    if isinstance(best, float) and math.isfinite(best):
        # train.py keeps the best validation mIoU, or without validation lists the negated training loss
        text += f", best mIoU {best:.4f}" if best >= 0 else f", best training loss {-best:.4f}"
    return obj.get("run_id"), text


def check_out_dir(out: Path, resume_path: str | None, run_id: str | None, overwrite: bool) -> tuple[str, ...]:
    """Refuse to write over another run's checkpoints: ``out``'s checkpoint_tnet.pth, best_tnet.pth and
    swa_tnet.pth may only belong to the run being resumed, unless ``overwrite``. Returns the names of the
    best_tnet.pth and swa_tnet.pth of another run that are there (with --overwrite, removed at this run's
    first save, so the folder never mixes two runs' results)."""
    existing = [out / name for name in (CHECKPOINT, BEST, SWA) if (out / name).exists()]
    foreign = []
    for path in existing:
        their_id, text = describe_run(path)
        same = resume_path is not None and their_id == run_id and (
            their_id is not None  # runs saved before run ids existed: only the resumed file itself is known
            or (path.name == CHECKPOINT and Path(resume_path).exists() and os.path.samefile(path, resume_path))
            or (path.name != CHECKPOINT and (out / CHECKPOINT).exists() and os.path.samefile(out / CHECKPOINT, resume_path)))
        if not same:
            foreign.append((path, text))
    if foreign and not overwrite:
        what = "; ".join(f"{p.name} ({text})" for p, text in foreign)
        readable = (out / CHECKPOINT).exists() and describe_run(out / CHECKPOINT)[1] != "unreadable"
        hint = f"continue it with --resume {out / CHECKPOINT}, " if readable and resume_path is None else ""
        raise TrainError(f"--out {out} holds another training run ({what}): {hint}replace it with --overwrite, "
                         f"or choose another --out")
    return tuple(p.name for p, _ in foreign if p.name != CHECKPOINT)


class RunLock:
    """An exclusive lock on ``<out>/.train.lock`` for the run's lifetime, so that two runs never write into
    one folder at once (the OS drops it when the process ends, however it ends)."""

    def __init__(self, out: Path):
        self.path, self.file = Path(out) / ".train.lock", None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock, the checkpoint check above still applies
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "?"
            self.file.close()
            raise TrainError(f"--out {self.path.parent} is in use by another train.py (pid {holder}); "
                             "wait for it, or choose another --out") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()
        return False


def settings_of(args) -> dict:
    """A run's settings as a dict: a dataclass (``tnet.config.TrainConfig``), parsed arguments or a dict."""
    import dataclasses

    if isinstance(args, dict):
        return dict(args)
    return dataclasses.asdict(args) if dataclasses.is_dataclass(args) else dict(vars(args))
