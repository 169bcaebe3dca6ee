"""prepare_aifenge.py's pairing, split, lists and journal, piece by piece (found by mutation testing,
bench/mutation.sh, issue 13): what a data set converted for training is made of."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import prepare_aifenge as P
from conftest import synthetic_portrait


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
    paths = P.output_paths(tmp_path, {"name": "a", "photo": "x/A.JPEG"})
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
    return sample, P.output_paths(tmp_path / "out", sample)


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
            P.parse_args(["--src", "x", *argv])
        assert info.value.code == 2
    args = P.parse_args(["--src", "x", "--threshold", "0", "--val-fraction", "0"])
    assert args.threshold == 0 and args.val_fraction == 0 and args.kernel == 10 and args.name == "aifenge"
