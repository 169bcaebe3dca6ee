"""Photos in, files out: one photo, or a folder's worth on one process or a pool of them (``infer.py``'s work
without its command line, as ``convert_video`` is RobustVideoMatting's).

* :func:`make_files` — one photo made in memory (:func:`idphoto.service.process_image`, the API's work per
  request), then every file written together or none;
* :func:`unique_stems` — one output name per photo, decided before any work: never shared, never an input's;
* :func:`process_photos` — (photo, result) pairs as they finish, on this process or on ``workers`` processes
  that each load the model once; Ctrl-C hands out no more photos and lets those in flight finish whole.

A photo's result is ``("done", report)`` or ``("skipped", one-line reason)``: one bad photo never stops a batch.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from .errors import IDPhotoError
from .options import IDPhotoOptions, Resolved
from .output import output_paths, write_all


def make_files(path: Path, stem: str, pipeline, options: IDPhotoOptions, resolved: Resolved, out_dir: Path) -> dict:
    """Everything for one photo, in memory first; then all its files are written (or none). Returns a report:
    the paths written, stage timings, notes, and the ID photo's size, DPI, KB and compliance report."""
    from .image_io import open_photo
    from .service import process_image

    t = time.perf_counter()
    try:  # read as far as its header: the pixels are decoded at the size the ID photo needs
        image = open_photo(path)
        load_s = time.perf_counter() - t
        out = process_image(image, options, pipeline, resolved)
    except IDPhotoError as exc:  # refused: every line names its photo, and says that nothing was written
        text = str(exc)
        raise IDPhotoError(f"{text if text.startswith(str(path)) else f'{path}: {text}'}; nothing written") from None
    timings = {"load": load_s + out.timings.pop("decode", 0.0), **out.timings}
    made = {"trimap": out.trimap, "alpha": out.alpha, "cutout": out.cutout, "idphoto": out.idphoto,
            "idphoto_hd": out.idphoto_hd, "sheet": out.sheet,
            "report": None if out.report is None else out.report.to_json()}
    paths = {k: p for k, p in output_paths(out_dir, stem, options.layout, report=resolved.spec is not None).items()
             if made[k] is not None}   # the matte files only with matte_files or spec none
    t = time.perf_counter()
    write_all({p: made[k] for k, p in paths.items()})
    timings["write"] = time.perf_counter() - t
    return {"paths": paths, "timings": timings, "notes": out.notes, "quality": out.quality, "copies": out.copies,
            "size": out.size, "dpi": out.dpi, "kb": out.kb, "input": image.size[::-1], "report": out.report}


def photo_result(path: Path, stem: str, pipeline, options: IDPhotoOptions, resolved: Resolved,
                 out_dir: Path) -> tuple[str, object]:
    """("done", report) or ("skipped", one-line reason): one bad photo must not stop the batch."""
    try:
        return "done", make_files(path, stem, pipeline, options, resolved, out_dir)
    except OSError as exc:  # the out-dir can't be written (a full disk): every later photo would fail too
        raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or str(out_dir)) from None
    except IDPhotoError as exc:
        return "skipped", str(exc)
    except Exception as exc:  # noqa: BLE001 — reported, and the batch goes on
        return "skipped", f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _key(path: Path) -> tuple[str, str]:
    """A file's identity for collisions: its real folder and its name without case (on Windows and macOS
    ``photo.JPG`` and ``photo.jpg`` are one file)."""
    return str(path.parent.resolve()), path.name.casefold()


