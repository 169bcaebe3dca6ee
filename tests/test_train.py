"""train.py end to end on synthetic data: learning, checkpoints, resume, Ctrl-C, NaN, DDP, bad flags."""
import json
import os
import subprocess
import sys

import pytest
import torch

import tnet.training as training
import train
from conftest import REPO, args_for
from utils import load_checkpoint, save_checkpoint



def torchrun(processes: int, prepared, tmp_path, *extra) -> subprocess.CompletedProcess:
    """train.py under torchrun with ``processes`` CPU processes (gloo), one thread each."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(processes), str(REPO / "train.py"), *args_for(prepared, tmp_path, *extra)],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=300)

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
    # --cosine: after the resume (a 96-step horizon) the logged rate falls every epoch, to nearly 0 at the end
    lrs = [e.value for e in acc.Scalars("train/lr")][2:]
    assert all(b < a for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 0.01 * 2e-3 < lrs[0]


def test_ctrl_c_saves_a_resumable_checkpoint(prepared, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = training.ClassificationLoss.forward

    def interrupt_on_third(self, logits, target):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, logits, target)

    monkeypatch.setattr(training.ClassificationLoss, "forward", interrupt_on_third)
    assert train.main(args_for(prepared, tmp_path, "--epochs", "3")) == 130
    ckpt = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert ckpt["interrupted"] and ckpt["epoch"] == 0 and ckpt["global_step"] == 2


def test_nan_loss_stops_with_a_clear_message(prepared, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(training.ClassificationLoss, "forward", lambda self, logits, target: logits.sum() * float("nan"))
    assert train.main(args_for(prepared, tmp_path, "--epochs", "1")) == 1
    err = capsys.readouterr().err
    assert "loss became nan" in err and "--lr" in err
    # nothing was saved: the message must not send the user to a checkpoint folder that does not exist
    assert "no checkpoint was saved yet" in err and not (tmp_path / "results" / "checkpoint_tnet.pth").exists()


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
    """The torchrun path (DistributedSampler, DDP, rank-0 saving) with two CPU processes over gloo; with
    weight averaging, whose closing BatchNorm pass and validation every process takes part in."""
    r = torchrun(2, prepared, tmp_path, "--epochs", "1", "--swa-start", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DistributedDataParallel over 2 processes" in r.stdout
    ckpt = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 6  # 24 samples, 2 per process per step
    assert not any(k.startswith("module.") for k in ckpt["model"])
    swa = load_checkpoint(tmp_path / "results" / "swa_tnet.pth")
    assert swa["swa_epochs"] == 1 and not any(k.startswith("module.") for k in swa["model"])
    assert r.stdout.count("swa_tnet.pth: the average of 1 epochs' weights") == 1  # rank 0 only


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


def test_learning_rate_schedule():
    assert training.get_lr(0, 100, 1e-3, cosine=False) == training.get_lr(99, 100, 1e-3, cosine=False) == 1e-3
    assert training.get_lr(0, 100, 1e-3, cosine=True) == pytest.approx(1e-3)
    assert training.get_lr(50, 100, 1e-3, cosine=True) == pytest.approx(5e-4)
    assert training.get_lr(25, 100, 1e-3, cosine=True) == pytest.approx(1e-3 * 0.5 * (1 + 2 ** -0.5))
    assert training.get_lr(100, 100, 1e-3, cosine=True) == pytest.approx(0, abs=1e-12)
    assert training.get_lr(150, 100, 1e-3, cosine=True) == pytest.approx(0, abs=1e-12)   # past the horizon: stays at 0


# -------------------------------------------------------------------------------------------- recipes (--config)
def test_config_file_sets_defaults_and_flags_override(tmp_path):
    cfg = tmp_path / "r.toml"
    cfg.write_text('dataname = ["a", "b"]\nrepeat = [1, 3]\nbatch-size = 3\nlr = 0.01\ncosine = true\n'
                   'decoder = "unet"\nbackbone = "mobilenetv3"\nscale_range = [0.5, 0.6]\n')
    args = train.parse_args(["--config", str(cfg), "--lr", "0.5"])
    assert args.dataname == ["a", "b"] and args.repeat == [1, 3] and args.batch_size == 3
    assert args.lr == 0.5 and args.cosine is True and args.decoder == "unet" and list(args.scale_range) == [0.5, 0.6]
    assert train.parse_args([]).lr == 1e-4   # without --config the design's defaults


def test_the_shipped_recipe_parses():
    args = train.parse_args(["--config", str(REPO / "configs" / "tnet_compact.toml")])
    assert args.decoder == "unet" and args.backbone == "mobilenetv3" and args.dice_weight > 0
    assert args.dataname == ["pfcn", "vikram"] and args.bg_prob > 0 and args.threads == 1


def test_a_recipe_can_start_from_a_base_recipe(tmp_path, capsys):
    (tmp_path / "stage1.toml").write_text('lr = 0.01\npatch = 256\ndecoder = "unet"\nbackbone = "mobilenetv3"\nepochs = 60\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "stage2.toml").write_text('base = "../stage1.toml"\npatch = 320\nepochs = 45\n')
    args = train.parse_args(["--config", str(sub / "stage2.toml"), "--epochs", "7"])
    assert (args.lr, args.patch, args.decoder, args.epochs) == (0.01, 320, "unet", 7)  # base, own, base, flag
    # the shipped stage 2 is stage 1 with its four changes
    one = vars(train.parse_args(["--config", str(REPO / "configs" / "tnet_compact.toml")]))
    two = vars(train.parse_args(["--config", str(REPO / "configs" / "tnet_compact_ft320.toml")]))
    assert {k for k in one if one[k] != two[k]} == {"config", "patch", "scale_range", "epochs", "lr"}
    loop = tmp_path / "loop.toml"
    loop.write_text('base = "loop.toml"\n')
    with pytest.raises(SystemExit) as exc:
        train.parse_args(["--config", str(loop)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "includes itself" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text, expect", [
    ("nonsense_key = 1\n", "unknown key 'nonsense_key'"),
    ("lr = 'fast'\n", "not a valid float"),
    ("decoder = 'fpn'\n", "decoder must be one of"),
    ("lr = \n", "not valid TOML"),
])
def test_bad_config_is_one_line(tmp_path, capsys, text, expect):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    for path, message in ((cfg, expect), (tmp_path / "missing.toml", "missing.toml")):
        with pytest.raises(SystemExit) as exc:
            train.parse_args(["--config", str(path)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_unet_recipe_trains_on_several_sets_with_every_augmentation(prepared, tmp_path, capsys):
    """Two list names (the second oversampled), the U-Net decoder, the Dice term and all augmentations:
    one short epoch runs, each set is validated on its own, and the checkpoint records the decoder."""
    import json
    lists = tmp_path / "lists"
    lists.mkdir()
    for f in prepared.glob("synth*.json"):   # the same samples under a second name, with absolute paths
        entries = [str((prepared / p).resolve()) for p in json.loads(f.read_text())]
        for name in ("synth", "other"):
            (lists / f.name.replace("synth", name, 1)).write_text(json.dumps(entries))
    args = args_for(lists, tmp_path, "--dataname", "synth", "other", "--repeat", "1", "2", "--decoder", "unet",
                    "--dice-weight", "0.5", "--lovasz-weight", "0.5", "--portrait-crop-prob", "0.5", "--rotate-prob", "0.5", "--bg-prob", "0.5",
                    "--color-prob", "0.5", "--blur-prob", "0.5", "--noise-prob", "0.5", "--jpeg-prob", "0.5",
                    "--epochs", "1", "--threads", "1")
    assert train.main(args) == 0
    out = capsys.readouterr().out
    assert "train: 72 samples" in out                         # 24 + 2 × 24
    assert "synth/mIoU" in out and "other/mIoU" in out and " mIoU " in out
    ckpt = load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")
    assert ckpt["arch"]["decoder"] == "unet" and ckpt["global_step"] == 18
    assert ckpt["args"]["dice_weight"] == 0.5 and ckpt["args"]["lovasz_weight"] == 0.5


def test_repeat_must_match_the_list_names(capsys):
    for argv, message in ((["--dataname", "a", "b", "--repeat", "2"], "--repeat"),
                          (["--decoder", "unet", "--backbone", "resnet50"], "mobilenetv3"),
                          (["--lovasz-weight", "-1"], "--lovasz-weight")):
        with pytest.raises(SystemExit) as exc:
            train.parse_args(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err


# ------------------------------------------------------------------------ nothing of another run is lost
def test_a_finished_run_is_never_overwritten_without_resume_or_overwrite(prepared, tmp_path, capsys, monkeypatch):
    out = tmp_path / "results"
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "2")) == 0
    ckpt, best = out / "checkpoint_tnet.pth", out / "best_tnet.pth"
    before = {p: p.read_bytes() for p in (ckpt, best)}
    run_id = load_checkpoint(ckpt)["run_id"]
    capsys.readouterr()

    # a new run into the same folder, even one stopped by Ctrl-C at once, leaves both files alone
    steps = {"n": 0}
    real = training.ClassificationLoss.forward

    def interrupt_at_once(self, logits, target):
        steps["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(training.ClassificationLoss, "forward", interrupt_at_once)
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "1")) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--overwrite" in err and f"--resume {ckpt}" in err
    assert steps["n"] == 0 and {p: p.read_bytes() for p in (ckpt, best)} == before
    init = tmp_path / "w.pth"
    save_checkpoint({"arch": load_checkpoint(ckpt)["arch"], "model": load_checkpoint(ckpt)["model"]}, init)
    assert train.main(args_for(prepared, tmp_path, "--init", str(init), "--max-steps", "1")) == 1  # --init: a new run
    assert {p: p.read_bytes() for p in (ckpt, best)} == before
    monkeypatch.setattr(training.ClassificationLoss, "forward", real)

    # another run's checkpoint resumed into this folder is refused too
    other = tmp_path / "other"
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "1", "--out", str(other))) == 0
    capsys.readouterr()
    assert train.main(args_for(prepared, tmp_path, "--resume", str(other / "checkpoint_tnet.pth"), "--max-steps", "3")) == 1
    assert "holds another training run" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (ckpt, best)} == before

    # the run itself continues with --resume; --overwrite starts a new one and replaces both files
    assert train.main(args_for(prepared, tmp_path, "--resume", str(ckpt), "--max-steps", "3")) == 0
    assert load_checkpoint(ckpt)["run_id"] == run_id and load_checkpoint(ckpt)["global_step"] == 3
    assert train.main(args_for(prepared, tmp_path, "--overwrite", "--max-steps", "1")) == 0
    new = load_checkpoint(ckpt)
    assert new["run_id"] != run_id and new["global_step"] == 1 and load_checkpoint(best)["run_id"] == new["run_id"]


def test_overwrite_interrupted_at_once_leaves_no_best_of_the_old_run(prepared, tmp_path, monkeypatch):
    out = tmp_path / "results"
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "1")) == 0
    monkeypatch.setattr(training.ClassificationLoss, "forward", lambda self, logits, target: (_ for _ in ()).throw(KeyboardInterrupt))
    assert train.main(args_for(prepared, tmp_path, "--overwrite", "--max-steps", "1")) == 130
    ckpt = load_checkpoint(out / "checkpoint_tnet.pth")
    assert ckpt["interrupted"] and ckpt["global_step"] == 0
    assert not (out / "best_tnet.pth").exists()  # a best model of the discarded run beside the new run would mislead


def test_a_run_in_progress_locks_its_folder(prepared, tmp_path, capsys):
    with training.RunLock(tmp_path / "results"):
        assert train.main(args_for(prepared, tmp_path, "--max-steps", "1")) == 1
    err = capsys.readouterr().err
    assert "in use by another train.py" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "checkpoint_tnet.pth").exists()


# --------------------------------------------------------------- bad lists and files: one line, at once
def write_list_set(folder, name, img, alpha=None, trimap=None):
    folder.mkdir(parents=True, exist_ok=True)
    for kind, entries in (("img", img), ("alpha", alpha if alpha is not None else img),
                          ("trimap", trimap if trimap is not None else img)):
        (folder / f"{name}_{kind}.json").write_text(entries if isinstance(entries, str) else json.dumps(entries))


@pytest.mark.parametrize("case, expect", [
    ("missing", "1 of 24 listed files are missing (first: entry 3"),
    ("numbers", "entry 0 is 1, not a file path"),
    ("dicts", 'entry 0 is {"img": "a.jpg"}, not a file path'),
    ("not_json", "not a valid JSON list"),
    ("not_a_list", "holds a JSON dict, not a list of paths"),
])
def test_bad_lists_fail_in_one_line_before_the_first_step(prepared, tmp_path, capsys, monkeypatch, case, expect):
    lists = tmp_path / "lists"
    good = json.loads((prepared / "synth_img.json").read_text())
    absolute = [str((prepared / p).resolve()) for p in good]
    bad = {"missing": absolute[:3] + [str(tmp_path / "gone.jpg")] + absolute[4:], "numbers": [1, 2, 3],
           "dicts": [{"img": "a.jpg"}], "not_json": "[\"a.jpg\",", "not_a_list": {"a": 1}}[case]
    write_list_set(lists, "bad", bad if isinstance(bad, str) else json.dumps(bad),
                   alpha=[str((prepared / p).resolve()) for p in json.loads((prepared / "synth_alpha.json").read_text())],
                   trimap=[str((prepared / p).resolve()) for p in json.loads((prepared / "synth_trimap.json").read_text())])
    steps = {"n": 0}
    monkeypatch.setattr(training.ClassificationLoss, "forward", lambda *a: steps.__setitem__("n", steps["n"] + 1))
    args = args_for(prepared, tmp_path, "--epochs", "1")
    args[args.index("--data-dir") + 1], args[args.index("--dataname") + 1] = str(lists), "bad"
    assert train.main(args) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(lists / "bad_img.json") in err and expect in err
    assert steps["n"] == 0 and not (tmp_path / "results").exists()


def test_an_unreadable_image_in_a_loader_worker_is_one_line(prepared, tmp_path, capsys):
    """A listed file that exists but can't be decoded fails in a DataLoader worker: one line naming it."""
    lists = tmp_path / "lists"
    entries = {k: [str((prepared / p).resolve()) for p in json.loads((prepared / f"synth_{k}.json").read_text())]
               for k in ("img", "alpha", "trimap")}
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    entries["trimap"] = [str(broken)] * len(entries["trimap"])
    write_list_set(lists, "b", entries["img"], entries["alpha"], entries["trimap"])
    args = args_for(prepared, tmp_path, "--epochs", "1", "--workers", "1")
    args[args.index("--data-dir") + 1], args[args.index("--dataname") + 1] = str(lists), "b"
    args[args.index("--workers") + 1] = "1"
    assert train.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"train.py: error: cannot read the trimap {broken}"  # after the progress bar
    assert not any("Traceback" in line for line in err)


