"""TNet as ONNX: export (``python -m models.export CHECKPOINT out.onnx``) and an onnxruntime-backed model.

The exported graph takes ``image`` (N×3×S×S float32, RGB with ImageNet normalisation, as in training) and
returns ``logits`` (N×3×S×S: background / unknown / foreground). The batch is dynamic; the side S is fixed
at export (400 by default, infer.py's input size): the pyramid pooling's adaptive average pools have
windows that depend on the input size, and an export with a symbolic size bakes in the windows of the
example input, which is wrong at any other size — so the file states its size and refuses others.

onnx, onnxscript (the exporter) and onnxruntime (running and checking) are optional dependencies, needed
for this path only: ``pip install onnx onnxscript onnxruntime``.

:func:`export_for_opencv` writes another flavour, for OpenCV's dnn module (what ``idphoto.runner`` caches
so that later runs of infer.py need no PyTorch): batch 1, uint8-range RGB in (normalised inside the
graph), the adaptive pools written as fixed averaging matrices, and PyTorch's TorchScript exporter,
which needs only the ``onnx`` package and takes about a second.
"""
from __future__ import annotations

import copy
import inspect
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from core.errors import clip
from tnet.config import PATCH

from .catalog import WeightsError

INPUT, OUTPUT = "image", "logits"
DEFAULT_SIZE = PATCH


def _require(module: str, purpose: str):
    try:
        return __import__(module)
    except ImportError:
        raise WeightsError(f"{purpose} needs the optional package {module!r}: pip install onnx onnxscript onnxruntime") from None


def export_onnx(model: torch.nn.Module, dst: str | os.PathLike, size: int = DEFAULT_SIZE, meta: dict | None = None) -> None:
    """Write ``model`` (a TNet in eval mode, float32, on the CPU) to ``dst`` with a dynamic batch and a
    fixed ``size``×``size`` input; ``meta`` (JSON-able) goes into the file's metadata."""
    _require("onnx", "ONNX export")
    _require("onnxscript", "ONNX export")
    from core.fileio import atomic_path

    model = model.float().cpu().eval()
    example = torch.zeros(2, 3, size, size)  # batch 2: a batch of 1 would be specialised to a constant
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracing notes are not the user's business
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes={"x": {0: batch}}, verbose=False)
    props = {"tnet_arch": json.dumps(getattr(model, "arch", {})), "tnet_input_size": str(size),
             "tnet_input": "RGB float32, /255 then ImageNet mean/std, N x 3 x S x S",
             "tnet_output": "logits N x 3 x S x S: background, unknown, foreground"}
    if meta:
        props["tnet_meta"] = json.dumps(meta)
    program.model.metadata_props.update(props)
    with atomic_path(dst) as tmp:
        program.save(tmp, external_data=False)


def onnx_session(path: str | os.PathLike, device: str | torch.device = "cpu", threads: int = 0):
    """An onnxruntime InferenceSession on the CPU, or on CUDA when asked for and onnxruntime-gpu is installed."""
    ort = _require("onnxruntime", "running an .onnx model")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()  # follow --threads, as the PyTorch path does
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            warnings.warn("onnxruntime has no CUDA provider here (pip install onnxruntime-gpu); the .onnx model "
                          "runs on the CPU", RuntimeWarning, stacklevel=2)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        first = clip(str(exc), 160) if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path} is not a loadable ONNX model ({first})") from None


