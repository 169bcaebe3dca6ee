"""The benchmark scripts run with tiny settings and print exactly one parseable JSON line (no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from conftest import REPO, pairs_folder, synthetic_portrait

COMMON_KEYS = {"bench", "commit", "date", "device", "cpu_count", "torch", "params", "figures"}


def run_bench(script: str, *args: str, cwd=None, timeout: int = 600) -> dict:  # generous: a busy shared CPU is slow
    run = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True,
                         cwd=cwd or REPO, timeout=timeout)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout  # human text goes to stderr
    record = json.loads(lines[0])
    assert set(record) >= COMMON_KEYS
    commit = record["commit"]
    assert commit is None or (isinstance(commit, str) and 4 <= len(commit) <= 40)
    return record


def positive(x) -> bool:
    return isinstance(x, (int, float)) and x > 0


def test_bench_infer(tmp_path):
    photo, alpha = synthetic_portrait(0, 120, 160)
    cv2.imwrite(str(tmp_path / "p.jpg"), photo)
    cv2.imwrite(str(tmp_path / "m.png"), alpha)
    from common import random_checkpoint  # bench/common.py: an untrained TNet that sees a person everywhere

    ckpt = random_checkpoint(tmp_path / "tnet.pth")
    r = run_bench("bench_infer.py", "--image", str(tmp_path / "p.jpg"), "--mask", str(tmp_path / "m.png"),
                  "--threads", "1", "--checkpoint", str(ckpt))
    assert r["bench"] == "infer" and r["params"]["size"] == [120, 160]
    infer = r["figures"]["infer"]
    assert positive(infer["process_wall_s"]) and positive(infer["infer_total_s"])
    stages = infer["stages_s"]
    assert set(stages) >= {"load", "trimap", "alpha", "foreground", "idphoto", "encode"}
    # the stages are disjoint parts of the one in-process run that infer_total_s spans (not a second run's wall)
    assert all(v >= 0 for v in stages.values()) and sum(stages.values()) <= infer["infer_total_s"] + 1e-6
    m = r["figures"]["matting_on_gt_trimap"]
    assert positive(m["cropped_s"]) and positive(m["original_full_cf_s"]) and 0 < m["unknown_share"] < 1


def test_bench_loader_with_the_compact_recipes_augmentations():
    r = run_bench("bench_loader.py", "--synthetic", "4", "--batch-size", "2", "--patch", "64", "--workers", "0", "1",
                  "--batches", "2", "--config", "configs/tnet_compact.toml", "--threads", "1")
    assert r["bench"] == "loader" and r["params"]["samples"] == 4 and r["params"]["patch"] == 64
    assert {"PortraitCrop", "RandomRotate", "BackgroundSwap", "ColorJitter", "RandomBlur", "RandomNoise",
            "RandomJPEG"} <= set(r["params"]["transforms"])
    runs = r["figures"]["runs"]
    assert [x["workers"] for x in runs] == [0, 1]
    assert all(x["images"] == 4 and positive(x["images_per_s"]) for x in runs)


def test_bench_train():
    r = run_bench("bench_train.py", "--device", "cpu", "--backbone", "mobilenetv3", "--patch", "64", "--batch-size", "1",
                  "--steps", "1", "--warmup", "0", "--threads", "1")
    assert r["bench"] == "train" and r["device"] == "cpu" and r["params"]["amp_dtype"] == "bfloat16"
    combos = {(x["amp"], x["channels_last"]) for x in r["figures"]["runs"]}
    assert combos == {(False, False), (False, True), (True, False), (True, True)}
    assert all(positive(x["images_per_s"]) and x["loss_finite"] for x in r["figures"]["runs"])


def test_bench_train_compact_model_at_several_batch_sizes():
    r = run_bench("bench_train.py", "--device", "cpu", "--backbone", "mobilenetv3", "--decoder", "unet", "--dice-weight",
                  "0.5", "--patch", "64", "--batch-size", "1", "2", "--steps", "1", "--warmup", "0", "--threads", "1",
                  "--channels-last", "off")
    assert r["params"]["decoder"] == "unet" and r["params"]["batch_size"] == [1, 2]
    combos = {(x["batch_size"], x["amp"]) for x in r["figures"]["runs"]}
    assert combos == {(1, False), (1, True), (2, False), (2, True)}
    assert all(positive(x["images_per_s"]) and x["loss_finite"] for x in r["figures"]["runs"])


def test_bench_train_refuses_a_missing_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench_train.py"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == "" and "no CUDA" in run.stderr


def test_bench_prepare_links_a_pairs_folder(tmp_path):
    src = pairs_folder(tmp_path / "pairs", 4)
    r = run_bench("bench_prepare.py", "--src", str(src), "--limit", "3", "--workers", "1")
    assert r["bench"] == "prepare" and r["params"]["pairs"] == 3
    (run,) = r["figures"]["runs"]
    assert run["converted"] == 3 and run["skipped"] == 0 and positive(run["images_per_s"])
    assert sorted(p.name for p in (src / "images").iterdir()) == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]  # source untouched


def test_learning_curve_table_from_tensorboard_events(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from learning_curve import read_scalars, table

    w = SummaryWriter(str(tmp_path))
    for epoch, (loss, iou) in enumerate([(0.9, 0.5), (0.7, 0.6), (0.5, 0.8)], start=1):
        w.add_scalar("train/loss_epoch", loss, epoch)
        w.add_scalar("train/lr", 1e-3 / epoch, epoch)
        w.add_scalar("val/pfcn/person_IoU", iou, epoch)
        w.add_scalar("val/pfcn/pixel_acc", 0.99, epoch)   # not a shown tag
    w.add_scalar("val/pfcn/person_IoU", 0.85, 3)           # a resumed epoch: the later value wins
    w.close()
    lines = table(read_scalars(str(tmp_path)), every=2).splitlines()
    assert lines[0] == "| epoch | train loss | lr | pfcn/person_IoU |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1", "2", "3"]
    assert lines[-1].split("|")[4].strip() == "0.8500" and "pixel_acc" not in lines[0]


def test_ablation_trains_and_scores_a_variant(prepared, tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('dataname = ["synth"]\nbackbone = "mobilenetv3"\ndecoder = "unet"\npretrained = "none"\n'
                   'patch = 64\nbatch_size = 4\nworkers = 0\ndevice = "cpu"\ndice_weight = 0.5\nthreads = 1\n')
    run = subprocess.run([sys.executable, str(REPO / "bench" / "ablation.py"), "--config", str(cfg), "--data-dir",
                          str(prepared), "--work", str(tmp_path / "w"), "--epochs", "1", "--variants", "no-dice",
                          "--val", "synth_val", "--limit", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    record = json.loads(run.stdout.splitlines()[-1])
    scores = record["figures"]["no-dice"]["synth_val"]
    assert 0 <= scores["person_iou"] <= 1 and 0 <= scores["unknown_iou"] <= 1
    assert record["figures"]["no-dice"]["overrides"] == "--dice-weight 0"
    import torch
    ckpt = torch.load(tmp_path / "w" / "no-dice" / "checkpoint_tnet.pth", weights_only=False)
    assert ckpt["args"]["dice_weight"] == 0 and ckpt["arch"]["decoder"] == "unet"   # the override reached train.py


def test_bench_app_loads_a_server_and_reports(tmp_path):
    """bench_app.py starts app.py, runs 2 clients against 1 worker with a queue of 1, and reports."""
    from common import random_checkpoint

    ckpt = random_checkpoint(tmp_path / "tnet.pth")
    photo, _ = synthetic_portrait(0, 120, 160)
    cv2.imwrite(str(tmp_path / "p.jpg"), photo)
    r = run_bench("bench_app.py", "--checkpoint", str(ckpt), "--image", str(tmp_path / "p.jpg"), "--clients", "2",
                  "--duration", "30", "--requests", "4", "--warmup", "1", "--workers", "1", "--queue", "1",
                  "--rss-every", "2", "--spec", "none", "--extra", "--input-size", "64", "--threads", "1")
    assert r["bench"] == "app" and r["params"]["workers"] == 1 and r["params"]["queue"] == 1
    f = r["figures"]
    assert f["requests"] == 4 and f["ok"] + f["errors"] == 4 and f["ok"] >= 1
    assert set(f["errors_by_status"]) <= {"503"}  # the only refusals allowed: the full queue
    assert positive(f["throughput_rps"]) and 0 < f["latency_s"]["p50"] <= f["latency_s"]["p95"] <= f["latency_s"]["max"]
    rss = f["server_rss_mb"]
    assert positive(rss["start"]) and positive(rss["end"]) and [n for n, _ in rss["samples"]] == [2, 4]


def test_bench_face_head(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    for i in range(2):
        photo, alpha = synthetic_portrait(i, 120, 160)
        cv2.imwrite(str(tmp_path / "i" / f"{i}.jpg"), photo)
        cv2.imwrite(str(tmp_path / "m" / f"{i}_mask.png"), alpha)
    r = run_bench("bench_face_head.py", "--images", str(tmp_path / "i"), "--masks", str(tmp_path / "m"))
    assert r["bench"] == "face_head" and r["figures"]["photos"] == 2 and r["params"]["threshold"] > 0
    f = r["figures"]
    assert f["measured"] + f["no_face_on_person"] == 2 and isinstance(f["under_threshold"], list)


def test_bench_matting_on_synthetic_photos(tmp_path):
    r = run_bench("bench_matting.py", "--data", str(tmp_path / "absent"), "--limit", "1", "--side", "120",
                  "--kernels", "7", "--repeat", "1")
    assert r["bench"] == "matting" and r["params"]["data"] == "synthetic"
    alpha, fg = r["figures"]["rows"]
    assert alpha["unknown_px"] > 0 and alpha["alpha_max_abs_diff"] < 1e-3  # the two solvers agree
    assert positive(alpha["alpha_idphoto"]["cpu_s"]) and positive(fg["foreground_idphoto"]["cpu_s"])
    # on this synthetic photo neither estimator beats the photo's own colours; ours must match pymatting's
    assert fg["foreground_idphoto"]["SAD"] < 1.1 * fg["foreground_pymatting"]["SAD"]


def test_bench_speed_this_checkout(tmp_path):
    photo, _ = synthetic_portrait(0, 120, 160)
    cv2.imwrite(str(tmp_path / "p.jpg"), photo)
    r = run_bench("bench_speed.py", "--photo", str(tmp_path / "p.jpg"), "--skip-first-run", "--repeat", "1",
                  "--photos-in-process", "1", "--batch", "0", "--parts", "help", "later_run", "in_process", timeout=600)
    after = r["figures"]["after"]
    assert set(after["help"]) == {"infer.py", "prepare_aifenge.py", "evaluate.py", "train.py", "import idphoto.specs"}
    assert all(positive(x["wall_s"]) for x in after["help"].values())
    assert positive(after["later_run"]["wall_s"]) and not after["later_run"]["announced"]
    assert positive(after["in_process"]["cpu_s"]) and {"trimap", "alpha", "foreground"} <= set(after["in_process"]["stages_wall_s"])


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "models" / "hivision_mtcnn_onnx").is_dir(),
                    reason="needs ../shared/data (photos and the MTCNN reference)")
def test_bench_faces():
    record = run_bench("bench_faces.py", "--limit", "3", "--sets", "unlabeled")
    res = record["figures"]["sets"]["unlabeled"]
    assert res["photos"] == 3 and res["mtcnn_found"] >= 2
    lm = res["landmarks"]
    assert lm["found"] == 3 and lm["eye_nme_median"] < 0.1 and positive(lm["ms_per_photo"])
    assert 0 <= res["haar"]["found"] <= 3


def test_bench_phone_framing(tmp_path):
    """Both ways of making an ID photo on a photo with more pixels than it needs: the same outcome and the eye
    line within a pixel."""
    big = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (2000, 2000), interpolation=cv2.INTER_CUBIC)
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "big.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    r = run_bench("bench_phone.py", "--parts", "framing", "--framing-dirs", str(folder))
    framing = r["figures"]["framing"]
    assert framing["photos"] == 1 and framing["outcome_differs"] == [] and framing["written_both_ways"] == 1
    assert framing["worst_eye_line_px"] < 1.0 and framing["retried_whole"] == 0