def make_bad_weight_files(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    arch_str = tmp_path / "arch_str.pth"
    from models import TNet
    save_checkpoint({"arch": "mobilenetv3", "model": TNet("mobilenetv3").state_dict()}, arch_str)
    return {"empty": (empty, "is empty (0 bytes)"), "garbage": (garbage, "is not a readable PyTorch checkpoint"),
            "arch_str": (arch_str, "its 'arch' entry is a str")}


@pytest.mark.parametrize("flag", ["--init", "--pretrained", "--resume"])
def test_bad_weight_files_are_one_line_naming_the_file(prepared, tmp_path, capsys, flag):
    for name, (path, expect) in make_bad_weight_files(tmp_path).items():
        if flag == "--pretrained" and name == "arch_str":
            continue  # --pretrained reads a torchvision backbone state dict, not a TNet checkpoint
        rc = train.main(args_for(prepared, tmp_path, flag, str(path), "--max-steps", "1"))
        err = capsys.readouterr().err
        assert rc == 1 and len(err.strip().splitlines()) == 1, err
        assert str(path) in err and "unexpected" not in err
        if flag != "--resume":
            assert expect in err
        assert not (tmp_path / "results" / "checkpoint_tnet.pth").exists()


def test_a_full_disk_while_saving_is_one_line_naming_the_checkpoint(prepared, tmp_path, capsys, monkeypatch):
    import utils

    real = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: real(obj, "/dev/full"))  # every write: ENOSPC
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "1")) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    ckpt = tmp_path / "results" / "checkpoint_tnet.pth"
    assert err.startswith(f"train.py: error: {ckpt}: could not write the checkpoint"), err
    assert "inline_container" not in err
    assert [p.name for p in (tmp_path / "results").iterdir()] == [".train.lock"]  # no torn or temporary file


