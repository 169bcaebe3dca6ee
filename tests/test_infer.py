"""End-to-end tests of infer.py: the whole pipeline with a small checkpoint made here, batch mode, bad input,
the user's spec files (--spec-file, --list-specs)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from idphoto import cli as infer  # the command behind infer.py
from idphoto import batch
import models
from idphoto.specs import SPECS, get_spec
from models import TNet
from utils import save_checkpoint
from conftest import ASTRONAUT, USER_SPEC, person_mask, use_known_tnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
OUTPUT_NAMES = ("trimap.png", "alpha.png", "cutout.png", "idphoto.jpg")


@pytest.fixture
def person(monkeypatch):
    """A TNet that sees a known person (a random-init one segments no one: the ID photo would be blank)."""
    use_known_tnet(monkeypatch)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Small test photos: a portrait with a face, and odd files."""
    d = tmp_path_factory.mktemp("photos")
    portrait = Image.open(ASTRONAUT).convert("RGB").resize((240, 240))
    portrait.save(d / "face.jpg", quality=92)
    portrait.convert("L").save(d / "gray.jpg")
    rgba = portrait.convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255))
    rgba.save(d / "with_alpha.png")
    ex = Image.Exif()
    ex[0x0112] = 6  # stored rotated: shown 240 wide × 180 high once upright
    portrait.resize((240, 180)).transpose(Image.Transpose.ROTATE_90).save(d / "exif.jpg", exif=ex)
    shutil.copy(d / "face.jpg", d / "证件照 测试.jpg")
    (d / "not_an_image.jpg").write_bytes(b"this is text")
    data = (d / "face.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.full((200, 160, 3), 180, np.uint8)).save(d / "no_face.png")
    return d


def run_cli(capsys, *args):
    rc = infer.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def outputs(out_dir: Path, stem: str) -> list[Path]:
    return [out_dir / f"{stem}_{name}" for name in OUTPUT_NAMES]


def test_the_matte_files_only_when_asked(capsys, checkpoint, photos, tmp_path, person):
    rc, out, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path,
                           "--input-size", 160)
    assert rc == 0, err
    trimap_p, alpha_p, cutout_p, id_p = outputs(tmp_path, "face")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face_idphoto.jpg", "face_report.json"]
    assert str(id_p) in out and "trimap.png" not in out


def test_full_pipeline_writes_correct_files(capsys, checkpoint, photos, tmp_path, person):
    rc, out, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path,
                           "--input-size", 160, "--spec", "1inch", "--bg", "blue", "--layout", "6inch", "--max-kb", 40,
                           "--matte-files")
    assert rc == 0, err
    trimap_p, alpha_p, cutout_p, id_p = outputs(tmp_path, "face")
    for p in (trimap_p, alpha_p, cutout_p, id_p):
        assert str(p) in out
    assert "time" in out and "trimap" in out and "alpha" in out
    trimap = cv2.imread(str(trimap_p), cv2.IMREAD_UNCHANGED)
    assert trimap.shape == (240, 240) and set(np.unique(trimap)) == {0, 128, 255}
    alpha = cv2.imread(str(alpha_p), cv2.IMREAD_UNCHANGED)
    assert alpha.shape == (240, 240)
    assert np.mean((alpha >= 128) == (person_mask(240, 240) > 0)) > 0.97  # the matte follows the person
    cutout = cv2.imread(str(cutout_p), cv2.IMREAD_UNCHANGED)
    assert cutout.shape == (240, 240, 4) and np.array_equal(cutout[..., 3], alpha)
    with Image.open(id_p) as im:
        assert im.size == (295, 413) and tuple(round(v) for v in im.info["dpi"]) == (300, 300)
        photo = np.asarray(im.convert("RGB")).astype(int)
    blue = (0x43, 0x8E, 0xDB)
    for corner in (photo[:8, :8], photo[:8, -8:]):  # above and beside the head: the background colour
        assert np.abs(corner.reshape(-1, 3) - blue).max() <= 6
    # the face is where the spec puts it (head from 10 % to 70 % of the height, centred): not background
    face = photo[int(0.40 * 413) - 4:int(0.40 * 413) + 4, 147 - 4:147 + 4].reshape(-1, 3)
    assert np.abs(face - blue).max(1).min() > 60
    assert id_p.stat().st_size <= 40 * 1024
    with Image.open(tmp_path / "face_sheet_6inch.jpg") as sheet:
        assert sorted(sheet.size) == [1200, 1800] and tuple(round(v) for v in sheet.info["dpi"]) == (300, 300)
    assert not list(tmp_path.glob(".*.tmp"))


