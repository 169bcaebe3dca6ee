"""What the scripts share, so that no script imports another one.

* :mod:`core.errors` — :class:`~core.errors.UserError`, the base of every mistake a user can fix;
* :mod:`core.runtime` — the device, distributed set-up, autocast, the optimiser step, worker pools;
* :mod:`core.fileio` — the one atomic writer and the one image reader;
* :mod:`core.trimaps` — trimaps from masks and mattes (NumPy and OpenCV only);
* :mod:`core.metrics` — running averages and confusion-matrix metrics;
* :mod:`core.checkpoints` — training checkpoints and the run folder they live in;
* :mod:`core.lazy` — a package's names imported on first use (PEP 562);
* :mod:`core.evaluation` — scoring a TNet and the matting behind it (``evaluate.py``'s engine).

Every module imports PyTorch only inside the functions that need it, so ``--help`` stays instant.
"""
