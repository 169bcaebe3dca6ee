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