def test_custom_size_and_spec_none(capsys, checkpoint, photos, tmp_path, person):
    rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path,
                         "--input-size", 160, "--size-mm", 35, 45, "--dpi", 600, "--bg", "#FF0000")
    assert rc == 0, err
    with Image.open(tmp_path / "face_idphoto.jpg") as im:
        assert im.size == (827, 1063) and tuple(round(v) for v in im.info["dpi"]) == (600, 600)
    rc, _, err = run_cli(capsys, "--image", photos / "exif.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path,
                         "--input-size", 160, "--spec", "none")
    assert rc == 0, err
    with Image.open(tmp_path / "exif_idphoto.jpg") as im:
        assert im.size == (240, 180)  # EXIF rotation applied
        photo = np.asarray(im.convert("RGB")).astype(int)
    for corner in (photo[:6, :6], photo[:6, -6:], photo[-6:, :6], photo[-6:, -6:]):  # off the person: white
        assert np.abs(corner.reshape(-1, 3) - 255).max() <= 6
    assert np.abs(photo[int(0.21 * 180), int(0.435 * 240)] - 255).max() > 40  # the face is still there
    assert cv2.imread(str(tmp_path / "exif_trimap.png"), cv2.IMREAD_UNCHANGED).shape == (180, 240)


@pytest.mark.parametrize("name", ["gray.jpg", "with_alpha.png", "证件照 测试.jpg"])
def test_odd_but_valid_inputs(capsys, checkpoint, photos, tmp_path, name, person):
    rc, _, err = run_cli(capsys, "--image", photos / name, "--checkpoint", checkpoint, "--out-dir", tmp_path / "输出",
                         "--input-size", 160, "--spec", "small-2inch")
    assert rc == 0, err
    with Image.open(tmp_path / "输出" / f"{Path(name).stem}_idphoto.jpg") as im:
        assert im.size == (413, 531)


def test_twelve_megapixel_photo(capsys, checkpoint, tmp_path, person):
    big = tmp_path / "big.jpg"
    photo = Image.open(ASTRONAUT).convert("RGB").resize((3000, 4000), Image.Resampling.BILINEAR)
    photo.save(big, quality=80)
    made = {}
    for extra in ([], ["--matte-files"]):  # worked at the ID photo's size; the whole photo matted as well
        out_dir = tmp_path / ("whole" if extra else "small")
        rc, out, err = run_cli(capsys, "--image", big, "--checkpoint", checkpoint, "--out-dir", out_dir,
                               "--input-size", 160, "--spec", "icao", *extra)
        assert rc == 0, err
        with Image.open(out_dir / "big_idphoto.jpg") as im:
            assert im.size == (413, 531)
            made[bool(extra)] = np.asarray(im.convert("L")).astype(float)
    assert cv2.imread(str(tmp_path / "whole" / "big_alpha.png"), cv2.IMREAD_UNCHANGED).shape == (4000, 3000)
    assert not (tmp_path / "small" / "big_alpha.png").exists()
    # the same ID photo either way: same framing, same edges (JPEG and resampling noise only)
    assert np.abs(made[True] - made[False]).mean() < 3


def test_hd_writes_a_high_resolution_copy_when_the_photo_has_the_pixels(capsys, checkpoint, tmp_path, person):
    big = tmp_path / "big.jpg"
    Image.open(ASTRONAUT).convert("RGB").resize((2000, 2000), Image.Resampling.BILINEAR).save(big, quality=90)
    rc, out, err = run_cli(capsys, "--image", big, "--checkpoint", checkpoint, "--out-dir", tmp_path / "o",
                           "--input-size", 160, "--hd")
    assert rc == 0, err
    with Image.open(tmp_path / "o" / "big_idphoto_hd.jpg") as im:
        assert im.size == (591, 827) and round(im.info["dpi"][0]) == 600
    assert "big_idphoto_hd.jpg" in out
    rc, out, err = run_cli(capsys, "--image", ASTRONAUT, "--checkpoint", checkpoint, "--out-dir", tmp_path / "s",
                           "--input-size", 160, "--hd")   # 512 px: fewer pixels than a 1-inch photo has
    assert rc == 0 and not (tmp_path / "s" / "astronaut_idphoto_hd.jpg").exists()
    assert "no high-resolution copy" in out + err


