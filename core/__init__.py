"""What every layer shares (the scripts, the research library ``tnet``, the ID-photo library ``idphoto``),
so that no script imports another one. Nothing here imports from those libraries.

* :mod:`core.errors` — :class:`~core.errors.UserError`, the base of every mistake a user can fix;
* :mod:`core.runtime` — the device, distributed set-up, autocast, the optimiser step, worker pools;
* :mod:`core.fileio` — the one atomic writer and the one image reader;
* :mod:`core.trimaps` — trimaps from masks and mattes (NumPy and OpenCV only);
* :mod:`core.cli` — exit codes, one-line usage errors, the error guard every script runs through;
* :mod:`core.metrics` — running averages, confusion-matrix metrics and the matting errors;
* :mod:`core.checkpoints` — training checkpoints and the run folder they live in;
* :mod:`core.lazy` — a package's names imported on first use (PEP 562).

Every module imports PyTorch only inside the functions that need it, so ``--help`` stays instant.
"""