def unique_stems(files: list[Path], out_dir: Path, layout: str | None = None) -> list[str]:
    """One output name stem per input, never shared and never naming an input photo, decided before any work.

    A photo keeps its own stem when no other input has it (case ignored); photos sharing a stem add their
    extension (``a.jpg`` → ``a_jpg``, ``a.png`` → ``a_png``). A stem still taken — by another photo, or
    because one of its outputs would be an input photo (``a.jpg`` beside ``a_idphoto.jpg`` in --out-dir) —
    gets ``_2``, ``_3``…: plain stems are served first, then the others in file-name order.
    """
    inputs = {_key(f) for f in files}
    shared = Counter(f.stem.casefold() for f in files)
    wanted = [f.stem if shared[f.stem.casefold()] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}" for f in files]
    taken: set[str] = set()
    stems: list[str] = [""] * len(files)
    for i in sorted(range(len(files)), key=lambda i: (wanted[i] != files[i].stem, files[i].name)):
        stem, n = wanted[i], 1
        while stem.casefold() in taken or any(_key(p) in inputs for p in output_paths(out_dir, stem, layout).values()):
            n += 1
            stem = f"{wanted[i]}_{n}"
        taken.add(stem.casefold())
        stems[i] = stem
    # the guarantee itself, checked: every output path is distinct and none is an input
    planned = [_key(p) for stem in stems for p in output_paths(out_dir, stem, layout).values()]
    if len(set(planned)) != len(planned) or inputs & set(planned):
        raise RuntimeError("output names collide; refusing to write anything")
    return stems


def batch_workers(requested: int, n_files: int) -> int:
    """How many processes a folder uses: ``requested``, or one per CPU core this process may use."""
    import os

    if requested:
        return max(1, min(requested, n_files))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_files))


def process_photos(files: list[Path], stems: list[str], options: IDPhotoOptions, resolved: Resolved, out_dir: Path,
                   workers: int = 1, pipeline=None):
    """(path, result) pairs, as the photos finish. ``workers`` 1: here, with ``pipeline``; more: on that many
    spawned processes, each loading the model of ``options`` once. A worker that can't load the model, or
    dies, stops the batch with an :class:`IDPhotoError`. Ctrl-C (KeyboardInterrupt) stops it after the
    photos in flight."""
    if workers <= 1:
        for path, stem in zip(files, stems):
            yield path, photo_result(path, stem, pipeline, options, resolved, out_dir)
        return
    yield from _in_pool(files, stems, options, resolved, out_dir, workers)


_WORKER: dict = {}


def _worker_start(options: IDPhotoOptions, threads: int) -> None:
    """Pool initialiser: one model per worker process. A failure is kept and reported by the first photo."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))  # before NumPy/SciPy load: the cores are shared by the workers
    try:
        import cv2

        from core.runtime import pick_device

        from .pipeline import Pipeline
        from .runner import open_trimap_model

        cv2.setNumThreads(threads)
        device = pick_device(options.device)
        model = open_trimap_model(options.checkpoint, device, threads, options.input_size)
        _WORKER["pipeline"] = Pipeline.from_options(model, options, device)
    except Exception as exc:  # noqa: BLE001 — e.g. a bad checkpoint: the parent stops with this line
        _WORKER["fatal"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _worker_photo(path: Path, stem: str, options: IDPhotoOptions, resolved: Resolved, out_dir: Path):
    if "fatal" in _WORKER:
        return "fatal", _WORKER["fatal"]
    return photo_result(path, stem, _WORKER["pipeline"], options, resolved, out_dir)


def _in_pool(files, stems, options: IDPhotoOptions, resolved: Resolved, out_dir: Path, workers: int):
    """The photos on ``workers`` processes (spawned: safe with PyTorch's threads, and portable), handed out one
    per free worker (none queued ahead), so that Ctrl-C stops the batch at once: the photos in flight
    finish (each written whole), no other starts. This process loads no model."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    if options.matting != "cf":  # compile (or load) pymatting's kernels once here, not in every worker at once
        from .pipeline import import_pymatting

        import_pymatting()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start,
                               initargs=(options, options.threads or 1))
    todo = list(zip(files, stems))
    running = {}
    try:
        while todo or running:
            while todo and len(running) < workers:
                path, stem = todo.pop(0)
                running[pool.submit(_worker_photo, path, stem, options, resolved, out_dir)] = path
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                path = running.pop(future)
                try:
                    status, value = future.result()
                except BrokenProcessPool:
                    raise IDPhotoError("a worker process died (out of memory?); try --workers 1") from None
                if status == "fatal":
                    raise IDPhotoError(value)
                yield path, (status, value)
    except KeyboardInterrupt:
        todo.clear()
        for future, path in list(running.items()):  # the photos in flight finish, whole
            try:
                status, value = future.result()
            except Exception:  # noqa: BLE001 — a worker gone on Ctrl-C: that photo is not made
                continue
            if status != "fatal":
                yield path, (status, value)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