def one_line_error(rc, err):
    assert rc != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("name,message", [
    ("missing.jpg", "file not found"),
    ("not_an_image.jpg", "not an image"),
    ("truncated.jpg", "truncated"),
    ("no_face.png", "no face"),
])
def test_bad_inputs_fail_in_one_line_and_leave_nothing(capsys, checkpoint, photos, tmp_path, name, message, person):
    rc, _, err = run_cli(capsys, "--image", photos / name, "--checkpoint", checkpoint, "--out-dir", tmp_path,
                         "--input-size", 160)
    one_line_error(rc, err)
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_no_face_ok_centres_on_the_mask(capsys, checkpoint, photos, tmp_path, person):
    rc, _, err = run_cli(capsys, "--image", photos / "no_face.png", "--checkpoint", checkpoint, "--out-dir", tmp_path,
                         "--input-size", 160, "--no-face-ok")
    assert rc == 0, err
    assert "no face" in err  # a warning, not an error
    with Image.open(tmp_path / "no_face_idphoto.jpg") as im:
        assert im.size == (295, 413)


def test_bad_checkpoints(capsys, photos, tmp_path, monkeypatch):
    not_ckpt = tmp_path / "x.pth"
    not_ckpt.write_bytes(b"not a checkpoint")
    wrong = tmp_path / "wrong.pth"
    m = TNet("mobilenetv3", num_classes=2)
    save_checkpoint({"arch": {"backbone": "mobilenetv3", "num_classes": 3}, "model": m.state_dict()}, wrong)
    out = tmp_path / "out"
    for ckpt, message in ((not_ckpt, "not a readable PyTorch checkpoint"), (wrong, "do not fit"),
                          (tmp_path / "absent.pth", "not found")):
        rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", ckpt, "--out-dir", out)
        one_line_error(rc, err)
        assert message in err
    monkeypatch.setattr(models, "DEFAULT_WEIGHTS", tmp_path / "weights" / "tnet_unet_mobilenetv3.pth")
    rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--out-dir", out)
    one_line_error(rc, err)
    assert "no model weights" in err and "--checkpoint" in err
    assert not out.exists()


def test_max_kb_too_small_leaves_nothing(capsys, checkpoint, photos, tmp_path, person):
    rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path,
                         "--input-size", 160, "--max-kb", 0.3)
    one_line_error(rc, err)
    assert "--max-kb" in err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", ["1inch", "none"])
def test_no_person_is_an_error_not_a_blank_photo(capsys, checkpoint, photos, tmp_path, monkeypatch, spec):
    use_known_tnet(monkeypatch, person=False)  # TNet sees only background
    rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path / "o",
                         "--input-size", 160, "--spec", spec, "--no-face-ok")
    one_line_error(rc, err)
    assert "no person found" in err and not (tmp_path / "o").exists()
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "face.jpg", folder / "face.jpg")
    rc, stdout, err = run_cli(capsys, "--input-dir", folder, "--checkpoint", checkpoint, "--out-dir", tmp_path / "o",
                              "--input-size", 160, "--spec", spec, "--quiet")
    assert rc == 1 and "0 of 1 photos written (0 with all rules met, 0 with rules missed), 1 refused" in stdout and "no person found" in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.parametrize("spec,size,head_ratio", [("icao", ["--size-px", "600", "800"], 34 / 45),
                                                  ("icao", ["--size-mm", "40", "50"], 34 / 45),
                                                  ("us", ["--size-px", "500", "500"], 1.1875 / 2),
                                                  ("1inch", ["--size-mm", "30", "40"], 21.5 / 35)])
def test_custom_size_keeps_the_specs_head_rule(spec, size, head_ratio):
    parser = infer.build_parser()
    args = parser.parse_args(["--image", "x.jpg", "--spec", spec, *size])
    custom, _ = infer.resolve_options(args, parser)
    base = get_spec(spec)
    assert (custom.head, custom.eyes, custom.top) == (base.head, base.eyes, base.top)  # rules as fractions of the height
    assert custom.head_ratio == pytest.approx(head_ratio) and custom.name == f"custom size, {base.name} framing"
    expected = tuple(int(v) for v in size[1:]) if size[0] == "--size-px" else \
        tuple(round(float(v) / 25.4 * 300) for v in size[1:])
    assert custom.size_px == expected


