"""What every family shares: the base module, registry, run logger and reader, callbacks."""
from .errors import ConfigError, NbDistillError, NonFiniteLoss, RunFolderError, TrainingFailed
from .logger import RunLogger, RunWriter
from .module import DistillModule
from .registry import HParam, Method, family_names, get_method, methods, register

__all__ = [
    "ConfigError", "NbDistillError", "NonFiniteLoss", "RunFolderError", "TrainingFailed",
    "RunLogger", "RunWriter", "DistillModule", "HParam", "Method", "family_names", "get_method",
    "methods", "register",
]
