"""Every distillation family; importing this package registers their methods."""
from . import kd  # noqa: F401
