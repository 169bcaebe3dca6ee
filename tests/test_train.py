"""train.py end to end on synthetic data: learning, checkpoints, resume, Ctrl-C, NaN, DDP, bad flags."""
import os
import subprocess
import sys

import pytest
import torch

import train
from conftest import REPO
from utils import load_checkpoint


def args_for(prepared, tmp_path, *extra):
    return ["--data-dir", str(prepared), "--dataname", "synth", "--backbone", "mobilenetv3", "--pretrained", "none",
            "--patch", "64", "--batch-size", "4", "--workers", "0", "--device", "cpu", "--lr", "2e-3", "--cosine",
            "--out", str(tmp_path / "results"), "--logdir", str(tmp_path / "runs"), "--run-name", "t",
            "--no-vflip", "--log-images", "2", *extra]


def test_training_learns_checkpoints_and_resumes(prepared, tmp_path):
    torch.set_num_threads(2)
    assert train.main(args_for(prepared, tmp_path, "--epochs", "2")) == 0
    first = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert first["epoch"] == 2 and first["global_step"] == 12  # 24 train samples / batch 4
    assert set(first) >= {"model", "optimizer", "scaler", "best_metric", "args", "arch"}
    assert (tmp_path / "results" / "best_tnet.pth").is_file()

    assert train.main(args_for(prepared, tmp_path, "--epochs", "16", "--resume",
                               str(tmp_path / "results" / "checkpoint_tnet.pth"))) == 0
    last = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert last["epoch"] == 16 and last["global_step"] == 96
    # the optimiser state was carried over, not restarted
    step = next(iter(last["optimizer"]["state"].values()))["step"]
    assert int(step) == 96
    best = load_checkpoint(tmp_path / "results" / "best_tnet.pth")
    assert best["best_metric"] > first["best_metric"]  # validation mIoU improved on the easy synthetic task
    assert best["best_metric"] > 0.6

    events = list((tmp_path / "runs" / "t").glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tmp_path / "runs" / "t"), size_guidance={"images": 0}).Reload()
    tags = acc.Tags()
    assert {"train/loss_step", "train/loss_epoch", "train/lr", "val/mIoU", "val/person_IoU"} <= set(tags["scalars"])
    person = [e.value for e in acc.Scalars("val/person_IoU")]
    assert 0 <= min(person) and max(person) <= 1 and person[-1] > 0.7  # the easy synthetic person is found
    assert {"train/input", "train/predicted_trimap", "train/true_trimap", "val/predicted_trimap"} <= set(tags["images"])
    losses = [e.value for e in acc.Scalars("train/loss_epoch")]
    assert losses[-1] < losses[0]


def test_ctrl_c_saves_a_resumable_checkpoint(prepared, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = train.ClassificationLoss.forward

    def interrupt_on_third(self, logits, target):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, logits, target)

    monkeypatch.setattr(train.ClassificationLoss, "forward", interrupt_on_third)
    assert train.main(args_for(prepared, tmp_path, "--epochs", "3")) == 130
    ckpt = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert ckpt["interrupted"] and ckpt["epoch"] == 0 and ckpt["global_step"] == 2


def test_nan_loss_stops_with_a_clear_message(prepared, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train.ClassificationLoss, "forward", lambda self, logits, target: logits.sum() * float("nan"))
    assert train.main(args_for(prepared, tmp_path, "--epochs", "1")) == 1
    err = capsys.readouterr().err
    assert "loss became nan" in err and "--lr" in err


def test_max_steps_and_missing_data(prepared, tmp_path, capsys):
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "2")) == 0
    ckpt = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert ckpt["global_step"] == 2 and ckpt["epoch"] == 0  # the cut-short epoch is not counted as done
    assert train.main(args_for(prepared, tmp_path, "--dataname", "nothing")) == 1
    assert "prepare_aifenge.py" in capsys.readouterr().err


def cli(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)