@pytest.mark.parametrize("args,message", [
    (["--spec", "3inch"], "unknown standard"),
    (["--bg", "pink"], "not a colour"),
    (["--size-px", "0", "10"], "positive"),
    (["--spec", "none", "--size-px", "200", "200"], "--spec none"),
    (["--matting", "magic"], "invalid choice"),
    (["--spec", "none", "--hd"], "--hd: --spec none"),
    (["--head-size", "120"], "--head-size must be between 0 and 100"),
])
def test_usage_mistakes_are_one_line(capsys, photos, args, message):
    with pytest.raises(SystemExit) as info:
        infer.main(["--image", str(photos / "face.jpg"), *args])
    _, err = capsys.readouterr()
    assert info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_batch_skips_bad_files_and_summarises(capsys, checkpoint, photos, tmp_path, person):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("face.jpg", "gray.jpg", "not_an_image.jpg", "truncated.jpg"):
        shutil.copy(photos / name, folder / name)
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, "--input-dir", folder, "--checkpoint", checkpoint, "--out-dir", out,
                              "--input-size", 160, "--spec", "uk", "--workers", 1)  # the known TNet lives in this process
    assert rc == 1  # some photos were refused
    assert "2 of 4 photos written (2 with all rules met, 0 with rules missed), 2 refused" in stdout and "1 non-image files ignored" in stdout
    assert "not_an_image.jpg" in err and "truncated.jpg" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["face_idphoto.jpg", "face_report.json", "gray_idphoto.jpg",
                                                     "gray_report.json"]


def test_cli_entry_point_never_shows_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "infer.py"), "--image", str(tmp_path / "nope.jpg"),
                           "--out-dir", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    one_line_error(proc.returncode, proc.stderr)
    assert "file not found" in proc.stderr and not (tmp_path / "out").exists()
    proc = subprocess.run([sys.executable, str(REPO / "infer.py"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ("--image", "--input-dir", "--checkpoint", "--matting", "--spec", "--size-px", "--size-mm", "--dpi",
                 "--bg", "--no-face-ok", "--max-kb", "--layout", "--max-side", "--input-size", "--out-dir"):
        assert flag in proc.stdout


# ---------------------------------------------------------------- batch outputs: unique, never over inputs
def test_colliding_names_get_distinct_predictable_outputs(capsys, checkpoint, photos, tmp_path, person):
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["photo.JPG", "photo.jpg", "a.jpg", "a.png", "a_png.jpg"]
    portrait = Image.open(photos / "face.jpg")
    for i, name in enumerate(names):  # each input a different width, so every output tells its input
        portrait.resize((200 + 8 * i, 240)).save(folder / name, "PNG" if name.endswith(".png") else "JPEG")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, "--workers", 1, "--input-dir", folder, "--checkpoint", checkpoint, "--out-dir", out,
                              "--input-size", 160, "--spec", "none")
    assert rc == 0, err
    assert "5 of 5 photos written" in stdout
    expected = {"photo.JPG": "photo_jpg", "photo.jpg": "photo_jpg_2", "a.jpg": "a_jpg", "a.png": "a_png_2",
                "a_png.jpg": "a_png"}
    assert len({s.casefold() for s in expected.values()}) == 5
    for name, stem in expected.items():
        width = 200 + 8 * names.index(name)
        assert cv2.imread(str(out / f"{stem}_trimap.png"), cv2.IMREAD_UNCHANGED).shape == (240, width), name
        assert all(p.is_file() for p in outputs(out, stem))
    assert len(list(out.iterdir())) == 5 * len(OUTPUT_NAMES)
    assert "a.png → outputs named a_png_2_*" in err


def test_a_rerun_into_the_input_folder_never_takes_its_own_outputs_as_photos(capsys, checkpoint, photos, tmp_path, person):
    """Outputs carry the tool's mark: the second run over the same folder makes the same photo again (the
    same names, replaced), never <name>_idphoto_idphoto.jpg or a_2_*."""
    from idphoto.image_io import is_our_output

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "face.jpg", folder / "a.jpg")
    args = ["--workers", 1, "--input-dir", folder, "--checkpoint", checkpoint, "--out-dir", folder, "--input-size", 160]
    rc, stdout, _ = run_cli(capsys, *args)
    assert rc == 0 and "1 of 1 photos written" in stdout
    first = sorted(p.name for p in folder.iterdir())
    assert all(is_our_output(folder / n) for n in first if n != "a.jpg" and not n.endswith(".json"))
    assert not is_our_output(folder / "a.jpg")
    rc, stdout, err = run_cli(capsys, *args)
    assert rc == 0 and "1 of 1 photos written" in stdout, err
    assert "image(s) written by this tool (an earlier run's outputs) left out" in err
    assert sorted(p.name for p in folder.iterdir()) == first


def test_the_input_folder_as_out_dir_never_overwrites_an_input(capsys, checkpoint, photos, tmp_path, person):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "face.jpg", folder / "a.jpg")
    Image.open(photos / "face.jpg").resize((200, 240)).save(folder / "a_idphoto.jpg", quality=90)
    original = (folder / "a_idphoto.jpg").read_bytes()
    rc, stdout, err = run_cli(capsys, "--workers", 1, "--input-dir", folder, "--checkpoint", checkpoint, "--out-dir", folder,
                              "--input-size", 160, "--spec", "none")
    assert rc == 0, err
    assert "2 of 2 photos written" in stdout  # this run's outputs were not taken as inputs
    assert (folder / "a_idphoto.jpg").read_bytes() == original
    assert cv2.imread(str(folder / "a_2_trimap.png"), cv2.IMREAD_UNCHANGED).shape == (240, 240)
    assert cv2.imread(str(folder / "a_idphoto_trimap.png"), cv2.IMREAD_UNCHANGED).shape == (240, 200)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["a.jpg", "a_idphoto.jpg"] + [f"{stem}_{n}" for stem in ("a_2", "a_idphoto") for n in OUTPUT_NAMES])


