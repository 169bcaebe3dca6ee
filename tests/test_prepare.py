"""prepare_aifenge.py on a synthetic raw tree: outputs, skips, lists, split, re-runs, errors; and its pairing,
split, lists and journal piece by piece (found by mutation testing): what a data set converted for training
is made of."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import prepare_aifenge
import datasets.prepare as P  # the conversion behind prepare_aifenge.py
from conftest import REPO, pairs_folder, synthetic_portrait
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
    src = pairs_folder(tmp_path / "pairs", 3, "{i:05d}",
                       lambda alpha: cv2.resize(np.where(alpha > 127, 255, 0).astype(np.uint8), (48, 64)))
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
    src = pairs_folder(tmp_path / "pairs")
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
    real = P.write_image

    def disk_full_once(path, image, params=None):
        if "1803151818-00000000" in str(path):
            raise OSError(28, "No space left on device")
        return real(path, image, params)

    monkeypatch.setattr(P, "write_image", disk_full_once)
    assert run(src, tmp_path, "--workers", "1") == 0
    report = (tmp_path / "out" / "prepare_report.txt").read_text()
    assert "No space left on device" in report
    assert len(list((tmp_path / "out" / "trimap").iterdir())) == expected["good"] - 1


def test_pairs_with_the_same_name_are_one_sample_not_two(tmp_path):
    """`a.jpg` and `a.png` in one folder would both write out/alpha/a.png: the second is rejected as a
    duplicate sample name, listed in the report, and the first converted once."""
    src = pairs_folder(tmp_path / "pairs")
    photo, alpha = synthetic_portrait(2)
    cv2.imwrite(str(src / "images" / "a.jpg"), photo)
    cv2.imwrite(str(src / "images" / "a.png"), photo)
    cv2.imwrite(str(src / "masks" / "a.png"), alpha)
    layout, samples, problems = P.find_samples(src)
    assert layout == "pairs" and [s["name"] for s in samples] == ["a"]
    assert [(Path(p).name, why) for p, why in problems] == [("a.png", "duplicate sample name")]
    assert run(src, tmp_path, "--val-fraction", "0") == 0
    assert json.loads((tmp_path / "lists" / "t_img.json").read_text()) == ["../out/img/a.jpg"]
    assert "duplicate sample name" in (tmp_path / "out" / "prepare_report.txt").read_text()


# --------------------------------------------------------------- interrupted runs never leave a mixed set
def interrupt_after(monkeypatch, n):
    """Ctrl-C after ``n`` samples have been converted (with --workers 1 the conversion runs in this process)."""
    real, calls = P.convert, {"n": 0}

    def convert(job):
        if calls["n"] == n:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(job)

    monkeypatch.setattr(P, "convert", convert)
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
    monkeypatch.setattr(P, "convert", real)
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
    monkeypatch.setattr(P, "convert", real)
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
    real = P.atomic_write_bytes

    def full_for_lists(path, data):
        if Path(path).parent != tmp_path / "lists":
            return real(path, data)
        with utils.atomic_path(path), open("/dev/full", "wb") as f:  # the real ENOSPC error, while writing the list
            f.write(data)
            f.flush()

    monkeypatch.setattr(P, "atomic_write_bytes", full_for_lists)
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


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------- pairing
def test_aisegment_pairs_only_within_a_shoot_group(tmp_path):
    root = tmp_path / "raw"
    touch(root / "clip_img" / "g1" / "clip_00000000" / "a.jpg")
    touch(root / "matting" / "g1" / "matting_00000000" / "a.png")
    touch(root / "clip_img" / "g2" / "clip_00000000" / "b.JPG")          # upper-case suffix is a photo too
    touch(root / "matting" / "g2" / "matting_00000000" / "b.png")
    touch(root / "clip_img" / "g2" / "clip_00000000" / "c.jpg")          # its matte sits in another group
    touch(root / "matting" / "g3" / "matting_00000000" / "c.png")
    touch(root / "clip_img" / "g1" / "clip_00000000" / "notes.txt")      # not a photo
    touch(root / "matting" / "g1" / "matting_00000000" / "a_mask.png")   # '_mask' means nothing here
    layout, samples, problems = P.find_samples(root)
    assert layout == "aisegment"
    assert [(s["name"], s["group"]) for s in samples] == [("a", "g1"), ("b", "g2")]
    assert samples[0]["photo"].endswith("a.jpg") and samples[0]["matte"].endswith(os.path.join("g1", "matting_00000000", "a.png"))
    assert [(Path(p).name, why) for p, why in problems] == [
        ("c.jpg", "no matte with the same name"),
        ("a_mask.png", "matte without a photo"), ("c.png", "matte without a photo")]


def test_pairs_layout_each_sample_its_own_group_and_mask_suffix(tmp_path):
    root = tmp_path / "pairs"
    for name in ("x.png", "y.webp", "z.bmp"):
        touch(root / "images" / name)
    touch(root / "masks" / "x_mask.png")
    touch(root / "masks" / "y.png")
    touch(root / "masks" / "sub" / "z.png")                                # mattes may sit in sub-folders
    touch(root / "masks" / "w.jpg")                                        # not a PNG matte: ignored
    layout, samples, problems = P.find_samples(root)
    assert layout == "pairs" and [(s["name"], s["group"]) for s in samples] == [("x", "x"), ("y", "y"), ("z", "z")]
    assert problems == []
    with pytest.raises(P.PrepareError, match="holds neither clip_img/ \\+ matting/ \\(AISegment\\) nor images/ \\+ masks/"):
        P.find_samples(tmp_path)
    for only in ("clip_img", "matting", "images", "masks"):                # one folder of a pair is not a layout
        half = tmp_path / f"half-{only}"
        touch(half / only / "a.png")
        with pytest.raises(P.PrepareError, match="holds neither"):
            P.find_samples(half)


def test_output_names_keep_the_photo_suffix_in_lower_case(tmp_path):
    paths = P.sample_paths(tmp_path, {"name": "a", "photo": "x/A.JPEG"})
    assert paths == {"img": tmp_path / "img" / "a.jpeg", "alpha": tmp_path / "alpha" / "a.png",
                     "trimap": tmp_path / "trimap" / "a.png"}


def test_truncated_jpeg_is_seen_by_its_missing_end_marker(tmp_path):
    photo, _ = synthetic_portrait(0)
    ok, buf = cv2.imencode(".jpg", photo)
    whole = touch(tmp_path / "whole.jpg", buf.tobytes())
    cut = touch(tmp_path / "cut.jpg", buf.tobytes()[: len(buf) // 2])
    tiny = touch(tmp_path / "tiny.jpg", b"\xff\xd8\xff\xd9")                # shorter than the 64 bytes looked at
    assert not P.is_truncated_jpeg(str(whole)) and P.is_truncated_jpeg(str(cut)) and not P.is_truncated_jpeg(str(tiny))


# ------------------------------------------------------------------------------------------- conversion
def sample_files(tmp_path, matte: np.ndarray, photo_size=(128, 96), suffix=".jpg"):
    photo, _ = synthetic_portrait(1, photo_size[1], photo_size[0])
    p = tmp_path / f"p{suffix}"
    cv2.imwrite(str(p), photo)
    m = tmp_path / "m.png"
    cv2.imwrite(str(m), matte)
    sample = {"name": "s", "group": "s", "photo": str(p), "matte": str(m)}
    return sample, P.sample_paths(tmp_path / "out", sample)


def test_a_16_bit_mask_is_scaled_to_8_bits(tmp_path):
    _, alpha = synthetic_portrait(1)
    sample, paths = sample_files(tmp_path, alpha.astype(np.uint16) * 257)
    assert P.convert_sample(sample, paths, "pairs", 50, 10) is None
    out = cv2.imread(str(paths["alpha"]), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint8 and (out == alpha).all()
    assert (cv2.imread(str(paths["trimap"]), cv2.IMREAD_UNCHANGED) == P.make_trimap(alpha, 50, 10)).all()
    assert paths["img"].read_bytes() == Path(sample["photo"]).read_bytes()


def test_a_colour_mask_is_read_as_grey_and_a_small_one_of_the_same_shape_resized(tmp_path):
    _, alpha = synthetic_portrait(1)
    small = cv2.resize(alpha, (48, 64), interpolation=cv2.INTER_AREA)
    sample, paths = sample_files(tmp_path, cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
    assert P.convert_sample(sample, paths, "pairs", 50, 10) is None
    out = cv2.imread(str(paths["alpha"]), cv2.IMREAD_UNCHANGED)
    assert out.shape == (128, 96) and np.abs(out.astype(int) - alpha).mean() < 8


@pytest.mark.parametrize("matte_shape,layout,reason", [
    ((64, 64), "pairs", "matte is 64×64, photo 96×128"),                   # another aspect ratio
    ((64, 48), "aisegment", "matte has no alpha channel"),
])
def test_mattes_that_dont_fit_are_skipped_with_a_reason(tmp_path, matte_shape, layout, reason):
    sample, paths = sample_files(tmp_path, np.zeros(matte_shape, np.uint8))
    assert P.convert_sample(sample, paths, layout, 50, 10) == reason
    assert not paths["alpha"].exists()


def test_an_aisegment_matte_of_another_size_is_skipped(tmp_path):
    sample, paths = sample_files(tmp_path, np.zeros((64, 48, 4), np.uint8))
    assert P.convert_sample(sample, paths, "aisegment", 50, 10) == "matte is 48×64, photo 96×128"


# --------------------------------------------------------------------------------------- split and lists
def samples_in_groups(sizes: dict[str, int]) -> list[dict]:
    return [{"name": f"{g}-{i}", "group": g, "photo": f"{g}-{i}.jpg"} for g, n in sizes.items() for i in range(n)]


def sha_order(groups):
    return sorted(groups, key=lambda g: hashlib.sha1(g.encode()).hexdigest())


def test_split_takes_whole_groups_in_hash_order_until_the_share_is_reached():
    sizes = {f"g{i}": n for i, n in enumerate((5, 3, 8, 2, 6, 4, 1, 7))}
    samples = samples_in_groups(sizes)
    n = len(samples)
    for fraction in (0.05, 0.1, 0.3, 0.5):
        train, val = P.split_by_group(samples, fraction)
        target = max(1, round(fraction * n))
        expected, count = [], 0
        for g in sha_order(sizes)[:-1]:
            if count >= target:
                break
            expected.append(g)
            count += sizes[g]
        assert {s["group"] for s in val} == set(expected)
        assert [s for s in samples if s not in val] == train and len(train) + len(val) == n
        assert not {s["group"] for s in train} & {s["group"] for s in val}
    assert P.split_by_group(samples, 0) == (samples, [])
    train, val = P.split_by_group(samples, 0.99)                          # never every group: one stays for training
    assert {s["group"] for s in train} == {sha_order(sizes)[-1]}
    single = samples_in_groups({"only": 4})
    assert P.split_by_group(single, 0.5) == (single, [])


def test_lists_are_relative_to_the_lists_folder_and_index_aligned(tmp_path):
    samples = [{"name": "a", "photo": "/x/a.PNG"}, {"name": "b", "photo": "/x/b.jpg"}]
    out, lists = tmp_path / "data" / "out", tmp_path / "lists"
    written = P.write_lists(samples, out, lists, "set")
    assert written == [lists / "set_img.json", lists / "set_alpha.json", lists / "set_trimap.json"]
    img, alpha, trimap = (json.loads(p.read_text()) for p in written)
    assert img == ["../data/out/img/a.png", "../data/out/img/b.jpg"]
    assert alpha == ["../data/out/alpha/a.png", "../data/out/alpha/b.png"] and trimap[1] == "../data/out/trimap/b.png"


# ------------------------------------------------------------------------------------- journal, leftovers
def test_the_journal_records_settings_per_sample_and_ignores_a_torn_line(tmp_path):
    key = P.settings_key(50, 10)
    assert key == "threshold=50,kernel=10" and P.settings_key(60, 6) != key
    journal = P.Journal(tmp_path, key)
    journal.add("a")
    journal.add("b")
    journal.close()
    with open(tmp_path / P.JOURNAL, "a") as f:
        f.write("threshold=50,kernel=6\tc\nthreshold=50")                  # an old setting, then a line cut by a crash
    assert P.read_journal(tmp_path, key) == {"a": key, "b": key, "c": "threshold=50,kernel=6"}


def test_without_a_journal_only_a_finished_run_with_the_same_settings_is_trusted(tmp_path):
    key = P.settings_key(50, 10)
    touch(tmp_path / "trimap" / "a.png")
    touch(tmp_path / "trimap" / "b.png")
    assert P.read_journal(tmp_path, key) == {}                             # nothing says how they were made
    (tmp_path / P.PARAMS).write_text(json.dumps({"threshold": 50, "kernel": 10}))
    assert P.read_journal(tmp_path, key) == {"a": key, "b": key}
    (tmp_path / P.PARAMS).write_text(json.dumps({"threshold": 50, "kernel": 6}))
    assert P.read_journal(tmp_path, key) == {}
    (tmp_path / P.PARAMS).write_text("{not json")
    assert P.read_journal(tmp_path, key) == {}


def test_only_half_written_temp_files_are_removed(tmp_path):
    out, lists = tmp_path / "out", tmp_path / "lists"
    leftovers = [touch(out / "img" / ".a.jpg.x1.tmp"), touch(out / "trimap" / ".a.png.x2.tmp"),
                 touch(out / ".prepare_report.txt.x3.tmp"), touch(lists / ".set_img.json.x4.tmp")]
    kept = [touch(out / "img" / "a.jpg"), touch(out / "img" / "a.tmp"), touch(lists / ".other_img.json.x5.tmp"),
            touch(out / "alpha" / ".b.png.x6.bak")]
    (out / "img" / ".dir.tmp").mkdir()
    assert P.remove_unfinished(out, lists, "set") == 4
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)


def test_argument_checks(capsys):
    for argv in (["--threshold", "255"], ["--threshold", "-1"], ["--val-fraction", "1"], ["--kernel", "0"],
                 ["--workers", "0"]):
        with pytest.raises(SystemExit) as info:
            prepare_aifenge.parse_args(["--src", "x", *argv])
        assert info.value.code == 2
    args = prepare_aifenge.parse_args(["--src", "x", "--threshold", "0", "--val-fraction", "0"])
    assert args.threshold == 0 and args.val_fraction == 0 and args.kernel == 10 and args.name == "aifenge"