def test_threads_flag_sets_torch_threads(prepared, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(training.torch, "set_num_threads", calls.append)
    assert train.main(args_for(prepared, tmp_path, "--threads", "1", "--max-steps", "1")) == 0
    assert calls == [1]
    help_text = subprocess.run([sys.executable, str(REPO / "train.py"), "--help"], capture_output=True, text=True).stdout
    assert "--threads" in help_text and "--overwrite" in help_text


def test_out_that_is_a_file_is_one_line_not_file_exists(prepared, tmp_path, capsys):
    (tmp_path / "results").write_text("a file")
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "1")) == 1
    err = capsys.readouterr().err
    assert "--out is a file, not a folder" in err and "File exists" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag, distributed, device, expect", [
    (None, True, "cuda", True),     # the default under DDP on GPUs: statistics over the whole batch
    (None, True, "cpu", False),     # PyTorch syncs GPU batches only
    (None, False, "cuda", False),   # one process: nothing to synchronise
    (False, True, "cuda", False),   # --no-sync-bn
    (True, False, "cuda", False),   # --sync-bn without torchrun has no effect (train.py says so)
])
def test_sync_bn_default_is_on_under_ddp_on_cuda(flag, distributed, device, expect):
    assert training.use_sync_bn(flag, distributed, torch.device(device)) is expect


