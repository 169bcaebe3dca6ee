"""prepare_aifenge.py on a synthetic raw tree: outputs, skips, lists, split, re-runs, errors."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

import prepare_aifenge
from conftest import REPO, synthetic_portrait
from datasets import HumanDataset
from utils import make_trimap


def run(src, tmp_path, *extra):
    return prepare_aifenge.main(["--src", str(src), "--out", str(tmp_path / "out"), "--name", "t",
                                 "--lists-dir", str(tmp_path / "lists"), "--workers", "2", *extra])


def test_converts_aisegment_layout(raw_tree, tmp_path, capsys):
    src, expected = raw_tree
    assert run(src, tmp_path, "--val-fraction", "0.3") == 0
    out = tmp_path / "out"
    names = sorted(p.stem for p in (out / "img").iterdir())
    assert len(names) == expected["good"]
    for name in names:
        jpeg = out / "img" / f"{name}.jpg"
        group = name.split("-")[0]
        raw = src / "clip_img" / group / "clip_00000000" / f"{name}.jpg"
        assert jpeg.read_bytes() == raw.read_bytes()  # copied, not re-encoded
        alpha = cv2.imread(str(out / "alpha" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        matte = cv2.imread(str(src / "matting" / group / "matting_00000000" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert alpha.ndim == 2 and (alpha == matte[:, :, 3]).all()  # the real soft matte
        assert len(np.unique(alpha)) > 10
        trimap = cv2.imread(str(out / "trimap" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert trimap.ndim == 2 and set(np.unique(trimap)) == {0, 128, 255}
    report = (out / "prepare_report.txt").read_text()
    assert "corrupt" in report and "no alpha channel" in report and "nomatte" in report

    lists = tmp_path / "lists"
    train = json.loads((lists / "t_img.json").read_text())
    val = json.loads((lists / "t_val_img.json").read_text())
    assert len(train) + len(val) == expected["good"] and train and val
    # split by shoot group: no group on both sides
    group = lambda p: Path(p).stem.split("-")[0]  # noqa: E731
    assert not {group(p) for p in train} & {group(p) for p in val}
    # the three lists are index-aligned
    for suffix in ("", "_val"):
        lists_ = [json.loads((lists / f"t{suffix}_{k}.json").read_text()) for k in ("img", "alpha", "trimap")]
        assert [Path(p).stem for p in lists_[0]] == [Path(p).stem for p in lists_[1]] == [Path(p).stem for p in lists_[2]]
    ds = HumanDataset("t", lists_dir=lists)
    sample = ds[0]
    assert sample["image"].shape == (128, 96, 3) and sample["trimap"].shape == (128, 96)


def test_rerun_skips_finished_and_redoes_missing(raw_tree, tmp_path, capsys):
    src, expected = raw_tree
    assert run(src, tmp_path) == 0
    capsys.readouterr()
    victim = next((tmp_path / "out" / "trimap").iterdir())
    victim.unlink()
    (tmp_path / "out" / "trimap" / f".{victim.name}.abc.tmp").write_bytes(b"torn")  # a leftover temp file
    assert run(src, tmp_path) == 0
    out = capsys.readouterr().out
    assert f"converted 1, already done {expected['good'] - 1}" in out
    assert victim.is_file()


def test_split_is_deterministic(raw_tree, tmp_path):
    src, _ = raw_tree
    run(src, tmp_path, "--val-fraction", "0.3")
    first = (tmp_path / "lists" / "t_val_img.json").read_text()
    run(src, tmp_path, "--val-fraction", "0.3", "--workers", "1")
    assert (tmp_path / "lists" / "t_val_img.json").read_text() == first


def test_pairs_layout_with_smaller_masks(tmp_path):
    src = tmp_path / "pairs"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    for i in range(3):
        photo, alpha = synthetic_portrait(i)
        cv2.imwrite(str(src / "images" / f"{i:05d}.jpg"), photo)
        cv2.imwrite(str(src / "masks" / f"{i:05d}.png"), cv2.resize(np.where(alpha > 127, 255, 0).astype(np.uint8), (48, 64)))
    assert run(src, tmp_path, "--val-fraction", "0.34") == 0
    alpha = cv2.imread(str(tmp_path / "out" / "alpha" / "00000.png"), cv2.IMREAD_UNCHANGED)
    assert alpha.shape == (128, 96)  # resized to the photo
    assert len(json.loads((tmp_path / "lists" / "t_val_img.json").read_text())) == 1


def test_bad_src_is_one_line_error(tmp_path):
    for src in (tmp_path / "missing", tmp_path):
        r = subprocess.run([sys.executable, str(REPO / "prepare_aifenge.py"), "--src", str(src), "--out", str(tmp_path / "o")],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_pairs_layout_mask_suffix_and_rgba_masks(tmp_path):
    """`<id>_mask.png` pairs with `<id>.jpg`; an RGBA mask gives its alpha channel, not its grey colours."""
    src = tmp_path / "pairs"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    photo, alpha = synthetic_portrait(1)
    cv2.imwrite(str(src / "images" / "a.jpg"), photo)
    cv2.imwrite(str(src / "masks" / "a_mask.png"), alpha)
    cv2.imwrite(str(src / "images" / "b.jpg"), photo)
    cv2.imwrite(str(src / "masks" / "b.png"), np.dstack([np.zeros_like(photo), alpha]))  # black RGB, real alpha
    assert run(src, tmp_path, "--val-fraction", "0") == 0
    for name in ("a", "b"):
        out = cv2.imread(str(tmp_path / "out" / "alpha" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert (out == alpha).all()


def test_changed_trimap_settings_rebuild_the_trimaps(raw_tree, tmp_path, capsys):
    src, expected = raw_tree
    assert run(src, tmp_path) == 0
    trimap_file = next((tmp_path / "out" / "trimap").iterdir())
    wide = (cv2.imread(str(trimap_file), cv2.IMREAD_UNCHANGED) == 128).sum()
    capsys.readouterr()
    assert run(src, tmp_path, "--kernel", "4") == 0
    assert "settings changed" in capsys.readouterr().out
    narrow = (cv2.imread(str(trimap_file), cv2.IMREAD_UNCHANGED) == 128).sum()
    assert narrow < wide
    assert run(src, tmp_path, "--kernel", "4") == 0
    assert f"already done {expected['good']}" in capsys.readouterr().out


def test_a_failing_sample_is_reported_not_fatal(raw_tree, tmp_path, monkeypatch):
    src, expected = raw_tree
    real = prepare_aifenge.write_image

    def disk_full_once(path, image, params=None):
        if "1803151818-00000000" in str(path):
            raise OSError(28, "No space left on device")
        return real(path, image, params)

    monkeypatch.setattr(prepare_aifenge, "write_image", disk_full_once)
    assert run(src, tmp_path, "--workers", "1") == 0
    report = (tmp_path / "out" / "prepare_report.txt").read_text()
    assert "No space left on device" in report
    assert len(list((tmp_path / "out" / "trimap").iterdir())) == expected["good"] - 1


def test_pairs_with_the_same_name_are_one_sample_not_two(tmp_path):
    """`a.jpg` and `a.png` in one folder would both write out/alpha/a.png: the second is rejected as a
    duplicate sample name, listed in the report, and the first converted once."""
    import prepare_aifenge

    src = tmp_path / "pairs"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    photo, alpha = synthetic_portrait(2)
    cv2.imwrite(str(src / "images" / "a.jpg"), photo)
    cv2.imwrite(str(src / "images" / "a.png"), photo)
    cv2.imwrite(str(src / "masks" / "a.png"), alpha)
    layout, samples, problems = prepare_aifenge.find_samples(src)
    assert layout == "pairs" and [s["name"] for s in samples] == ["a"]
    assert [(Path(p).name, why) for p, why in problems] == [("a.png", "duplicate sample name")]
    assert run(src, tmp_path, "--val-fraction", "0") == 0
    assert json.loads((tmp_path / "lists" / "t_img.json").read_text()) == ["../out/img/a.jpg"]
    assert "duplicate sample name" in (tmp_path / "out" / "prepare_report.txt").read_text()


# --------------------------------------------------------------- interrupted runs never leave a mixed set
def interrupt_after(monkeypatch, n):
    """Ctrl-C after ``n`` samples have been converted (with --workers 1 the conversion runs in this process)."""
    real, calls = prepare_aifenge.convert, {"n": 0}

    def convert(job):
        if calls["n"] == n:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(job)

    monkeypatch.setattr(prepare_aifenge, "convert", convert)
    return real


def trimaps_match_kernel(tmp_path, kernel):
    """Whether every trimap on disk is the one of its alpha with this kernel."""
    out = tmp_path / "out"
    names = [p.stem for p in (out / "trimap").iterdir()]
    return names and all(
        (cv2.imread(str(out / "trimap" / f"{n}.png"), cv2.IMREAD_UNCHANGED)
         == make_trimap(cv2.imread(str(out / "alpha" / f"{n}.png"), cv2.IMREAD_UNCHANGED), 50, kernel)).all()
        for n in names)


def test_an_interrupted_change_of_settings_is_redone_not_reported_done(raw_tree, tmp_path, capsys, monkeypatch):
    """Convert fully (kernel 10), re-run with --kernel 6 and interrupt it halfway, re-run with kernel 10: the
    samples already redone with kernel 6 must be converted again, not counted as 'already done'."""
    src, expected = raw_tree
    assert run(src, tmp_path, "--workers", "1") == 0
    real = interrupt_after(monkeypatch, 5)
    assert run(src, tmp_path, "--workers", "1", "--kernel", "6") == 130
    assert not trimaps_match_kernel(tmp_path, 10) and not trimaps_match_kernel(tmp_path, 6)  # mixed on disk
    monkeypatch.setattr(prepare_aifenge, "convert", real)
    capsys.readouterr()
    assert run(src, tmp_path, "--workers", "1") == 0
    out = capsys.readouterr().out
    assert "settings changed for 5 converted samples" in out
    assert f"converted 5, already done {expected['good'] - 5}" in out
    assert trimaps_match_kernel(tmp_path, 10)


def test_an_interrupted_first_run_with_other_settings_is_redone(raw_tree, tmp_path, capsys, monkeypatch):
    src, expected = raw_tree
    real = interrupt_after(monkeypatch, 4)
    assert run(src, tmp_path, "--workers", "1", "--kernel", "6") == 130
    monkeypatch.setattr(prepare_aifenge, "convert", real)
    capsys.readouterr()
    assert run(src, tmp_path, "--workers", "1") == 0
    assert f"converted {expected['good']}, already done 0" in capsys.readouterr().out
    assert trimaps_match_kernel(tmp_path, 10)
    # and the same settings again: everything is done
    assert run(src, tmp_path, "--workers", "1") == 0
    assert f"converted 0, already done {expected['good']}" in capsys.readouterr().out


def test_mattes_without_a_photo_are_reported(raw_tree, tmp_path, capsys):
    src, _ = raw_tree
    orphan = src / "matting" / "1803151818" / "matting_00000000" / "1803151818-orphan.png"
    cv2.imwrite(str(orphan), np.zeros((128, 96, 4), np.uint8))
    assert run(src, tmp_path) == 0
    assert "1 mattes without a photo" in capsys.readouterr().out
    report = (tmp_path / "out" / "prepare_report.txt").read_text()
    assert f"{orphan}\tmatte without a photo" in report


def test_a_full_disk_at_the_end_keeps_the_report_and_names_the_file(raw_tree, tmp_path, monkeypatch, capsys):
    import utils

    src, _ = raw_tree
    real = prepare_aifenge.atomic_write_bytes

    def full_for_lists(path, data):
        if Path(path).parent != tmp_path / "lists":
            return real(path, data)
        with utils.atomic_path(path), open("/dev/full", "wb") as f:  # the real ENOSPC error, while writing the list
            f.write(data)
            f.flush()

    monkeypatch.setattr(prepare_aifenge, "atomic_write_bytes", full_for_lists)
    assert run(src, tmp_path, "--workers", "1") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err == f"prepare_aifenge.py: error: {tmp_path / 'lists' / 't_img.json'}: No space left on device"
    report = (tmp_path / "out" / "prepare_report.txt").read_text()
    assert "corrupt" in report and "nomatte" in report  # written before the lists failed
    assert not list((tmp_path / "lists").glob("*"))  # no torn list


def test_out_or_lists_dir_that_is_a_file_fails_before_any_work(raw_tree, tmp_path, capsys):
    src, _ = raw_tree
    (tmp_path / "lists").write_text("a file")
    assert run(src, tmp_path) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"prepare_aifenge.py: error: {tmp_path / 'lists'}: --lists-dir is a file, not a folder"
    assert not (tmp_path / "out").exists()  # nothing converted


def tree_digest(root: Path) -> dict:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "prepare_report.txt"}


def test_a_rerun_after_a_kill_removes_half_written_files_and_matches_a_clean_run(raw_tree, tmp_path, capsys):
    """A SIGKILL leaves the temp files of the atomic writes behind (no cleanup runs); the re-run removes them,
    so its result is byte for byte an uninterrupted run's."""
    src, _ = raw_tree
    clean = tmp_path / "clean"
    assert run(src, clean) == 0
    killed = tmp_path / "killed"
    assert run(src, killed) == 0
    out = killed / "out"
    # the state a kill leaves: some samples missing, half-written temp files beside their targets
    for kind in ("img", "alpha", "trimap"):
        sorted((out / kind).iterdir())[0].unlink()
        (out / kind / f".half.png.{kind}x1.tmp").write_bytes(b"\x89PNG half")
    (killed / "lists" / ".t_img.json.ab12.tmp").write_text("[")
    (killed / "lists" / "notes.tmp").write_text("not ours")  # only the atomic writes' temp names are removed
    capsys.readouterr()
    assert run(src, killed) == 0
    assert "removed 4 unfinished temp files" in capsys.readouterr().out
    (killed / "lists" / "notes.tmp").unlink()
    assert tree_digest(killed) == tree_digest(clean)


def test_a_killed_conversion_resumes_to_the_same_result(tmp_path):
    """A real SIGKILL half-way through (bench_prepare.py --kill-resume on a synthetic AISegment tree)."""
    run_bench = subprocess.run([sys.executable, str(REPO / "bench" / "bench_prepare.py"), "--aisegment", "60",
                                "--workers", "1", "--kill-resume", "--tmp", str(tmp_path)],
                               capture_output=True, text=True, timeout=600)
    assert run_bench.returncode == 0, run_bench.stderr[-2000:]
    figures = json.loads(run_bench.stdout)["figures"]
    kill = figures["kill_resume"]
    assert kill["killed"] and 0 < kill["done_when_killed"] < 60
    assert 0 < kill["resumed"]["already_done"] < 60  # the re-run kept what the killed run had finished
    assert kill["resumed"]["converted"] + kill["resumed"]["already_done"] == 60
    assert kill["identical_to_uninterrupted"] is True
    (run_,) = figures["runs"]
    assert run_["converted"] == 60 and run_["cpu_seconds"] > 0 and run_["peak_pss_mib"] > 0
    assert list(tmp_path.iterdir()) == []  # the temp data is gone
