"""The TNet for inference, without PyTorch once it has run once: its ONNX export, cached per weights file
and run by OpenCV's dnn module.

Importing PyTorch and torchvision costs about 2.5 s on a 2-core CPU, against 0.03 s for the network itself.
So the first run on a weights file loads it with PyTorch as before, exports it for OpenCV (about 1 s; it
needs the ``onnx`` package) and checks the export against PyTorch on a generated photo (the largest logit
difference and the agreement of the trimap classes); later runs find the export in the cache and never
import PyTorch.

The cache lives in ``$IDPHOTO_CACHE_DIR`` (``off``: no cache), else ``$XDG_CACHE_HOME/idphoto`` or
``~/.cache/idphoto``: ``<sha256 of the weights file>.onnx`` and ``.json`` (what was checked, and the
SHA-256 of the ``.onnx``). The key is the file's content, so a replaced or retrained weights file gets an
export of its own; an export whose bytes no longer match their hash is deleted and made again. An export
that can't be made or fails the check is recorded as such, and that file keeps running with PyTorch.
Only CPU inference uses the cache; ``--device cuda`` and ``.onnx`` checkpoints load as before.

The shipped weights' export is in ``weights/opencv/`` in the same format, looked up before the cache (and
never written to), so the first run of a fresh install needs no PyTorch either.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from tnet.config import PATCH

CACHE_ENV = "IDPHOTO_CACHE_DIR"
CACHE_FORMAT = 1           # bump when the export or its check changes: older entries are then made again
MAX_LOGIT_DIFF = 1e-3      # largest |logit difference| between the export and PyTorch on the check photo
MIN_CLASS_AGREEMENT = 0.999
KEEP_ENTRIES = 4           # exports kept (least recently used go first)
# the shipped weights' export, made and checked like a cache entry, so that a fresh install never needs
# PyTorch to make ID photos (tests/test_runner.py checks it against the weights)
SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "opencv"


def cache_dir() -> Path | None:
    """Where the exports are kept; None when ``$IDPHOTO_CACHE_DIR`` is ``off``."""
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip().lower() == "off":
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "idphoto"


def sha256_of(data_or_path) -> str:
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data_or_path).hexdigest()
    h = hashlib.sha256()
    with open(data_or_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


DEFAULT_INPUT_SIZE = PATCH  # for checkpoints that don't say at what size they were trained: the design's patch


def model_input_size(model) -> int:
    """The square input side a model was trained for (its weights file's ``meta``, or the fixed size of an ONNX
    export), else 400."""
    fixed = getattr(model, "input_size", None)
    return int(fixed or (getattr(model, "meta", None) or {}).get("input_size") or DEFAULT_INPUT_SIZE)


def trimap_logits(model, rgb: np.ndarray, device="cpu") -> np.ndarray:
    """The one way a trimap model is run: N×S×S×3 uint8 RGB photos (at its input size) → N×3×S×S float32
    logits (background, unknown, person). A runtime with a ``logits`` method (:class:`CvTNet`, NumPy in and
    out, no PyTorch) runs itself; a PyTorch module gets the training's normalisation (PyTorch imported only
    then)."""
    if hasattr(model, "logits"):
        return np.asarray(model.logits(rgb), np.float32)
    import torch

    from datasets.transforms import image_to_tensor

    x = torch.stack([image_to_tensor(np.ascontiguousarray(photo)) for photo in rgb]).to(device)
    with torch.inference_mode():
        return model(x).float().cpu().numpy()


class CvTNet:
    """A TNet exported by :func:`models.onnx_model.export_for_opencv`, run by ``cv2.dnn``: :meth:`logits` takes
    N×S×S×3 uint8 RGB photos (resized to the input size) and gives N×3×S×S float32 logits.

    A ``cv2.dnn.Net`` keeps its input and its layers' buffers inside, so two threads running one net at once
    (the web app's workers) would mix their photos: each thread gets a net of its own, read from the same bytes.
    """

    def __init__(self, onnx: bytes, entry: dict, path: Path | None = None):
        self._onnx = bytes(onnx)
        self._local = threading.local()
        self.net  # read once now, so that a bad export fails here and not at the first photo
        self.input_size = int(entry["input_size"])
        self.arch, self.meta, self.path = entry.get("arch", {}), entry.get("meta", {}), path

    @property
    def net(self):
        """This thread's ``cv2.dnn.Net``."""
        net = getattr(self._local, "net", None)
        if net is None:
            import cv2

            net = cv2.dnn.readNetFromONNX(np.frombuffer(self._onnx, np.uint8))
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
            self._local.net = net
        return net

    def logits(self, rgb: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(rgb).transpose(0, 3, 1, 2), np.float32)
        out = []
        net = self.net
        for sample in x:  # exported for a batch of 1
            net.setInput(sample[None])
            out.append(net.forward())
        return np.concatenate(out)

    def eval(self) -> CvTNet:
        return self

    def to(self, device) -> CvTNet:
        if str(device) != "cpu":
            raise ValueError(f"the OpenCV export of the TNet runs on the CPU only, not on {device}")
        return self


def open_trimap_model(path: str | os.PathLike | None = None, device: str = "cpu", threads: int = 0,
                      input_size: int | None = None):
    """The one way to open a TNet for inference, used by infer.py, evaluate.py, the app and the benches, so
    that evaluate.py scores what infer.py runs.

    ``path`` is a train.py checkpoint, an exported weights file or an ``.onnx`` export (None: the shipped
    compact model). On the CPU it is the cached OpenCV export when there is a good one for this file (and
    ``input_size`` is None or its size), else the PyTorch model from :func:`models.load_tnet`, exported into
    the cache on the way when it can be. Whatever runs it is called through :func:`trimap_logits`.
    ``threads`` (0: the library's default) is applied to whichever library runs it. A missing or unreadable
    file is a :class:`models.WeightsError` in one line, naming the file."""
    from models import DEFAULT_WEIGHTS, WeightsError  # light: models.catalog, no PyTorch

    if path is None:
        if not DEFAULT_WEIGHTS.is_file():
            root = Path(__file__).resolve().parent.parent
            shown = DEFAULT_WEIGHTS.relative_to(root) if DEFAULT_WEIGHTS.is_relative_to(root) else DEFAULT_WEIGHTS
            raise WeightsError(f"no model weights: the shipped compact model {shown} is missing; train one with "
                               f"train.py and pass --checkpoint results/best_tnet.pth")
        path = DEFAULT_WEIGHTS
    path = Path(path)
    folder = cache_dir()
    on_cpu = str(device) == "cpu" and path.suffix.lower() != ".onnx" and path.is_file()
    digest = sha256_of(path) if on_cpu else None
    if on_cpu:  # the export shipped beside the weights (checked by the tests), then this machine's cache
        for where, shipped in ((SHIPPED, True), (folder, False)):
            model = _load_export(where, digest, input_size, shipped) if where is not None else None
            if model is not None:
                _opencv_threads(threads)
                return model
    usable = folder is not None and on_cpu
    import torch

    from models import load_tnet  # looked up at call time, so that tests may stand a model in

    if threads:
        torch.set_num_threads(threads)
    model = load_tnet(path, device)
    if usable and _worth_exporting(folder, digest, model, input_size):
        exported = _export(folder, digest, model)
        if exported is not None:
            _opencv_threads(threads)
            return exported
    return model


def _opencv_threads(threads: int) -> None:
    if threads:
        import cv2

        cv2.setNumThreads(threads)


def _entry_paths(folder: Path, digest: str) -> tuple[Path, Path]:
    return folder / f"{digest}.onnx", folder / f"{digest}.json"


def _read_entry(folder: Path, digest: str, read_only: bool = False) -> dict | None:
    try:
        entry = json.loads(_entry_paths(folder, digest)[1].read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        if not read_only:
            _discard(folder, digest)
        return None
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or entry.get("weights_sha256") != digest:
        return None
    return entry


def _load_export(folder: Path, digest: str, input_size: int | None, read_only: bool = False) -> CvTNet | None:
    """The export of the weights ``digest`` in ``folder``, or None. A damaged cache entry is deleted (and made
    again later); a ``read_only`` folder (the shipped one) is never written to."""
    entry = _read_entry(folder, digest, read_only)
    if entry is None or "onnx_sha256" not in entry or input_size not in (None, entry.get("input_size")):
        return None
    onnx_path, json_path = _entry_paths(folder, digest)
    try:
        data = onnx_path.read_bytes()
    except OSError:
        data = b""
    if sha256_of(data) != entry["onnx_sha256"]:  # damaged or half-deleted: never run it
        if not read_only:
            _discard(folder, digest)
        return None
    try:
        model = CvTNet(data, entry, onnx_path)
    except Exception:  # noqa: BLE001 — e.g. an OpenCV that reads it no more: make it again
        if not read_only:
            _discard(folder, digest)
        return None
    if not read_only:
        try:
            os.utime(json_path)  # recently used: kept longest
        except OSError:
            pass
    return model


def _worth_exporting(folder: Path, digest: str, model, input_size: int | None) -> bool:
    """A real TNet at its own input size, the exporter at hand, a cache folder we may write, and no failed
    attempt with these versions."""
    import importlib.util

    import cv2
    import torch

    from models.tnet import TNet

    if not isinstance(model, TNet) or input_size not in (None, model_input_size(model)):
        return False
    try:
        if importlib.util.find_spec("onnx") is None:
            return False
    except ValueError:  # in sys.modules as None: blocked
        return False
    try:  # an export that can't be kept would be made again on every run, for nothing
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    entry = _read_entry(folder, digest)
    return not (entry and "failed" in entry and entry.get("versions") == _versions(torch, cv2))


def _versions(torch, cv2) -> dict:
    return {"torch": torch.__version__, "opencv": cv2.__version__}


def _export(folder: Path, digest: str, model) -> CvTNet | None:
    """Export ``model``, check it against PyTorch, and cache it; None (and the failure recorded) when it
    can't be made or disagrees."""
    import cv2
    import torch

    from models.onnx_model import export_for_opencv
    from core.fileio import atomic_write_bytes

    size = model_input_size(model)
    entry = {"format": CACHE_FORMAT, "weights_sha256": digest, "input_size": size,
             "arch": getattr(model, "arch", {}), "meta": getattr(model, "meta", {}), "versions": _versions(torch, cv2)}
    onnx_path, json_path = _entry_paths(folder, digest)
    try:
        data = export_for_opencv(model, size)
        exported = CvTNet(data, entry, onnx_path)
        check = check_export(model, exported, size)
        if check["max_abs_logit_diff"] > MAX_LOGIT_DIFF or check["class_agreement"] < MIN_CLASS_AGREEMENT:
            raise ValueError(f"disagrees with PyTorch: {check}")
    except Exception as exc:  # noqa: BLE001 — any failure: this file keeps running with PyTorch
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        try:
            atomic_write_bytes(json_path, json.dumps({**entry, "failed": reason}, indent=1, default=str).encode())
        except OSError:
            pass
        return None
    try:  # the .json last: it vouches for the .onnx, whose hash it holds
        atomic_write_bytes(onnx_path, data)
        atomic_write_bytes(json_path, json.dumps({**entry, "check": check, "onnx_sha256": sha256_of(data)},
                                                 indent=1, default=str).encode())
        _prune(folder)
    except OSError:
        pass  # an unwritable cache: this run still uses the export it checked
    return exported


def check_image(size: int) -> np.ndarray:
    """A generated size×size RGB 'portrait' (smooth colours, a head-and-shoulders blob, fine noise) on which
    the export is compared with PyTorch: deterministic, and with the edges a trimap is about."""
    import cv2

    rng = np.random.default_rng(20260)
    image = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    person = np.zeros((size, size), np.uint8)
    cv2.ellipse(person, (size // 2, size // 3), (size // 6, size // 5), 0, 0, 360, 255, -1)
    cv2.ellipse(person, (size // 2, size), (size * 2 // 5, size // 2), 0, 180, 360, 255, -1)
    image[person > 0] = (np.array([200, 150, 120]) * 0.8 + image[person > 0] * 0.2).astype(np.uint8)
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def check_export(model, exported: CvTNet, size: int) -> dict:
    """:func:`core.metrics.logit_agreement` of the PyTorch model and its export, each run the one way a trimap
    model is run (:func:`trimap_logits`), on :func:`check_image` and its mirror image."""
    from core.metrics import logit_agreement

    photos = [check_image(size)]
    photos.append(np.ascontiguousarray(photos[0][:, ::-1]))
    batch = np.stack(photos)
    return logit_agreement(trimap_logits(model, batch), trimap_logits(exported, batch))


def _discard(folder: Path, digest: str) -> None:
    for p in _entry_paths(folder, digest):
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass


def _prune(folder: Path) -> None:
    """Keep the :data:`KEEP_ENTRIES` most recently used exports."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES:]:
        _discard(folder, old.stem)

