"""Trimap construction, class mapping, metrics and atomic writes."""
import cv2
import numpy as np
import pytest
import torch

from utils import (AverageMeter, ConfusionMatrix, atomic_path, erode_dilate, make_trimap, read_image,
                   trimap_to_classes, trimap_to_image, write_image)


def disc_mask(size=101, radius=30):
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 2, size // 2), radius, 255, -1)
    return mask


@pytest.mark.parametrize("kernel", [10, 6])
def test_erode_dilate_values_and_band_width(kernel):
    mask = disc_mask()
    trimap = erode_dilate(mask, kernel)
    assert set(np.unique(trimap)) == {0, 128, 255}
    # along the row through the centre, the unknown band on each side is about `kernel` pixels wide
    row = trimap[50]
    band = np.flatnonzero(row == 128)
    left = band[band < 50]
    assert kernel - 2 <= len(left) <= kernel + 1
    # the band straddles the original edge: sure fg inside, sure bg outside
    edge = 50 - 30
    assert row[edge - kernel // 2 - 1] == 0 and row[edge + kernel // 2 + 1] == 255
    assert (trimap[mask == 0] != 255).all() and (trimap[mask == 255] != 0).all()


def test_smooth_variant_has_narrower_band():
    mask = disc_mask()
    assert (erode_dilate(mask, 6) == 128).sum() < (erode_dilate(mask, 10) == 128).sum()


def test_erode_dilate_refines_a_trimap():
    """Applied to a predicted trimap, 128 regions stay unknown and fg shrinks (never grows)."""
    trimap = erode_dilate(disc_mask())
    refined = erode_dilate(trimap)
    assert set(np.unique(refined)) <= {0, 128, 255}
    assert ((refined == 255) <= (trimap == 255)).all()
    assert ((refined == 0) <= (trimap == 0)).all()


def test_erode_dilate_rejects_bad_input():
    with pytest.raises(ValueError):
        erode_dilate(np.zeros((4, 4, 3), np.uint8))


def test_make_trimap_thresholds_alpha_at_50():
    alpha = np.zeros((60, 60), np.uint8)
    alpha[10:50, 10:50] = 50  # not above the threshold: no person
    assert (make_trimap(alpha) == 0).all()
    alpha[10:50, 10:50] = 51
    assert (make_trimap(alpha) == 255).any()


def test_class_image_round_trip_keeps_unknown():
    classes = np.array([[0, 1, 2], [2, 1, 0]])
    image = trimap_to_image(classes)
    assert image.dtype == np.uint8 and image.tolist() == [[0, 128, 255], [255, 128, 0]]
    assert (trimap_to_classes(image) == classes).all()
    assert trimap_to_image(torch.tensor(classes)).tolist() == image.tolist()


def test_confusion_matrix_metrics():
    cm = ConfusionMatrix(3)
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 2, 0])
    cm.update(pred, target)
    iou = cm.iou().tolist()
    assert iou == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert cm.mean_iou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    perfect = ConfusionMatrix(3)
    perfect.update(target, target)
    assert perfect.mean_iou() == 1.0


def test_average_meter_weights_by_count():
    m = AverageMeter()
    m.update(1.0, 8)
    m.update(4.0, 2)  # a short last batch must not dominate
    assert m.avg == pytest.approx((8 + 8) / 10)


def test_write_image_is_atomic_and_handles_non_ascii(tmp_path):
    path = tmp_path / "证件照" / "照片.png"
    write_image(path, np.full((5, 7), 200, np.uint8))
    assert read_image(path, cv2.IMREAD_GRAYSCALE).shape == (5, 7)
    assert sorted(p.name for p in path.parent.iterdir()) == ["照片.png"]
    target = tmp_path / "never.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("crash while writing")
    assert list(tmp_path.glob("*never*")) == [] and list(tmp_path.glob(".never*")) == []
    assert read_image(tmp_path / "missing.png") is None


