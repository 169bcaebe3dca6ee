"""Shared fixtures: small synthetic portrait data made on the fly, and the optional ../shared data."""
from __future__ import annotations

import os
from pathlib import Path

# Under pytest-xdist (-n N) each worker is one process per core: one thread each, else N workers each start a
# thread per core and fight over them. Set before NumPy's BLAS, OpenCV or PyTorch are first imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.ndimage  # noqa: E402
import torch  # noqa: E402

import models  # noqa: E402

from core.trimaps import erode_dilate  # noqa: E402
from idphoto.face import FaceBox  # noqa: E402
from idphoto.landmarks import Landmarks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def no_export_cache():
    """infer.py runs the TNet with PyTorch in the tests, as without idphoto.runner's cache, unless a test sets
    IDPHOTO_CACHE_DIR itself: a cached export would outlive a test's stand-in model, and the user's cache is
    none of the tests' business."""
    before = os.environ.get("IDPHOTO_CACHE_DIR")
    os.environ["IDPHOTO_CACHE_DIR"] = "off"
    yield
    if before is None:
        os.environ.pop("IDPHOTO_CACHE_DIR", None)
    else:
        os.environ["IDPHOTO_CACHE_DIR"] = before


def synthetic_portrait(seed: int, w: int = 96, h: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A photo (BGR) and a soft alpha (uint8) of a 'person': a head ellipse on a body, on textured background."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
    bg = cv2.GaussianBlur(bg, (7, 7), 0)
    mask = np.zeros((h, w), np.uint8)
    cx = w // 2 + int(rng.integers(-w // 10, w // 10))
    cv2.ellipse(mask, (cx, h // 3), (w // 6, h // 7), 0, 0, 360, 255, -1)
    cv2.ellipse(mask, (cx, h), (w // 3, h // 2), 0, 180, 360, 255, -1)
    alpha = cv2.GaussianBlur(mask, (9, 9), 3)  # soft edges, as a real matte has
    person = np.empty_like(bg)
    person[:] = (40, 60, 200)
    person = cv2.add(person, rng.integers(0, 40, (h, w, 3), dtype=np.uint8))
    a = alpha[..., None] / 255.0
    photo = (person * a + bg * (1 - a)).round().astype(np.uint8)
    return photo, alpha


def pairs_folder(root: Path, n: int = 0, name: str = "{i}", mask=None) -> Path:
    """A 'pairs' layout (``images/`` + ``masks/``) of ``n`` synthetic portraits named ``name.format(i=i)``; each
    mask is ``mask(alpha)`` (the soft alpha itself by default). Returns ``root``."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        photo, alpha = synthetic_portrait(i)
        cv2.imwrite(str(root / "images" / f"{name.format(i=i)}.jpg"), photo)
        cv2.imwrite(str(root / "masks" / f"{name.format(i=i)}.png"), alpha if mask is None else mask(alpha))
    return root


def make_aisegment_tree(root: Path, groups=(("1803151818", 5), ("1803201916", 3))) -> dict:
    """Raw AISegment layout with soft RGBA mattes, plus one corrupt photo, one photo without matte and
    one matte without alpha channel. Returns the expected counts."""
    seed = 0
    for group, n in groups:
        clip = root / "clip_img" / group / "clip_00000000"
        matting = root / "matting" / group / "matting_00000000"
        clip.mkdir(parents=True)
        matting.mkdir(parents=True)
        for i in range(n):
            name = f"{group}-{i:08d}"
            photo, alpha = synthetic_portrait(seed)
            seed += 1
            cv2.imwrite(str(clip / f"{name}.jpg"), photo)
            cv2.imwrite(str(matting / f"{name}.png"), np.dstack([photo, alpha]))
    g = groups[0][0]
    clip = root / "clip_img" / g / "clip_00000000"
    matting = root / "matting" / g / "matting_00000000"
    (clip / f"{g}-corrupt.jpg").write_bytes(b"this is not a jpeg")
    cv2.imwrite(str(matting / f"{g}-corrupt.png"), np.zeros((128, 96, 4), np.uint8))
    photo, _ = synthetic_portrait(99)
    cv2.imwrite(str(clip / f"{g}-nomatte.jpg"), photo)
    cv2.imwrite(str(clip / f"{g}-noalpha.jpg"), photo)
    cv2.imwrite(str(matting / f"{g}-noalpha.png"), photo)  # 3 channels: no alpha
    good = sum(n for _, n in groups)
    return {"good": good, "skipped": 3}


@pytest.fixture
def raw_tree(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "raw"
    return root, make_aisegment_tree(root)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A converted synthetic set (train + val lists named 'synth') — shared by the training tests."""
    import prepare_aifenge

    base = tmp_path_factory.mktemp("prepared")
    raw = base / "raw"
    make_aisegment_tree(raw, groups=(("g1", 8), ("g2", 8), ("g3", 8), ("g4", 8)))
    rc = prepare_aifenge.main(["--src", str(raw), "--out", str(base / "out"), "--name", "synth",
                               "--lists-dir", str(base / "lists"), "--val-fraction", "0.25", "--workers", "1"])
    assert rc == 0
    return base / "lists"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when the shared data is not beside the checkout."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared is only beside the project's own checkouts)")
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A random-init compact TNet saved like train.py does (its trimap is meaningless; sizes and sets are not)."""
    import torch

    from models import TNet
    from utils import save_checkpoint

    torch.manual_seed(0)
    model = TNet("mobilenetv3")
    path = tmp_path_factory.mktemp("ckpt") / "tnet.pth"
    save_checkpoint({"arch": model.arch, "model": model.state_dict()}, path)
    return path


# ---------------------------------------------------------------------- helpers shared by several test modules
ASTRONAUT = REPO / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def one_torch_thread():
    """The CPU is shared (CI, training jobs): one thread avoids OpenMP oversubscription; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class KnownTNet(torch.nn.Module):
    """Stands in for a trained TNet: its logits make a fixed 'person' (head + shoulders, in relative coordinates
    chosen to hold the astronaut's face) the foreground, or — ``person=False`` — everything background."""

    def __init__(self, person: bool = True):
        super().__init__()
        self.person = person
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # so .to(device) works

    def forward(self, x):
        n, _, h, w = x.shape
        classes = torch.zeros(n, h, w, dtype=torch.long)
        if self.person:
            classes[:] = torch.from_numpy(person_mask(h, w) // 255).long() * 2
        return torch.nn.functional.one_hot(classes, 3).permute(0, 3, 1, 2).float() * 5.0


def person_mask(h: int, w: int) -> np.ndarray:
    """0/255 mask: head ellipse about the astronaut's face, body ellipse rising from the bottom edge."""
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (round(0.435 * w), round(0.21 * h)), (round(0.13 * w), round(0.16 * h)), 0, 0, 360, 255, -1)
    cv2.ellipse(mask, (round(0.45 * w), h), (round(0.4 * w), round(0.66 * h)), 0, 180, 360, 255, -1)  # joins the head
    return mask


def use_known_tnet(monkeypatch, person: bool = True):
    """infer.py loads (and checks) the checkpoint as usual, but segments with :class:`KnownTNet`."""
    real = models.load_tnet

    def load(path, device="cpu"):
        real(path, device)
        return KnownTNet(person)

    monkeypatch.setattr(models, "load_tnet", load)


def synthetic_face(crown=100.0, eye=220.0, chin=330.0, cx=300.0, width=170.0) -> FaceBox:
    marks = Landmarks((cx - 45, eye), (cx + 45, eye), (cx, eye + 40), (cx - 30, eye + 70), (cx + 30, eye + 70),
                      (cx, chin), "mesh", width)
    return FaceBox(cx - 90, eye - 40, 180, chin - eye + 40, marks, 1.0, "landmarks")


def head_and_body(h=800, w=600, head_r=150):
    """Alpha (float) of a close-up: a head disk of radius ``head_r`` on a wide body."""
    alpha = np.zeros((h, w), np.float32)
    cv2.circle(alpha, (w // 2, 300), head_r, 1.0, -1)
    cv2.rectangle(alpha, (w // 2 - head_r // 2, 300), (w // 2 + head_r // 2, h - 250), 1.0, -1)   # the neck
    cv2.ellipse(alpha, (w // 2, h), (w // 2 - 20, 300), 0, 180, 360, 1.0, -1)
    return alpha


# a valid spec entry of the user's own (a --spec-file): 30×40 mm at 300 DPI
USER_SPEC = {"id": "my-card", "unit": "mm", "size": [30, 40], "dpi": 300, "head_height": [25, 30],
             "background": ["#FFFFFF"], "source": "my club's rules"}


def disk_scene(h=120, w=100, fg=(40, 40, 220), bg=(60, 200, 60)):
    """A soft-edged disk (a 'person') of colour fg on bg: (image BGR uint8, true alpha float, trimap)."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h * 0.55, xx - w / 2)
    alpha = np.clip((w * 0.3 - r) / 3 + 0.5, 0, 1).astype(np.float32)  # ~3 px soft edge
    image = (alpha[..., None] * np.array(fg) + (1 - alpha[..., None]) * np.array(bg)).round().astype(np.uint8)
    trimap = erode_dilate(np.where(alpha > 0.5, 255, 0).astype(np.uint8), 10)
    return image, alpha, trimap


def class_logits(classes: torch.Tensor):
    """A spy 'TNet' whose logits make ``classes`` (H×W of 0/1/2, resized to its input) win the argmax."""
    def model(x):
        c = torch.nn.functional.interpolate(classes[None, None].float(), size=x.shape[-2:], mode="nearest")[0, 0].long()
        return torch.nn.functional.one_hot(c, 3).permute(2, 0, 1)[None].float() * 5.0
    return model


def reference_gradient_error(pred, gt, sigma=1.4):
    """The widely used Python port of the DIM MATLAB code (2-D kernel, scipy convolve, 'nearest' borders)."""
    eps = 1e-2
    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * eps))))
    x = np.arange(-half, half + 1)
    gauss = np.exp(-x**2 / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    hx = np.outer(gauss, -x * gauss / sigma**2)
    hx /= np.sqrt((np.abs(hx) ** 2).sum())

    def mag(a):
        gx = scipy.ndimage.convolve(a, hx, mode="nearest")
        gy = scipy.ndimage.convolve(a, hx.T, mode="nearest")
        return np.sqrt(gx**2 + gy**2)

    return ((mag(pred) - mag(gt)) ** 2).sum() / 1000


def args_for(prepared, tmp_path, *extra):
    return ["--data-dir", str(prepared), "--dataname", "synth", "--backbone", "mobilenetv3", "--pretrained", "none",
            "--patch", "64", "--batch-size", "4", "--workers", "0", "--device", "cpu", "--lr", "2e-3", "--cosine",
            "--out", str(tmp_path / "results"), "--logdir", str(tmp_path / "runs"), "--run-name", "t",
            "--no-vflip", "--log-images", "2", *extra]
