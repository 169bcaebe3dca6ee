"""Helpers shared by the benchmark scripts: the one JSON line, the git commit, synthetic data, a test model.

Every script prints exactly one JSON line on stdout (human-readable notes go to stderr), so results can be
collected with ``python bench/bench_x.py ... >> results.jsonl`` and compared across commits.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PFCN = REPO.parent / "shared" / "data" / "pfcn_portrait_seg"  # the shared real portraits, when present


def git_commit() -> str | None:
    """``git rev-parse --short HEAD`` of the checkout, or None (no git, no commit yet)."""
    try:
        run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() or None if run.returncode == 0 else None


def device_info(device: str = "cpu") -> dict:
    """What ran the benchmark: CPU model and core count, or the CUDA device name."""
    import torch

    info = {"device": device, "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def emit(name: str, params: dict, figures: dict, device: str = "cpu") -> None:
    """Print the benchmark's one JSON line on stdout."""
    record = {"bench": name, "commit": git_commit(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
              **device_info(device), "params": params, "figures": figures}
    print(json.dumps(record, ensure_ascii=False), flush=True)


def note(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def synthetic_portrait(seed: int, w: int = 600, h: int = 800):
    """A photo (BGR uint8) and its soft alpha (uint8): a head and shoulders on a textured background."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.integers(0, 200, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    mask = np.zeros((h, w), np.uint8)
    cx = w // 2 + int(rng.integers(-w // 10, w // 10 + 1))
    cv2.ellipse(mask, (cx, h // 3), (w // 6, h // 7), 0, 0, 360, 255, -1)
    cv2.ellipse(mask, (cx, h), (w // 3, h // 2), 0, 180, 360, 255, -1)
    alpha = cv2.GaussianBlur(mask, (0, 0), max(1.0, w / 200))
    person = np.clip(np.array([40, 60, 200]) + rng.integers(0, 40, (h, w, 3)), 0, 255)
    a = alpha[..., None] / 255.0
    return (person * a + bg * (1 - a)).round().astype(np.uint8), alpha


def write_pairs(root: Path, n: int, w: int = 600, h: int = 800) -> Path:
    """A pairs folder (images/<id>.jpg + masks/<id>.png) of ``n`` synthetic portraits, for prepare_aifenge.py."""
    import cv2

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo, alpha = synthetic_portrait(i, w, h)
        cv2.imwrite(str(root / "images" / f"{i:05d}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "masks" / f"{i:05d}.png"), alpha)
    return root


def random_checkpoint(path: Path, backbone: str = "mobilenetv3") -> Path:
    """An untrained TNet checkpoint (seeded), for timing when no trained weights are at hand.

    Its classifier bias makes every pixel 'person', so infer.py runs end to end (an all-background
    segmentation is refused as "no person found"); its matting stages then have nothing to solve, which
    is why bench_infer.py also times the matting on a ground-truth trimap.
    """
    import torch

    from models import TNet
    from core.checkpoints import save_checkpoint

    torch.manual_seed(0)
    m = TNet(backbone)
    with torch.no_grad():
        m.net.final.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))
    save_checkpoint({"arch": m.arch, "model": m.state_dict()}, path)
    return path