@pytest.mark.parametrize("extra, expect", [
    (["--resume", "nope.pth"], "no such file"),
    (["--device", "cuda"], "no CUDA device"),
    (["--pretrained", "missing.pth"], "not found"),
])
def test_user_mistakes_are_one_line(prepared, tmp_path, extra, expect):
    if "cuda" in extra and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = cli(tmp_path, *args_for(prepared, tmp_path, *extra))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert expect in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_distributed_data_parallel_with_torchrun_on_cpu(prepared, tmp_path):
    """The torchrun path (DistributedSampler, DDP, rank-0 saving) with two CPU processes over gloo."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(REPO / "train.py"), *args_for(prepared, tmp_path, "--epochs", "1")],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DistributedDataParallel over 2 processes" in r.stdout
    ckpt = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 6  # 24 samples, 2 per process per step
    assert not any(k.startswith("module.") for k in ckpt["model"])


def test_resume_takes_the_backbone_from_the_checkpoint_and_refuses_a_finished_run(prepared, tmp_path, capsys):
    assert train.main(args_for(prepared, tmp_path, "--epochs", "1")) == 0
    ckpt = str(tmp_path / "results" / "checkpoint_tnet.pth")
    resumed = [a if a != "mobilenetv3" else "resnet50" for a in args_for(prepared, tmp_path, "--resume", ckpt)]
    assert train.main(resumed + ["--epochs", "2"]) == 0  # --backbone resnet50 given, the checkpoint's wins
    out = capsys.readouterr().out
    assert "TNet(mobilenetv3)" in out and "backbone mobilenetv3 from the checkpoint" in out
    assert load_checkpoint(ckpt)["epoch"] == 2
    assert train.main(args_for(prepared, tmp_path, "--resume", ckpt, "--epochs", "2")) == 1
    assert "already trained 2 epochs" in capsys.readouterr().err


def test_init_fine_tunes_from_weights_with_a_fresh_run(prepared, tmp_path, capsys):
    from models.export import export_tnet

    assert train.main(args_for(prepared, tmp_path, "--max-steps", "2")) == 0
    weights = tmp_path / "w.pth"
    export_tnet(tmp_path / "results" / "checkpoint_tnet.pth", weights)
    out = tmp_path / "tuned"
    assert train.main(args_for(prepared, tmp_path, "--init", str(weights), "--max-steps", "1", "--out", str(out))) == 0
    assert "initialised from" in capsys.readouterr().out
    tuned = load_checkpoint(out / "checkpoint_tnet.pth")
    assert tuned["global_step"] == 1 and tuned["arch"]["backbone"] == "mobilenetv3"
    r = cli(tmp_path, *args_for(prepared, tmp_path, "--init", str(weights), "--resume", str(weights)))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flag, distributed, device, expect", [
    (None, True, "cuda", True),     # the default under DDP on GPUs: statistics over the whole batch
    (None, True, "cpu", False),     # PyTorch syncs GPU batches only
    (None, False, "cuda", False),   # one process: nothing to synchronise
    (False, True, "cuda", False),   # --no-sync-bn
    (True, False, "cuda", False),   # --sync-bn without torchrun has no effect (train.py says so)
])
def test_sync_bn_default_is_on_under_ddp_on_cuda(flag, distributed, device, expect):
    assert train.use_sync_bn(flag, distributed, torch.device(device)) is expect


def test_sync_bn_on_the_cpu_is_refused_in_one_line(prepared, tmp_path, capsys):
    assert train.main(args_for(prepared, tmp_path, "--sync-bn", "--max-steps", "1")) == 1
    err = capsys.readouterr().err.strip()
    assert "--sync-bn needs CUDA" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists()  # refused before anything was written
    with pytest.raises(train.TrainError):
        train.use_sync_bn(True, True, torch.device("cpu"))


def test_a_sync_bn_model_saves_the_plain_tnet_state():
    from models import TNet, load_tnet_state

    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(TNet("mobilenetv3", decoder="unet"))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    plain = TNet("mobilenetv3", decoder="unet")
    assert model.state_dict().keys() == plain.state_dict().keys()
    load_tnet_state(plain, model.state_dict())  # what export and infer.py load from a DDP + SyncBatchNorm run


def test_one_process_under_torchrun_is_distributed(prepared, tmp_path):
    """With one GPU, torchrun --nproc_per_node 1 must still run DDP (and NCCL), or the GPU check can't test it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                        str(REPO / "train.py"), *args_for(prepared, tmp_path, "--max-steps", "1", "--threads", "1")],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DistributedDataParallel over 1 process;" in r.stdout
    assert load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")["global_step"] == 1