def test_batch_skip_lines_and_summary_name_the_files(capsys, checkpoint, photos, tmp_path, person):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("face.jpg", "no_face.png", "truncated.jpg"):
        shutil.copy(photos / name, folder / name)
    rc, stdout, err = run_cli(capsys, "--workers", 1, "--input-dir", folder, "--checkpoint", checkpoint, "--out-dir", tmp_path / "o",
                              "--input-size", 160)
    assert rc == 1 and "1 of 3 photos written (1 with all rules met, 0 with rules missed), 2 refused" in stdout
    assert f"refused: {folder / 'no_face.png'}: no face found" in err
    assert f"refused: {folder / 'truncated.jpg'}: cannot decode image" in err
    assert "  refused: no_face.png: no face found" in stdout and "  refused: truncated.jpg: cannot decode" in stdout


def test_batch_summary_groups_and_exit_status(capsys, checkpoint, photos, tmp_path, person):
    """Three groups (written with all rules met, written with rules missed and which, refused and why), and
    an exit status of 0 exactly when every photo was written."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "face.jpg", folder / "face.jpg")
    common = ["--workers", 1, "--checkpoint", checkpoint, "--input-size", 160, "--spec", "cn-passport"]
    # a background colour the spec does not allow: a soft rule missed, the photo is written with a warning
    rc, stdout, _ = run_cli(capsys, *common, "--input-dir", folder, "--out-dir", tmp_path / "o1", "--bg", "#00FF00")
    assert rc == 0 and "1 of 1 photos written (0 with all rules met, 1 with rules missed), 0 refused" in stdout
    assert "  written, rules missed: face.jpg: background colour #00FF0" in stdout and "(allowed #FFFFFF)" in stdout
    assert (tmp_path / "o1" / "face_idphoto.jpg").is_file()
    shutil.copy(photos / "no_face.png", folder / "no_face.png")
    rc, stdout, _ = run_cli(capsys, *common, "--input-dir", folder, "--out-dir", tmp_path / "o2", "--bg", "#00FF00")
    assert rc == 1 and "1 of 2 photos written (0 with all rules met, 1 with rules missed), 1 refused" in stdout
    assert "  refused: no_face.png: no face found" in stdout and not list((tmp_path / "o2").glob("no_face*"))
    rc, stdout, _ = run_cli(capsys, *common, "--input-dir", folder, "--out-dir", tmp_path / "o3", "--bg", "#00FF00",
                            "--strict")   # --strict: a missed soft rule is a refusal too
    assert rc == 1 and "0 of 2 photos written" in stdout and "--strict: 1 rule(s) of cn-passport missed" in stdout


def test_batch_no_person_line_names_the_file(capsys, checkpoint, photos, tmp_path, monkeypatch):
    use_known_tnet(monkeypatch, person=False)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "face.jpg", folder / "face.jpg")
    rc, stdout, err = run_cli(capsys, "--input-dir", folder, "--checkpoint", checkpoint, "--out-dir", tmp_path / "o",
                              "--input-size", 160, "--quiet")
    assert rc == 1 and f"refused: {folder / 'face.jpg'}: no person found" in err
    assert "  refused: face.jpg: no person found" in stdout


# ------------------------------------------------------------------------- the out-dir, checked first
def test_out_dir_that_is_a_file_fails_first_in_one_line(capsys, checkpoint, photos, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(batch, "make_files", lambda *a: calls.append(a))
    target = tmp_path / "results"
    target.write_text("a file")
    for out in (target, target / "sub"):
        rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", checkpoint, "--out-dir", out)
        one_line_error(rc, err)
        assert "is a file, not a folder" in err and "File exists" not in err
    assert calls == [] and target.read_text() == "a file"


def test_unwritable_out_dir_is_found_before_any_photo(capsys, checkpoint, photos, tmp_path, monkeypatch):
    import tempfile

    calls = []
    monkeypatch.setattr(batch, "make_files", lambda *a: calls.append(a))
    out = tmp_path / "ro"
    out.mkdir()

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # what a read-only folder does (root ignores chmod)
    rc, _, err = run_cli(capsys, "--input-dir", photos, "--checkpoint", checkpoint, "--out-dir", out)
    one_line_error(rc, err)
    assert f"{out}: --out-dir is not writable (Permission denied)" in err and calls == []


def test_a_full_disk_names_the_output_and_leaves_nothing(capsys, checkpoint, photos, tmp_path, monkeypatch, person):
    import core.fileio

    def full(file, mode="r", *a, **k):  # the temporary files of the outputs: writes fail with ENOSPC, as on a full disk
        return open("/dev/full" if "w" in mode else file, mode, *a, **k)

    monkeypatch.setattr(core.fileio, "open", full, raising=False)
    rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", checkpoint, "--out-dir", tmp_path,
                         "--input-size", 160)
    monkeypatch.undo()
    one_line_error(rc, err)
    assert f"{tmp_path / 'face_idphoto.jpg'}: No space left on device" in err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- sizes, devices, files
@pytest.mark.parametrize("args,message", [
    (["--size-px", "1", "1", "--layout", "6inch"], "--size-px: 100 to 10000 px a side"),
    (["--size-px", "99", "400"], "--size-px: 100 to 10000 px a side"),
    (["--size-mm", "3", "4"], "gives 35×47 px"),
    (["--size-px", "120", "160", "--layout", "6inch"], "print sheets need at least 15 mm"),
    (["--dpi", "1"], "--dpi must be between 72 and 1200"),
])
def test_absurd_sizes_are_refused(capsys, photos, args, message):
    with pytest.raises(SystemExit) as info:
        infer.main(["--image", str(photos / "face.jpg"), *args])
    _, err = capsys.readouterr()
    assert info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_device_cuda_without_cuda_exits_1_like_train(capsys, photos, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--device", "cuda", "--out-dir", tmp_path / "o")
    one_line_error(rc, err)
    assert rc == 1 and "no CUDA device" in err
    with pytest.raises(SystemExit) as info:
        infer.main(["--image", str(photos / "face.jpg"), "--device", "gpu0"])
    assert info.value.code == 2


def test_empty_and_odd_checkpoints_are_one_line(capsys, photos, tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    arch_str = tmp_path / "arch.pth"
    save_checkpoint({"arch": "mobilenetv3", "model": TNet("mobilenetv3").state_dict()}, arch_str)
    for ckpt, message in ((empty, "is empty (0 bytes)"), (arch_str, "its 'arch' entry is a str")):
        rc, _, err = run_cli(capsys, "--image", photos / "face.jpg", "--checkpoint", ckpt, "--out-dir", tmp_path / "o")
        one_line_error(rc, err)
        assert message in err and str(ckpt) in err and "unexpected" not in err


@pytest.fixture(scope="module")
def person_checkpoint(tmp_path_factory) -> Path:
    """A compact TNet whose classifier bias makes every pixel 'person': worker processes load it from the
    file (a monkeypatched model does not reach them), and the photo still has a person to frame."""
    torch.manual_seed(0)
    m = TNet("mobilenetv3")
    with torch.no_grad():
        m.net.final.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))
    path = tmp_path_factory.mktemp("person_ckpt") / "tnet.pth"
    save_checkpoint({"arch": m.arch, "model": m.state_dict()}, path)
    return path


def test_batch_in_worker_processes_matches_one_process(capsys, person_checkpoint, photos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("face.jpg", "gray.jpg", "exif.jpg", "not_an_image.jpg"):
        shutil.copy(photos / name, folder / name)
    (folder / "notes.txt").write_text("ignored")
    common = ("--input-dir", folder, "--checkpoint", person_checkpoint, "--input-size", 96, "--spec", "none")
    rc, stdout, err = run_cli(capsys, *common, "--out-dir", tmp_path / "pool", "--workers", 2)
    assert rc == 1
    assert "3 of 4 photos written (3 with all rules met, 0 with rules missed), 1 refused, 1 non-image files ignored" in stdout
    assert "2 workers" in err and "not_an_image.jpg" in err and "Traceback" not in err
    rc1, stdout1, _ = run_cli(capsys, *common, "--out-dir", tmp_path / "one", "--workers", 1)
    assert rc1 == 1 and "3 of 4 photos written" in stdout1
    made = sorted(p.name for p in (tmp_path / "pool").iterdir())
    assert made == sorted(p.name for p in (tmp_path / "one").iterdir()) and len(made) == 12
    for name in made:  # the same pipeline in another process: the same pixels
        a = cv2.imread(str(tmp_path / "pool" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "one" / name), cv2.IMREAD_UNCHANGED)
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1, name


def test_batch_in_worker_processes_stops_on_a_bad_checkpoint(capsys, photos, tmp_path):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"not a checkpoint")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("face.jpg", "gray.jpg"):
        shutil.copy(photos / name, folder / name)
    rc, _, err = run_cli(capsys, "--input-dir", folder, "--checkpoint", bad, "--out-dir", tmp_path / "out",
                         "--workers", 2, "--quiet")
    one_line_error(rc, err)
    assert "not a readable PyTorch checkpoint" in err
    assert not (tmp_path / "out").exists()


def test_report_json_and_strict(capsys, checkpoint, photos, tmp_path, person):
    """The compliance report is written beside the photo; --strict turns a failed rule into exit 1 with nothing written."""
    import json

    args = ("--image", photos / "face.jpg", "--checkpoint", checkpoint, "--input-size", 160, "--spec", "icao")
    rc, out, err = run_cli(capsys, *args, "--out-dir", tmp_path / "ok")
    assert rc == 0, err
    report = json.loads((tmp_path / "ok" / "face_report.json").read_text(encoding="utf-8"))
    assert report["spec"] == "icao" and {c["rule"] for c in report["checks"]} >= {"head height (chin to crown)", "DPI"}
    assert "report" in out and "head height" in out
    # blue is not an allowed ICAO background: the report says so, --strict refuses
    rc, out, err = run_cli(capsys, *args, "--bg", "blue", "--out-dir", tmp_path / "blue")
    assert rc == 0
    report = json.loads((tmp_path / "blue" / "face_report.json").read_text(encoding="utf-8"))
    colour = next(c for c in report["checks"] if c["rule"] == "background colour")
    assert colour["passed"] is False and report["passed"] is False and "miss  background colour" in out
    rc, out, err = run_cli(capsys, *args, "--bg", "blue", "--strict", "--out-dir", tmp_path / "strict")
    assert rc == 1 and "--strict" in err and "background colour" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "strict").exists() or not any((tmp_path / "strict").iterdir())


def test_bg_keep_and_style_flags(capsys, checkpoint, photos, tmp_path, person):
    args = ("--image", photos / "face.jpg", "--checkpoint", checkpoint, "--input-size", 160, "--spec", "1inch",
            "--out-dir", tmp_path)
    rc, _, err = run_cli(capsys, *args, "--bg", "blue", "--bg-style", "gradient")
    assert rc == 0, err
    photo = cv2.imread(str(tmp_path / "face_idphoto.jpg"))
    # beside the head, lower is lighter (more red in a blue-to-white fade): 60 % white at the bottom edge
    assert int(photo[120, 2, 2]) > int(photo[2, 2, 2]) + 25
    rc, _, err = run_cli(capsys, *args, "--bg", "keep")
    assert rc == 0, err
    kept = cv2.imread(str(tmp_path / "face_idphoto.jpg"))
    assert np.abs(kept[:10, :10].astype(int) - 255).max() > 30  # the photo's own background, not white
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, *args, "--bg-style", "stripes")
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_ctrl_c_in_a_batch_with_workers_stops_handing_out_photos_and_says_what_was_made(tmp_path):
    """SIGINT once the first photo is written: the photos in flight finish whole, no other starts, and the
    summary lists what was made and what was not (exit 130)."""
    import os
    import signal
    import time

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(12):
        shutil.copy(ASTRONAUT, folder / f"p{i:02d}.jpg")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen([sys.executable, str(REPO / "infer.py"), "--input-dir", str(folder), "--out-dir", str(out),
                            "--workers", "2", "--threads", "1", "--quiet"], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(out.glob("*_idphoto.jpg")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, run.communicate()
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=240)
    assert run.returncode == 130, (stdout, stderr)
    made = sorted(p.name.removesuffix("_idphoto.jpg") for p in out.glob("*_idphoto.jpg"))
    assert "interrupted:" in stdout and "photo(s) not made" in stdout
    not_made = [n for n in (f"p{i:02d}" for i in range(12)) if n not in made]
    assert not_made and all(f"{n}.jpg" in stdout for n in not_made[:10])   # every photo not made is named
    for name in made:                                                         # and every one made is whole
        assert all((out / f"{name}_{kind}").is_file() for kind in ("idphoto.jpg", "report.json"))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]          # no temporary file left


def test_the_progress_bar_counts_each_photo_once(monkeypatch, capsys):
    import types

    import tqdm

    closed_at = []

    class Recording(tqdm.tqdm):
        def close(self):
            closed_at.append(self.n)
            super().close()

    monkeypatch.setattr(tqdm, "tqdm", Recording)
    files = [Path("a.jpg"), Path("b.jpg")]
    args = types.SimpleNamespace(quiet=False, out_dir=Path("o"))
    rc = infer.summarise(iter([(f, ("skipped", f"{f}: bad; nothing written")) for f in files]), args, files,
                         ["a", "b"], [], 0.0)
    assert rc == 1 and closed_at and set(closed_at) == {2}   # (close may run twice: the context and its end)
    assert "  refused: a.jpg: bad\n" in capsys.readouterr().out


# ---------------------------------------------------------------------------- --spec-file and --list-specs
@pytest.fixture
def fresh_catalogue(monkeypatch):
    """--spec-file adds to the process-wide catalogue: give each test its own copy."""
    import idphoto.specs as specs_mod

    monkeypatch.setattr(specs_mod, "SPECS", dict(specs_mod.SPECS))
    monkeypatch.setattr(specs_mod, "ALIASES", dict(specs_mod.ALIASES))


def run_cli_or_usage_error(capsys, *args):
    """Like :func:`run_cli`, with argparse's usage errors (SystemExit) as the exit status."""
    try:
        rc = infer.main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_spec_file_and_list_specs(tmp_path, capsys, fresh_catalogue):
    good = tmp_path / "mine.json"
    good.write_text(json.dumps([USER_SPEC]))
    n_builtin = len(SPECS)
    rc, out, err = run_cli_or_usage_error(capsys, "--spec-file", good, "--list-specs")
    assert rc == 0, err
    assert "my-card" in out and "cn-id-card" in out and "358×441 px @ 350 DPI" in out
    assert len(out.strip().splitlines()) == n_builtin + 2  # header + built-ins + the user's
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**USER_SPEC, "size": [30]}))
    rc, out, err = run_cli_or_usage_error(capsys, "--spec-file", bad, "--image", ASTRONAUT)
    assert rc == 2 and "field 'size'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    bad.write_text("{not json")
    rc, out, err = run_cli_or_usage_error(capsys, "--spec-file", bad, "--list-specs")
    assert rc == 2 and "not valid JSON" in err