def test_sync_bn_on_the_cpu_is_refused_in_one_line(prepared, tmp_path, capsys):
    assert train.main(args_for(prepared, tmp_path, "--sync-bn", "--max-steps", "1")) == 1
    err = capsys.readouterr().err.strip()
    assert "--sync-bn needs CUDA" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists()  # refused before anything was written
    with pytest.raises(training.TrainError):
        training.use_sync_bn(True, True, torch.device("cpu"))


def test_a_sync_bn_model_saves_the_plain_tnet_state():
    from models import TNet, load_tnet_state

    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(TNet("mobilenetv3", decoder="unet"))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    plain = TNet("mobilenetv3", decoder="unet")
    assert model.state_dict().keys() == plain.state_dict().keys()
    load_tnet_state(plain, model.state_dict())  # what export and infer.py load from a DDP + SyncBatchNorm run


def test_one_process_under_torchrun_is_distributed(prepared, tmp_path):
    """With one GPU, torchrun --nproc_per_node 1 must still run DDP (and NCCL), or the GPU check can't test it."""
    r = torchrun(1, prepared, tmp_path, "--max-steps", "1", "--threads", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DistributedDataParallel over 1 process;" in r.stdout
    assert load_checkpoint(tmp_path / "results" / "checkpoint_tnet.pth")["global_step"] == 1


def test_swa_averages_the_epochs_weights_and_survives_a_resume(prepared, tmp_path, capsys):
    results = tmp_path / "results"
    assert train.main(args_for(prepared, tmp_path, "--epochs", "2", "--swa-start", "2")) == 0
    epoch2 = load_checkpoint(results / "checkpoint_tnet.pth")
    assert int(epoch2["swa"]["n_averaged"]) == 1
    first = load_checkpoint(results / "swa_tnet.pth")
    assert first["swa_epochs"] == 1
    # one epoch averaged: the weights are that epoch's, the BatchNorm statistics are recomputed
    for k, v in epoch2["model"].items():
        if k.endswith("weight") and v.is_floating_point():
            assert torch.equal(first["model"][k], v), k

    assert train.main(args_for(prepared, tmp_path, "--epochs", "3", "--swa-start", "2", "--resume",
                               str(results / "checkpoint_tnet.pth"))) == 0
    epoch3 = load_checkpoint(results / "checkpoint_tnet.pth")
    swa = load_checkpoint(results / "swa_tnet.pth")
    assert swa["swa_epochs"] == 2 and int(epoch3["swa"]["n_averaged"]) == 2
    params = [k for k, v in epoch3["model"].items() if k.endswith(("weight", "bias")) and v.is_floating_point()]
    assert params
    moved = 0
    for k in params:  # the mean of the two epochs' weights, carried across the resume
        mean = (epoch2["model"][k] + epoch3["model"][k]) / 2
        assert torch.allclose(swa["model"][k], mean, atol=1e-6), k
        moved += not torch.equal(epoch2["model"][k], epoch3["model"][k])
    assert moved > len(params) // 2
    bn = [k for k in epoch3["model"] if k.endswith("running_mean")]
    assert bn and any(not torch.allclose(swa["model"][k], epoch3["model"][k]) for k in bn)
    assert "swa_tnet.pth: the average of 2 epochs' weights" in capsys.readouterr().out
    from models import load_tnet
    model = load_tnet(results / "swa_tnet.pth")  # usable like any checkpoint
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    from models.export import export_tnet
    meta = export_tnet(results / "swa_tnet.pth", tmp_path / "w.pth")  # and the weights file says what it is
    assert meta["swa_epochs"] == 2 and meta["recipe"]["swa_start"] == 2 and meta["input_size"] == 64


def test_swa_start_after_the_last_epoch_is_one_line(prepared, tmp_path):
    r = cli(tmp_path, *args_for(prepared, tmp_path, "--epochs", "3", "--swa-start", "4"))
    assert r.returncode == 2 and "--swa-start" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_another_runs_swa_file_is_refused_then_removed_with_overwrite(prepared, tmp_path, capsys):
    results = tmp_path / "results"
    assert train.main(args_for(prepared, tmp_path, "--epochs", "1", "--swa-start", "1")) == 0
    assert (results / "swa_tnet.pth").is_file()
    (results / "checkpoint_tnet.pth").unlink()
    (results / "best_tnet.pth").unlink()
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "1")) == 1
    assert "holds another training run (swa_tnet.pth" in capsys.readouterr().err
    assert train.main(args_for(prepared, tmp_path, "--max-steps", "1", "--overwrite")) == 0
    assert not (results / "swa_tnet.pth").exists()


