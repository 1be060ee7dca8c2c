"""Knowledge distillation: a teacher network's outputs guide a student network."""

from . import features, heads, lelp, losses, module, mtard, quantize, self_gt, signal, views  # noqa: F401  (importing them registers the methods and views)
