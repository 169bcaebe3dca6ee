"""idphoto.batch: the output names of a folder's photos, planned before any work."""
from __future__ import annotations

from idphoto import batch


def test_unique_stems_plan_is_checked_and_stable(tmp_path):
    files = [tmp_path / n for n in ("x.jpg", "x.png", "x_png.jpg", "x_png_2.jpg", "y.JPG", "y.jpeg")]
    stems = batch.unique_stems(files, tmp_path / "o")
    assert stems == ["x_jpg", "x_png_3", "x_png", "x_png_2", "y_jpg", "y_jpeg"]
    assert batch.unique_stems(files, tmp_path / "o") == stems  # the same every run


def test_unique_stems_never_name_an_input_and_never_collide(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "a_idphoto.jpg").write_bytes(b"")   # an input photo that a stem's output would overwrite
    files = [tmp_path / "a.jpg", out / "a_idphoto.jpg", tmp_path / "A.png"]
    stems = batch.unique_stems(files, out)
    planned = [p for stem in stems for p in batch.output_paths(out, stem, None).values()]
    assert len({str(p).casefold() for p in planned}) == len(planned)
    assert not {str(f).casefold() for f in files} & {str(p).casefold() for p in planned}


def test_batch_workers_are_bounded_by_the_photos():
    assert batch.batch_workers(4, 2) == 2 and batch.batch_workers(1, 10) == 1
    assert 1 <= batch.batch_workers(0, 3) <= 3
