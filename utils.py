"""The helpers of the earlier single ``utils`` module, now split by concern in :mod:`core`; re-exported here
so that existing imports keep working:

* trimaps (NumPy/OpenCV only) — :mod:`core.trimaps`;
* file I/O: the atomic writer and the image reader — :mod:`core.fileio`;
* metrics — :mod:`core.metrics`;
* checkpoints — :mod:`core.checkpoints`;
* the serial pool — :mod:`core.runtime`.

None of them imports PyTorch at import time.
"""
from core.checkpoints import load_checkpoint, save_checkpoint  # noqa: F401
from core.fileio import atomic_path, atomic_write_bytes, read_image, write_image  # noqa: F401
from core.metrics import AverageMeter, ConfusionMatrix  # noqa: F401
from core.runtime import SerialPool  # noqa: F401
from core.trimaps import TRIMAP_VALUES, erode_dilate, make_trimap, trimap_to_classes, trimap_to_image  # noqa: F401
