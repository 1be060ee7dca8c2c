"""Knowledge distillation: a teacher network's outputs guide a student network."""
from . import features, heads, losses, module, quantize  # noqa: F401
from . import lelp, mtard, self_gt, signal, views  # noqa: F401  (views registers the KD views)
