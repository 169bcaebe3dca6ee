"""A package's public names, imported from its submodules on first use (PEP 562).

``import idphoto`` or ``import models`` then costs nothing: the spec tables, ``models.catalog`` and every
``--help`` answer without PyTorch, OpenCV or SciPy, and a name pulls in only the submodule that defines it.
"""
from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]], namespace: dict):
    """``(__all__, __getattr__, __dir__)`` for ``package``, whose names are ``{submodule: (name, ...)}``.

    Use in the package's ``__init__``: ``__all__, __getattr__, __dir__ = lazy_exports(__name__, {...}, globals())``.
    A name once imported is stored in ``namespace``, so later look-ups never reach ``__getattr__`` again.
    """
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(module_of))

    return list(module_of), __getattr__, __dir__
