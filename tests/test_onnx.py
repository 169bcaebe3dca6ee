"""ONNX export (python -m models.export CKPT out.onnx) and .onnx models in infer.py, through onnxruntime.

onnx, onnxscript and onnxruntime are optional: without them these tests are skipped."""
from __future__ import annotations

import contextlib
import io
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, SHARED, synthetic_portrait

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("onnx")

from models import WeightsError, load_tnet  # noqa: E402
from models.export import main as export_main  # noqa: E402
from models.onnx_model import OnnxTNet  # noqa: E402

SHIPPED = REPO / "weights" / "tnet_unet_mobilenetv3.pth"
EXAMPLE = REPO / "examples" / "astronaut.jpg"


def real_photos(n: int = 4) -> list:
    """The bundled example, plus the first PFCN portraits when ../shared is beside the checkout."""
    photos = [EXAMPLE]
    pfcn = SHARED / "data" / "pfcn_portrait_seg" / "images"
    if pfcn.is_dir():
        photos += sorted(pfcn.glob("*.jpg"))[:n]
    return photos


SIZE = load_tnet(SHIPPED).meta.get("input_size", 400)  # the size the shipped weights were trained for, which the export fixes


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory):
    """The shipped compact model exported at its own input size, checked by the exporter on real photos."""
    out = tmp_path_factory.mktemp("onnx") / "tnet.onnx"
    torch.set_num_threads(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = export_main([str(SHIPPED), str(out), "--check-images", *map(str, real_photos())])
    assert rc == 0 and "argmax identical" in printed.getvalue()
    return out


def preprocess(paths, size: int) -> torch.Tensor:
    from datasets.transforms import image_to_tensor

    return torch.stack([image_to_tensor(cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (size, size), interpolation=cv2.INTER_CUBIC),
                                                     cv2.COLOR_BGR2RGB)) for p in paths])


def test_export_matches_pytorch_on_real_photos_with_a_dynamic_batch(shipped_onnx):
    model, onnx = load_tnet(SHIPPED), load_tnet(shipped_onnx)
    assert isinstance(onnx, OnnxTNet) and onnx.input_size == SIZE
    assert onnx.arch == model.arch  # the architecture travels in the file's metadata
    photos = real_photos()
    for batch in (preprocess(photos[:1], SIZE), preprocess(photos, SIZE)):  # batch 1 and several
        with torch.inference_mode():
            ref = model(batch)
        got = onnx(batch)
        assert got.shape == ref.shape
        assert float((got - ref).abs().max()) <= 1e-3
        assert torch.equal(got.argmax(1), ref.argmax(1))


def test_the_pipeline_gives_the_same_trimap_and_alpha_through_onnx(shipped_onnx):
    from idphoto import Pipeline, load_image

    image = load_image(EXAMPLE)
    a = Pipeline(load_tnet(SHIPPED)).run(image)
    b = Pipeline(load_tnet(shipped_onnx)).run(image)
    assert np.array_equal(a.trimap, b.trimap)
    assert float(np.abs(a.alpha - b.alpha).max()) < 1e-3


def test_infer_runs_an_onnx_checkpoint_and_refuses_another_input_size(shipped_onnx, tmp_path, capsys):
    import infer

    assert infer.main(["--image", str(EXAMPLE), "--checkpoint", str(shipped_onnx), "--out-dir", str(tmp_path),
                       "--spec", "none", "--quiet"]) == 0
    onnx_trimap = cv2.imread(str(tmp_path / "astronaut_trimap.png"), cv2.IMREAD_GRAYSCALE)
    assert infer.main(["--image", str(EXAMPLE), "--out-dir", str(tmp_path / "pt"), "--spec", "none", "--quiet"]) == 0
    assert np.array_equal(onnx_trimap, cv2.imread(str(tmp_path / "pt" / "astronaut_trimap.png"), cv2.IMREAD_GRAYSCALE))
    capsys.readouterr()
    assert infer.main(["--image", str(EXAMPLE), "--checkpoint", str(shipped_onnx), "--out-dir", str(tmp_path / "x"),
                       "--input-size", str(SIZE + 64)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"takes {SIZE}×{SIZE} inputs only" in err and f"--input-size {SIZE}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_an_export_that_disagrees_with_pytorch_is_not_kept(checkpoint, tmp_path, capsys):
    photo, _ = synthetic_portrait(0)
    cv2.imwrite(str(tmp_path / "p.jpg"), photo)
    out = tmp_path / "m.onnx"
    # float32 arithmetic differs by ~1e-6 between the two runtimes: a tolerance of 0 must refuse it
    assert export_main([str(checkpoint), str(out), "--size", "64", "--check-images", str(tmp_path / "p.jpg"),
                        "--tolerance", "0"]) == 1
    assert "disagrees with PyTorch" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".m.onnx*"))


def test_onnx_user_mistakes(tmp_path, monkeypatch):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(WeightsError, match="not a loadable ONNX model"):
        load_tnet(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_tnet(tmp_path / "missing.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(WeightsError, match="pip install"):
        load_tnet(bad)
    with pytest.raises(SystemExit) as exc:
        export_main([str(SHIPPED), str(tmp_path / "x.onnx"), "--size", "100"])
    assert exc.value.code == 2
