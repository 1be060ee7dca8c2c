"""Knowledge distillation: a teacher network's outputs guide a student network."""
from . import losses, module  # noqa: F401
