#!/usr/bin/env python
"""Train the trimap network (TNet) on lists made by prepare_aifenge.py.

  python train.py --dataname aifenge                       # one GPU, or all GPUs with DataParallel, or the CPU
  torchrun --nproc_per_node 4 train.py --dataname aifenge  # DistributedDataParallel, one process per GPU
  tensorboard --logdir runs                                # watch it

Each epoch writes results/checkpoint_tnet.pth (resume with --resume) and, when validation improves,
results/best_tnet.pth. Ctrl-C saves a checkpoint before it stops. A folder that holds another run's
checkpoints is never written over unless --overwrite is given. With --swa-start the weights of the later
epochs are averaged, and the average is saved as results/swa_tnet.pth when the run ends.

This script parses and calls: the settings are :class:`tnet.config.TrainConfig`'s fields (a recipe in
configs/ sets their defaults with --config), the run is :func:`tnet.training.train`, in named phases.
"""

from __future__ import annotations

import argparse
import sys

from core.cli import OneLineParser, guarded
from tnet.config import add_arguments, load_recipe, problems


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, metavar="TOML", help="a recipe file whose keys set the flags' defaults "
                   "(e.g. configs/tnet_compact.toml; a key base = \"other.toml\" starts from another recipe); flags on the command line override it")
    add_arguments(p)
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    config_path = _config_flag(argv)
    if config_path:
        p.set_defaults(**load_recipe(config_path, p))
    args = p.parse_args(argv)
    for problem in problems(args)[:1]:
        p.error(problem)
    if args.device != "auto":
        import torch  # only here: --help and most mistakes answer before PyTorch loads

        try:
            torch.device(args.device)
        except RuntimeError:
            p.error(f"--device: not a torch device: {args.device!r} (use auto, cpu, cuda or cuda:N)")
    return args


def _config_flag(argv) -> str | None:
    """The value of --config in ``argv`` (read before the full parse, since it sets the defaults)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    return pre.parse_known_args(argv)[0].config


def main(argv=None) -> int:
    args = parse_args(argv)  # --help and usage mistakes answer here, before seconds of PyTorch start-up
    from tnet.training import train

    # a user's mistake, a bad list or file, a full disk: one line naming the file (a DataLoader worker's
    # error included), never a traceback unless --debug
    return guarded("train.py", lambda: train(args), (ValueError,), args.debug)


if __name__ == "__main__":
    sys.exit(main())