def test_a_failed_write_names_the_target_not_the_temporary_file(tmp_path):
    from utils import save_checkpoint

    target = tmp_path / "out.bin"
    with pytest.raises(OSError) as info:
        with atomic_path(target), open("/dev/full", "wb") as f:  # ENOSPC, as on a full disk
            f.write(b"x" * 10)
            f.flush()
    assert info.value.filename == str(target) and "No space left" in info.value.strerror
    real = torch.save
    try:
        torch.save = lambda obj, f: real(obj, "/dev/full")  # torch's own zip writer fails (inline_container.cc)
        with pytest.raises(OSError) as info:
            save_checkpoint({"w": torch.zeros(100_000)}, tmp_path / "ckpt.pth")
    finally:
        torch.save = real
    assert info.value.filename == str(tmp_path / "ckpt.pth") and "could not write the checkpoint" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_one_line_and_out_dir_checks(tmp_path):
    import core.cli as cli

    worker = OSError("Caught OSError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                     '  File "x.py", line 1, in f\nOSError: cannot read the image /d/a.jpg\n')
    assert cli.one_line(worker) == "cannot read the image /d/a.jpg"
    assert cli.one_line(EOFError()) == "EOFError" and cli.one_line(ValueError("a\nb")) == "a"
    cli.check_writable_dir(tmp_path / "new" / "deeper")  # may be created: nothing is made now
    assert not (tmp_path / "new").exists()
    (tmp_path / "f").write_text("x")
    for bad in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
            cli.check_writable_dir(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_settings_dataclass_becomes_flags_with_its_own_defaults():
    """core.cli.add_field_arguments: one reading of the field metadata for every settings dataclass."""
    import argparse
    import dataclasses

    import core.cli as cli

    def flag(default, help, **meta):
        return dataclasses.field(default=default, metadata={"help": help, **meta})

    @dataclasses.dataclass
    class Settings:
        size: int = flag(3, "a size", type=int, group="a")
        mode: str = flag("x", "a mode", choices=("x", "y"), group="a")
        fast: bool = flag(False, "a switch", action="store_true", group="b")
        amp: bool | None = flag(None, "on, off or unsaid", action="optional", group="b")
        paths: tuple = flag((), "repeatable", type=str, action="append", group="b")
        sizes: tuple = flag((1, 2), "several", type=int, nargs="+", group="a")
        timeout_s: float = flag(9.0, "seconds", type=float, flag="--timeout", metavar="S", group="a")
        internal: str = "not a flag"

    fields = [f for f in dataclasses.fields(Settings) if "help" in f.metadata]
    parser = argparse.ArgumentParser()
    groups = cli.add_field_arguments(parser, fields, {"a": "first", "b": "second"})
    assert [g.title for g in groups.values()] == ["first", "second"]
    assert sorted(a.dest for a in groups["b"]._group_actions) == ["amp", "fast", "paths"]
    defaults = vars(parser.parse_args([]))
    assert defaults == {"size": 3, "mode": "x", "fast": False, "amp": None, "paths": [], "sizes": [1, 2],
                        "timeout_s": 9.0}
    assert Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in defaults.items()}) == Settings()
    args = parser.parse_args(["--size", "5", "--mode", "y", "--fast", "--no-amp", "--paths", "a", "--paths", "b",
                              "--sizes", "4", "--timeout", "2.5"])
    assert (args.size, args.mode, args.fast, args.amp, args.paths, args.sizes, args.timeout_s) == \
        (5, "y", True, False, ["a", "b"], [4], 2.5)
    assert parser.parse_args(["--amp"]).amp is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "z"])                                   # outside the choices
    assert "--internal" not in parser.format_help() and "S" in cli.field_argument(fields[-1])[1]["metavar"]


def test_clip_never_cuts_a_word():
    from core.errors import clip

    text = "Weights only load failed. In PyTorch 2.6, we changed the default value of the weights_only argument"
    out = clip(text, 60)
    assert len(out) <= 60 and out.endswith(" …") and text.startswith(out[:-2]) and text[len(out) - 2] == " "
    assert clip("short\nsecond line") == "short"
    long_word = clip("x" * 300, 50)
    assert len(long_word) == 50 and long_word.endswith("…")


# the trimap helpers' documented details (found by mutation testing)
def test_erode_dilate_thresholds_the_mask_at_5_and_250():
    """Dilation: a pixel above 5 may be person (unknown); erosion: only a block that stays at 250 or more
    is sure foreground. Regions of 5, 6, 249 and 250 far apart show each threshold."""
    mask = np.zeros((60, 240), np.uint8)
    for i, value in enumerate((5, 6, 249, 250)):
        mask[15:45, 10 + 60 * i: 50 + 60 * i] = value
    trimap = erode_dilate(mask, 6)
    centre = [trimap[30, 30 + 60 * i] for i in range(4)]
    assert centre == [0, 128, 128, 255]
    assert set(np.unique(trimap)) == {0, 128, 255}


def test_erode_dilate_uses_a_round_kernel_and_10_px_by_default():
    """A single sure-foreground pixel grows into a disc-shaped unknown region (an elliptical kernel), not a
    square; the default kernel is the design's 10 px."""
    mask = np.zeros((41, 41), np.uint8)
    mask[20, 20] = 255
    trimap = erode_dilate(mask, 9)
    unknown = trimap == 128
    assert unknown[20, 16] and unknown[16, 20] and unknown[20, 24]      # the kernel's axes are reached
    assert not unknown[16, 16] and not unknown[24, 24]                  # its corners are not: round, not square
    disc = np.zeros((101, 101), np.uint8)
    cv2.circle(disc, (50, 50), 30, 255, -1)
    assert (erode_dilate(disc) == erode_dilate(disc, 10)).all()
    assert not (erode_dilate(disc) == erode_dilate(disc, 12)).all()
    with pytest.raises(ValueError, match="2-D uint8"):
        erode_dilate(np.zeros((4, 4), np.float32))


def test_make_trimap_passes_its_kernel_on():
    alpha = np.zeros((101, 101), np.uint8)
    cv2.circle(alpha, (50, 50), 30, 200, -1)
    for k in (6, 14):
        mask = np.where(alpha > 50, 255, 0).astype(np.uint8)
        assert (make_trimap(alpha, kernel_size=k) == erode_dilate(mask, k)).all()
    assert (make_trimap(alpha) == make_trimap(alpha, 50, 10)).all()
    assert (make_trimap(alpha, kernel_size=6) == 128).sum() < (make_trimap(alpha, kernel_size=14) == 128).sum()


def test_trimap_to_classes_goes_to_the_nearest_class():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    classes = trimap_to_classes(values)
    assert classes.dtype == np.uint8 and classes.shape == values.shape
    nearest = np.abs(values[..., None].astype(int) - np.array([0, 128, 255])).argmin(-1)
    tie = values == 64      # exactly halfway between 0 and 128
    assert (classes[~tie] == nearest[~tie]).all()


def test_trimap_to_image_takes_float_classes_and_tensors_that_need_grad():
    """Class maps come as numpy ints, floats (an interpolated map) or tensors still attached to a graph."""
    classes = np.array([[0, 1, 2], [2, 1, 0]])
    expected = [[0, 128, 255], [255, 128, 0]]
    assert trimap_to_image(classes.astype(np.float32)).tolist() == expected
    t = torch.tensor(classes, dtype=torch.float32, requires_grad=True)
    image = trimap_to_image(t * 1)
    assert image.dtype == np.uint8 and image.tolist() == expected
