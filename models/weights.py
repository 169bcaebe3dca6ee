"""Loading weights: ImageNet initialisation of the backbone, and TNet checkpoints.

Everything here works offline: torchvision's cache (``$TORCH_HOME/hub/checkpoints``) is used when
it holds the file, and a missing download is reported in one line with the way to provide it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision

from core.errors import clip

from .catalog import DEFAULT_WEIGHTS, WeightsError  # noqa: F401 (re-exported)
from .pspnet import BACKBONES
from .tnet import DECODERS, TNet


def _unwrap_state(obj) -> dict:
    """The state dict inside a checkpoint file, whatever wrapper the file uses."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise WeightsError("the file holds no state dict (expected a dict of tensors, or one under 'model'/'state_dict')")


def _torch_load(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes): not a PyTorch checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, truncated files…
        lines = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {clip(lines[0])}" if lines else type(exc).__name__
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint ({detail})") from None


def checkpoint_arch(obj, path: str | os.PathLike) -> dict:
    """The ``arch`` dict of a loaded checkpoint ({} when it has none: a bare state dict, or a checkpoint
    written before the architecture was recorded);
    a WeightsError naming ``path`` when it is something else, or its backbone/decoder is unknown."""
    arch = obj.get("arch") if isinstance(obj, dict) else None
    if arch is None:
        return {}
    if not isinstance(arch, dict):
        raise WeightsError(f"{path}: its 'arch' entry is a {type(arch).__name__}, not a dict such as "
                           "{'backbone': 'mobilenetv3', 'decoder': 'unet'}")
    backbone = arch.get("backbone", "resnet50")
    if backbone not in BACKBONES:
        raise WeightsError(f"{path}: unknown backbone {backbone!r} in the checkpoint")
    decoder = arch.get("decoder", "psp")
    if decoder not in DECODERS:
        raise WeightsError(f"{path}: unknown decoder {decoder!r} in the checkpoint")
    return arch


def tnet_for(obj, path: str | os.PathLike) -> TNet:
    """An untrained TNet of the architecture a loaded checkpoint describes (ResNet-50 PSPNet when it says
    nothing); a WeightsError naming ``path`` when the description is unusable."""
    arch = checkpoint_arch(obj, path)
    try:
        return TNet(backbone=arch.get("backbone", "resnet50"), num_classes=arch.get("num_classes", 3),
                    decoder=arch.get("decoder", "psp"))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: the checkpoint's arch {arch} is unusable ({exc})") from None


def _torchvision_weights(backbone: str):
    enum_name, member = BACKBONES[backbone].weights.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


def imagenet_state_dict(backbone: str) -> dict:
    """torchvision's ImageNet weights for ``backbone``, from the local cache or downloaded once."""
    weights = _torchvision_weights(backbone)
    filename = weights.url.rsplit("/", 1)[-1]
    cache = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        return weights.get_state_dict(progress=True, check_hash=False)
    except Exception as exc:
        raise WeightsError(
            f"ImageNet weights for {backbone} could not be loaded ({type(exc).__name__}); "
            f"copy {filename} (from {weights.url}) to {cache}, or pass --pretrained /path/to/{filename}, "
            f"or --pretrained none to train from scratch on purpose"
        ) from None


def load_backbone_weights(model: TNet, pretrained: str) -> str:
    """Initialise the backbone of ``model``: ``imagenet``, ``none`` or a path to a torchvision-format file.

    Returns a one-line description of what was loaded.
    """
    backbone = model.arch["backbone"]
    if pretrained == "none":
        return f"{backbone}: random initialisation (--pretrained none)"
    if pretrained == "imagenet":
        state, source = imagenet_state_dict(backbone), "ImageNet weights (torchvision)"
    else:
        source = str(pretrained)
        try:
            obj = _torch_load(pretrained)
        except WeightsError as exc:
            raise WeightsError(f"--pretrained: {exc}") from None
        try:
            state = _unwrap_state(obj)
        except WeightsError as exc:
            raise WeightsError(f"--pretrained {source}: {exc}") from None
    if backbone == "mobilenetv3":  # torchvision's MobileNetV3 keeps its trunk under 'features.'
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    feats = model.encoder_features()
    expected = feats.state_dict()
    usable = {k: v for k, v in state.items()
              if k in expected and isinstance(v, torch.Tensor) and v.shape == expected[k].shape}
    missing = [k for k in expected if k not in usable and not k.endswith("num_batches_tracked")]
    if missing:
        raise WeightsError(
            f"{source} does not fit the {backbone} backbone: {len(missing)} tensors missing or of another shape "
            f"(first: {missing[0]})"
        )
    feats.load_state_dict(usable, strict=False)
    return f"{backbone}: {source}"


