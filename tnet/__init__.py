"""The research library: training the TNet (the trimap network) and measuring it.

* :mod:`tnet.config` — :class:`~tnet.config.TrainConfig`, the training recipe defined once: ``train.py``'s
  flags, the TOML recipes in ``configs/``, the recipe a weights file records and the augmentation
  arguments all come from its fields (no PyTorch on import);
* :mod:`tnet.training` — a run in named phases (``train`` → ``prepare_run`` → ``run_epochs``: ``train_epoch``,
  ``validate_all``, ``log_epoch``, ``save``), importable: ``train.py`` only parses and calls it;
* :mod:`tnet.losses` — the loss (cross-entropy, soft Dice, Lovász);
* :mod:`tnet.evaluation` — per-image scores and their ``update``/``summary`` accumulator, as
  ``evaluate.py`` reports them.

The data (dataset, transforms) and the networks (PSPNet, the compact U-Net, the weights files) keep the
design card's top-level names, ``datasets/`` and ``models/``; the metrics are :mod:`core.metrics`, shared
with the ID-photo library.
"""
