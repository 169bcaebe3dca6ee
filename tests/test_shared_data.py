"""The real AISegment layout (20 PFCN portraits laid out like Matting_Human_Half): prepare, then train.

Skipped when ../shared is not beside the checkout.
"""
import json

import cv2
import numpy as np

import prepare_aifenge
import train
from conftest import shared_path
from utils import load_checkpoint


def test_prepare_and_train_two_steps_on_real_aisegment_layout(tmp_path):
    src = shared_path("data", "pfcn_aisegment_layout_sample")
    lists = tmp_path / "lists"
    assert prepare_aifenge.main(["--src", str(src), "--out", str(tmp_path / "out"), "--name", "real",
                                 "--lists-dir", str(lists), "--workers", "2"]) == 0
    images = json.loads((lists / "real_img.json").read_text())
    assert len(images) == 20  # one shoot group: all in training, the validation lists are empty
    assert json.loads((lists / "real_val_img.json").read_text()) == []
    trimap = cv2.imread(str(lists / json.loads((lists / "real_trimap.json").read_text())[0]), cv2.IMREAD_UNCHANGED)
    assert trimap.shape == (800, 600) and set(np.unique(trimap)) == {0, 128, 255}
    assert (lists / images[0]).read_bytes()[:2] == b"\xff\xd8"  # still the original JPEG

    rc = train.main(["--data-dir", str(lists), "--dataname", "real", "--backbone", "resnet50", "--pretrained", "none",
                     "--patch", "160", "--batch-size", "2", "--workers", "2", "--device", "cpu", "--max-steps", "2",
                     "--out", str(tmp_path / "results"), "--logdir", str(tmp_path / "runs"), "--log-images", "2"])
    assert rc == 0
    ckpt = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert ckpt["global_step"] == 2 and ckpt["arch"]["backbone"] == "resnet50"
