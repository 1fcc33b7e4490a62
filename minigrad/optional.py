"""Optional third-party packages, imported one way: when first used, never on ``import minigrad``.

minigrad's only dependency is NumPy.  Everything else (matplotlib, tqdm, scikit-learn, threadpoolctl,
Dask, Graphviz, CuPy) is an extra that a feature imports through ``require`` (an error naming the
pip extra when it is missing) or ``maybe`` (None when it is missing, for a feature that has a
fallback: a progress line without tqdm, no figures without matplotlib).
"""
from __future__ import annotations

import importlib

from .errors import MissingDependency


def maybe(name: str):
    """The module ``name``, or None if it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def require(name: str, extra: str, who: str, package: str | None = None):
    """The module ``name``; if it is not installed, one ``MissingDependency`` line saying who needs
    it (``package``: its name on PyPI, if not the module's) and the install command:
    "--threads needs threadpoolctl: pip install 'minigrad[tutorials]'"."""
    module = maybe(name)
    if module is None:
        raise MissingDependency(f"{who} needs {package or name.split('.')[0]}: pip install 'minigrad[{extra}]' "
                                f"(or pip install {package or name.split('.')[0]})")
    return module
