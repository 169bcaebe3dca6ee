"""Where and how the work runs: the device, threads and seeds, distributed set-up, mixed precision, the
optimiser step, and worker pools. Shared by train.py, infer.py, evaluate.py and the benchmarks.

PyTorch is imported inside the functions, so importing this module costs nothing (``--help`` stays instant).
"""
from __future__ import annotations

import os
import random
import sys
from contextlib import nullcontext

from .errors import TrainError, UserError


class DeviceUnavailable(UserError, RuntimeError):
    """A well-formed --device that this machine does not have (exit 1, like any other unmet requirement)."""


# ---------------------------------------------------------------------------------------- the device
def pick_device(name: str, local_rank: int | None = None) -> str:
    """The device a ``--device`` value names: ``auto`` → ``cuda`` when available, else ``cpu``; under DDP
    (``local_rank`` given) a CUDA device becomes this process's own GPU, ``cuda:<local_rank>``.

    A name torch does not parse is a ValueError (a usage mistake, exit 2); a CUDA device this machine
    lacks is :class:`DeviceUnavailable` (exit 1)."""
    if name == "cpu" or (name == "auto" and not gpu_device_nodes()):
        return "cpu"  # known without importing torch (a second or two)
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: not a torch device: {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"--device {name}: no CUDA device is available here (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        if local_rank is not None:
            return f"cuda:{local_rank}"
    return name


def gpu_device_nodes() -> bool:
    """False when this is Linux without the device files of an NVIDIA (``/dev/nvidia0``…), WSL (``/dev/dxg``)
    or ROCm (``/dev/kfd``) GPU, so that PyTorch can't see a CUDA device; True when there may be one."""
    if not sys.platform.startswith("linux"):
        return True
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg") or os.path.exists("/dev/kfd"))


def set_threads(threads: int) -> None:
    """PyTorch's CPU threads (0: leave its default). On a busy shared machine 1 is often much faster:
    two competing threads per core run many times slower."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """The same seed for Python's, NumPy's and PyTorch's random numbers."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: NumPy's global RNG is not reseeded per worker by PyTorch; derive it
    from torch's per-worker seed."""
    import numpy as np
    import torch

    np.random.seed(torch.initial_seed() % 2**32)


# ------------------------------------------------------------------------------------------ distributed
def launched_by_torchrun() -> bool:
    """torchrun (or another launcher using the env:// rendezvous) set this process's rank and world."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def setup_distributed(device: str) -> tuple[int, int, int | None]:
    """(rank, world size, local rank or None); initialises the process group when started by torchrun —
    NCCL for GPUs, gloo when the run is on the CPU (``--device cpu``, or no CUDA). A single process
    under torchrun is distributed too, so that DDP and NCCL run (and can be checked) on one GPU."""
    if not launched_by_torchrun():
        return 0, 1, None
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend)
    return dist.get_rank(), int(os.environ["WORLD_SIZE"]), local


def is_distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def teardown_distributed() -> None:
    if is_distributed():
        import torch.distributed as dist

        dist.destroy_process_group()


def all_reduce_sum(values: list[float], device) -> list[float]:
    """The sums of ``values`` over all processes (the values themselves in a single process)."""
    if not is_distributed():
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def use_sync_bn(flag: bool | None, distributed: bool, device) -> bool:
    """Whether to convert BatchNorm to SyncBatchNorm; raises TrainError for --sync-bn on the CPU."""
    if flag and device.type != "cuda":
        raise TrainError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm synchronises GPU batches only "
                         "(drop --sync-bn, or train on GPUs)")
    return distributed and (flag if flag is not None else device.type == "cuda")


def parallelize(model, device, distributed: bool, world: int, sync_bn: bool):
    """(model, how it runs): wrapped in DistributedDataParallel under torchrun, in DataParallel on a machine
    with several GPUs when no single one was asked for, else as it is."""
    import torch
    import torch.nn as nn

    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        mode = f"DistributedDataParallel over {world} process{'es' if world > 1 else ''}" + (" with SyncBatchNorm" if sync_bn else "")
    elif device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        model = nn.DataParallel(model)
        mode = f"DataParallel over {torch.cuda.device_count()} GPUs"
    else:
        mode = str(device)
    return model, mode


def unwrap(model):
    """The bare model inside DataParallel / DistributedDataParallel (or the model itself)."""
    import torch.nn as nn

    return model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model


# ------------------------------------------------------------------------------------ mixed precision
def autocast(device, enabled: bool):
    """Mixed precision for the forward pass: float16 on CUDA, bfloat16 on the CPU (which has no float16
    kernels worth using); a no-op when not ``enabled``."""
    if not enabled:
        return nullcontext()
    import torch

    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def grad_scaler(device, amp: bool):
    """The loss scaler float16 needs on CUDA, or None (bfloat16 has float32's range and needs none)."""
    if not (amp and device.type == "cuda"):
        return None
    import torch

    return torch.amp.GradScaler("cuda")


def optimizer_step(loss, optimizer, scaler) -> None:
    """Backward and step, through the AMP GradScaler when there is one (it skips steps with inf/NaN grads)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


# ------------------------------------------------------------------------------------------ worker pools
class SerialPool:
    """``multiprocessing.Pool`` stand-in for one worker: the same ``imap_unordered`` in this process (easier to
    debug, no process start-up)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap_unordered(fn, jobs, chunksize=1):
        return map(fn, jobs)