# TNet.net, which holds the whole network of either design, was called TNet.backbone, then TNet.pspnet (the
# shipped weights keep that layout: a file's bytes, and so its cached export's key, stay as published)
OLD_PREFIXES = ("backbone.", "pspnet.")


def normalize_tnet_keys(state: dict) -> dict:
    """Map the key layouts found in the wild onto TNet's (``net.…``):

    * ``module.`` (a model saved from inside DataParallel or DistributedDataParallel) is dropped;
    * ``backbone.…`` and ``pspnet.…`` (TNet's earlier names for its network: older checkpoints and weights
      files) become ``net.…``;
    * a bare PSPNet's keys (``feats.…``, ``psp.…``) get the ``net.`` prefix, and ``final.0.`` (PSPNet code
      that wraps the 1×1 classifier in a Sequential) becomes ``final.``;
    * the auxiliary image-level ``classifier`` head of such PSPNets is dropped: a trimap has no use for it.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module."):]
        for old in OLD_PREFIXES:
            if key.startswith(old):
                key = "net." + key[len(old):]
        if key.startswith(("classifier.", "net.classifier.")):
            continue
        if not key.startswith("net."):
            key = "net." + key
        key = key.replace("net.final.0.", "net.final.")
        out[key] = value
    return out


def load_tnet_state(model: TNet, state: dict) -> None:
    """Load a TNet/PSPNet state dict of any known layout into ``model`` (strict)."""
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"the state dict holds {len(bad)} entries that are not named tensors (first: {bad[0]!r})")
    state = normalize_tnet_keys(state)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise WeightsError(
            f"the weights do not fit TNet({model.arch['backbone']}): {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} of another shape (first: {first})"
        )
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


def read_tnet(path: str | os.PathLike) -> tuple[TNet, object]:
    """The TNet of a checkpoint or weights file (float32, on the CPU, as constructed) and the file's loaded
    contents; a WeightsError naming ``path`` when the file can't be read or does not fit."""
    obj = _torch_load(path)
    try:
        state = _unwrap_state(obj)
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    model = tnet_for(obj, path)
    try:
        load_tnet_state(model, state)
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    return model, obj


def load_tnet(path: str | os.PathLike, device: str | torch.device = "cpu") -> TNet:
    """A TNet ready for inference (eval mode) from a checkpoint written by train.py or a shipped weights file
    — or, for a ``.onnx`` file, an :class:`models.onnx_model.OnnxTNet` that runs it with onnxruntime.

    The backbone is read from the checkpoint's ``arch`` (ResNet-50, the research design's, when the file
    does not record one).
    """
    if str(path).lower().endswith(".onnx"):  # an ONNX export runs through onnxruntime, called like a TNet
        from .onnx_model import OnnxTNet

        return OnnxTNet(path, device).eval()
    model, obj = read_tnet(path)
    model.meta = file_meta(obj)   # e.g. the input size it was trained for
    return model.to(device).eval()


def file_meta(obj) -> dict:
    """The ``meta`` of a weights file; for a train.py checkpoint, which has none, its training patch as
    ``input_size`` (the recipes train on the whole photo squeezed to the patch, so that is the size to
    infer at); else {}."""
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if isinstance(meta, dict):
        return meta
    args = obj.get("args") if isinstance(obj, dict) else None
    patch = args.get("patch") if isinstance(args, dict) else None
    return {"input_size": patch} if isinstance(patch, int) and patch > 0 else {}
