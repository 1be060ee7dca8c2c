"""What every family shares: the base module, registry, run logger and reader, callbacks.

Loaded on first use (see the package's docstring): the errors, the registry and the run-folder
reader import neither torch nor Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_NAMES = {
    "ConfigError": ".errors",
    "NbDistillError": ".errors",
    "NonFiniteLoss": ".errors",
    "RunFolderError": ".errors",
    "TrainingFailed": ".errors",
    "RunLogger": ".logger",
    "RunWriter": ".logger",
    "DistillModule": ".module",
    "HParam": ".registry",
    "Method": ".registry",
    "family_names": ".registry",
    "get_method": ".registry",
    "methods": ".registry",
    "register": ".registry",
}

if TYPE_CHECKING:
    from .errors import ConfigError, NbDistillError, NonFiniteLoss, RunFolderError, TrainingFailed  # noqa: F401 (resolved lazily, see __getattr__)
    from .logger import RunLogger, RunWriter  # noqa: F401 (resolved lazily, see __getattr__)
    from .module import DistillModule  # noqa: F401 (resolved lazily, see __getattr__)
    from .registry import HParam, Method, family_names, get_method, methods, register  # noqa: F401 (resolved lazily, see __getattr__)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbdistill.core' has no attribute {name!r}")


__all__ = list(_NAMES)