class OnnxTNet(torch.nn.Module):
    """A TNet exported to ONNX, run by onnxruntime; called like the PyTorch TNet (N×3×S×S tensor → logits),
    so the inference pipeline and evaluation use it unchanged. It holds no parameters."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu"):
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path}")
        self.path = path
        self.session = onnx_session(path, device)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(self.session.get_outputs()) != 1:
            raise WeightsError(f"{path} is not a TNet export (expected one N×3×S×S input and one output)")
        self.input_name = inputs[0].name
        h, w = inputs[0].shape[2:]
        self.input_size = h if isinstance(h, int) and h == w else None  # None: any size (not made by our exporter)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.arch = json.loads(meta.get("tnet_arch", "{}")) or {"backbone": "unknown", "decoder": "unknown"}
        self.arch.setdefault("backbone", "unknown")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(f"{self.path.name} was exported for {self.input_size}×{self.input_size} inputs, "
                             f"not {x.shape[-1]}×{x.shape[-2]}: use --input-size {self.input_size}, or export again "
                             f"with --size {x.shape[-1]}")
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(np.asarray(out)).to(x.device)


def compare_with_torch(model: torch.nn.Module, onnx_path: str | os.PathLike, images_bgr: list[np.ndarray],
                       size: int) -> dict:
    """Run the PyTorch model and the ONNX file on the same batch of photos (preprocessed as infer.py does):
    the largest absolute logit difference and the number of pixels whose argmax class differs."""
    import cv2

    from datasets.transforms import image_to_tensor

    batch = torch.stack([image_to_tensor(cv2.cvtColor(cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC),
                                                      cv2.COLOR_BGR2RGB)) for im in images_bgr])
    from core.metrics import logit_agreement

    with torch.inference_mode():
        ref = model.float().cpu().eval()(batch)
    return logit_agreement(ref.numpy(), OnnxTNet(onnx_path)(batch).numpy())


# ------------------------------------------------------------------------------------------ for OpenCV's dnn
class _FixedAdaptiveAvgPool(torch.nn.Module):
    """``AdaptiveAvgPool2d(out)`` for one input size, as a matrix product: OpenCV's ONNX importer reads
    MatMul, not the gathers that the exporters make of a pool whose bins overlap (8 → 3, 8 → 6)."""

    def __init__(self, h: int, w: int, out: tuple[int, int]):
        super().__init__()

        def bins(n: int, m: int) -> torch.Tensor:  # PyTorch's bins: [⌊i·n/m⌋, ⌈(i+1)·n/m⌉)
            p = torch.zeros(m, n)
            for i in range(m):
                a, b = (i * n) // m, -(-(i + 1) * n // m)
                p[i, a:b] = 1.0 / (b - a)
            return p

        self.out = out
        self.register_buffer("matrix", torch.kron(bins(h, out[0]), bins(w, out[1])).t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return (x.reshape(-1, self.matrix.shape[0]) @ self.matrix).reshape(-1, c, *self.out)


class _FromRGB(torch.nn.Module):
    """The TNet with its input normalisation inside: N×3×S×S RGB in 0–255, as infer.py's resized photo."""

    def __init__(self, tnet: torch.nn.Module):
        super().__init__()
        from datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

        self.tnet = tnet
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tnet((x / 255 - self.mean) / self.std)  # the order of datasets.transforms.image_to_tensor


def export_for_opencv(model: torch.nn.Module, size: int) -> bytes:
    """``model`` (a TNet) as an ONNX file for ``cv2.dnn.readNetFromONNX``: input ``rgb`` 1×3×S×S float RGB in
    0–255, output ``logits`` 1×3×S×S, S = ``size``. Raises WeightsError without the ``onnx`` package."""
    _require("onnx", "the OpenCV export")
    model = copy.deepcopy(model).float().cpu().eval()
    example = torch.zeros(1, 3, size, size)
    pools = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.AdaptiveAvgPool2d)}
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, args, out, name=name: shapes.__setitem__(name, args[0].shape[-2:]))
             for name, m in pools.items()]
    with torch.inference_mode():
        model(example)
    for hook in hooks:
        hook.remove()
    for name, pool in pools.items():
        parent, _, child = name.rpartition(".")
        out = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size,) * 2
        out = tuple(shapes[name][i] if o is None else o for i, o in enumerate(out))
        setattr(model.get_submodule(parent), child, _FixedAdaptiveAvgPool(*shapes[name], out))
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracing notes are not the user's business
        torch.onnx.export(_FromRGB(model), (example,), buffer, input_names=["rgb"], output_names=["logits"],
                          opset_version=13, do_constant_folding=True, **legacy)
    return buffer.getvalue()
