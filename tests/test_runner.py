"""idphoto.runner: the TNet's OpenCV export, cached per weights file, against PyTorch; a damaged, stale or
failed export never gives a wrong trimap; a later infer.py run imports no PyTorch.

The export needs the optional ``onnx`` package: without it these tests are skipped (and infer.py runs with
PyTorch, which the last test checks)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO

from idphoto import runner
from idphoto.pipeline import predict_trimap
from idphoto.runner import model_input_size
from idphoto.runner import CvTNet, open_trimap_model
from models import DEFAULT_WEIGHTS, load_tnet
from utils import save_checkpoint

EXAMPLE = REPO / "examples" / "astronaut.jpg"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(runner.CACHE_ENV, str(folder))
    torch.set_num_threads(1)
    return folder


@pytest.fixture(scope="module")
def exported_once(tmp_path_factory):
    """A cache folder holding the export of the shipped weights, made once for the tests that copy it."""
    pytest.importorskip("onnx")
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get(runner.CACHE_ENV)
    os.environ[runner.CACHE_ENV] = str(folder)
    try:
        assert isinstance(open_trimap_model(shipped()), CvTNet)
    finally:
        os.environ[runner.CACHE_ENV] = before
    return folder


def copy_cache(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())


@pytest.fixture
def loads(monkeypatch):
    """Counts the PyTorch loads that idphoto.runner makes."""
    import models

    real, calls = models.load_tnet, []

    def counted(path, device="cpu"):
        calls.append(path)
        return real(path, device)

    monkeypatch.setattr(models, "load_tnet", counted)
    return calls


_COPY = {}


def shipped():
    """The shipped weights, saved again under another name: the same network in other bytes, so that its
    export is not the one shipped in weights/opencv/ and these tests see the cache at work."""
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the shipped weights are not in this checkout")
    if "path" not in _COPY:
        import tempfile
        from pathlib import Path

        path = Path(tempfile.mkdtemp(prefix="tnet-copy-")) / "tnet_copy.pth"
        torch.save(torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True), path)
        assert runner.sha256_of(path) != runner.sha256_of(DEFAULT_WEIGHTS)
        _COPY["path"] = path
    return _COPY["path"]


def generated_photo(h: int = 420, w: int = 320) -> np.ndarray:
    """A BGR photo unlike the export's own check photo: the bundled example, squeezed, with a gradient."""
    photo = cv2.resize(cv2.imread(str(EXAMPLE)), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    photo += np.linspace(-30, 30, w, dtype=np.float32)[None, :, None]
    return np.clip(photo, 0, 255).astype(np.uint8)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


def test_the_export_gives_pytorchs_trimap(cache, loads):
    pytest.importorskip("onnx")
    path = shipped()
    exported = open_trimap_model(path)  # exported here, checked by the runner, and checked again below
    assert isinstance(exported, CvTNet) and len(loads) == 1
    model = load_tnet(path)
    assert exported.input_size == model_input_size(model) and exported.arch == model.arch
    size = exported.input_size
    photo = generated_photo()
    rgb = cv2.cvtColor(cv2.resize(photo, (size, size), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
    from datasets.transforms import image_to_tensor

    with torch.inference_mode():
        ref = model(image_to_tensor(rgb)[None]).numpy()
    got = exported.logits(rgb[None])
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-3
    assert agreement(got.argmax(1), ref.argmax(1)) >= 0.999
    for flip in (False, True):
        a, b = (predict_trimap(m, photo, size, flip=flip) for m in (model, exported))
        assert a.shape == b.shape == photo.shape[:2] and agreement(a, b) >= 0.999
        assert set(np.unique(b)) <= {0, 128, 255} and (b == 255).any() and (b == 0).any()
    entry = json.loads(next(cache.glob("*.json")).read_text())
    assert entry["weights_sha256"] == runner.sha256_of(path) and entry["check"]["class_agreement"] >= 0.999


def test_the_export_in_concurrent_threads_gives_each_photo_its_own_logits(cache, exported_once):
    """The web app runs photos in a pool of threads on one loaded model: a cv2.dnn net shared between them
    would hand one photo's buffers to another."""
    import concurrent.futures

    copy_cache(exported_once, cache)
    exported = open_trimap_model(shipped())
    assert isinstance(exported, CvTNet)
    size = exported.input_size
    photos = [cv2.cvtColor(cv2.resize(generated_photo(420 + 40 * k, 320), (size, size)), cv2.COLOR_BGR2RGB)[None]
              for k in range(2)]
    photos[1] = np.ascontiguousarray(photos[1][:, :, ::-1])  # the mirror image: clearly other logits
    alone = [exported.logits(p) for p in photos]
    assert np.abs(alone[0] - alone[1]).max() > 1.0
    jobs = [k % 2 for k in range(24)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda k: exported.logits(photos[k]), jobs))
    wrong = [n for n, k in enumerate(jobs) if not np.array_equal(got[n], alone[k])]
    assert not wrong, f"{len(wrong)} of {len(jobs)} concurrent runs differ from the single-threaded ones"


def test_later_loads_use_the_cache_and_other_weights_get_their_own(cache, loads, tmp_path, exported_once):
    path = shipped()
    copy_cache(exported_once, cache)
    first = open_trimap_model(path)
    again = open_trimap_model(path)
    assert isinstance(first, CvTNet) and isinstance(again, CvTNet) and not loads  # no PyTorch load at all
    # a retrained file in the same place: another key, its own export that follows the new weights
    model = load_tnet(path)
    with torch.no_grad():
        model.net.final.bias.copy_(torch.tensor([0.0, 0.0, 30.0]))  # everything foreground
    retrained = tmp_path / DEFAULT_WEIGHTS.name
    save_checkpoint({"arch": model.arch, "model": model.state_dict(), "meta": model.meta}, retrained)
    new = open_trimap_model(retrained)
    assert isinstance(new, CvTNet) and len(loads) == 1 and len(list(cache.glob("*.onnx"))) == 2
    size = new.input_size
    rgb = np.zeros((1, size, size, 3), np.uint8)
    assert (new.logits(rgb).argmax(1) == 2).all() and not (first.logits(rgb).argmax(1) == 2).all()


def test_a_damaged_export_is_made_again(cache, loads, exported_once):
    path = shipped()
    copy_cache(exported_once, cache)
    good = open_trimap_model(path)
    onnx_file = next(cache.glob("*.onnx"))
    json_file = onnx_file.with_suffix(".json")
    rgb = generated_photo(good.input_size, good.input_size)[None]
    for damage in ("onnx bytes", "onnx missing", "json garbage"):
        if damage == "onnx bytes":
            data = bytearray(onnx_file.read_bytes())
            data[len(data) // 2] ^= 0x40  # one bit in the middle of the weights: the file still parses
            onnx_file.write_bytes(bytes(data))
        elif damage == "onnx missing":
            onnx_file.unlink()
        else:
            json_file.write_text("{not json")
        remade = open_trimap_model(path)
        assert isinstance(remade, CvTNet), damage
        assert json.loads(json_file.read_text())["onnx_sha256"] == runner.sha256_of(onnx_file.read_bytes())
        assert np.array_equal(remade.logits(rgb), good.logits(rgb)), damage
    assert len(loads) == 3  # each damage detected, loaded with PyTorch and exported again


def test_a_failed_export_is_remembered_and_pytorch_runs(cache, loads, monkeypatch):
    pytest.importorskip("onnx")
    import models.onnx_model

    attempts = []

    def broken(model, size):
        attempts.append(size)
        raise RuntimeError("exporter says no")

    monkeypatch.setattr(models.onnx_model, "export_for_opencv", broken)
    path = shipped()
    for _ in range(2):
        model = open_trimap_model(path)
        assert isinstance(model, torch.nn.Module) and not isinstance(model, CvTNet)
    assert len(attempts) == 1 and len(loads) == 2
    entry = json.loads(next(cache.glob("*.json")).read_text())
    assert "exporter says no" in entry["failed"] and not list(cache.glob("*.onnx"))


def test_an_export_that_disagrees_with_pytorch_is_not_used(cache, loads, monkeypatch):
    pytest.importorskip("onnx")
    monkeypatch.setattr(runner, "check_export",
                        lambda model, exported, size: {"max_abs_logit_diff": 0.5, "class_agreement": 0.98, "pixels": 1})
    model = open_trimap_model(shipped())
    assert not isinstance(model, CvTNet) and "disagrees" in json.loads(next(cache.glob("*.json")).read_text())["failed"]


def test_without_onnx_or_with_the_cache_off_pytorch_runs(cache, loads, monkeypatch):
    path = shipped()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    assert not isinstance(open_trimap_model(path), CvTNet) and not cache.exists()
    monkeypatch.delitem(sys.modules, "onnx")
    monkeypatch.setenv(runner.CACHE_ENV, "off")
    assert not isinstance(open_trimap_model(path), CvTNet) and not cache.exists()
    blocked = cache.parent / "a_file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(runner.CACHE_ENV, str(blocked / "cache"))  # can't be made: no export, for nothing
    assert not isinstance(open_trimap_model(path), CvTNet) and blocked.read_text() == "not a folder"
    with pytest.raises(ValueError, match="CPU only"):
        CvTNet.to(object.__new__(CvTNet), "cuda")


def test_another_input_size_runs_pytorch(cache, loads, exported_once):
    """The export is fixed at the weights' own input size; --input-size N (another) loads with PyTorch."""
    copy_cache(exported_once, cache)
    size = json.loads(next(cache.glob("*.json")).read_text())["input_size"]
    assert isinstance(open_trimap_model(shipped(), input_size=size), CvTNet) and not loads
    model = open_trimap_model(shipped(), input_size=size + 64)
    assert not isinstance(model, CvTNet) and len(loads) == 1 and len(list(cache.glob("*.onnx"))) == 1


def test_a_later_infer_run_imports_no_torch_and_writes_the_same_files(tmp_path, capsys):
    """infer.py in two fresh processes with a new cache: the first exports, the second runs without PyTorch;
    both write the trimap and alpha of a run with PyTorch only (here, without the cache)."""
    pytest.importorskip("onnx")
    shipped()
    import infer
    from core.runtime import gpu_device_nodes

    photo = tmp_path / "portrait.jpg"
    cv2.imwrite(str(photo), cv2.resize(cv2.imread(str(EXAMPLE)), (240, 240), interpolation=cv2.INTER_AREA))
    args = ["--image", str(photo), "--spec", "none", "--threads", "1", "--checkpoint", str(shipped()),
            *(["--device", "cpu"] if gpu_device_nodes() else [])]
    assert infer.main([*args, "--out-dir", str(tmp_path / "torch")]) == 0  # the tests' default: no cache
    capsys.readouterr()
    probe = ("import sys, infer\n"
             "rc = infer.main(sys.argv[1:])\n"
             "print('TORCH', 'torch' in sys.modules, 'RC', rc)\n")
    env = {**os.environ, runner.CACHE_ENV: str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    outs = {}
    for run in ("first", "later"):
        proc = subprocess.run([sys.executable, "-c", probe, *args, "--out-dir", str(tmp_path / run)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert "RC 0" in proc.stdout, proc.stderr
        outs[run] = proc.stdout
    assert "TORCH True" in outs["first"] and "TORCH False" in outs["later"]
    for name in ("trimap", "alpha"):
        ref = cv2.imread(str(tmp_path / "torch" / f"portrait_{name}.png"), cv2.IMREAD_GRAYSCALE).astype(int)
        for run in ("first", "later"):
            got = cv2.imread(str(tmp_path / run / f"portrait_{name}.png"), cv2.IMREAD_GRAYSCALE).astype(int)
            assert agreement(got, ref) >= 0.999 and np.abs(got - ref).mean() < 0.05, (name, run)


def test_the_shipped_export_is_the_shipped_weights_and_needs_no_pytorch(tmp_path):
    """weights/opencv/ holds the export of weights/tnet_unet_mobilenetv3.pth (keyed by its SHA-256): it gives
    PyTorch's logits and trimap, and infer.py runs on it with PyTorch made unimportable and no cache."""
    digest = runner.sha256_of(DEFAULT_WEIGHTS)
    assert (runner.SHIPPED / f"{digest}.onnx").is_file(), "re-export: see weights/MODEL_CARD.md"
    entry = json.loads((runner.SHIPPED / f"{digest}.json").read_text())
    assert entry["weights_sha256"] == digest and entry["check"]["max_abs_logit_diff"] <= runner.MAX_LOGIT_DIFF
    exported = runner._load_export(runner.SHIPPED, digest, None, read_only=True)
    assert isinstance(exported, CvTNet)
    stats = runner.check_export(load_tnet(DEFAULT_WEIGHTS, "cpu").eval(), exported, entry["input_size"])
    assert stats["max_abs_logit_diff"] <= runner.MAX_LOGIT_DIFF and stats["class_agreement"] >= runner.MIN_CLASS_AGREEMENT
    block = tmp_path / "block"                    # a torch that can't be imported, first on the path
    (block / "torch").mkdir(parents=True)
    (block / "torch" / "__init__.py").write_text("raise ImportError('torch is not installed here')\n")
    env = {**os.environ, runner.CACHE_ENV: "off", "PYTHONPATH": f"{block}{os.pathsep}{REPO}", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(REPO / "infer.py"), "--image", str(EXAMPLE), "--out-dir", str(tmp_path / "o"),
                          "--threads", "1", "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "o" / "astronaut_idphoto.jpg").is_file()