def test_a_refused_out_dir_describes_its_run_plainly(tmp_path):
    """The refusal names the other run's best as what it is (mIoU, or the training loss, never a negated
    loss) and offers --resume only for a checkpoint that can be read."""
    from core.checkpoints import check_out_dir
    from core.errors import TrainError

    out = tmp_path / "run"
    out.mkdir()
    torch.save({"epoch": 3, "run_id": "other", "best_metric": -1.1002}, out / "checkpoint_tnet.pth")
    with pytest.raises(TrainError) as refused:
        check_out_dir(out, None, "mine", overwrite=False)
    assert "best training loss 1.1002" in str(refused.value) and "--resume" in str(refused.value)
    torch.save({"epoch": 3, "run_id": "other", "best_metric": 0.91}, out / "best_tnet.pth")
    with pytest.raises(TrainError, match="best mIoU 0.9100"):
        check_out_dir(out, None, "mine", overwrite=False)
    (out / "checkpoint_tnet.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainError) as refused:
        check_out_dir(out, None, "mine", overwrite=False)
    assert "unreadable" in str(refused.value) and "--resume" not in str(refused.value)


def test_best_checkpoint_holds_the_weights_and_epoch_of_the_best_validation(prepared, tmp_path, monkeypatch):
    """Validation mIoU 0.3, 0.9, 0.5 over three epochs (validation replaced, the training is real):
    best_tnet.pth is epoch 2's model — its epoch, its metric and its weights — not the last or the first."""
    from conftest import args_for

    metrics = [0.3, 0.9, 0.5]
    weights = []

    def controlled_validation(model, loaders, device, args, *rest, **kw):
        weights.append({k: v.detach().clone() for k, v in training.unwrap(model).state_dict().items()})
        return {"mIoU": metrics[len(weights) - 1], "person_IoU": 0.5}, None

    monkeypatch.setattr(training, "validate_all", controlled_validation)
    assert train.main(args_for(prepared, tmp_path, "--epochs", "3", "--log-images", "0")) == 0
    assert len(weights) == 3
    out = tmp_path / "results"
    best = load_checkpoint(out / "best_tnet.pth")
    last = load_checkpoint(out / "checkpoint_tnet.pth")
    assert best["epoch"] == 2 and best["best_metric"] == pytest.approx(0.9)
    assert last["epoch"] == 3 and last["best_metric"] == pytest.approx(0.9)   # the running best, not the last metric
    assert best["model"].keys() == weights[1].keys()
    assert all(torch.equal(best["model"][k], weights[1][k]) for k in weights[1])
    # the weights did move after epoch 2, so the comparison above tells the epochs apart
    changed = [k for k in weights[1] if weights[1][k].is_floating_point() and not torch.equal(weights[1][k], weights[2][k])]
    assert changed
    assert all(torch.equal(last["model"][k], weights[2][k]) for k in weights[2])
