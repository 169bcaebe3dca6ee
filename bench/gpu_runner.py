"""What bench/gpu_check.py and bench/gpu_train.py share: running each step as a logged subprocess under
one time budget, reading checkpoints and TensorBoard events, and the data they start from.

A step that fails is recorded (with the end of its log) and the next one still runs: one GPU session
should show every fault at once, not the first one only.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from common import REPO, synthetic_portrait

SHARED = REPO.parent / "shared" / "data"


class CheckFailed(Exception):
    """A step ran but its result is wrong; the message says what was expected."""


class Runner:
    """Runs steps as subprocesses, each logged to ``<out>/logs/<name>.log``, within ``budget_s`` seconds."""

    def __init__(self, out: Path, budget_s: float, env: dict | None = None):
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.start = time.monotonic()
        self.budget_s = budget_s
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.results: dict[str, dict] = {}

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def run(self, name: str, cmd: list[str], timeout: float, check=None, interrupt_after: float | None = None) -> dict:
        """Run ``cmd``; ``check(stdout)`` returns figures or raises CheckFailed. ``interrupt_after`` seconds
        sends SIGINT (train.py then saves a checkpoint and stops) instead of failing the step."""
        if self.left() < 5:
            return self.record(name, {"ok": False, "skipped": "out of time (the whole check has a budget)"})
        timeout = min(timeout, self.left())
        log = self.logs / f"{name}.log"
        print(f"[{time.monotonic() - self.start:6.0f} s] {name}: {' '.join(map(str, cmd))}", file=sys.stderr, flush=True)
        t = time.monotonic()
        with open(log, "w") as f:
            f.write("$ " + " ".join(map(str, cmd)) + "\n")
            f.flush()
            proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=f, text=True, cwd=REPO,
                                    env=self.env, start_new_session=True)
            stdout, interrupted, timed_out = "", False, False
            try:
                stdout, _ = proc.communicate(timeout=min(timeout, interrupt_after or timeout))
            except subprocess.TimeoutExpired:
                if interrupt_after is not None and interrupt_after < timeout:
                    interrupted = True
                    os.killpg(proc.pid, signal.SIGINT)
                    try:
                        stdout, _ = proc.communicate(timeout=max(30.0, min(120.0, self.left())))
                    except subprocess.TimeoutExpired:
                        timed_out = True
                else:
                    timed_out = True
                if timed_out:
                    os.killpg(proc.pid, signal.SIGKILL)
                    stdout, _ = proc.communicate()
            f.write(stdout)
        result = {"seconds": round(time.monotonic() - t, 1), "rc": proc.returncode, "log": str(log.relative_to(self.out))}
        if interrupted:
            result["interrupted_at_s"] = interrupt_after
        if timed_out:
            result.update(ok=False, error=f"timed out after {timeout:.0f} s")
        elif proc.returncode != 0 and not (interrupted and proc.returncode == 130):
            result.update(ok=False, error=f"exit code {proc.returncode}: {tail(log)}")
        else:
            try:
                result.update(check(stdout) if check else {})
                result["ok"] = True
            except CheckFailed as exc:
                result.update(ok=False, error=str(exc))
            except Exception as exc:  # a check that breaks is a failed check, and the rest still runs
                result.update(ok=False, error=f"the check itself failed: {type(exc).__name__}: {exc}")
        return self.record(name, result)

    def record(self, name: str, result: dict) -> dict:
        self.results[name] = result
        state = "ok" if result.get("ok") else ("skipped: " + result["skipped"] if "skipped" in result else "FAILED: " + result.get("error", ""))
        print(f"           {name}: {state}", file=sys.stderr, flush=True)
        return result

    def skip(self, name: str, why: str) -> dict:
        return self.record(name, {"ok": None, "skipped": why})

    def all_ok(self) -> bool:
        return all(r.get("ok") is not False for r in self.results.values())

    def pack(self, name: str) -> Path:
        """``<out>/<name>.tar.gz`` of the logs, TensorBoard events and JSON files (not the checkpoints):
        one small file to fetch from a GPU machine."""
        path = self.out / f"{name}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for sub in ("logs", "runs"):
                if (self.out / sub).is_dir():
                    tar.add(self.out / sub, arcname=sub)
            for f in sorted(self.out.glob("*.json")):
                tar.add(f, arcname=f.name)
            for f in sorted(self.out.rglob("summary.json")):
                tar.add(f, arcname=str(f.relative_to(self.out)))
        return path


def settle_args(parser, args, data_flags: tuple, budget_s: float, not_empty_hint: str = "") -> None:
    """The checks both scripts make after parsing: data folders made absolute (the steps run from the
    repository root), the default time budget (1800 s for ``--dry-run`` on a possibly busy CPU), and an
    output folder that already holds files refused."""
    for name in data_flags:
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    if args.budget is None:
        args.budget = 1800.0 if args.dry_run else budget_s
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty: give a new folder{not_empty_hint}")


def tail(path: Path, lines: int = 3) -> str:
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(line.strip()[-200:] for line in text[-lines:])


def last_json_line(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise CheckFailed("no JSON line on stdout")


# ------------------------------------------------------------------------------------------- checkpoints
def checkpoint(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise CheckFailed(f"{path.name} was not written")
    return torch.load(path, map_location="cpu", weights_only=True)


def adam_step(ckpt: dict) -> int:
    """The step count of the optimiser state (the same for every parameter)."""
    state = ckpt["optimizer"]["state"]
    return int(next(iter(state.values()))["step"]) if state else 0


def scalars(logdir: Path, tag: str) -> list:
    """TensorBoard scalar events (step, wall_time, value) of ``tag`` in ``logdir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 1}).Reload()
    if tag not in acc.Tags()["scalars"]:
        raise CheckFailed(f"no {tag} in the TensorBoard events of {logdir.name}")
    return acc.Scalars(tag)


