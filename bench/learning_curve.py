#!/usr/bin/env python
"""The learning curve of a training run as a Markdown table, read from its TensorBoard events.

    python bench/learning_curve.py runs/compact-unet [--every 5]

One row per epoch (or every N-th, plus the last): train loss, learning rate, and each validation scalar
given by ``--tags`` (default: person IoU and unknown-class IoU of every validation set, and the mean mIoU
that picks the best checkpoint). Prints the table on stdout; several event files in the folder (a resumed
run) are merged, the later value of an epoch winning.
"""
from __future__ import annotations

import argparse
import sys

DEFAULT_TAGS = ("person_IoU", "IoU_unknown", "mIoU")


def read_scalars(logdir: str) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(logdir, size_guidance={"scalars": 0}).Reload()
    out: dict[str, dict[int, float]] = {}
    for tag in acc.Tags()["scalars"]:
        for event in acc.Scalars(tag):  # in write order: a resumed epoch overwrites the interrupted one
            out.setdefault(tag, {})[event.step] = event.value
    return out


def table(scalars: dict, tags=DEFAULT_TAGS, every: int = 1) -> str:
    columns = ["train/loss_epoch", "train/lr"] + sorted(t for t in scalars if t.startswith("val/") and t.rsplit("/", 1)[-1] in tags)
    epochs = sorted(scalars.get("train/loss_epoch", {}))
    if not epochs:
        raise SystemExit("learning_curve: no train/loss_epoch scalars in that folder (is it a train.py TensorBoard run?)")
    keep = [e for e in epochs if e % every == 0 or e in (epochs[0], epochs[-1])]
    names = [c.replace("train/loss_epoch", "train loss").replace("train/lr", "lr").replace("val/", "") for c in columns]
    lines = ["| epoch | " + " | ".join(names) + " |", "|---" * (len(columns) + 1) + "|"]
    for e in keep:
        cells = []
        for c in columns:
            v = scalars.get(c, {}).get(e)
            cells.append("" if v is None else (f"{v:.2e}" if c == "train/lr" else f"{v:.4f}"))
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logdir", help="a run's TensorBoard folder (runs/<run-name>)")
    p.add_argument("--every", type=int, default=1, help="show every N-th epoch, plus the first and the last (default: 1)")
    p.add_argument("--tags", nargs="+", default=list(DEFAULT_TAGS), help="validation metric names to show")
    args = p.parse_args(argv)
    print(table(read_scalars(args.logdir), tuple(args.tags), max(1, args.every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
