"""nbdistill: learn and explore distillation in JupyterLab.

    import nbdistill as nd
    nd.methods("kd")                                   # every registered method of a family
    run = nd.fit("kd.hinton", teacher=nd.zoo.teacher("digits-mlp"),
                 student=nd.models.MLP(64, [8], 10), data=nd.data.Digits())
    run.plot()
    nd.panel("kd", teacher=..., student=..., data=...)  # the live panel

The names are loaded on first use: ``import nbdistill`` alone does not import torch or Lightning,
so the Jupyter server extension (which reads run folders) starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.version import __version__

_SUBMODULES = ("core", "data", "families", "models", "runs", "widgets", "zoo")
#: public name -> the module it lives in
_NAMES = {
    "ConfigError": ".core.errors",
    "RunFolderError": ".core.errors",
    "TrainingFailed": ".core.errors",
    "HParam": ".core.registry",
    "family_names": ".core.registry",
    "get_method": ".core.registry",
    "methods": ".core.registry",
    "build": ".core.fit",
    "fit": ".core.fit",
    "resume": ".core.fit",
}

if TYPE_CHECKING:  # what editors and type checkers see
    from . import data, models, runs, zoo
    from .core.errors import ConfigError, RunFolderError, TrainingFailed
    from .core.fit import build, fit, resume
    from .core.registry import HParam, family_names, get_method, methods


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbdistill' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built JupyterLab extension is (for ``jupyter labextension develop .``)."""
    return [{"src": "labextension", "dest": "nbdistill"}]


def panel(family: str = "kd", **kwargs):
    """The live training panel of ``family`` (see :class:`nbdistill.widgets.panel.Panel`)."""
    from .widgets.panel import Panel

    return Panel(family, **kwargs)


__all__ = [
    "__version__",
    "data",
    "models",
    "runs",
    "zoo",
    "ConfigError",
    "HParam",
    "RunFolderError",
    "TrainingFailed",
    "family_names",
    "get_method",
    "methods",
    "build",
    "fit",
    "resume",
    "panel",
]