def step_rate(events: list) -> float:
    """Optimiser steps per second from the wall times of consecutive step events (median interval,
    so validation passes and the start-up do not count)."""
    gaps = sorted(b.wall_time - a.wall_time for a, b in zip(events, events[1:]))
    if not gaps:
        return float("nan")
    median = gaps[len(gaps) // 2]
    return 1.0 / median if median > 0 else float("inf")


# --------------------------------------------------------------------------------------------------- data
def synthetic_pairs(root: Path, n: int, seed: int = 0, w: int = 96, h: int = 128) -> Path:
    """A small images/ + masks/ folder (for --dry-run on a machine without the shared data)."""
    import cv2

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo, alpha = synthetic_portrait(seed + i, w, h)
        cv2.imwrite(str(root / "images" / f"{i:04d}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "masks" / f"{i:04d}.png"), alpha)
    return root


def prepare_cmd(src: Path, out: Path, lists: Path, name: str, val_fraction: float, workers: int) -> list:
    return [sys.executable, REPO / "prepare_aifenge.py", "--src", src, "--out", out / name, "--lists-dir", lists,
            "--name", name, "--val-fraction", val_fraction, "--workers", max(1, workers)]


def prepared_counts(lists: Path, name: str):
    """A check of a prepare_aifenge.py step: the sizes of the train and val lists it wrote (read from the
    lists themselves, not from its printed summary); an empty split fails."""
    def check(_stdout: str) -> dict:
        from datasets import read_lists

        try:
            train, val = (len(read_lists(lists, n)["img"]) for n in (name, name + "_val"))
        except (FileNotFoundError, ValueError) as exc:
            raise CheckFailed(f"prepare_aifenge.py wrote no usable lists: {exc}") from None
        if train == 0 or val == 0:
            raise CheckFailed(f"empty split: train {train}, val {val}")
        return {"train": train, "val": val}

    return check


def default_data(name: str) -> Path:
    return SHARED / name


def require_pairs(path: Path, flag: str) -> Path:
    if not (path / "images").is_dir() or not (path / "masks").is_dir():
        raise SystemExit(f"{Path(sys.argv[0]).name}: error: {flag} {path} has no images/ and masks/ folders "
                         f"(on a GPU machine, carry the data: see bench/README.md)")
    return path


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
