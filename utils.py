"""Shared helpers: trimaps, image I/O that never leaves half-written files, metrics, checkpoints.

PyTorch is imported only by the functions that need it, so that the data preparation and every
script's ``--help`` stay free of its start-up cost (seconds).
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

TRIMAP_VALUES = np.array([0, 128, 255], dtype=np.uint8)  # class 0 background, 1 unknown, 2 foreground


# ---------------------------------------------------------------------------------------------- trimaps
def erode_dilate(mask: np.ndarray, kernel_size: int = 10) -> np.ndarray:
    """Trimap {0, 128, 255} from a mask or a trimap (SPEC §2), with an elliptical kernel.

    Dilate → every pixel > 5 becomes part of the (possible) person; erode → only pixels that stay
    ≥ 250 are sure foreground; the band between the two is unknown (128).
    Use ``kernel_size=6`` for the "smooth" variant.
    """
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"erode_dilate needs a 2-D uint8 mask, got {mask.dtype} of shape {mask.shape}")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    dilated = cv2.dilate(mask, kernel) > 5
    eroded = cv2.erode(mask, kernel) >= 250
    trimap = np.zeros_like(mask)
    trimap[dilated] = 128
    trimap[eroded] = 255
    return trimap


def make_trimap(alpha: np.ndarray, threshold: int = 50, kernel_size: int = 10) -> np.ndarray:
    """The training trimap of an alpha matte: mask = alpha > threshold, then :func:`erode_dilate`."""
    mask = np.where(alpha > threshold, 255, 0).astype(np.uint8)
    return erode_dilate(mask, kernel_size)


def trimap_to_image(classes) -> np.ndarray:
    """Class map 0/1/2 (numpy or tensor) → trimap image 0/128/255 (uint8). The original lost this scaling."""
    if hasattr(classes, "detach"):  # a torch.Tensor
        classes = classes.detach().cpu().numpy()
    return TRIMAP_VALUES[np.asarray(classes, dtype=np.int64)]


def trimap_to_classes(trimap: np.ndarray) -> np.ndarray:
    """Trimap image 0/128/255 → class map 0/1/2 (uint8); values in between go to the nearest class."""
    return np.digitize(trimap, (64, 192)).astype(np.uint8)


# -------------------------------------------------------------------------------------------- image I/O
def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """cv2.imread that also works with non-ASCII paths; None when the file can't be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, flags)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on failure removed.

    Readers never see a half-written file, and a re-run never trusts one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write here ({exc.strerror or exc})", str(path)) from None
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        # the temporary name means nothing to the user (and a write error often names no file): the target does
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either complete or absent."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_image(path: str | os.PathLike, image: np.ndarray, params: list | None = None) -> None:
    """Encode ``image`` by the extension of ``path`` and write it atomically."""
    ok, buf = cv2.imencode(Path(path).suffix or ".png", image, params or [])
    if not ok:
        raise ValueError(f"OpenCV could not encode an image for {path}")
    atomic_write_bytes(path, buf.tobytes())


# ---------------------------------------------------------------------------------------------- metrics
class AverageMeter:
    """Running average weighted by sample count (so an epoch loss is the true mean, not the last batch)."""

    def __init__(self):
        self.sum, self.count = 0.0, 0

    def update(self, value: float, n: int = 1) -> None:
        self.sum += float(value) * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.sum / max(self.count, 1)


class ConfusionMatrix:
    """Accumulates a num_classes² confusion matrix (rows = truth, columns = prediction)."""

    def __init__(self, num_classes: int = 3):
        import torch

        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred, target) -> None:
        import torch

        pred, target = pred.reshape(-1).to("cpu", torch.int64), target.reshape(-1).to("cpu", torch.int64)
        valid = (target >= 0) & (target < self.num_classes)
        index = target[valid] * self.num_classes + pred[valid]
        self.matrix += torch.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

    def iou(self):
        """Per-class IoU (a tensor); NaN for a class absent from both truth and prediction."""
        import torch

        m = self.matrix.double()
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))

    def mean_iou(self) -> float:
        iou = self.iou()
        return float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(self.matrix.diag().sum() / total) if total else float("nan")

    def summary(self) -> dict:
        iou = self.iou().tolist()
        return {"mIoU": self.mean_iou(), "pixel_acc": self.pixel_accuracy(),
                **{f"IoU_{name}": v for name, v in zip(("bg", "unknown", "fg"), iou)}}


# ------------------------------------------------------------------------------------------ checkpoints
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
