"""bench/gpu_check.sh and bench/gpu_train.sh: their --dry-run runs every step on the CPU with tiny settings
(what CI can check of scripts meant for a GPU machine), and they refuse to run without a GPU otherwise."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest
import torch

from conftest import REPO

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_script(name: str, *args, timeout=1200, tmpdir=None):
    env = {**ENV, "TMPDIR": str(tmpdir)} if tmpdir else ENV
    return subprocess.run(["bash", str(REPO / "bench" / name), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_gpu_check_dry_run_runs_every_step(tmp_path):
    out = tmp_path / "check"
    r = run_script("gpu_check.sh", out, "--dry-run")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (line,) = r.stdout.splitlines()
    record = json.loads(line)
    steps = record["figures"]["steps"]
    assert record["bench"] == "gpu_check" and record["params"]["dry_run"] and record["figures"]["ok"]
    ran = {"prepare", "train_fp32", "train_amp_cl", "resume_epoch1", "resume", "ddp", "evaluate", "infer",
           "bench_train_resnet50", "bench_train_compact", "loader"}
    assert {k for k, v in steps.items() if v.get("ok")} == ran
    assert steps["data_parallel"]["skipped"]
    assert steps["train_fp32"]["global_step"] == 2 and steps["train_fp32"]["steps_per_s"] > 0
    assert steps["resume"]["global_step"] == 2 * steps["resume_epoch1"]["steps_per_epoch"]
    assert steps["ddp"]["processes"] == 2 and steps["ddp"]["backend"] == "gloo" and not steps["ddp"]["sync_bn"]
    assert len(steps["bench_train_compact"]["runs"]) == 2 and steps["loader"]["runs"][1]["images_per_s"] > 0
    assert record["figures"]["workers_per_gpu"]["compact"]["workers"] >= 1
    assert json.loads((out / "gpu_check.json").read_text()) == record
    with tarfile.open(out / "gpu_check.tar.gz") as tar:
        names = tar.getnames()
    assert "logs/train_fp32.log" in names and "gpu_check.json" in names
    assert any(n.startswith("runs/resume/events.out.tfevents") for n in names)


def test_gpu_train_dry_run_trains_exports_and_evaluates(tmp_path):
    out, tmp = tmp_path / "train", tmp_path / "tmp"
    tmp.mkdir()
    r = run_script("gpu_train.sh", out, "--dry-run", tmpdir=tmp)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    record = json.loads(r.stdout)
    steps = record["figures"]["steps"]
    assert all(steps[k]["ok"] for k in ("prepare_pfcn", "prepare_vikram", "train", "export", "evaluate_pfcn", "evaluate_vikram"))
    assert steps["train"]["epochs_done"] == 1 and not steps["train"]["interrupted"]
    assert steps["export"]["dtype"] == "float16" and steps["export"]["mib"] <= 16
    weights = out / "tnet_mobilenetv3_gpu.pth"
    from models import load_tnet

    assert load_tnet(weights).arch == {"backbone": "mobilenetv3", "num_classes": 3, "decoder": "unet"}
    assert 0 <= steps["evaluate_vikram"]["person_IoU"] <= 1
    assert not list(tmp.glob("gpu_train_*"))  # its temp folder (converted data, full checkpoints) is deleted


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_train.sh"])
def test_without_a_gpu_the_scripts_refuse_in_one_line(tmp_path, script):
    r = run_script(script, tmp_path / "out", timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert "no CUDA device" in r.stderr and "--dry-run" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_gpu_check_refuses_a_used_output_folder(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    r = run_script("gpu_check.sh", tmp_path, "--dry-run", timeout=120)
    assert r.returncode == 2 and "not empty" in r.stderr


def test_runner_records_failures_interrupts_in_time_and_keeps_to_its_budget(tmp_path):
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from gpu_runner import CheckFailed, Runner

    r = Runner(tmp_path, budget_s=60)
    py = sys.executable
    error = r.run("fails", [py, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], 30)["error"]
    assert error.startswith("exit code 3") and error.endswith("boom")

    def wrong(stdout):
        raise CheckFailed("expected 2, got " + stdout.strip())

    assert r.run("wrong", [py, "-c", "print(1)"], 30, wrong)["error"] == "expected 2, got 1"
    # a run past its time gets SIGINT (train.py saves a checkpoint on it) and counts as done when it exits 130
    # (bash, not Python: its handler is in place at once, however slow a busy machine starts Python)
    sleeper = "trap 'echo saved; exit 130' INT; sleep 30 >/dev/null & wait"
    res = r.run("interrupted", ["bash", "-c", sleeper], 30, lambda out: {"said": out.strip()}, interrupt_after=3)
    # it said "saved" (the SIGINT reached it), no sooner than asked and long before its own 30 s were up
    assert res["ok"] and res["said"] == "saved" and 3 <= res["seconds"] < 25
    assert "boom" in (tmp_path / "logs" / "fails.log").read_text()
    r.budget_s = 0  # nothing may start once the budget is spent
    assert "out of time" in r.run("late", [py, "-c", "print(1)"], 30)["skipped"]
    assert not r.all_ok() and set(r.results) == {"fails", "wrong", "interrupted", "late"}
